"""CED curves of chosen bench_mixing rows in one plot, each under a short label (bench_mixing
itself plots every row of a case): the plots in docs/landmarks.md.

    python bench/plot_mixing.py docs/landmarks_mix_ced_halves.png \\
        "real=A->B | real alone, --oversampling-amount 35" \\
        "+10k unturned=A->B | real + synthetic 10000, the default rule" \\
        "+10k turned=A->B | real + rot-30_30_10000 10000, the default rule"

Each row is LABEL=KEY, KEY as in runs/mixing/results.json ("CASE | ROW").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.trainers.landmarks import plot_ced  # noqa: E402

# the plots docs/landmarks.md shows
DOCS = {
    "docs/landmarks_mix_ced_halves.png": {
        "real": "A->B | real alone, --oversampling-amount 35",
        "+10k unturned": "A->B | real + synthetic 10000, the default rule",
        "+10k turned": "A->B | real + rot-30_30_10000 10000, the default rule",
        "+10k celeba64": "A->B | real + celeba-aug64-10000 10000, the default rule"},
    "docs/landmarks_mix_ced_afw.png": {
        "real": "helen->afw | real alone, --oversampling-amount 35",
        "+10k unturned": "helen->afw | real + synthetic 10000, the default rule",
        "+10k turned": "helen->afw | real + rot-30_30_10000 10000, real share 50% (weight 11.49)",
        "+20k turned": "helen->afw | real + rot-30_30_20000 20000, the default rule",
        "+10k celeba64": "helen->afw | real + celeba-aug64-10000 10000, the default rule",
        "+20k celeba64": "helen->afw | real + celeba64-20000 20000, the default rule"},
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", nargs="?", help="the plot (PNG); without it, redraw the plots docs/landmarks.md shows")
    p.add_argument("rows", nargs="*", metavar="LABEL=KEY")
    p.add_argument("--results", default="runs/mixing/results.json")
    args = p.parse_args()
    if not Path(args.results).is_file():
        sys.exit(f"plot_mixing: no {args.results}: run bench/bench_mixing.py first (or give --results)")
    results = json.loads(Path(args.results).read_text())
    bad = [r for r in args.rows if "=" not in r]
    if bad:
        sys.exit(f"plot_mixing: '{bad[0]}' is not LABEL=KEY")
    plots = {args.output: dict(r.split("=", 1) for r in args.rows)} if args.output else DOCS
    for output, rows in plots.items():
        missing = [key for key in rows.values() if key not in results]
        if missing or not rows:
            sys.exit(f"plot_mixing: {args.results} has no row '{missing[0]}'" if missing else "plot_mixing: no rows")
        plot_ced({label: results[key] for label, key in rows.items()}, output)
        print(f"{output}: {', '.join(rows)}")


if __name__ == "__main__":
    main()
