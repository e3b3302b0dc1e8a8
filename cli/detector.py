"""`synthface detector train | mine | eval`: dlib's HOG face detector trained on synthface
datasets (and other labelled photos), hard negatives mined from face-free scenes, and
detectors scored (AP50, recall, false positives per image, a precision-recall curve).
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_upsample_flag, add_field_flag, add_option_flags, options_from


DETECTOR_EXAMPLES = """examples:
  synthface make-dataset --scenes -n 5000 -o data/scenes
  synthface detector train --data data/scenes -o faces.svm
  synthface detector eval --model faces.svm --data photos/ --pr pr.png -o report.json
  synthface detector eval --model dlib --data data/scenes        # dlib's stock detector: a label check
  # a round of hard negatives, and real faces mixed in
  synthface detector mine --model faces.svm -n 2000 -o data/negatives
  synthface detector train --data data/scenes --data real.xml --weight 1 --weight 2 \
      --negatives data/negatives -o faces2.svm
"""


def add(sub) -> None:
    """The detector command and its train, mine and eval subcommands."""
    p = sub.add_parser("detector", help="train / score face detectors (dlib's HOG detector)",
                       description="Train dlib's HOG face detector on a dataset, or score one on photos.",
                       epilog=DETECTOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="detector_command", metavar="COMMAND", required=True)
    t = dsub.add_parser("train", help="train a HOG face detector (dlib.train_simple_object_detector)",
                        description="Train dlib's HOG face detector on a synthface dataset (scenes or faces), an "
                                    "imglab XML, a COCO json or a folder of photos with NAME_K.pts files. Boxes are "
                                    "reshaped to the dataset's median aspect ratio (one shape, as the trainer needs; its convention kept); boxes smaller than the "
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
    from synthface.trainers.detector import DetectorOptions

    add_option_flags(t, DetectorOptions, {
        "C": "SVM C: larger fits the training set harder",
        "epsilon": "stopping tolerance",
        "window": "detection window side, px (dlib's; smaller finds smaller faces and needs far more memory: 40 "
                  "on 570 scenes of 640 px passed 22 GiB)",
        "flip": "no left-right flipped copies",
        "upsample": "upsample training images (1 needs about 4x the memory: 570 scenes of 640 px passed 19 GiB)",
        "max_runtime": "stop training after this many seconds (0: none)",
        "num_threads": "threads (0: all cores)"}, aliases={"num_threads": ["--workers", "--threads"]})
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
    from synthface.dataset.scenes import SceneConfig

    add_field_flag(m, "--photometric", cls=SceneConfig, field="photometric", metavar="AMOUNT", help="as for scenes")
    add_field_flag(m, "--image-size", cls=SceneConfig, field="image_size", help="scene side in px")
    m.add_argument("--seed", type=int, default=0, help="draw seed; another round, another seed (default 0)")
    add_upsample_flag(m, "detector upsampling, as at eval")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(func=_run_detector_mine, plan=plans.detector_mine)
    e = dsub.add_parser("eval", help="AP50, recall and false positives per image of a detector",
                        description="Score a detector (a .svm, or dlib for dlib's stock frontal detector) on "
                                    "photos with face boxes: VOC AP at IoU 0.5, recall and false positives per image "
                                    "at the detector's threshold, and a precision-recall curve.",
                        epilog=DETECTOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True, help="synthface dataset, imglab XML, COCO json, or photos + NAME_K.pts")
    add_upsample_flag(e, "detector upsampling")
    e.add_argument("--pr", help="write the precision-recall curve as a PNG here")
    e.add_argument("-o", "--output", help="write the report as JSON here")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_run_detector_eval, plan=plans.detector_eval)


def _run_detector_train(args) -> int:
    """detector train: a HOG detector from one or more datasets."""
    from synthface.trainers.detector import DetectorOptions, train_detector

    s = train_detector(args.dataset[0] if len(args.dataset) == 1 else args.dataset, args.output,
                       options_from(args, DetectorOptions),
                       progress=not args.no_progress, verbose=args.verbose, weights=args.weight,
                       negatives=args.negatives)
    mix = (" (images per source: " + ", ".join(f"{d} {c}" for d, c in s["sources"].items()) + ")"
           if len(args.dataset) > 1 else "")
    negatives = f" and {s['negatives']} face-free images" if s["negatives"] else ""
    print(f"trained on {s['faces']} faces ({s['ignored']} ignored) in {s['images']} images{negatives} in "
          f"{s['seconds']:.0f} s{mix}: {args.output}")
    return 0


def _run_detector_mine(args) -> int:
    """detector mine: face-free scenes where a detector fires, as hard negatives."""
    from synthface.face.annotate import check_upsample
    from synthface.dataset.scenes import SceneConfig, mine_negatives

    check_upsample(args.upsample)
    cfg = SceneConfig(image_size=args.image_size, backgrounds=args.backgrounds, photometric=args.photometric,
                      face_size=(16, 16))  # no face is placed
    s = mine_negatives(args.model, args.out, args.n, cfg, seed=args.seed, upsample=args.upsample,
                       progress=not args.no_progress)
    print(f"{args.model} fired on {s['kept']} of {s['drawn']} face-free scenes ({s['false_positives']} false "
          f"positives): {args.out}")
    return 0


def _run_detector_eval(args) -> int:
    """detector eval: AP, recall and false positives of a detector on labelled photos."""
    from synthface.trainers.reports import detector_eval_report

    detector_eval_report(args.model, args.data, upsample=args.upsample, pr=args.pr, output=args.output,
                         progress=not args.no_progress, echo=print)
    return 0
