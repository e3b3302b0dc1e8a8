"""`synthface landmarks train | eval`: 68-point dlib shape predictors trained on synthface
datasets (and 300-W folders or imglab XML), and scored on real faces (NME, failure
rate, AUC, a cumulative error curve).
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_upsample_flag, add_option_flags, options_from


LANDMARK_EXAMPLES = """\
examples:
  # a predictor from a synthetic dataset, scored on real 300-W faces
  synthface make-dataset -n 10000 --landmarks -o data/syn10k
  synthface landmarks train --data data/syn10k -o syn10k.dat
  synthface landmarks eval --model syn10k.dat --data 300w/afw --ced ced.png

  # dlib's own 68-point model as the reference
  synthface landmarks eval --model dlib68 --data 300w/afw
"""


def add(sub) -> None:
    """The landmarks command and its train and eval subcommands."""
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
                   help="synthface dataset folder, imglab XML, COCO keypoints json or 300-W folder; repeat it to "
                        "train on several")
    t.add_argument("--weight", type=float, action="append",
                   help="oversampling of each --dataset, in order (e.g. 3 repeats each face three times; default 1)")
    t.add_argument("-o", "--output", required=True, help="model file to write (.dat); a .json summary goes beside it")
    from synthface.trainers.landmarks import TrainOptions

    special = {"oversampling_amount": "(default 0: ceil(30000 / faces) within 5..35)",
               "num_threads": "threads dlib fits with (default 0: every core)",
               "random_seed": "dlib's random seed, any text: another gives another model of the same data "
                              "(default: dlib's own)"}
    # the flags every other command uses, first
    add_option_flags(t, TrainOptions, special, aliases={"num_threads": ["--workers"], "random_seed": ["--seed"]})
    add_upsample_flag(t, "detector upsampling for 300-W boxes")
    t.add_argument("--pts-origin", type=int, default=1, choices=(0, 1), help=".pts coordinates' first pixel (default 1)")
    t.add_argument("--split", default=None, choices=("train", "val", "all"),
                   help="which faces of a synthface dataset (default train; other inputs: all)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--verbose", action="store_true", help="dlib's own training output too")
    t.set_defaults(func=_run_landmarks_train, plan=plans.landmarks_train)
    _add_train_cnn(lsub)
    e = lsub.add_parser("eval", help="score a shape predictor on real faces with 300-W points",
                        description="NME (outer-eye-corner normalised), failure rate at 8%, AUC@8% and "
                                    "detector misses of a shape predictor on faces with ground-truth points.",
                        epilog=LANDMARK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True, help='a shape predictor .dat, a CNN from train-cnn (.pt), or "dlib68" '
                                                   "for dlib's own model")
    e.add_argument("--data", required=True, help="300-W folder (.jpg + .pts), imglab XML or synthface dataset")
    e.add_argument("--boxes", default="detector", choices=("detector", "truth"),
                   help="face boxes from dlib's detector (default) or from the true points")
    add_upsample_flag(e, "detector upsampling")
    e.add_argument("--pts-origin", type=int, default=1, choices=(0, 1), help=".pts coordinates' first pixel (default 1)")
    e.add_argument("--ced", help="write the cumulative error curve as a PNG here")
    e.add_argument("-o", "--output", help="write the report (with per-face errors) as JSON here")
    e.add_argument("--split", default=None, choices=("train", "val", "all"),
                   help="which faces of a synthface dataset (default val; other inputs: all)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_run_landmarks_eval, plan=plans.landmarks_eval)


def _add_train_cnn(lsub) -> None:
    """landmarks train-cnn: the PyTorch Lightning landmark model, flags from CNNOptions."""
    from synthface.trainers.cnn import CNNOptions

    c = lsub.add_parser("train-cnn", help="train a CNN landmark model (PyTorch Lightning; exported as TorchScript)",
                        description="Train a small ResNet that regresses the 68 points from the face's crop, on the "
                                    "same inputs as `landmarks train` (a synthface dataset's train split by "
                                    "default), mixed by the same rule; checkpoints beside the model (the same "
                                    "command resumes); bf16 on a GPU. The .pt file is TorchScript: "
                                    "`landmarks eval --model M.pt` scores it, torch.jit.load runs it alone.",
                        epilog="examples:\n  synthface landmarks train-cnn --data data/syn10k -o syn10k.pt\n"
                               "  synthface landmarks train-cnn --data data/syn10k --data 300w/helen-train -o mix.pt "
                               "--size 64 --epochs 40\n"
                               "  synthface landmarks train-cnn --data data/syn10k --data 300w/helen-train "
                               "--init syn10k.pt -o tuned.pt --epochs 40 --lr 5e-4 --colour 1\n"
                               "  synthface landmarks eval --model mix.pt --data 300w/afw",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--data", "--dataset", dest="dataset", required=True, action="append",
                   help="synthface dataset folder, imglab XML, COCO json or 300-W folder; repeat it to train on several")
    c.add_argument("--weight", type=float, action="append", help="oversampling of each --data, in order")
    c.add_argument("--init", metavar="MODEL.pt", help="start from the weights of a model train-cnn wrote, e.g. to "
                   "fine-tune a model of synthetic faces on real ones; give its --size, --margin and --width again. "
                   "Only its weights are taken: the learning rate starts anew at --lr (give a lower one to "
                   "fine-tune); a resume needs the same file")
    c.add_argument("-o", "--output", required=True, help="model file to write (.pt, TorchScript); a .json summary "
                                                          "and a .checkpoints/ folder go beside it")
    helps = {"size": "the model's input side in px (from 10,000 faces, 80 epochs: afw NME 5.49%% at 96, 5.66%% "
                     "at 64 in half the time)", "margin": "crop side over the face box's larger side",
             "width": "channels of the network's first stage", "lr": "AdamW's learning rate",
             "rotate": "random roll, degrees", "scale": "random scale", "shift": "random shift, of the crop side",
             "flip": "probability of a mirrored sample (above 0: the exported model also averages each crop's "
                     "points with its mirror's)",
             "colour": "strength, 0 to 1, of colour changes beyond brightness and contrast: saturation, "
                       "grey at times, each channel's gain (faded or tinted photos, which synthetic faces lack; "
                       "the --init example's step scored afw 4.76%% with 1, 4.96%% without, over three seeds)",
             "device": "auto, cpu or cuda",
             "loss": "l1, or wing (the Wing loss of Feng et al. 2018; from 10,000 faces at 64 px, 40 epochs it "
                     "scored afw 6.30%% against l1's 6.10%%)",
             "epochs": "passes over the faces (from 10,000 faces at 64 px, afw NME 6.68%% at 20, 6.10%% at 40, "
                       "5.66%% at 80; 80 at 96 px take about 40 min on 2 CPU cores)"}
    add_option_flags(c, CNNOptions, helps)
    add_upsample_flag(c, "detector upsampling for 300-W boxes")
    c.add_argument("--pts-origin", type=int, default=1, choices=(0, 1), help=".pts coordinates' first pixel (default 1)")
    c.add_argument("--split", default=None, choices=("train", "val", "all"),
                   help="which faces of a synthface dataset (default train; other inputs: all)")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_run_train_cnn, plan=plans.landmarks_train_cnn)


def _run_train_cnn(args) -> int:
    """landmarks train-cnn: the CNN landmark model from one or more datasets."""
    from synthface.trainers.cnn import CNNOptions, train_cnn
    from synthface.trainers.reports import landmarks_train_line

    options = options_from(args, CNNOptions)
    options.validate()
    s = train_cnn(args.dataset, args.output, options, upsample=args.upsample, progress=not args.no_progress,
                  pts_origin=args.pts_origin, split=args.split, weights=args.weight, init=args.init)
    print(landmarks_train_line({**s, "epochs": options.epochs}, args.output, model="a CNN"))
    return 0


def _run_landmarks_train(args) -> int:
    """landmarks train: a dlib shape predictor from one or more datasets."""
    from synthface.trainers.landmarks import TrainOptions, train_landmarks
    from synthface.trainers.reports import landmarks_train_line

    options = options_from(args, TrainOptions)
    s = train_landmarks(args.dataset, args.output, options, upsample=args.upsample, progress=not args.no_progress,
                        pts_origin=args.pts_origin, split=args.split, weights=args.weight, verbose=args.verbose)
    print(landmarks_train_line(s, args.output))
    return 0


def _run_landmarks_eval(args) -> int:
    """landmarks eval: NME, failures and AUC of a shape predictor on real faces."""
    from synthface.trainers.reports import landmarks_eval_report

    landmarks_eval_report(args.model, args.data, boxes=args.boxes, upsample=args.upsample,
                          pts_origin=args.pts_origin, split=args.split, ced=args.ced, output=args.output,
                          progress=not args.no_progress, echo=print)
    return 0
