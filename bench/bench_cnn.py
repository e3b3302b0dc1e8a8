"""The CNN landmark model (landmarks train-cnn) against dlib's shape predictor, on the
same faces and scored on the same real test faces.

    python bench/bench_cnn.py --syn runs/cnn/syn10k --real 300W/helen-train --test 300W/afw [HELD-OUT ...] \
        --out runs/cnn [--epochs 80] [--mix-epochs 10] [--size 96] [--loss wing] \
        [--only cnn-syn,cnn-real,cnn-mix,cnn-tune,dlib-syn] [--tune-epochs 40 --tune-lr 5e-4 --tune-colour 1]

Each case trains one model (skipped when its model exists with the same options: the
bench resumes; a model of other options there stops it: one OUT per setting) and scores
it with `landmarks eval` on each --test set (detector boxes, NME by the outer-eye-corner
distance); results.json gathers them (`test`: the first set; `tests`: each, by folder
name), and each set's last line sets the cases against cnn-real on the same faces, with a
95% paired bootstrap interval. Training times are of this machine, as it was.
cnn-tune starts from cnn-syn's model (in OUT: list cnn-syn before it in --only, or train
it first) and trains it on the synthetic + real faces (`train-cnn --init`), at a lower
learning rate and with `--colour 1`: the recipe in docs/landmarks.md (an OUT whose
cnn-tune was trained otherwise stops it: give another OUT or --tune-colour 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = ("cnn-syn", "cnn-real", "cnn-mix", "cnn-tune", "dlib-syn")


def main() -> None:
    from synthface.core.outputs import sha256_of
    from synthface.errors import SynthfaceError
    from synthface.trainers.cnn import LOSSES, CNNOptions, train_cnn
    from synthface.trainers.cnn_state import OLDER_RUNS
    from synthface.trainers.landmarks import train_landmarks
    from synthface.trainers.landmarks_eval import evaluate_landmarks

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--syn", required=True)
    ap.add_argument("--real", required=True)
    ap.add_argument("--test", required=True, nargs="+", metavar="DIR",
                    help="300-W folders to score on, e.g. afw and a held-out set made by bench/prepare_300w.py")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=CNNOptions.epochs,
                    help="the synthetic faces alone (train-cnn's default)")
    ap.add_argument("--real-epochs", type=int, default=150, help="the 870 real faces alone: as many steps as 10k x 13")
    ap.add_argument("--mix-epochs", type=int, default=10, help="synthetic + real (about twice the faces an "
                    "epoch: by the rule the real faces are half)")
    ap.add_argument("--tune-epochs", type=int, default=40, help="cnn-syn's model trained on synthetic + real")
    ap.add_argument("--tune-lr", type=float, default=5e-4, help="cnn-tune's learning rate")
    ap.add_argument("--tune-colour", type=float, default=1.0, help="cnn-tune's --colour (0: brightness and "
                    "contrast alone, as the other cases)")
    ap.add_argument("--loss", default="l1", choices=LOSSES, help="the CNN's training loss")
    ap.add_argument("--size", type=int, default=CNNOptions.size,
                    help="the CNN's input side, px (train-cnn's default)")
    ap.add_argument("--only", default=",".join(CASES))
    args = ap.parse_args()
    cnn = {"loss": args.loss, "size": args.size}
    unknown = sorted(set(args.only.split(",")) - set(CASES))
    if unknown:
        raise SystemExit(f"--only: unknown case {', '.join(unknown)} (cases: {', '.join(CASES)})")
    try:
        for epochs in (args.epochs, args.real_epochs, args.mix_epochs):
            CNNOptions(epochs=epochs, **cnn).validate()
        try:
            CNNOptions(epochs=args.tune_epochs, lr=args.tune_lr, colour=args.tune_colour, **cnn).validate()
        except SynthfaceError as exc:  # its flags here are --tune-*
            raise SynthfaceError(str(exc).replace("--", "--tune-", 1)) from None
    except SynthfaceError as exc:
        raise SystemExit(f"bench_cnn: {exc}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for case in args.only.split(","):
        model = out / (case + (".pt" if case.startswith("cnn") else ".dat"))
        t0 = time.perf_counter()
        if model.is_file() and case.startswith("cnn"):
            made = {**OLDER_RUNS, **json.loads(model.with_suffix(".json").read_text())["options"]}
            epochs = {"cnn-syn": args.epochs, "cnn-real": args.real_epochs, "cnn-tune": args.tune_epochs}.get(
                case, args.mix_epochs)
            tune = {"lr": args.tune_lr, "colour": args.tune_colour} if case == "cnn-tune" else {}
            wanted = {**cnn, "epochs": epochs, "colour": 0.0, **tune}
            if any(made.get(k) != v for k, v in wanted.items()):
                raise SystemExit(f"{model} was trained with other options ({made}); give another --out")
            start = json.loads(model.with_suffix(".json").read_text()).get("init") or {}
            syn = out / "cnn-syn.pt"
            if case == "cnn-tune" and start.get("model_sha256") != (sha256_of(syn) if syn.is_file() else None):
                raise SystemExit(f"{model} started from another model than {out / 'cnn-syn.pt'}; give another --out")
        if not model.is_file():
            if case == "cnn-syn":
                s = train_cnn(args.syn, model, CNNOptions(epochs=args.epochs, **cnn), progress=True)
            elif case == "cnn-real":
                s = train_cnn(args.real, model, CNNOptions(epochs=args.real_epochs, **cnn), progress=True)
            elif case == "cnn-mix":
                s = train_cnn([args.syn, args.real], model, CNNOptions(epochs=args.mix_epochs, **cnn), progress=True)
            elif case == "cnn-tune":
                if not (out / "cnn-syn.pt").is_file():
                    raise SystemExit(f"cnn-tune starts from {out / 'cnn-syn.pt'}: train cnn-syn first")
                s = train_cnn([args.syn, args.real], model,
                              CNNOptions(epochs=args.tune_epochs, lr=args.tune_lr, colour=args.tune_colour, **cnn),
                              progress=True,
                              init=out / "cnn-syn.pt")
            else:
                s = train_landmarks(args.syn, model, progress=True)
            results.setdefault(case, {})["train"] = {"faces": s["faces"], "seconds": s["seconds"],
                                                     "sources": s["sources"], "weights": s["weights"]}
        for k, test in enumerate(args.test):
            r = evaluate_landmarks(str(model), test, progress=False)
            kept = {key: r[key] for key in ("faces", "scored", "nme_mean", "nme_median", "failure_rate", "auc_at_8pct",
                                            "nme_by_region", "errors", "images")}
            results.setdefault(case, {}).setdefault("tests", {})[Path(test).name] = kept
            if k == 0:
                results[case]["test"] = kept
            print(f"{case}: NME {r['nme_mean']:.2%} on {r['scored']} of {r['faces']} faces of {test}", flush=True)
        results[case]["seconds_total"] = round(time.perf_counter() - t0, 1)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    against_real(results, [Path(t).name for t in args.test])


def against_real(results: dict, tests: list) -> None:
    """Each case against cnn-real on each test set: the change of the mean NME and its 95%
    paired bootstrap interval over the faces both scored."""
    from bench_mixing import paired_interval

    for test in tests:
        base = results.get("cnn-real", {}).get("tests", {}).get(test)
        for case, r in results.items():
            mine = r.get("tests", {}).get(test)
            if case == "cnn-real" or not base or not mine or mine["images"] != base["images"]:
                continue
            lo, hi = paired_interval(mine["errors"], base["errors"])
            print(f"{test}: {case} {mine['nme_mean']:.2%} against cnn-real {base['nme_mean']:.2%}: "
                  f"{mine['nme_mean'] / base['nme_mean'] - 1:+.1%} ({lo:+.1%} .. {hi:+.1%})")


if __name__ == "__main__":
    main()
