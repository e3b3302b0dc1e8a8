"""make-dataset: each stage alone, the whole pipeline, its efficiency, and a naive loop.

    python bench/bench_pipeline.py                  # bundled generator, n=2000 and 10000, all cores
    python bench/bench_pipeline.py --workers 1 2 4 8 16   # how it scales with cores
    python bench/bench_pipeline.py --checkpoint G.safetensors -n 2000
    python bench/bench_pipeline.py --memory 1000 10000 50000   # peak RSS per n

Stage costs are CPU-seconds per accepted face, measured one at a time on one core and
each done as make-dataset does it: generation (whole blocks), detection (one upsample),
the 68 landmarks, the default augmentation, PNG encoding, the main thread's writing
(image renamed into place, journal row, an fsync a chunk) and the pose labels (computed
at export); a --rotate-3d turn is reported beside them, not summed. Every stage needs a core, so on `c` cores the pipeline
can make at most  c / (sum of the stage costs)  faces/s: that is the bound, and
efficiency = measured faces/s / bound. "measured" times the whole make_dataset call
(loading dlib's models included); "loop" is its sampling loop alone. The naive loop is
what a user would write otherwise: generate one face, detect, predict, write, repeat;
it runs on the first n.
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

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def stage_costs(sampler, n: int = 512) -> dict:
    """Seconds per candidate of each stage, alone, in this process (torch: 1 thread),
    each done the way make-dataset does it."""
    import cv2
    import dlib
    import torch

    from synthface.face.annotate import AnnotateConfig, Annotator, shape_to_array
    from synthface.dataset.journal import Journal
    from synthface.dataset.make import BLOCK, _record, image_name
    from synthface.generator.sampling import images_for

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    images_for(sampler, 0, range(n, n + BLOCK))  # warm-up
    t = time.perf_counter()
    images = images_for(sampler, 0, range(n))
    gen = (time.perf_counter() - t) / n
    ann = Annotator(AnnotateConfig())
    t = time.perf_counter()
    found = [ann.detector.run(img, ann.cfg.upsample, 0.0) for img in images]
    det = (time.perf_counter() - t) / n
    with_face = [(j, img, r[0]) for j, (img, (r, _, _)) in enumerate(zip(images, found)) if len(r) == 1]
    t = time.perf_counter()
    points = [ann.predictor(img, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
              for _, img, r in with_face]
    lm = (time.perf_counter() - t) / max(len(with_face), 1)
    from synthface.face.pose import face_attributes
    from synthface.face.rotate3d import turn_face
    from synthface.face.augment import AugmentConfig, augment_face

    arrays = [shape_to_array(s) for s in points]
    boxes = [(r.left(), r.top(), r.width(), r.height()) for _, _, r in with_face]
    t = time.perf_counter()
    augmented = [augment_face(img, p, b, j, AugmentConfig())[0] for (j, img, _), p, b in zip(with_face, arrays, boxes)]
    aug = (time.perf_counter() - t) / max(len(with_face), 1)
    t = time.perf_counter()
    [face_attributes(p, img.shape[0]) for (_, img, _), p in zip(with_face, arrays)]
    pose = (time.perf_counter() - t) / max(len(with_face), 1)
    t = time.perf_counter()
    [turn_face(img, p, b, (j % 61) - 30.0) for (j, img, _), p, b in zip(with_face, arrays, boxes)]
    turn = (time.perf_counter() - t) / max(len(with_face), 1)
    t = time.perf_counter()
    pngs = [cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))[1].tobytes() for img in augmented]
    enc = (time.perf_counter() - t) / max(len(with_face), 1)
    results = [("", 1, {"box": (r.left(), r.top(), r.width(), r.height()), "score": 1.0,
                        "landmarks": shape_to_array(s)}, png)
               for (_, _, r), s, png in zip(with_face, points, pngs)]
    meta = [(j, j) for j, _, _ in with_face]
    with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "journal.csv", True) as journal:
        # the main thread's share: images renamed into place, journal rows, an fsync a chunk
        k = 0
        t = time.perf_counter()
        for i in range(0, len(results), 256):
            _, k = _record(Path(tmp), journal, meta[i:i + 256], results[i:i + 256], k, len(results))
        write = (time.perf_counter() - t) / max(len(results), 1)
        assert (Path(tmp) / image_name(k - 1)).is_file()
    yield_ = len(with_face) / n
    torch.set_num_threads(os.cpu_count() or 1)
    return {"gen": gen, "detect": det, "landmarks": lm, "augment": aug, "encode": enc, "write": write, "pose": pose,
            "rotate_3d": turn, "yield": yield_,
            # per accepted face: every candidate is generated and detected; the pose labels
            # are computed at export (one core), the turn only with --rotate-3d
            "per_face": (gen + det) / max(yield_, 1e-9) + lm + aug + enc + write + pose}


def naive_loop(sampler, n: int, out: Path) -> float:
    """One image at a time, everything in one thread: the baseline (timed from loading
    dlib's models, like the pipeline)."""
    import cv2
    import dlib

    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.generator.sampling import candidate_seed

    t = time.perf_counter()
    ann = Annotator(AnnotateConfig())
    out.mkdir(parents=True)
    made, j = 0, 0
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
    """One make_dataset call, timed from the call to its return: loading dlib's models,
    the sampling loop, labels.csv. `loop_s` is the sampling loop alone."""
    from synthface.face.annotate import AnnotateConfig
    from synthface.dataset.make import MakeConfig, make_dataset

    cfg = MakeConfig(n=n, workers=workers, annotate=AnnotateConfig(landmarks=True), formats=("csv",))
    t = time.perf_counter()
    s = make_dataset(out, cfg, sampler, progress=False)
    return {"seconds": time.perf_counter() - t, "loop_s": s["this_run"]["seconds"]}


def peak_rss(n: int, checkpoint: str | None) -> float:
    """Peak RSS (MiB) of a whole `synthface make-dataset` run: main process and workers."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "synthface", "make-dataset", "-n", str(n), "--landmarks",
               "--out", f"{tmp}/d", "--no-progress"] + (["--checkpoint", checkpoint] if checkpoint else [])
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024  # ru_maxrss is in KiB on Linux: the largest child


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="generator (default: the bundled one)")
    p.add_argument("-n", type=int, nargs="+", default=[2000, 10000], help="dataset sizes to time")
    p.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count()])
    p.add_argument("--naive-n", type=int, help="faces for the naive loop (default: the first -n)")
    p.add_argument("--threads", type=int, nargs="+",
                   help="most workers run as threads of the main process, the rest as processes "
                        "(default: make-dataset's own, synthface.dataset.make.THREADS)")
    p.add_argument("--memory", type=int, nargs="*", default=[], help="peak RSS for these n")
    args = p.parse_args()
    import torch

    from synthface import make
    from synthface.generator.sampling import open_sampler

    sampler = open_sampler(args.checkpoint)
    print(f"# {os.cpu_count()} cores, torch {torch.__version__}, generator {sampler.identity.get('checkpoint')}")
    c = stage_costs(sampler)
    print("stage,ms_per_candidate_or_face")
    for k in ("gen", "detect", "landmarks", "augment", "encode", "write", "pose", "rotate_3d"):
        print(f"{k},{c[k] * 1000:.3f}")
    print(f"yield,{c['yield']:.3f}")
    print(f"cpu_ms_per_accepted_face,{c['per_face'] * 1000:.3f}")
    print("workers,threads,cores,n,bound_faces_per_s,measured_faces_per_s,efficiency,loop_faces_per_s,"
          "loop_efficiency")
    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            for w in args.workers:
                for i, threads in enumerate(args.threads or [make.THREADS]):
                    make.THREADS = threads
                    cores = min(os.cpu_count() or 1, max(w, 1))
                    bound = cores / c["per_face"]
                    r = pipeline(sampler, n, w, Path(tmp) / f"w{w}n{n}t{threads}-{i}")
                    fps, loop = n / r["seconds"], n / r["loop_s"]
                    measured[n] = max(measured.get(n, 0.0), fps)
                    print(f"{w},{min(w, threads)},{cores},{n},{bound:.1f},{fps:.1f},{fps / bound:.1%},{loop:.1f},"
                          f"{loop / bound:.1%}", flush=True)
        naive_n = args.naive_n or args.n[0]
        naive = naive_loop(sampler, naive_n, Path(tmp) / "naive")
        print(f"naive_loop_faces_per_s_n{naive_n},{naive:.1f}")
        for n, fps in measured.items():
            print(f"speedup_over_naive_n{n},{fps / naive:.2f}")
    for n in args.memory:
        print(f"peak_rss_mib_n{n},{peak_rss(n, args.checkpoint):.0f}", flush=True)


if __name__ == "__main__":
    main()
