"""Close the loop: landmark models trained on synthetic faces, scored on real ones.

    python bench/bench_landmarks.py --sizes 1000 10000 --out runs/landmarks

On the same real test faces (300w-dev/afw, boxes from dlib's detector) it scores:
1. dlib's own 68-point model (the teacher whose labels the synthetic sets carry);
2. a predictor trained on the real 300w-dev/helen-train faces (870, human labels);
3. predictors trained on synthetic datasets of each --sizes made by the generator
   (default: the bundled one), with the same training options.
It prints a table (NME mean/median, failure rate, AUC@8%, training time), and writes
results.json, results.md and ced.png to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.annotate import AnnotateConfig  # noqa: E402
from synthface.landmarks import TrainOptions, evaluate_landmarks, plot_ced, train_landmarks  # noqa: E402
from synthface.make import MakeConfig, make_dataset  # noqa: E402
from synthface.sampling import open_sampler  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "300w-dev"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="generator (default: the bundled one)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--image-size", type=int, default=None, help="saved size of synthetic faces")
    p.add_argument("--test", default=str(SHARED / "afw"))
    p.add_argument("--real-train", default=str(SHARED / "helen-train"))
    p.add_argument("--out", default="runs/landmarks")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = TrainOptions()
    results = {}

    def score(name, model, seconds=None, faces=None):
        r = evaluate_landmarks(model, args.test, progress=False)
        r.update({"train_seconds": seconds, "train_faces": faces})
        results[name] = r
        print(f"{name}: {faces or '-'} faces, NME mean {r['nme_mean']:.2%}, median {r['nme_median']:.2%}, "
              f"failures {r['failure_rate']:.1%}, AUC@8% {r['auc_at_8pct']:.3f}, "
              f"{r['missed_by_detector']} missed, trained in {seconds or 0:.0f} s", flush=True)

    score("dlib 68-point model (teacher)", "dlib68")
    s = train_landmarks(args.real_train, out / "real_helen.dat", options, progress=False)
    score(f"real: helen-train ({s['faces']})", str(out / "real_helen.dat"), s["seconds"], s["faces"])
    sampler = open_sampler(args.checkpoint)
    for n in args.sizes:
        data = out / f"syn{n}"
        t = time.perf_counter()
        make_dataset(data, MakeConfig(n=n, seed=args.seed, image_size=args.image_size, formats=("csv", "xml"),
                                      annotate=AnnotateConfig()), sampler, resume=data.exists(), progress=False)
        made = time.perf_counter() - t
        s = train_landmarks(data, out / f"syn{n}.dat", options, progress=False)
        score(f"synthetic {n}", str(out / f"syn{n}.dat"), s["seconds"], n)
        results[f"synthetic {n}"]["make_seconds"] = round(made, 1)

    (out / "results.json").write_text(json.dumps(
        {k: {kk: vv for kk, vv in v.items() if kk != "errors"} for k, v in results.items()}, indent=2) + "\n")
    lines = ["| model | training faces | NME mean | NME median | failures (>8%) | AUC@8% | training time |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        t = f"{r['train_seconds']:.0f} s" if r["train_seconds"] else "-"
        lines.append(f"| {name} | {r['train_faces'] or '-'} | {r['nme_mean']:.2%} | {r['nme_median']:.2%} | "
                     f"{r['failure_rate']:.1%} | {r['auc_at_8pct']:.3f} | {t} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot_ced({k.split(" (")[0]: v for k, v in results.items()}, out / "ced.png")
    print("\n".join(lines))
    print(f"# {os.cpu_count()} cores; test set {args.test}; {results[next(iter(results))]['faces']} faces")


if __name__ == "__main__":
    main()
