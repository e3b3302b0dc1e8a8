"""Generator inference speed, ms/image, before and after the exact rewrite, per preset.

    python bench/bench_generator.py [--batch 64] [--repeats 5] [--threads 1]

"plain" is the training network in eval mode under no_grad; "fast" is
synthface.generator.networks.fast_generator under inference_mode (upsample+conv computed at low
resolution for the upconv design), without and with channels_last (the sampler's). The outputs are compared:
the largest absolute difference is printed next to the times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.generator.config import load_config  # noqa: E402
from synthface.generator.networks import arch_of, build_generator, fast_generator  # noqa: E402


def timed(fn, z, repeats):
    fn(z)
    t = time.perf_counter()
    for _ in range(repeats):
        fn(z)
    return (time.perf_counter() - t) / repeats / len(z) * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["seed56", "dcgan64", "tiny"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's; make-dataset workers use 1)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print("preset,plain_ms_per_image,fast_ms_per_image,fast_channels_last_ms_per_image,speedup,max_abs_diff")
    for preset in args.presets:
        arch = arch_of(load_config(preset).model)
        torch.manual_seed(0)
        g = build_generator(arch)
        g.train()(torch.randn(16, arch["z_dim"]))
        g.eval()
        fast = fast_generator(g, channels_last=False)
        fast_cl = fast_generator(g)
        z = torch.randn(args.batch, arch["z_dim"])
        with torch.no_grad():
            plain_ms = timed(g, z, args.repeats)
            ref = g(z)
        with torch.inference_mode():
            fast_ms = timed(fast, z, args.repeats)
            cl_ms = timed(fast_cl, z, args.repeats)
            diff = max((fast(z) - ref).abs().max().item(), (fast_cl(z) - ref).abs().max().item())
        best = min(fast_ms, cl_ms)
        print(f"{preset},{plain_ms:.3f},{fast_ms:.3f},{cl_ms:.3f},{plain_ms / best:.2f}x,{diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
