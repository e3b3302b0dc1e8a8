"""`synthface` command line: flags in, one library call, one line per error out.

Library modules are imported inside each command, so `synthface --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from synthface import __version__
from synthface.cli import plans
from synthface.errors import SynthfaceError

TRAIN_EXAMPLES = """\
examples:
  # the default preset (dcgan64) on a folder of aligned faces
  synthface train --data ~/ffhq/thumbnails128x128 --out runs/ffhq64

  # the article's 56x56 design, 100 batches an epoch, for 300 epochs
  synthface train --data faces.zip --out runs/seed56 --config seed56 --max-epochs 300

  # any config key as section.key=value
  synthface train --data faces/ --out runs/x train.save_every=10 model.g_width=32

  # run the same command again to resume an interrupted run (or add --resume)
"""


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train the GAN on a folder (or zip) of aligned face images",
        description="Train a DCGAN on aligned face images and write a run folder "
                    "(loss.csv, loss.png, samples/, weights/, generator.safetensors, checkpoints/).",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of face images (searched recursively) or a .zip of one")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="run folder to write (resumed if it holds a run)")
    p.add_argument("--config", default="dcgan64",
                   help="preset name (dcgan64, seed56, tiny) or a YAML file (default: dcgan64)")
    p.add_argument("--resume", action="store_true",
                   help="require a checkpoint in --out to continue from (the default resumes when there is one)")
    p.add_argument("--max-epochs", type=int, help="train.max_epochs")
    p.add_argument("--batch-size", type=int, help="data.batch_size")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--accelerator", help="train.accelerator: auto, cpu, gpu")
    p.add_argument("--devices", help="train.devices: auto, a count, or a list such as 0,1")
    p.add_argument("--num-nodes", type=int, help="train.num_nodes")
    p.add_argument("--strategy", help="train.strategy: auto, ddp, ...")
    p.add_argument("--precision", help="train.precision: auto, 32-true, bf16-mixed, 16-mixed")
    p.add_argument("--fast-dev-run", action="store_true", help="one batch, to check that everything runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="any other config value")
    p.set_defaults(func=_run_train, plan=plans.train)


def _run_train(args) -> int:
    from synthface.generator.config import load_config

    flags = {"train.max_epochs": args.max_epochs, "data.batch_size": args.batch_size,
             "train.seed": args.seed, "train.accelerator": args.accelerator,
             "train.devices": args.devices, "train.num_nodes": args.num_nodes,
             "train.strategy": args.strategy, "train.precision": args.precision}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = load_config(args.config, overrides)
    from synthface.generator.train import train

    path = train(args.data, args.out, cfg, resume=True if args.resume else None,
                 progress=not args.no_progress, fast_dev_run=args.fast_dev_run)
    import os

    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        print(f"generator weights: {path}")  # once, not once per DDP process
    return 0


MAKE_EXAMPLES = """\
examples:
  # 100,000 faces with boxes and 68 landmarks from a trained generator
  synthface make-dataset -n 100000 --landmarks --out data/faces100k --checkpoint runs/ffhq64/generator.safetensors

  # boxes only (face-detector training), saved at 128 px
  synthface make-dataset -n 5000 --out data/boxes --checkpoint G.safetensors --image-size 128

  # continue a run that was interrupted (same command, plus --resume)
  synthface make-dataset -n 100000 --landmarks --out data/faces100k --checkpoint G.safetensors --resume

  # look at the labels
  synthface preview data/faces100k -o preview.png
"""


def _add_make_dataset(sub) -> None:
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
                                        "bundled generator's name: default64 (the default), celeba64")
    p.add_argument("--landmarks", action="store_true",
                   help="also the 68 iBUG 300-W landmarks (else boxes only); turns on --augment and "
                        "--rotate-3d=-30:30 unless --no-augment / --no-rotate-3d")
    p.add_argument("--seed", type=int, default=0, help="base seed; image j is made from (seed, j) (default 0)")
    p.add_argument("--image-size", type=int, help="side of the saved images (default: the generator's)")
    p.add_argument("--pad", type=float, default=0.0,
                   help="reflected border around each face, as a fraction of its side (e.g. 0.25); "
                        "the saved image grows by 2 x pad")
    p.add_argument("--min-score", type=float, default=0.0, help="lowest detector score kept (default 0.0)")
    p.add_argument("--upsample", type=int, default=1, help="dlib detector upsampling steps (default 1)")
    p.add_argument("--detector", default="hog", choices=("hog", "mmod"),
                   help="face filter: dlib's HOG frontal detector (default) or its CNN (MMOD) detector, which "
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
    p.add_argument("--labels", default="single", choices=("single", "flip"),
                   help="flip: predict the landmarks on the image and its mirror and average the two; each row "
                        "gets their disagreement (in eye distances) as a label confidence (default single)")
    p.add_argument("--max-disagreement", type=float,
                   help="with --labels flip: reject faces whose two predictions disagree by more than this")
    p.add_argument("--format", default="all",
                   help="label formats, comma-separated: csv,parquet,hf,xml,pts,coco,yolo (default all; csv always), "
                        "for faces and scenes alike")
    p.add_argument("--box", default="dlib", choices=("dlib", "points", "head"),
                   help="face box convention: dlib's (brows to lower lip; default), points (the square around the "
                        "68 points) or head (forehead to chin, as WIDER FACE); points and head need --landmarks")
    _add_steering_flags(p)
    p.add_argument("--scenes", action="store_true",
                   help="face-detector data: paste the -n faces into scenes (backgrounds with several faces each)")
    p.add_argument("--backgrounds", metavar="DIR", help="scenes: face-free photos to crop backgrounds from "
                                                        "(default: procedural backgrounds)")
    p.add_argument("--faces-per-image", default="1:6", metavar="MIN:MAX", help="scenes: faces a scene (default 1:6)")
    p.add_argument("--face-size", default="48:256", metavar="MIN:MAX",
                   help="scenes: face box width in pixels, log-uniform (default 48:256)")
    p.add_argument("--blend", default="none,gaussian,feather,poisson,head",
                   help="scenes: paste blendings to draw from, comma-separated (head: the face with its hair and "
                        "neck, outlined from its points; default all five)")
    p.add_argument("--groups", type=float, metavar="SHARE",
                   help="scenes: share of scenes that are group photos, rows of faces on shoulders (default 0.15)")
    p.add_argument("--group-faces", metavar="MIN:MAX", help="scenes: faces a group photo (default 6:20)")
    p.add_argument("--photometric", type=float, metavar="AMOUNT",
                   help="scenes: photo-like variation of each scene (greyscale, low contrast, gamma, print, "
                        "halftone, low resolution, blur, noise, vignetting, JPEG), each transform's rate times "
                        "AMOUNT (0 off; up to 2; default 1)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of faces in the validation split, chosen per face from its seed (default 0.1)")
    p.add_argument("--batch-size", type=int, default=256, help="candidates per work chunk (default 256)")
    p.add_argument("--workers", type=int,
                   help="workers: a thread of this process, the rest spawned processes (default: all cores)")
    p.add_argument("--device", default="auto", help="generator device: auto, cpu, cuda (default auto)")
    p.add_argument("--max-tries", type=int, help="give up after this many samples (default 20 x n + 1000)")
    p.add_argument("--predictor", help="path of shape_predictor_68_face_landmarks.dat (default: face_recognition_models')")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--num-shards", type=int, default=1,
                   help="split the run into this many parts (jobs), joined later by `synthface merge`")
    p.add_argument("--shard-index", type=int, help="which part this job makes: 0 .. num-shards - 1")
    p.add_argument("--replay-faces", metavar="DIR",
                   help="testing: replay real faces from DIR instead of a generator")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_make_dataset, plan=plans.make_dataset)


def _run_make_scenes(args, cfg) -> int:
    import shlex

    from synthface.dataset.scenes import SceneConfig, make_scenes, parse_pair
    from synthface.generator.sampling import open_sampler

    if args.num_shards != 1 or args.augment or args.pad:
        raise SynthfaceError("--scenes does not take --num-shards, --augment or --pad (scenes place and scale "
                             "each face themselves)")
    scfg = SceneConfig(faces_per_image=parse_pair(args.faces_per_image, "--faces-per-image"),
                       face_size=parse_pair(args.face_size, "--face-size"), image_size=args.image_size or 640,
                       backgrounds=args.backgrounds,
                       blends=tuple(b.strip() for b in args.blend.split(",") if b.strip()),
                       photometric=1.0 if args.photometric is None else args.photometric,
                       groups=0.15 if args.groups is None else args.groups,
                       group_faces=parse_pair(args.group_faces or "6:20", "--group-faces"))
    scfg.validate()
    sampler = open_sampler(args.checkpoint, args.replay_faces, args.device, targets=_steering_targets(args))
    command = "synthface " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    s = make_scenes(args.out, args.n, scfg, sampler, cfg.seed, cfg.workers, cfg.val_fraction, cfg.annotate,
                    args.resume, not args.no_progress, command, cfg.formats, cfg.max_tries, cfg.rotate3d,
                    cfg.box)
    print(f"{s['faces']} faces in {s['scenes']} scenes in {args.out} ({s['unplaced']} left out: no room)")
    return 0


def _add_steering_flags(p) -> None:
    p.add_argument("--yaw", metavar="MIN:MAX", help="steer the head's yaw, degrees (> 0: turned to the image's "
                                                   "right); each face draws its target from its seed")
    p.add_argument("--pitch", metavar="MIN:MAX", help="steer the head's pitch, degrees (> 0: up)")
    p.add_argument("--mouth-open", metavar="MIN:MAX", help="steer the mouth opening (inner-lip gap / eye distance)")
    p.add_argument("--pose-mix", action="store_true",
                   help="yaw and pitch spread like real 300-W faces, as far as the generator reaches")


def _steering_targets(args) -> list:
    """The steering flags as steering.Target rows (checked here, before any work)."""
    from synthface.generator.steering import parse_range, pose_mix_targets

    targets = {t.name: t for t in pose_mix_targets()} if args.pose_mix else {}
    for name in ("yaw", "pitch", "mouth_open"):
        text = getattr(args, name)
        if text is not None:
            targets[name] = parse_range(text, name)
    return list(targets.values())


def _run_make_dataset(args) -> int:
    import os
    import shlex

    from synthface.face.annotate import AnnotateConfig
    from synthface.formats import parse_formats
    from synthface.dataset.make import MakeConfig, make_dataset
    from synthface.face.rotate3d import parse_turns
    from synthface.face.augment import AugmentConfig
    from synthface.generator.sampling import open_sampler

    if args.augment and args.no_augment:
        raise SynthfaceError("give --augment or --no-augment, not both")
    scene_only = [flag for flag, given in (("--backgrounds", args.backgrounds is not None),
                                           ("--photometric", args.photometric is not None),
                                           ("--groups", args.groups is not None),
                                           ("--group-faces", args.group_faces is not None)) if given]
    if scene_only and not args.scenes:
        raise SynthfaceError(f"{' and '.join(scene_only)} go with --scenes (they shape scenes, not single faces)")
    if args.predictor is not None and not (args.landmarks or args.scenes):
        raise SynthfaceError("--predictor goes with --landmarks (boxes only use no 68-point model)")
    rotate3d = parse_turns(args.rotate_3d, args.rotate_3d_pitch)
    if rotate3d is not None and args.no_rotate_3d:
        raise SynthfaceError("give --rotate-3d (or --rotate-3d-pitch) or --no-rotate-3d, not both")
    cfg = MakeConfig(
        n=args.n, seed=args.seed, image_size=None if args.scenes else args.image_size, pad=args.pad,
        batch_size=args.batch_size, workers=os.cpu_count() or 1 if args.workers is None else args.workers,
        max_tries=args.max_tries, formats=parse_formats(args.format), val_fraction=args.val_fraction, box=args.box,
        # the library's default ("auto": on with --landmarks) unless a flag says otherwise
        augment=AugmentConfig() if args.augment else None if args.no_augment or args.scenes else "auto",
        num_shards=args.num_shards, shard_index=args.shard_index,
        # the same for the turn ("auto": -30:30 with --landmarks); scenes are for detectors, which it did not help
        rotate3d=rotate3d if rotate3d is not None else None if args.no_rotate_3d or args.scenes else "auto",
        annotate=AnnotateConfig(upsample=args.upsample, min_score=args.min_score,
                                landmarks=args.landmarks or args.scenes, predictor_path=args.predictor,
                                detector=args.detector,
                                labels=args.labels, max_disagreement=args.max_disagreement))
    cfg.validate()  # every option before the generator is loaded or a folder made
    if args.scenes:
        return _run_make_scenes(args, cfg)
    sampler = open_sampler(args.checkpoint, args.replay_faces, args.device, targets=_steering_targets(args))
    command = "synthface " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    summary = make_dataset(args.out, cfg, sampler, resume=args.resume,
                           progress=not args.no_progress, command=command)
    run = summary["this_run"]
    rate = run["faces"] / run["seconds"] if run["seconds"] else 0.0
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(summary["rejected"].items())) or "none"
    print(f"{summary['faces']} faces in {args.out} ({summary['candidates']} samples drawn; rejected: "
          f"{rejected}; {summary['rejection_rate']:.1%})")
    if cfg.rotate3d is not None:
        r = cfg.rotate3d
        print(f"turned in 3D: yaw {r.yaw[0]:g} to {r.yaw[1]:g} degrees, pitch {r.pitch[0]:g} to {r.pitch[1]:g} "
              "(labels turned with the faces; columns turn_yaw, turn_pitch, hidden)"
              + ("; --no-rotate-3d turns it off" if rotate3d is None else ""))
    if cfg.augment is not None:
        print("augmented at dataset time (rotation, scale, shift, flip, colour, blur, noise, JPEG; labels moved "
              "with the pixels)" + ("; --no-augment turns it off" if not args.augment else ""))
    print(f"this run: {run['faces']} faces in {run['seconds']:.1f} s ({rate:.1f} faces/s); "
          f"generation {run['gen_s']:.1f} s, dlib {run['dlib_s']:.1f} s (summed over workers), "
          f"PNG encoding {run['encode_s']:.1f} s, writing {run['write_s']:.1f} s; labels {run['export_s']:.1f} s "
          f"({summary['faces'] / max(run['export_s'], 1e-9):.0f} faces/s)")
    return 0


def _add_preview(sub) -> None:
    p = sub.add_parser("preview", help="draw a dataset's faces with their boxes and landmarks",
                       description="A grid of a dataset's first faces with their labels drawn.",
                       epilog="example:\n  synthface preview data/faces100k -o preview.png -n 36",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="a folder made by make-dataset")
    p.add_argument("-o", "--output", default="preview.png", help="PNG to write (default preview.png)")
    p.add_argument("-n", type=int, default=16, help="number of faces (default 16)")
    p.add_argument("--scale", type=int, help="magnification (default: to about 192 px a face)")
    p.set_defaults(func=_run_preview, plan=plans.preview)


def _run_preview(args) -> int:
    from synthface.core.imaging import check_image_path
    from synthface.dataset.preview import preview

    check_image_path(args.output)
    print(f"preview: {preview(args.dataset, args.output, args.n, args.scale)}")
    return 0


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="a grid of generated faces",
                       description="Draw faces from a generator (the bundled default unless --checkpoint) "
                                   "into one grid image. Face j is make-dataset's candidate j for the same --seed.",
                       epilog="examples:\n  synthface sample -n 64 -o grid.png\n"
                              "  synthface sample -n 16 -o grid.png --checkpoint runs/x/generator.safetensors --seed 3\n"
                              "  synthface sample -n 4 --rotate-3d=-60:60 --steps 7 -o turns.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=64, help="number of faces (default 64)")
    p.add_argument("-o", "--output", default="grid.png", help="PNG to write (default grid.png)")
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: default64 (the default), celeba64")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--scale", type=int, help="magnify each face (default 1; 3 with --rotate-3d)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    _add_steering_flags(p)
    p.add_argument("--rotate-3d", metavar="MIN:MAX",
                   help="with --steps: turn each face dlib keeps in 3D from MIN to MAX degrees of yaw, its landmarks "
                        "drawn (hidden points yellow), as make-dataset --rotate-3d does")
    p.add_argument("--steps", type=int, help="walk one steered attribute (or the --rotate-3d turn) from MIN to MAX "
                                             "in this many columns (one row per face)")
    p.set_defaults(func=_run_sample, plan=plans.sample)


def _run_sample(args) -> int:
    import cv2
    import numpy as np

    from synthface.core.imaging import check_image_path, make_grid, write_image
    from synthface.generator.sampling import candidates, check_seed, open_sampler

    if not 1 <= args.n <= 4096:
        raise SynthfaceError(f"-n must be from 1 to 4096, got {args.n}")
    if args.scale is None:
        args.scale = 3 if args.rotate_3d is not None else 1
    if not 1 <= args.scale <= 16:
        raise SynthfaceError(f"--scale must be from 1 to 16, got {args.scale}")
    check_seed(args.seed)
    check_image_path(args.output)
    targets = _steering_targets(args)
    if args.rotate_3d is not None:
        return _sample_turns(args, targets)
    if args.steps is not None:
        walked = [t for t in targets if t.std is None]
        if len(walked) != 1 or args.pose_mix or not 2 <= args.steps <= 64:
            raise SynthfaceError("--steps walks one attribute: give exactly one of --yaw, --pitch, --mouth-open "
                                 "(MIN:MAX), without --pose-mix, and 2 to 64 steps")
    sampler = open_sampler(args.checkpoint, device=args.device, targets=targets)
    cells = args.n * (args.steps or 1)
    if cells * (sampler.resolution * args.scale) ** 2 * 3 > 2 ** 30:
        raise SynthfaceError(f"a grid of {cells} faces of {sampler.resolution * args.scale} px is over 1 GB; "
                             "lower -n or --scale")
    if args.steps is None:
        faces = np.stack([img for _, _, img in candidates(sampler, args.seed, 0, args.n)])
        ncol = None
    else:
        from synthface.generator.sampling import candidate_seed, noise

        t = walked[0]
        steering = sampler.steering
        z = noise([candidate_seed(args.seed, j) for j in range(args.n)], sampler.z_dim)
        values = np.linspace(t.low, t.high, args.steps)
        table = steering.tables[t.name]
        grid = np.stack([sampler.images_from_codes(steering.at_distances(z, t.name, float(np.interp(v, *table))))
                         for v in values], 1)  # (n, steps, H, W, 3)
        faces = grid.reshape(-1, *grid.shape[2:])
        ncol = args.steps
    if args.scale > 1:
        faces = np.stack([cv2.resize(f, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST)
                          for f in faces])
    write_image(args.output, make_grid(faces, ncol), "sample")
    print(f"{len(faces)} faces: {args.output}")
    return 0


def _sample_turns(args, targets) -> int:
    """sample --rotate-3d --steps: each of the first n faces dlib keeps, turned from MIN
    to MAX degrees, with its labels drawn."""
    import numpy as np

    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.core.imaging import make_grid, write_image
    from synthface.dataset.preview import turn_row
    from synthface.face.rotate3d import parse_turns
    from synthface.generator.sampling import candidates, open_sampler

    turns = parse_turns(args.rotate_3d)
    if args.steps is None or not 2 <= args.steps <= 64:
        raise SynthfaceError("--rotate-3d in sample needs --steps (2 to 64): the turn walks MIN to MAX along each row")
    sampler = open_sampler(args.checkpoint, device=args.device, targets=targets)
    size = sampler.resolution * args.scale
    if args.n * args.steps * size * size * 3 > 2 ** 30:
        raise SynthfaceError(f"a grid of {args.n * args.steps} faces of {size} px is over 1 GB; lower -n or --scale")
    annotator = Annotator(AnnotateConfig(landmarks=True))
    tiles, rows = [], 0
    for j, _, img in candidates(sampler, args.seed, 0, 20 * args.n + 100):
        faces = annotator.annotate(img)
        if annotator.rejection_reason(faces):
            continue
        face = faces[0]
        tiles += turn_row(img, face["landmarks"], face["box"], np.linspace(*turns.yaw, args.steps), args.scale)
        rows += 1
        if rows == args.n:
            break
    if not tiles:
        raise SynthfaceError("dlib kept none of the faces drawn; the generator may be untrained")
    write_image(args.output, make_grid(np.stack(tiles), args.steps), "sample")
    print(f"{rows} faces turned {turns.yaw[0]:g} to {turns.yaw[1]:g} degrees in {args.steps} steps: {args.output}")
    return 0


def _add_directions(sub) -> None:
    p = sub.add_parser("directions", help="find head-pose and expression directions in a generator's latent space",
                       description="Sample and label faces, fit a unit direction in z for yaw, pitch, roll, mouth "
                                   "and eye opening (ridge regression, as InterFaceGAN's boundaries), calibrate "
                                   "each (distance -> degrees or ratio, and the share dlib keeps), and save them "
                                   "beside the generator (NAME.directions.safetensors + .json).",
                       epilog="examples:\n  synthface directions --checkpoint runs/x/generator.safetensors -n 10000\n"
                              "  synthface directions -o mine/default64.safetensors   # the bundled generator, anew",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: default64 (the default), celeba64")
    p.add_argument("-o", "--output", metavar="NEW.safetensors",
                   help="copy the generator here and write the directions beside the copy (needed for the bundled "
                        "generator, whose directions ship with synthface)")
    p.add_argument("-n", type=int, default=5000, help="faces to fit on (default 5000)")
    p.add_argument("--calibration-faces", type=int, default=200,
                   help="faces per attribute and distance for the calibration (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="dlib worker processes (default: all cores)")
    p.add_argument("--upsample", type=int, default=1, help="detector upsampling, as in make-dataset (default 1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_directions, plan=plans.directions)


def _run_directions(args) -> int:
    from synthface.generator.directions import directions_path, fit_directions
    from synthface.generator.sampling import resolve_checkpoint
    checkpoint = resolve_checkpoint(args.checkpoint)
    s = fit_directions(checkpoint, args.n, args.seed, args.calibration_faces, args.workers, args.upsample,
                       args.device, not args.no_progress, args.output)
    print(f"{s['kept']} of {s['n']} faces labelled; directions in {directions_path(args.output or checkpoint)}")
    for name, a in s["attributes"].items():
        cal = a["calibration"]
        reach = ", ".join(f"{d:+g}: {v if v is None else round(v, 3)} ({k:.0%} kept)"
                          for d, v, k in zip(cal["distance"], cal["value"], cal["kept"]) if d % 2 == 0)
        print(f"  {name:10s} r = {a['r']:.2f}; distance -> mean value: {reach}")
    return 0


DETECTOR_EXAMPLES = """examples:
  synthface make-dataset --scenes -n 5000 --out data/scenes
  synthface detector train --dataset data/scenes -o faces.svm
  synthface detector eval --model faces.svm --data photos/ --pr pr.png -o report.json
  synthface detector eval --model dlib --data data/scenes        # dlib's stock detector: a label check
  # a round of hard negatives, and real faces mixed in
  synthface detector mine --model faces.svm -n 2000 --out data/negatives
  synthface detector train --dataset data/scenes --dataset real.xml --weight 1 --weight 2 \
      --negatives data/negatives -o faces2.svm
"""


def _add_detector(sub) -> None:
    p = sub.add_parser("detector", help="train / score face detectors (dlib's HOG detector)",
                       description="Train dlib's HOG face detector on a dataset, or score one on photos.",
                       epilog=DETECTOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="detector_command", metavar="COMMAND", required=True)
    t = dsub.add_parser("train", help="train a HOG face detector (dlib.train_simple_object_detector)",
                        description="Train dlib's HOG face detector on a synthface dataset (scenes or faces), an "
                                    "imglab XML, a COCO json or a folder of photos with NAME_K.pts files. Boxes are "
                                    "made square (one aspect ratio, as the trainer needs); boxes smaller than the "
                                    "window and truncated ones are ignored, not penalised.",
                        epilog=DETECTOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", "--dataset", dest="dataset", required=True, action="append",
                   help="synthface dataset, imglab XML, COCO json or photos + NAME_K.pts; repeat it to train on several")
    t.add_argument("--weight", type=float, action="append",
                   help="oversampling of each --dataset's images, in order (e.g. 3 repeats each image three times; "
                        "default 1)")
    t.add_argument("--negatives", metavar="DIR",
                   help="face-free images to add whole, with no box (hard negatives from `detector mine`)")
    t.add_argument("-o", "--output", required=True, help="detector file to write (.svm); a .json summary beside it")
    t.add_argument("--C", type=float, default=5.0, help="SVM C: larger fits the training set harder (default 5)")
    t.add_argument("--epsilon", type=float, default=0.01, help="stopping tolerance (default 0.01)")
    t.add_argument("--window", type=int, default=80,
                   help="detection window side, px (default 80, dlib's; smaller finds smaller faces and needs far "
                        "more memory: 40 on 570 scenes of 640 px passed 22 GiB)")
    t.add_argument("--no-flip", action="store_true", help="no left-right flipped copies")
    t.add_argument("--upsample", type=int, default=0,
                   help="upsample training images (default 0; 1 needs about 4x the memory: 570 scenes of 640 px "
                        "passed 19 GiB)")
    t.add_argument("--max-runtime", type=float, default=0.0, help="stop training after this many seconds")
    t.add_argument("--workers", "--threads", dest="threads", type=int, default=0, help="threads (default: all cores)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--verbose", action="store_true", help="dlib's own training output too")
    t.set_defaults(func=_run_detector_train, plan=plans.detector_train)
    m = dsub.add_parser("mine", help="hard negatives: face-free scenes where a detector fires",
                        description="Draw face-free scenes as --scenes draws its backgrounds (procedural, or crops "
                                    "of --backgrounds photos; --photometric as for scenes), run the detector on each "
                                    "as `detector eval` does, and keep those where it fires, for `detector train "
                                    "--negatives`. A round: mine with the last model, train again with the negatives.",
                        epilog=DETECTOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--model", required=True, help="a .svm from `detector train`, or dlib")
    m.add_argument("-n", type=int, default=1000, help="face-free scenes to draw (default 1000)")
    m.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="folder for the scenes where the detector fired (added to)")
    m.add_argument("--backgrounds", metavar="DIR", help="face-free photos to crop from (default: procedural)")
    m.add_argument("--photometric", type=float, default=1.0, metavar="AMOUNT", help="as for scenes (default 1)")
    m.add_argument("--image-size", type=int, default=640, help="scene side in px (default 640)")
    m.add_argument("--seed", type=int, default=0, help="draw seed; another round, another seed (default 0)")
    m.add_argument("--upsample", type=int, default=1, help="detector upsampling, as at eval (default 1)")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(func=_run_detector_mine, plan=plans.detector_mine)
    e = dsub.add_parser("eval", help="AP50, recall and false positives per image of a detector",
                        description="Score a detector (a .svm, or dlib for dlib's stock frontal detector) on "
                                    "photos with face boxes: VOC AP at IoU 0.5, recall and false positives per image "
                                    "at the detector's threshold, and a precision-recall curve.",
                        epilog=DETECTOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True, help="synthface dataset, imglab XML, COCO json, or photos + NAME_K.pts")
    e.add_argument("--upsample", type=int, default=1, help="detector upsampling (default 1)")
    e.add_argument("--pr", help="write the precision-recall curve as a PNG here")
    e.add_argument("-o", "--output", help="write the report as JSON here")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_run_detector_eval, plan=plans.detector_eval)


def _run_detector_train(args) -> int:
    from synthface.trainers.detector import DetectorOptions, train_detector

    s = train_detector(args.dataset[0] if len(args.dataset) == 1 else args.dataset, args.output,
                       DetectorOptions(C=args.C, epsilon=args.epsilon, window=args.window, flip=not args.no_flip,
                                       upsample=args.upsample, max_runtime=args.max_runtime,
                                       num_threads=args.threads), not args.no_progress, args.verbose, args.weight,
                       args.negatives)
    mix = (" (images per source: " + ", ".join(f"{d} {c}" for d, c in s["sources"].items()) + ")"
           if len(args.dataset) > 1 else "")
    negatives = f" and {s['negatives']} face-free images" if s["negatives"] else ""
    print(f"trained on {s['faces']} faces ({s['ignored']} ignored) in {s['images']} images{negatives} in "
          f"{s['seconds']:.0f} s{mix}: {args.output}")
    return 0


def _run_detector_mine(args) -> int:
    from synthface.face.annotate import check_upsample
    from synthface.dataset.scenes import SceneConfig, mine_negatives

    check_upsample(args.upsample)
    cfg = SceneConfig(image_size=args.image_size, backgrounds=args.backgrounds, photometric=args.photometric,
                      face_size=(16, 16))  # no face is placed
    s = mine_negatives(args.model, args.out, args.n, cfg, args.seed, args.upsample, not args.no_progress)
    print(f"{args.model} fired on {s['kept']} of {s['drawn']} face-free scenes ({s['false_positives']} false "
          f"positives): {args.out}")
    return 0


def _run_detector_eval(args) -> int:
    from synthface.trainers.detector import evaluate_detector, plot_pr
    from synthface.core.files import check_writable_file, write_atomic
    from synthface.core.imaging import check_image_path

    if args.output:
        check_writable_file(args.output, "-o")
    if args.pr:
        check_image_path(args.pr)
    r = evaluate_detector(args.model, args.data, args.upsample, progress=not args.no_progress)
    print(f"{r['model']}: AP50 {r['ap50']:.1%} (AP30 {r['ap30']:.1%}), max recall {r['max_recall']:.1%}; at score 0: "
          f"recall {r['recall_at_0']:.1%}, {r['fp_per_image_at_0']:.2f} false positives per image, mean IoU of the "
          f"matched boxes {'-' if r['mean_iou_at_0'] is None else format(r['mean_iou_at_0'], '.2f')} "
          f"({r['images']} images, {r['faces']} faces)")
    if args.pr:
        plot_pr({Path(args.model).stem: r}, args.pr)
    if args.output:
        import json

        from synthface.core.outputs import DETECTOR_REPORT

        write_atomic(args.output, json.dumps({"format": DETECTOR_REPORT, **r}, indent=2) + "\n")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="measure a generator against real faces (dlib models, offline)",
                       description="Detection yield, Fréchet face distance (dlib face descriptors), "
                                   "memorisation and diversity of a generator, each next to its real-face baseline.",
                       epilog="example:\n  synthface evaluate --real ~/faces -n 2000 -o report.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", "--real", dest="real", required=True,
                   help="folder (or zip) of real faces: the generator's training data")
    p.add_argument("-n", type=int, default=2000, help="generated faces to measure (default 2000)")
    p.add_argument("-o", "--output", help="write the report as JSON here")
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: default64 (the default), celeba64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="dlib worker processes (default: all cores)")
    p.add_argument("--upsample", type=int, default=1, help="detector upsampling, as in make-dataset (default 1)")
    p.add_argument("--cache-dir", default="~/.cache/synthface", help='real-face cache ("" for none)')
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_evaluate, plan=plans.evaluate)


def _run_evaluate(args) -> int:
    from synthface.generator.evaluate import check_evaluate_options, evaluate, format_report, write_report
    from synthface.core.files import check_writable_file
    from synthface.generator.sampling import open_sampler

    check_evaluate_options(args.n, args.seed, args.workers, args.upsample)
    if args.output:
        check_writable_file(args.output, "-o")  # before the work, not after it
    sampler = open_sampler(args.checkpoint, device=args.device)
    report = evaluate(sampler, args.real, n=args.n, seed=args.seed, workers=args.workers,
                      upsample=args.upsample, cache_dir=args.cache_dir, progress=not args.no_progress)
    report["generator"] = sampler.identity
    print(format_report(report))
    if args.output:
        write_report(report, args.output)
        print(f"report: {args.output}")
    return 0


LANDMARK_EXAMPLES = """\
examples:
  # a predictor from a synthetic dataset, scored on real 300-W faces
  synthface make-dataset -n 10000 --landmarks --out data/syn10k
  synthface landmarks train --dataset data/syn10k -o syn10k.dat
  synthface landmarks eval --model syn10k.dat --data 300w/afw --ced ced.png

  # dlib's own 68-point model as the reference
  synthface landmarks eval --model dlib68 --data 300w/afw
"""


def _add_landmarks(sub) -> None:
    p = sub.add_parser("landmarks", help="train / score 68-point landmark models (dlib shape predictors)",
                       description="Train a dlib shape predictor on a dataset, or score one on real faces.",
                       epilog=LANDMARK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    lsub = p.add_subparsers(dest="landmarks_command", metavar="COMMAND", required=True)
    t = lsub.add_parser("train", help="train a shape predictor (dlib.train_shape_predictor)",
                        description="Train a 68-point dlib shape predictor on a synthface dataset (its labels.csv), "
                                    "an imglab XML file, or a folder of 300-W faces (images with .pts beside them, "
                                    "searched recursively, e.g. a synthface dataset's images/).",
                        epilog=LANDMARK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", "--dataset", dest="dataset", required=True, action="append",
                   help="synthface dataset folder, imglab XML, or 300-W folder; repeat it to train on several")
    t.add_argument("--weight", type=float, action="append",
                   help="oversampling of each --dataset, in order (e.g. 3 repeats each face three times; default 1)")
    t.add_argument("-o", "--output", required=True, help="model file to write (.dat); a .json summary goes beside it")
    from synthface.trainers.landmarks import TrainOptions
    from dataclasses import fields

    special = {"oversampling_amount": "(default 0: ceil(30000 / faces) within 5..35)",
               "random_seed": "dlib's random seed, any text: another gives another model of the same data "
                              "(default: dlib's own)"}
    aliases = {"num_threads": ["--workers"], "random_seed": ["--seed"]}  # the flags every other command uses
    for f in fields(TrainOptions):
        t.add_argument(*aliases.get(f.name, []), f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default),
                       default=f.default, help=special.get(f.name, f"(default {f.default})"))
    t.add_argument("--upsample", type=int, default=1, help="detector upsampling for 300-W boxes (default 1)")
    t.add_argument("--pts-origin", type=int, default=1, choices=(0, 1), help=".pts coordinates' first pixel (default 1)")
    t.add_argument("--split", default="all", choices=("train", "val", "all"),
                   help="which faces of a synthface dataset (default all)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--verbose", action="store_true", help="dlib's own training output too")
    t.set_defaults(func=_run_landmarks_train, plan=plans.landmarks_train)
    e = lsub.add_parser("eval", help="score a shape predictor on real faces with 300-W points",
                        description="NME (outer-eye-corner normalised), failure rate at 8%, AUC@8% and "
                                    "detector misses of a shape predictor on faces with ground-truth points.",
                        epilog=LANDMARK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True, help='a shape predictor .dat, or "dlib68" for dlib\'s own model')
    e.add_argument("--data", required=True, help="300-W folder (.jpg + .pts), imglab XML or synthface dataset")
    e.add_argument("--boxes", default="detector", choices=("detector", "truth"),
                   help="face boxes from dlib's detector (default) or from the true points")
    e.add_argument("--upsample", type=int, default=1, help="detector upsampling (default 1)")
    e.add_argument("--pts-origin", type=int, default=1, choices=(0, 1), help=".pts coordinates' first pixel (default 1)")
    e.add_argument("--ced", help="write the cumulative error curve as a PNG here")
    e.add_argument("-o", "--output", help="write the report (with per-face errors) as JSON here")
    e.add_argument("--split", default="all", choices=("train", "val", "all"),
                   help="which faces of a synthface dataset (default all)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_run_landmarks_eval, plan=plans.landmarks_eval)


def _run_landmarks_train(args) -> int:
    from dataclasses import fields

    from synthface.trainers.landmarks import TrainOptions, train_landmarks

    options = TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions)})
    s = train_landmarks(args.dataset, args.output, options, args.upsample, not args.no_progress, args.pts_origin,
                        args.split, args.weight, args.verbose)
    sources = ", ".join(f"{n} from {d}" for d, n in s["sources"].items())
    rule = f"; {s['mixing_rule']}" if s["mixing_rule"] else ""
    print(f"trained on {s['faces']} faces ({sources}{rule}) in {s['seconds']:.0f} s: {args.output}")
    return 0


def _run_landmarks_eval(args) -> int:
    import json

    from synthface.core.files import check_writable_file, write_atomic
    from synthface.core.imaging import check_image_path
    from synthface.trainers.landmarks import evaluate_landmarks, format_nme, plot_ced

    if args.output:
        check_writable_file(args.output, "-o")
    if args.ced:
        check_image_path(args.ced)
    r = evaluate_landmarks(args.model, args.data, args.boxes, args.upsample, not args.no_progress, args.pts_origin,
                           args.split)
    print(format_nme(r))
    if args.ced:
        plot_ced({Path(args.model).stem: r}, args.ced)
        print(f"CED plot: {args.ced}")
    if args.output:
        from synthface.core.outputs import LANDMARKS_REPORT

        write_atomic(args.output, json.dumps({"format": LANDMARKS_REPORT, "model": args.model, "data": args.data, **r},
                                             indent=2,
                                             allow_nan=False) + "\n")
        print(f"report: {args.output}")
    return 0


def _add_merge(sub) -> None:
    p = sub.add_parser("merge", help="join the shards of a make-dataset run into one dataset",
                       description="Join the folders made by `make-dataset --num-shards N --shard-index K` "
                                   "(K = 0 .. N-1) into the dataset a single run would have made.",
                       epilog="example:\n  for k in 0 1 2 3; do synthface make-dataset -n 100000 --landmarks "
                              "--out parts/$k --num-shards 4 --shard-index $k; done\n"
                              "  synthface merge parts/0 parts/1 parts/2 parts/3 -o data/faces100k",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="+", help="the shard folders")
    p.add_argument("-o", "--output", required=True, help="the merged dataset folder (new or empty)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_merge, plan=plans.merge)


def _run_merge(args) -> int:
    from synthface.dataset.merge import merge_shards

    s = merge_shards(args.parts, args.output, progress=not args.no_progress)
    print(f"{s['faces']} faces in {args.output} ({s['candidates']} samples; rejection rate {s['rejection_rate']:.1%})")
    return 0


def _add_align(sub) -> None:
    p = sub.add_parser("align", help="FFHQ-style aligned face crops from a folder of photos",
                       description="Find every face in each photo (dlib), get its 68 landmarks and cut FFHQ's "
                                   "oriented crop; writes DST/00000/00000.png ... and DST/alignment.json.",
                       epilog="examples:\n  synthface align photos/ aligned/ --size 128\n"
                              "  synthface train --data aligned/ --out runs/mine",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="a folder of photos (searched recursively) or one photo")
    p.add_argument("dst", help="output folder (new or empty, unless --resume)")
    p.add_argument("--size", type=int, default=128, help="side of the aligned images (default 128)")
    p.add_argument("--upsample", type=int, default=1, help="detector upsampling, for small faces (default 1)")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument("--predictor", help="path of shape_predictor_68_face_landmarks.dat")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in DST")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_align, plan=plans.align)


def _run_align(args) -> int:
    from synthface.generator.align import align_folder

    c = align_folder(args.src, args.dst, args.size, args.upsample, args.workers, args.resume,
                     args.predictor, not args.no_progress)
    print(f"{c['faces']} faces from {c['photos']} photos in {args.dst} "
          f"({c['no_face']} without a face, {c['unreadable']} unreadable)")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as every other mistake: one line and exit 1, not argparse's usage
    block and exit 2 (its subcommands' parsers are of this class too)."""

    def error(self, message):
        hint = ""
        if "expected one argument" in message:
            hint = " (a value that starts with '-' goes after '=': --rotate-3d=-30:30)"
        print(f"synthface: error: {_one_line(message)}{hint}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synthface",
        description="Synthetic face datasets: train a DCGAN on aligned faces, then sample "
                    "faces labelled by dlib (boxes and 68 landmarks).",
        epilog="examples:\n  synthface train --data faces/ --out runs/faces64\n"
               "  synthface make-dataset -n 100000 --landmarks --out data/faces \\\n"
               "      --checkpoint runs/faces64/generator.safetensors\n"
               "  synthface preview data/faces -o preview.png\n"
               "  synthface COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"synthface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_make_dataset(sub)
    _add_preview(sub)
    _add_sample(sub)
    _add_evaluate(sub)
    _add_directions(sub)
    _add_detector(sub)
    _add_landmarks(sub)
    _add_merge(sub)
    _add_align(sub)
    return parser


class _Terminated(BaseException):
    """SIGTERM (a scheduler's kill, `timeout`) or SIGHUP (a closed terminal): unwinds like
    Ctrl-C, so workers are ended. Its argument: the signal."""


_signalled: list = []  # the signal that ended the run, once one came


def _on_sigterm(signum, frame):
    if _signalled:  # a second one (timeout forwards its own): the run is already unwinding
        return
    _signalled.append(signum)
    raise _Terminated(signum)


def _setup_logging() -> None:
    """One stderr handler for the "synthface" logger, however often main() runs."""
    logger = logging.getLogger("synthface")
    if not any(getattr(h, "_synthface", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("synthface: %(levelname)s: %(message)s"))
        handler._synthface = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv=None) -> int:
    import os
    import signal

    from synthface.core.outputs import check_plan, check_utf8

    parser = build_parser()
    try:  # before argparse, whose messages would show such bytes as escapes
        check_utf8(sys.argv[1:] if argv is None else argv)
    except SynthfaceError as exc:
        print(f"synthface: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        commands = ", ".join(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse's own table
        print(f"synthface: error: give a command: {commands}; `synthface --help` says what each does",
              file=sys.stderr)
        return 1
    if extra:
        print(f"synthface: error: unrecognized arguments: {' '.join(extra)}; see `synthface {command_name(args)} "
              "--help`", file=sys.stderr)
        return 1
    _setup_logging()
    _signalled.clear()
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGHUP, _on_sigterm)
    try:
        # what the command writes, named and checked before any work (cli/plans.py)
        check_plan(args.plan(args), command_name(args))
        return args.func(args)
    except SynthfaceError as exc:
        print(f"synthface: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synthface: interrupted", file=sys.stderr)
        return 130
    except _Terminated as exc:
        print("synthface: terminated" + (" (hangup)" if exc.args[0] == signal.SIGHUP else ""), file=sys.stderr)
        return 128 + exc.args[0]
    except OSError as exc:  # permission, disk full, not a directory, read-only file system
        where = f": {exc.filename}" if exc.filename else ""
        print(f"synthface: error: {_one_line(exc.strerror or exc)}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print("synthface: error: out of memory; lower -n, --image-size or --batch-size", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug, not a user's mistake: still one line
        if _signalled:  # a signal raised inside a library's import or callback, which wrapped it
            print("synthface: terminated" + (" (hangup)" if _signalled[0] == signal.SIGHUP else ""), file=sys.stderr)
            return 128 + _signalled[0]
        if os.environ.get("SYNTHFACE_DEBUG"):
            raise
        print(f"synthface: error: unexpected {type(exc).__name__}: {_one_line(exc)[:300]} "
              "(SYNTHFACE_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
        return 1


def command_name(args) -> str:
    """The command as a user types it: "make-dataset", "landmarks train"."""
    sub = getattr(args, "detector_command", None) or getattr(args, "landmarks_command", None)
    return f"{args.command} {sub}" if sub else args.command


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
