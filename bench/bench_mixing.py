"""Real + synthetic landmark training: when does adding synthetic faces help, and by how much
should the real faces be weighted?

    python bench/bench_mixing.py                                   # about 90 minutes on 2 cores
    python bench/bench_mixing.py --syn 2000 --shares 0.25 0.5 0.75 --out runs/mixing

Two cases, on real faces with human 68-point labels (300w-dev):
- in-domain: helen-train split by photo into two halves (even / odd positions of the
  sorted photo names); train on one half, score on the other, and the reverse (and, not
  by default, in thirds: two thirds trained, the third left scored, QR->P, PR->Q, PQ->R);
- across datasets: train on all of helen-train, score on afw (A->afw, not by default: half
  A scored on afw, the real set's size apart from the dataset);
- held out: train on all of helen-train, score on a 300-W folder of faces no row was
  chosen on (--test DIR, case helen->NAME: e.g. HELEN's 330 test faces, made by
  bench/prepare_300w.py); it uses helen->afw's models, so with that case it trains nothing
  more.
Rows per case: the real faces alone; real + synthetic at weight 1 (every face once: the
plain mix); real + synthetic with the real faces weighted to make up a share of the
training faces (--shares); synthetic alone; with --rule, the mix as `landmarks train`
makes it by default; with --real-oversampling K, the real faces alone at K random starts
(a weight w at oversampling 5 gives a real face 5w). --syn-dataset mixes another
synthetic set (e.g. turned with --rotate-3d; several: several sources), --syn-min-yaw
only its turned faces. The synthetic faces: --syn of them, augmented and unturned
(`make-dataset --landmarks --no-rotate-3d`; turned ones, the default now, through
--syn-dataset). The same TrainOptions throughout (--tree-depth and --random-seed change
them for every row, and the rows say so);
boxes from dlib's detector as at test time. Writes results.json, results.md and CED
plots (ced_<case>.png) to --out; datasets and models stay there (a rerun reuses them).
Every row is set against the real faces alone at the default oversampling, with a 95%
bootstrap interval over the test faces (paired: the same faces scored by both models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_landmarks import make  # noqa: E402
from synthface.trainers.landmarks import TrainOptions, evaluate_landmarks, plot_ced, train_landmarks  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "300w-dev"


def _link_photos(folder: Path, photos: list) -> Path:
    """A folder of links to these helen-train photos' files (two runs may make it at once)."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        for f in (DEV / "helen-train").glob(f"{photo}_*"):
            try:
                (folder / f.name).symlink_to(f)
            except FileExistsError:
                pass
    return folder


def _helen_photos() -> list:
    return sorted({p.stem.rsplit("_", 1)[0] for p in (DEV / "helen-train").glob("*.pts")})


def halves(out: Path) -> tuple[Path, Path]:
    """helen-train as two folders of links, split by photo (a photo's faces stay together)."""
    photos = _helen_photos()
    return _link_photos(out / "helen_halfA", photos[0::2]), _link_photos(out / "helen_halfB", photos[1::2])


def thirds(out: Path) -> dict:
    """Three in-domain cases with two thirds of helen-train (about 580 faces, nearer the 870
    of all of it than a half) trained and the last third scored: the photos in thirds P, Q,
    R by position; case "QR->P" trains on Q and R and scores P."""
    photos = _helen_photos()
    cases = {}
    for k, name in enumerate("PQR"):
        rest = "".join(n for n in "PQR" if n != name)
        train = [ph for i, ph in enumerate(photos) if i % 3 != k]
        cases[f"{rest}->{name}"] = (_link_photos(out / f"helen_thirds{rest}", train),
                                    _link_photos(out / f"helen_third{name}", photos[k::3]))
    return cases


def turned_subset(syn: Path, min_yaw: float) -> tuple[Path, int]:
    """The faces of a synthface dataset with |yaw| >= min_yaw, as an imglab XML inside it
    (so that it still counts as synthetic)."""
    import pandas as pd

    from synthface.trainers.landmarks import load_face_set, write_training_xml

    labels = pd.read_csv(syn / "labels.csv")
    keep = {str((syn / f).resolve()) for f in labels.loc[labels["yaw"].abs() >= min_yaw, "file"]}
    faces = [f for f in load_face_set(syn) if str(f.image.resolve()) in keep]
    xml = syn / f"select_yaw{min_yaw:g}.xml"
    write_training_xml(faces, xml)
    return xml, len(faces)


def real_weight(share: float, n_real: int, n_syn: int) -> float:
    """The weight that makes the real faces `share` of all training faces."""
    return share / (1 - share) * n_syn / n_real


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--syn", type=int, default=10000, help="synthetic faces (default 10000)")
    p.add_argument("--shares", type=float, nargs="*", default=[0.25, 0.5, 0.75],
                   help="real shares of the training faces to try (default 0.25 0.5 0.75)")
    p.add_argument("--syn-dataset", metavar="DIR", nargs="+",
                   help="use this synthface dataset as the synthetic faces (e.g. one made with --rotate-3d) "
                        "instead of making --syn default ones; its folder name names its rows; several are "
                        "several synthetic sources, each at weight 1")
    p.add_argument("--tree-depth", type=int, default=TrainOptions.tree_depth,
                   help=f"every row's tree depth (default {TrainOptions.tree_depth}; rows name any other)")
    p.add_argument("--random-seed", default="", metavar="S",
                   help="every row's training seed (dlib's --random-seed; rows name it): training's own "
                        "randomness in a mix, as --train-seeds shows it for the real faces alone")
    p.add_argument("--real-oversampling", type=int, nargs="*", default=[], metavar="K",
                   help="also the real faces alone at these oversamplings: a weight w at oversampling 5 gives each "
                        "real face 5w random starts, so real alone at 5w is the baseline that isolates the "
                        "synthetic faces' part")
    p.add_argument("--train-seeds", nargs="*", default=[], metavar="S",
                   help="also the real faces alone at 35 starts with these --random-seed values: how far "
                        "training's own randomness moves the score")
    p.add_argument("--syn-min-yaw", type=float, metavar="DEG",
                   help="only the synthetic faces turned at least DEG degrees (|yaw| label): synthetic faces "
                        "for the poses a real set has few of")
    p.add_argument("--rule", action="store_true",
                   help="also real + synthetic as `landmarks train` mixes them by default: no --weight (the "
                        "mixing rule), automatic oversampling")
    p.add_argument("--no-alone", action="store_true", help="skip the synthetic-alone and weight-1 rows")
    p.add_argument("--cases", nargs="*", default=["A->B", "B->A", "helen->afw"],
                   help="A->B, B->A, helen->afw, A->afw (half A scored on afw: fewer real faces, another "
                        "dataset), or QR->P, PR->Q, PQ->R (two thirds of helen-train trained, the last third "
                        "scored)")
    p.add_argument("--test", metavar="DIR", type=Path,
                   help="a held-out 300-W folder (.jpg + .pts): adds case helen->NAME (its folder name), the "
                        "helen->afw models scored on it")
    p.add_argument("--oversampling-check", action="store_true",
                   help="also the real faces alone with dlib's oversampling (20): is the real baseline held back?")
    p.add_argument("--out", default="runs/mixing")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}

    def row_options(**kw):  # every row's options; names say a tree depth or seed other than the default
        return TrainOptions(tree_depth=args.tree_depth, **{"random_seed": args.random_seed, **kw})

    # what every row name says of options other than the default
    suffix = (f", --random-seed {args.random_seed}" if args.random_seed else "") + (
        "" if args.tree_depth == TrainOptions.tree_depth else f", tree depth {args.tree_depth}")
    options = row_options(oversampling_amount=5)  # fixed, as every row of the first runs had it
    half_a, half_b = halves(out)
    cases = {"A->B": (half_a, half_b), "B->A": (half_b, half_a), "helen->afw": (DEV / "helen-train", DEV / "afw"),
             "A->afw": (half_a, DEV / "afw"),  # half the real faces across: set size apart from the domain
             **thirds(out)}
    if args.test:
        if not any(args.test.glob("*.pts")):
            sys.exit(f"bench_mixing: --test {args.test} holds no .pts files")
        cases[f"helen->{args.test.name}"] = (DEV / "helen-train", args.test)
        args.cases = [*args.cases, f"helen->{args.test.name}"]
    if args.syn_dataset:
        syns = [Path(d) for d in args.syn_dataset]
        for syn in syns:
            if not (syn / "labels.csv").is_file():
                sys.exit(f"bench_mixing: {syn} is not a synthface dataset (no labels.csv)")
        if len(syns) > 1 and (args.syn_min_yaw is not None or not args.no_alone):
            sys.exit("bench_mixing: several --syn-dataset take --no-alone and no --syn-min-yaw")
    else:
        syns = [out / f"syn_{args.syn}"]
        if not (syns[0] / "labels.csv").is_file():  # made once (two runs may share --out)
            make(syns[0], args.syn, "augmentation (--augment)", args.seed)
    syn = syns[0]

    def save():  # merged with the file as it is now: two runs (other --cases) may share --out
        path = out / "results.json"
        on_disk = json.loads(path.read_text()) if path.is_file() else {}
        results.update({k: v for k, v in on_disk.items() if k not in results})
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(path)

    def row(case, name, sets, weights=None, model=None, opts=None):
        key = f"{case} | {name}{suffix}"
        if key in results:
            return results[key]
        trained = key.replace(case, "helen->afw") if cases[case][0] == DEV / "helen-train" else key  # same faces
        model = model or out / (trained.replace(" ", "").replace("|", "_").replace(">", "").replace("%", "pc") + ".dat")
        if model.is_file() and model.with_suffix(".json").is_file():  # one model for every case (synthetic alone)
            s = json.loads(model.with_suffix(".json").read_text())
        else:
            s = train_landmarks([str(x) for x in sets], model, opts or options, progress=False, weights=weights,
                                split="all")
        r = evaluate_landmarks(str(model), str(cases[case][1]), progress=False)
        r.update(train_faces=s["faces"], sources=s["sources"], train_seconds=s["seconds"],
                 weights=s.get("weights", weights), oversampling=s["options"]["oversampling_amount"],
                 mixing_rule=s.get("mixing_rule"))
        results[key] = r
        save()
        print(f"{key}: NME {r['nme_mean']:.2%} (train {s['faces']} faces, {s['seconds']:.0f} s)", flush=True)
        return r

    sizes = [sum(1 for _ in open(s / "labels.csv")) - 1 for s in syns]
    n_syn = sum(sizes)
    label = (" + ".join(f"{s.name} {n}" for s, n in zip(syns, sizes)) if args.syn_dataset
             else f"synthetic {n_syn}")
    if args.syn_min_yaw is not None:
        syn, n_syn = turned_subset(syn, args.syn_min_yaw)
        syns = [syn]
        label = f"{label} |yaw|>={args.syn_min_yaw:g} ({n_syn})"
    for case in args.cases:
        real, _ = cases[case]
        n_real = len(list(Path(real).glob("*.pts")))
        row(case, "real alone", [real])
        # dlib's own oversampling for a few hundred faces: is the real baseline held back by ours (5)?
        if args.oversampling_check:
            row(case, "real alone, --oversampling-amount 20", [real], opts=row_options(oversampling_amount=20))
        for k in args.real_oversampling:
            row(case, f"real alone, --oversampling-amount {k}", [real], opts=row_options(oversampling_amount=k))
        for s in args.train_seeds:
            row(case, f"real alone, --oversampling-amount 35, --random-seed {s}", [real],
                opts=row_options(oversampling_amount=35, random_seed=s))
        if not args.no_alone:
            slug = "".join(c if c.isalnum() else "_" for c in label)
            alone = out / (f"syn_{slug}.dat" if args.syn_dataset else f"syn_{n_syn}.dat")
            row(case, f"{label} alone", [syn], model=alone)
            row(case, f"real + {label}, weight 1", [real, syn], [1.0, 1.0])  # not the rule: plain
        if args.rule:
            row(case, f"real + {label}, the default rule", [real, *syns], opts=row_options())
        for share in args.shares:
            w = round(real_weight(share, n_real, n_syn), 2)
            row(case, f"real + {label}, real share {share:.0%} (weight {w:g})", [real, *syns], [w] + [1.0] * len(syns))
    report(results, out)


def paired_interval(errors, base, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95% bootstrap interval of mean(errors) / mean(base) - 1 over the same test faces
    (paired: the spread of the test set, not of training's randomness)."""
    import numpy as np

    d = np.asarray(errors) - np.asarray(base)
    rng = np.random.default_rng(seed)
    means = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(draws)]
    lo, hi = np.percentile(means, [2.5, 97.5]) / np.mean(base)
    return float(lo), float(hi)


# the baseline: the real faces alone as `landmarks train` trains them by default (35
# random starts at these sizes); the first runs' "real alone" (5) where it is missing
BASELINES = ("real alone, --oversampling-amount 35", "real alone")


def report(results: dict, out: Path) -> None:
    lines = ["| case | training set | NME mean | median | failures (>8%) | AUC@8% | vs real alone | 95% interval |",
             "|---|---|---|---|---|---|---|---|"]
    by_case: dict = {}
    for key, r in results.items():
        case, name = key.split(" | ")
        by_case.setdefault(case, {})[name] = r
    for case, rows in by_case.items():
        base = next((rows[b] for b in BASELINES if b in rows), None)
        for name, r in rows.items():
            rel = span = "-"
            if base:
                rel = f"{r['nme_mean'] / base['nme_mean'] - 1:+.1%}"
                if r is not base and len(r["errors"]) == len(base["errors"]):
                    lo, hi = paired_interval(r["errors"], base["errors"])
                    span = f"{lo:+.1%} .. {hi:+.1%}"
            lines.append(f"| {case} | {name.replace('|', chr(92) + '|')} | {r['nme_mean']:.2%} | {r['nme_median']:.2%} | {r['failure_rate']:.1%} "
                         f"| {r['auc_at_8pct']:.3f} | {rel} | {span} |")
        plot_ced(rows, out / f"ced_{case.replace('->', '_to_')}.png")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
