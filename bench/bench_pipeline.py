"""make-dataset: each stage alone, the whole pipeline, its efficiency, and a naive loop.

    python bench/bench_pipeline.py                        # bundled generator, n=2000
    python bench/bench_pipeline.py --checkpoint G.safetensors -n 2000 --workers 1 2
    python bench/bench_pipeline.py --memory 1000 10000 50000   # peak RSS per n

Stage costs are CPU-seconds per accepted face, measured one at a time on one core:
generation (batched, as the pipeline runs it), detection (one upsample), the 68
landmarks, PNG encoding and writing. Every stage needs a core, so on `c` cores the
pipeline can make at most  c / (sum of the stage costs)  faces/s: that is the bound,
and efficiency = measured faces/s / bound. The naive loop is what a user would write
otherwise: generate one face, detect, predict, write, repeat.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def stage_costs(sampler, n: int = 512) -> dict:
    """Seconds per candidate of each stage, alone, in this process (torch: 1 thread)."""
    import cv2
    import dlib
    import torch

    from synthface.annotate import AnnotateConfig, Annotator
    from synthface.sampling import candidates

    torch.set_num_threads(1)
    t = time.perf_counter()
    images = [img for _, _, img in candidates(sampler, 0, 0, n)]
    gen = (time.perf_counter() - t) / n
    ann = Annotator(AnnotateConfig())
    t = time.perf_counter()
    found = [ann.detector.run(img, 1, 0.0)[0] for img in images]
    det = (time.perf_counter() - t) / n
    with_face = [(img, r[0]) for img, r in zip(images, found) if len(r) == 1]
    t = time.perf_counter()
    for img, r in with_face:
        ann.predictor(img, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
    lm = (time.perf_counter() - t) / max(len(with_face), 1)
    t = time.perf_counter()
    pngs = [cv2.imencode(".png", img[:, :, ::-1])[1].tobytes() for img, _ in with_face]
    enc = (time.perf_counter() - t) / max(len(with_face), 1)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for i, png in enumerate(pngs):
            p = Path(tmp) / f"{i:08d}.png.tmp"
            p.write_bytes(png)
            os.replace(p, p.with_suffix(""))
        write = (time.perf_counter() - t) / max(len(pngs), 1)
    yield_ = len(with_face) / n
    torch.set_num_threads(os.cpu_count() or 1)
    return {"gen": gen, "detect": det, "landmarks": lm, "encode": enc, "write": write, "yield": yield_,
            # per accepted face: every candidate is generated and detected
            "per_face": (gen + det) / max(yield_, 1e-9) + lm + enc + write}


def naive_loop(sampler, n: int, out: Path) -> float:
    """One image at a time, everything in one process: the baseline."""
    import cv2
    import dlib

    from synthface.annotate import AnnotateConfig, Annotator
    from synthface.sampling import candidate_seed

    ann = Annotator(AnnotateConfig())
    out.mkdir(parents=True)
    made, j, t = 0, 0, time.perf_counter()
    rows = []
    while made < n:
        img = sampler.images([candidate_seed(0, j)])[0]
        j += 1
        faces = ann.detector.run(img, 1, 0.0)[0]
        if len(faces) != 1:
            continue
        r = faces[0]
        shape = ann.predictor(img, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
        rows.append([p.x for p in shape.parts()])
        cv2.imwrite(str(out / f"{made:08d}.png"), img[:, :, ::-1])
        made += 1
    return n / (time.perf_counter() - t)


def pipeline(sampler, n: int, workers: int, out: Path) -> dict:
    from synthface.annotate import AnnotateConfig
    from synthface.make import MakeConfig, make_dataset

    cfg = MakeConfig(n=n, workers=workers, annotate=AnnotateConfig(landmarks=True), formats=("csv",))
    s = make_dataset(out, cfg, sampler, progress=False)
    return {"faces_per_s": n / s["this_run"]["seconds"], **s["this_run"]}


def peak_rss(n: int, checkpoint: str | None) -> float:
    """Peak RSS (MiB) of a whole `synthface make-dataset` run: main process and workers."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cli.main", "make-dataset", "-n", str(n), "--landmarks",
               "--out", f"{tmp}/d", "--no-progress"] + (["--checkpoint", checkpoint] if checkpoint else [])
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024  # ru_maxrss is in KiB on Linux: the largest child


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="generator (default: the bundled one)")
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count()])
    p.add_argument("--naive-n", type=int, default=300, help="faces for the naive loop")
    p.add_argument("--memory", type=int, nargs="*", default=[], help="peak RSS for these n")
    args = p.parse_args()
    import torch

    from synthface.sampling import open_sampler

    sampler = open_sampler(args.checkpoint)
    print(f"# {os.cpu_count()} cores, torch {torch.__version__}, generator {sampler.identity.get('checkpoint')}")
    c = stage_costs(sampler)
    print("stage,ms_per_candidate_or_face")
    for k in ("gen", "detect", "landmarks", "encode", "write"):
        print(f"{k},{c[k] * 1000:.3f}")
    print(f"yield,{c['yield']:.3f}")
    print(f"cpu_ms_per_accepted_face,{c['per_face'] * 1000:.3f}")
    print("workers,cores,bound_faces_per_s,measured_faces_per_s,efficiency")
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            cores = min(os.cpu_count() or 1, max(w, 1))
            bound = cores / c["per_face"]
            r = pipeline(sampler, args.n, w, Path(tmp) / f"w{w}")
            print(f"{w},{cores},{bound:.1f},{r['faces_per_s']:.1f},{r['faces_per_s'] / bound:.1%}", flush=True)
        naive = naive_loop(sampler, args.naive_n, Path(tmp) / "naive")
        print(f"naive_loop_faces_per_s,{naive:.1f}")
    for n in args.memory:
        print(f"peak_rss_mib_n{n},{peak_rss(n, args.checkpoint):.0f}", flush=True)


if __name__ == "__main__":
    main()
