"""make-dataset throughput (faces/s) and where the time goes, on this machine.

    python bench/bench_make.py                       # n=2000, --landmarks, all cores
    python bench/bench_make.py --checkpoint runs/utk64/generator.safetensors

For each preset the generator really runs (random weights, the preset's architecture,
so its cost is the real cost); since an untrained generator draws no faces, each
generated image is then replaced by a real fixture face chosen by its seed (the replay
stand-in), so dlib, encoding and writing see real faces. With --checkpoint a trained
generator runs as it is, with nothing replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.face.annotate import AnnotateConfig  # noqa: E402
from synthface.dataset.make import MakeConfig, make_dataset  # noqa: E402
from synthface.generator.sampling import GeneratorSampler, ReplaySampler  # noqa: E402


class CostedReplay:
    """Runs a generator for its cost, returns replayed real faces for their content."""

    def __init__(self, generator: GeneratorSampler, replay: ReplaySampler):
        self.generator, self.replay = generator, replay
        self.resolution = replay.resolution
        self.identity = {"kind": "bench", "arch": generator.identity["arch"]}

    def images(self, seeds):
        self.generator.images(seeds)
        return self.replay.images(seeds)


def random_generator(preset: str, folder: Path) -> GeneratorSampler:
    from synthface.generator.config import load_config
    from synthface.generator.networks import arch_of, build_generator
    from synthface.generator.weights import save_generator

    arch = arch_of(load_config(preset).model)
    path = save_generator(build_generator(arch).eval(), arch, folder / f"{preset}.safetensors")
    return GeneratorSampler(path, device="cpu")


def run(name, sampler, n, workers, batch_size, tmp):
    cfg = MakeConfig(n=n, workers=workers, batch_size=batch_size, annotate=AnnotateConfig(landmarks=True))
    s = make_dataset(Path(tmp) / name, cfg, sampler, progress=False)
    r = s["this_run"]
    print(f"{name},{n},{workers},{r['seconds']:.1f},{n / r['seconds']:.1f},{s['rejection_rate']:.3f},"
          f"{r['gen_s']:.1f},{r['dlib_s']:.1f},{r['encode_s']:.1f},{r['write_s']:.1f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--presets", nargs="*", default=["tiny", "dcgan64"])
    p.add_argument("--checkpoint", help="also run a trained generator, as it is")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()
    import torch

    print(f"# {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print("# CPU seconds summed over the threads that ran them: gen_s in the main thread for the replay rows "
          "(no worker can rebuild their sampler), in the workers for a checkpoint")
    print("generator,n,workers,seconds,faces_per_s,rejection_rate,gen_s,dlib_s,encode_s,write_s")
    replay = ReplaySampler(ROOT / "tests" / "fixtures" / "faces", 64)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            sampler = CostedReplay(random_generator(preset, Path(tmp)), replay)
            run(f"{preset}+replay", sampler, args.n, args.workers, args.batch_size, tmp)
        if args.checkpoint:
            run("checkpoint", GeneratorSampler(args.checkpoint), args.n, args.workers, args.batch_size, tmp)


if __name__ == "__main__":
    main()
