"""`synthface merge`: the shard folders of a `make-dataset --num-shards N` run joined into
the dataset a single run would have made.
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_path


def add(sub) -> None:
    """The merge command."""
    p = sub.add_parser("merge", help="join the shards of a make-dataset run into one dataset",
                       description="Join the folders made by `make-dataset --num-shards N --shard-index K` "
                                   "(K = 0 .. N-1) into the dataset a single run would have made.",
                       epilog="example:\n  for k in 0 1 2 3; do synthface make-dataset -n 100000 --landmarks "
                              "-o parts/$k --num-shards 4 --shard-index $k; done\n"
                              "  synthface merge parts/0 parts/1 parts/2 parts/3 -o data/faces100k",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path(p, "parts", "the shard folders", many=True)
    p.add_argument("-o", "--output", required=True, help="the merged dataset folder (new or empty)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_merge, plan=plans.merge)


def _run_merge(args) -> int:
    """merge: the shards of a make-dataset run joined into one dataset."""
    from synthface.dataset.merge import merge_shards

    s = merge_shards(args.parts, args.output, progress=not args.no_progress)
    print(f"{s['faces']} faces in {args.output} ({s['candidates']} samples; rejection rate {s['rejection_rate']:.1%})")
    return 0
