"""Does the data teach? Landmark models trained on synthetic faces, scored on real ones.

    python bench/bench_landmarks.py                          # the full ablation (about an hour on 2 cores)
    python bench/bench_landmarks.py --ablation-size 1000 --big-size 2000 --out runs/lm-quick
    python bench/bench_landmarks.py --curve-only 'augmentation (--augment)' --curve 20000 --out runs/lm-curve
    python bench/bench_landmarks.py --curve-only 'augmentation (--augment)' --curve 100000 --oversampling 1 \
        --out runs/lm-curve   # a larger set at the same training work (faces x oversampling)

With the same dlib training options (synthface's TrainOptions) throughout, on real faces
with human 68-point labels (boxes from dlib's detector, as at test time):
1. dlib's own 68-point model (the teacher whose labels synthetic faces carry);
2. a predictor trained on the 870 real 300w-dev/helen-train faces;
3. the ablation at --ablation-size synthetic faces: today's defaults, then each change
   alone (pose steering, flip-checked labels, the disagreement filter on top of them,
   dataset-time augmentation, the MMOD detector) and all together;
4. at --big-size: the defaults and the best recipe of the ablation, and real 870 +
   synthetic (the best recipe) against real 870 alone;
5. the size curve of the best recipe (--curve sizes, made by resuming one dataset).
Every model is scored on 300w-dev/afw (337 faces); synthetic-only models also on
helen-train (870 faces they never saw). Writes results.json, results.md and ced.png to
--out; datasets and models stay there (a rerun reuses them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.face.annotate import AnnotateConfig  # noqa: E402
from synthface.trainers.landmarks import TrainOptions, evaluate_landmarks, plot_ced, train_landmarks  # noqa: E402
from synthface.dataset.make import MakeConfig, make_dataset  # noqa: E402
from synthface.generator.sampling import open_sampler  # noqa: E402
from synthface.generator.steering import pose_mix_targets  # noqa: E402
from synthface.face.augment import AugmentConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "300w-dev"

# name -> (steering targets, MakeConfig extras, AnnotateConfig extras)
VARIANTS = {
    "defaults": (None, {}, {}),
    "pose steering (--pose-mix)": ("mix", {}, {}),
    "flip labels (--labels flip)": (None, {}, {"labels": "flip"}),
    "flip + filter (--max-disagreement 0.03)": (None, {}, {"labels": "flip", "max_disagreement": 0.03}),
    "augmentation (--augment)": (None, {"augment": True}, {}),
    "MMOD filter (--detector mmod)": (None, {}, {"detector": "mmod"}),
    "all together": ("mix", {"augment": True}, {"labels": "flip", "max_disagreement": 0.03}),
}


def make(out: Path, n: int, variant: str, seed: int) -> float:
    targets, extra, annotate = VARIANTS[variant]
    sampler = open_sampler(targets=pose_mix_targets() if targets == "mix" else None)
    extra = {**extra, "augment": AugmentConfig() if extra.get("augment") else None}
    # unturned, as every variant here was measured (the turn is bench_rotate3d's)
    cfg = MakeConfig(n=n, seed=seed, formats=("csv",), val_fraction=0.0, annotate=AnnotateConfig(**annotate),
                     rotate3d=None, **extra)
    t = time.perf_counter()
    make_dataset(out, cfg, sampler, resume=out.exists(), progress=False)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ablation-size", type=int, default=2000)
    p.add_argument("--big-size", type=int, default=10000)
    p.add_argument("--curve", type=int, nargs="*", default=[1000, 2000, 5000, 10000])
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), help="ablation rows (names in VARIANTS)")
    p.add_argument("--out", default="runs/landmarks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curve-only", metavar="VARIANT",
                   help="only the size curve (--curve) of this recipe, e.g. 'augmentation (--augment)': datasets, "
                        "models, scores, training time and the trainer's peak RSS")
    p.add_argument("--oversampling", type=int, default=5,
                   help="random box jitters per face in training (default 5, as every row so far; 0: "
                        "TrainOptions' auto); a value other than 5 is named in the row")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = TrainOptions(oversampling_amount=args.oversampling)
    tag = "" if args.oversampling == 5 else f" oversampling {args.oversampling}"
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    afw, helen = str(SHARED / "afw"), str(SHARED / "helen-train")

    def save():
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    def score(name, model, train=None, made=None, helen_too=True):
        if name in results:
            return results[name]
        r = {"afw": _summary(evaluate_landmarks(model, afw, progress=False))}
        if helen_too:
            r["helen-train"] = _summary(evaluate_landmarks(model, helen, progress=False))
        r.update(train_faces=train["faces"] if train else None, train_seconds=train["seconds"] if train else None,
                 make_seconds=round(made, 1) if made else None)
        results[name] = r
        save()
        h = f", helen-train {r['helen-train']['nme_mean']:.2%}" if helen_too else ""
        print(f"{name}: afw NME {r['afw']['nme_mean']:.2%}{h}", flush=True)
        return r

    def synthetic(variant, n, name=None):
        name = name or f"{variant} [{n}]{tag}"
        if name in results:
            return results[name]
        data = out / f"{_slug(variant)}_{n}"
        made = make(data, n, variant, args.seed)
        model = out / f"{_slug(variant)}_{n}{tag.replace(' ', '_')}.dat"
        s = train_landmarks(data, model, options, progress=False, split="all")
        r = score(name, str(model), s, made)
        # the trainer runs in a child process: the largest child's peak RSS, in MiB
        r["train_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        save()
        return r

    if args.curve_only:
        for n in args.curve:
            synthetic(args.curve_only, n)
        _report(results, out, max(args.curve))
        return

    score("dlib 68-point model (teacher)", "dlib68")
    if "real: helen-train 870" not in results:
        s = train_landmarks(helen, out / "real870.dat", options, progress=False, split="all")
        score("real: helen-train 870", str(out / "real870.dat"), s, helen_too=False)
    for variant in args.variants:
        synthetic(variant, args.ablation_size)
    ablation = {v: results[f"{v} [{args.ablation_size}]"]["afw"]["nme_mean"] for v in args.variants}
    best = min(ablation, key=ablation.get)
    results["best recipe"] = best
    save()
    print(f"best recipe at {args.ablation_size}: {best}", flush=True)
    synthetic("defaults", args.big_size)
    synthetic(best, args.big_size)
    name = f"real 870 + synthetic {args.big_size} ({best})"
    if name not in results:
        s = train_landmarks([helen, out / f"{_slug(best)}_{args.big_size}"], out / "real_plus_syn.dat", options,
                            progress=False, split="all")
        score(name, str(out / "real_plus_syn.dat"), s, helen_too=False)
    for n in args.curve:
        synthetic(best, n)
    _report(results, out, args.big_size)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.split(" (")[0]).strip("_").lower()


def _summary(r: dict) -> dict:
    return dict(r)


def _report(results: dict, out: Path, big: int) -> None:
    lines = ["| model | training faces | afw NME mean | median | failures (>8%) | AUC@8% | helen-train NME mean "
             "| training time |", "|---|---|---|---|---|---|---|---|"]
    ced = {}
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        a = r["afw"]
        h = f"{r['helen-train']['nme_mean']:.2%}" if "helen-train" in r else "-"
        t = f"{r['train_seconds']:.0f} s" if r.get("train_seconds") else "-"
        lines.append(f"| {name} | {r.get('train_faces') or '-'} | {a['nme_mean']:.2%} | {a['nme_median']:.2%} | "
                     f"{a['failure_rate']:.1%} | {a['auc_at_8pct']:.3f} | {h} | {t} |")
        if "teacher" in name or "real" in name or f"[{big}]" in name:
            ced[name] = a
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot_ced(ced, out / "ced.png")
    print("\n".join(lines))
    print(f"# {os.cpu_count()} cores; best recipe: {results.get('best recipe')}")


if __name__ == "__main__":
    main()
