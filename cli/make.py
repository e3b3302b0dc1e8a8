"""`synthface make-dataset`: faces drawn from a generator (optionally steered, turned in
3D, augmented), labelled by dlib and written with their labels; with --scenes, the
faces are pasted into scenes for face-detector data instead. Every option is checked
before the generator is loaded or a folder made.
"""

from __future__ import annotations

import argparse
import sys

from synthface.cli import plans
from synthface.cli.common import add_field_flag, add_steering_flags, shown, steering_targets
from synthface.errors import SynthfaceError


MAKE_EXAMPLES = """\
examples:
  # 100,000 faces with boxes and 68 landmarks from the bundled generator (celeba64)
  synthface make-dataset -n 100000 --landmarks -o data/faces100k

  # the same from the bundled UTKFace generator, or from one you trained
  synthface make-dataset -n 10000 --landmarks -o data/utk10k --checkpoint default64
  synthface make-dataset -n 10000 --landmarks -o data/mine10k --checkpoint runs/mine/generator.safetensors

  # scenes for face-detector training (from default64), boxes as landmark sets draw them
  synthface make-dataset --scenes -n 5000 --box points -o data/scenes

  # continue a run that was interrupted (same command, plus --resume)
  synthface make-dataset -n 100000 --landmarks -o data/faces100k --resume

  # look at the labels
  synthface preview data/faces100k -o preview.png
"""


def add(sub) -> None:
    # the defaults live in the option dataclasses; the flags show them
    from synthface.dataset.config import MakeConfig as M
    from synthface.dataset.scenes import SceneConfig as S
    from synthface.face.annotate import DETECTORS, LABELS, AnnotateConfig as A
    from synthface.face.geometry import BOX_CONVENTIONS

    p = sub.add_parser(
        "make-dataset", help="sample faces, label them with dlib, write a dataset",
        description="Draw faces from a generator, find each face's box (and 68 landmarks) with "
                    "dlib, keep the samples with exactly one face, and write images plus labels "
                    "(labels.csv/.parquet, metadata.jsonl, dlib.xml, .pts, coco.json, "
                    "labels/ + data.yaml for Ultralytics), with a train/val split.",
        epilog=MAKE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, required=True, help="number of labelled faces in the result")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="dataset folder (must be new or empty, unless --resume)")
    p.add_argument("--checkpoint", help="generator weights (.safetensors with its .json beside it) or a "
                                        "bundled generator's name: celeba64 (the default), default64 (the "
                                        "default with --scenes)")
    p.add_argument("--landmarks", action="store_true",
                   help="also the 68 iBUG 300-W landmarks (else boxes only); turns on --augment and "
                        "--rotate-3d=-30:30 unless --no-augment / --no-rotate-3d")
    add_field_flag(p, "--seed", cls=M, field="seed", help="base seed; image j is made from (seed, j)")
    p.add_argument("--image-size", type=int, help=f"side of the saved images (default: the generator's; scenes {S.image_size})")
    add_field_flag(p, "--pad", cls=M, field="pad",
                   help="reflected border around each face, as a fraction of its side (e.g. 0.25); "
                        "the saved image grows by 2 x pad")
    add_field_flag(p, "--min-score", cls=A, field="min_score", help="lowest detector score kept")
    add_field_flag(p, "--upsample", cls=A, field="upsample", help="dlib detector upsampling steps")
    add_field_flag(p, "--detector", cls=A, field="detector", choices=DETECTORS,
                   help="face filter: dlib's HOG frontal detector (hog) or its CNN (MMOD) detector, which "
                        "keeps more turned faces at about 60x the CPU time; boxes keep HOG's convention")
    p.add_argument("--augment", action="store_true",
                   help="augment each kept face at dataset time, labels transformed exactly: roll +-15 degrees, "
                        "scale +-10%%, shift +-5%%, flip 50%%, colour +-20%%, blur / noise / JPEG 20%% each "
                        "(parameters from the face's seed); the default with --landmarks, where it trained the "
                        "best landmark models (bench/bench_landmarks.py)")
    p.add_argument("--no-augment", action="store_true", help="no dataset-time augmentation")
    p.add_argument("--rotate-3d", metavar="MIN:MAX",
                   help="turn each kept face in 3D by a yaw drawn from MIN:MAX degrees (e.g. --rotate-3d=-60:60), "
                        "its landmarks carried exactly through the turn (needs --landmarks; before --augment); "
                        "-30:30 is the default with --landmarks, where it trained the best landmark models "
                        "(bench/bench_mixing.py); not with --scenes")
    p.add_argument("--no-rotate-3d", action="store_true", help="no 3D turn (faces as the generator draws them)")
    p.add_argument("--rotate-3d-pitch", metavar="MIN:MAX",
                   help="also a pitch, degrees (> 0: up), with --rotate-3d's yaw (-30:30 unless given)")
    add_field_flag(p, "--labels", cls=A, field="labels", choices=LABELS,
                   help="flip: predict the landmarks on the image and its mirror and average the two; each row "
                        "gets their disagreement (in eye distances) as a label confidence")
    p.add_argument("--max-disagreement", type=float,
                   help="with --labels flip: reject faces whose two predictions disagree by more than this")
    p.add_argument("--format", default="all",
                   help="label formats, comma-separated: csv,parquet,hf,xml,pts,coco,yolo (default all; csv always), "
                        "for faces and scenes alike")
    add_field_flag(p, "--box", cls=M, field="box", choices=BOX_CONVENTIONS,
                   help="face box convention: dlib's (brows to lower lip), points (the square around the "
                        "68 points) or head (forehead to chin, as WIDER FACE); for single faces points and head "
                        "need --landmarks (scenes always have points)")
    add_steering_flags(p)
    p.add_argument("--scenes", action="store_true",
                   help="face-detector data: paste the -n faces into scenes (backgrounds with several faces each)")
    p.add_argument("--backgrounds", metavar="DIR", help="scenes: face-free photos to crop backgrounds from "
                                                        "(default: procedural backgrounds)")
    # scene flags default to None (not given: a face run refuses them), SceneConfig's defaults shown
    p.add_argument("--faces-per-image", metavar="MIN:MAX",
                   help=f"scenes: faces a scene (default {shown(S.faces_per_image)})")
    p.add_argument("--face-size", metavar="MIN:MAX",
                   help=f"scenes: face box width in pixels, log-uniform (default {shown(S.face_size)}, "
                        f"at most half of --image-size)")
    p.add_argument("--blend",
                   help=f"scenes: paste blendings to draw from, comma-separated (head: the face with its hair and "
                        f"neck, outlined from its points; default {shown(S.blends)})")
    p.add_argument("--groups", type=float, metavar="SHARE",
                   help=f"scenes: share of scenes that are group photos, rows of faces on shoulders "
                        f"(default {S.groups})")
    p.add_argument("--group-faces", metavar="MIN:MAX",
                   help=f"scenes: faces a group photo (default {shown(S.group_faces)})")
    p.add_argument("--photometric", type=float, metavar="AMOUNT",
                   help=f"scenes: photo-like variation of each scene (greyscale, low contrast, gamma, print, "
                        f"halftone, low resolution, blur, noise, vignetting, JPEG), each transform's rate times "
                        f"AMOUNT (0 off; up to 2; default {S.photometric})")
    add_field_flag(p, "--val-fraction", cls=M, field="val_fraction",
                   help="share of faces in the validation split, chosen per face from its seed")
    add_field_flag(p, "--batch-size", cls=M, field="batch_size", help="candidates per work chunk")
    p.add_argument("--workers", type=int,
                   help="workers: a thread of this process, the rest spawned processes (default: all cores)")
    p.add_argument("--device", default="auto", help="generator device: auto, cpu, cuda (default auto)")
    p.add_argument("--max-tries", type=int, help="give up after this many samples (default 20 x n + 1000)")
    p.add_argument("--predictor", help="path of shape_predictor_68_face_landmarks.dat (default: face_recognition_models')")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_field_flag(p, "--num-shards", cls=M, field="num_shards",
                   help="split the run into this many parts (jobs), joined later by `synthface merge`")
    p.add_argument("--shard-index", type=int, help="which part this job makes: 0 .. num-shards - 1")
    p.add_argument("--replay-faces", metavar="DIR",
                   help="testing: replay real faces from DIR instead of a generator")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_make_dataset, plan=plans.make_dataset)


def _run_make_scenes(args, cfg) -> int:
    """make-dataset --scenes: the faces pasted into scenes for face-detector data."""
    import shlex
    import time

    from synthface.dataset.scenes import make_scenes, scene_config_from_flags
    from synthface.generator.sampling import open_sampler

    scfg = scene_config_from_flags(image_size=args.image_size, faces_per_image=args.faces_per_image,
                                   face_size=args.face_size, backgrounds=args.backgrounds, blend=args.blend,
                                   photometric=args.photometric, groups=args.groups, group_faces=args.group_faces,
                                   num_shards=args.num_shards, augment=args.augment, pad=args.pad)
    from synthface.generator.sampling import generator_choice

    checkpoint = args.checkpoint if args.replay_faces else generator_choice(args.checkpoint, scenes=True)
    sampler = open_sampler(checkpoint, args.replay_faces, args.device, targets=steering_targets(args))
    command = "synthface " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    s = make_scenes(args.out, args.n, scfg, sampler, seed=cfg.seed, workers=cfg.workers,
                    val_fraction=cfg.val_fraction, annotate=cfg.annotate, resume=args.resume,
                    progress=not args.no_progress, command=command, formats=cfg.formats, max_tries=cfg.max_tries,
                    rotate3d=cfg.rotate3d, box=cfg.box)
    print(f"{s['faces']} faces in {s['scenes']} scenes in {args.out} ({s['unplaced']} left out: no room), "
          f"{time.perf_counter() - args.started:.1f} s from start to published labels")
    return 0


def _run_make_dataset(args) -> int:
    """make-dataset: every option checked, then the faces drawn, labelled and written."""
    import os
    import shlex

    from synthface.face.annotate import AnnotateConfig
    from synthface.formats import parse_formats
    import time

    from synthface.dataset.card import run_lines
    from synthface.dataset.make import MakeConfig, make_dataset
    from synthface.dataset.scenes import check_scene_flags, scene_implied
    from synthface.face.rotate3d import parse_turns
    from synthface.face.augment import AugmentConfig
    from synthface.generator.sampling import open_sampler

    if args.augment and args.no_augment:
        raise SynthfaceError("give --augment or --no-augment, not both")
    check_scene_flags(args.scenes, backgrounds=args.backgrounds, photometric=args.photometric, groups=args.groups,
                      group_faces=args.group_faces, faces_per_image=args.faces_per_image, face_size=args.face_size,
                      blend=args.blend, predictor=args.predictor, landmarks=args.landmarks)
    rotate3d = parse_turns(args.rotate_3d, args.rotate_3d_pitch)
    if rotate3d is not None and args.no_rotate_3d:
        raise SynthfaceError("give --rotate-3d (or --rotate-3d-pitch) or --no-rotate-3d, not both")
    implied = scene_implied(args.scenes, image_size=args.image_size, landmarks=args.landmarks,
                            # the library's default ("auto": on with --landmarks) unless a flag says otherwise
                            augment=AugmentConfig() if args.augment else None if args.no_augment else "auto",
                            # the same for the turn ("auto": -30:30 with --landmarks)
                            rotate3d=rotate3d if rotate3d is not None else None if args.no_rotate_3d else "auto")
    cfg = MakeConfig(
        n=args.n, seed=args.seed, image_size=implied["image_size"], pad=args.pad,
        batch_size=args.batch_size, workers=os.cpu_count() or 1 if args.workers is None else args.workers,
        max_tries=args.max_tries, formats=parse_formats(args.format), val_fraction=args.val_fraction, box=args.box,
        augment=implied["augment"], num_shards=args.num_shards, shard_index=args.shard_index,
        rotate3d=implied["rotate3d"],
        annotate=AnnotateConfig(upsample=args.upsample, min_score=args.min_score,
                                landmarks=implied["landmarks"], predictor_path=args.predictor,
                                detector=args.detector,
                                labels=args.labels, max_disagreement=args.max_disagreement))
    cfg.validate()  # every option before the generator is loaded or a folder made
    if args.scenes:
        return _run_make_scenes(args, cfg)
    sampler = open_sampler(args.checkpoint, args.replay_faces, args.device, targets=steering_targets(args))
    command = "synthface " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    summary = make_dataset(args.out, cfg, sampler, resume=args.resume,
                           progress=not args.no_progress, command=command)
    for line in run_lines(summary, args.out, wall_s=time.perf_counter() - args.started, rotate3d=cfg.rotate3d,
                          augmented=cfg.augment is not None, turn_by_default=rotate3d is None,
                          augment_by_default=not args.augment):
        print(line)
    return 0
