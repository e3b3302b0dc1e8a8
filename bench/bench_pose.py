"""Pose and expression spread of datasets, steered and not, against real landmark faces.

    python bench/bench_pose.py                    # n=2000 (MMOD rows: n=300)
    python bench/bench_pose.py -n 500 --mmod-n 100
    python bench/bench_pose.py --checkpoint G.safetensors --training-faces ALIGNED/ --out pose_g.json

Rows: the bundled generator's default dataset, --yaw at the edge of its reach, --pose-mix,
each with dlib's HOG detector and with its MMOD CNN detector; and the real faces of
../shared/data/300w-dev (afw, helen-train: human 68-point labels) through the same pose
code. Columns: yaw / pitch std (degrees, pose.py), share turned beyond 20 degrees (pitch:
from its median), the model-free yaw proxy's std and share beyond 0.15 (the issue's
measure), mouth opening p90, the share of candidates kept, and faces/s. Also the cost of
each added stage per face (pose labels, steering moves). Writes bench/results/pose.json
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.face.annotate import AnnotateConfig  # noqa: E402
from synthface.face.scheme68 import POINT_COLS  # noqa: E402
from synthface.dataset.make import MakeConfig, make_dataset  # noqa: E402
from synthface.face.pose import face_attributes, yaw_proxy  # noqa: E402
from synthface.generator.sampling import candidate_seed, noise, open_sampler  # noqa: E402
from synthface.generator.steering import parse_range, pose_mix_targets, reach  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "300w-dev"


def spread(points: np.ndarray, sizes) -> dict:
    rows = [face_attributes(p, s) for p, s in zip(points, sizes)]
    yaw = np.array([r["yaw"] for r in rows])
    pitch = np.array([r["pitch"] for r in rows])
    mouth = np.array([r["mouth_open"] for r in rows])
    proxy = np.array([yaw_proxy(p) for p in points])
    return {"faces": len(rows), "yaw_std": yaw.std(), "yaw_beyond_20": np.mean(np.abs(yaw) > 20),
            "pitch_std": pitch.std(), "pitch_beyond_20": np.mean(np.abs(pitch - np.median(pitch)) > 20),
            "proxy_std": proxy.std(), "proxy_beyond_015": np.mean(np.abs(proxy) > 0.15),
            "mouth_p90": np.percentile(mouth, 90)}


def real_rows() -> dict:
    import cv2

    from synthface.formats.readers import read_pts

    out = {}
    for name in ("afw", "helen-train"):
        pts, sizes = [], []
        for p in sorted((SHARED / name).glob("*.pts")):
            pts.append(read_pts(p))
            sizes.append(cv2.imread(str(p.with_suffix(".jpg"))).shape[1])
        out[f"real 300w-dev/{name}"] = spread(np.stack(pts), sizes)
    return out


def training_faces_row(folder: Path, count: int = 1500) -> dict:
    """1,500 of a generator's training faces at 64 px, labelled by dlib as make-dataset
    labels generated ones."""
    import random

    import cv2

    from synthface.face.annotate import Annotator
    from synthface.core.imagefiles import IMAGE_EXTS

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    files = random.Random(0).sample(files, min(count, len(files)))
    annotator = Annotator(AnnotateConfig())
    points = []
    for f in files:
        img = cv2.resize(cv2.imread(str(f))[..., ::-1], (64, 64), interpolation=cv2.INTER_AREA).copy()
        faces = annotator.annotate(img)
        if not annotator.rejection_reason(faces):
            points.append(faces[0]["landmarks"])
    row = spread(np.stack(points), [64] * len(points))
    row["kept"] = len(points) / len(files)
    return row


def synthetic_row(n: int, targets, detector: str, workers: int, checkpoint=None) -> dict:
    import pandas as pd

    sampler = open_sampler(checkpoint, device="cpu", targets=targets)
    with tempfile.TemporaryDirectory() as tmp:
        # the generator's own faces: no dataset-time augmentation, no 3D turn
        cfg = MakeConfig(n=n, workers=workers, formats=("csv",), annotate=AnnotateConfig(detector=detector),
                         augment=None, rotate3d=None)
        t0 = time.perf_counter()
        summary = make_dataset(Path(tmp) / "d", cfg, sampler, progress=False)
        seconds = time.perf_counter() - t0
        frame = pd.read_csv(Path(tmp) / "d" / "labels.csv")
    points = frame[POINT_COLS].to_numpy().reshape(-1, 68, 2)
    row = spread(points, [64] * len(points))
    row.update(kept=summary["faces"] / summary["candidates"], faces_per_s=n / seconds)
    if "steering" in summary and "yaw" in summary["steering"]["by_target"]:
        # candidates kept per 10-degree bin of their yaw target: which poses the detector lets through
        row["kept_by_yaw_target"] = {b: c.get("kept", 0) / max(sum(c.values()), 1)
                                     for b, c in summary["steering"]["by_target"]["yaw"].items()}
    return row


def stage_costs(targets, checkpoint=None) -> dict:
    """Seconds per face of the stages pose steering adds."""
    sampler = open_sampler(checkpoint, device="cpu", targets=targets)
    seeds = [candidate_seed(0, j) for j in range(2048)]
    z = noise(seeds, sampler.z_dim)
    t0 = time.perf_counter()
    sampler.steering.move(z, seeds)
    move = (time.perf_counter() - t0) / len(seeds)
    pts = np.random.default_rng(0).uniform(10, 54, (500, 68, 2))
    t0 = time.perf_counter()
    for p in pts:
        face_attributes(p, 64)
    return {"steering_move_ms": move * 1e3, "pose_labels_ms": (time.perf_counter() - t0) / len(pts) * 1e3}


def main() -> None:
    from synthface.generator.directions import load_directions
    from synthface.generator.sampling import DEFAULT_CHECKPOINT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--mmod-n", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--checkpoint", help="the generator (default: the bundled one)")
    ap.add_argument("--training-faces", default=str(ROOT.parent / "shared" / "data" / "utkface-crop"),
                    help="the generator's training faces, for their row")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pose.json"))
    args = ap.parse_args()
    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    _, summary = load_directions(checkpoint)
    lo, hi = reach(summary, "yaw")
    edge = f"{np.ceil(lo * 10) / 10:g}:{np.floor(hi * 10) / 10:g}"
    setups = {"default": [], f"--yaw={edge}": [parse_range(edge, "yaw")], "--pose-mix": pose_mix_targets()}
    rows = real_rows()
    rows[f"real {Path(args.training_faces).name} (training data, 64 px)"] = training_faces_row(args.training_faces)
    for name, targets in setups.items():
        for detector, n in (("hog", args.n), ("mmod", args.mmod_n)):
            print(f"{name} {detector} n={n} ...", file=sys.stderr, flush=True)
            rows[f"{name} ({detector})"] = synthetic_row(n, targets, detector, args.workers, args.checkpoint)
    result = {"checkpoint": str(checkpoint), "rows": rows, "costs": stage_costs(pose_mix_targets(), args.checkpoint),
              "yaw_reach": [lo, hi]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print("| faces | n | yaw std | yaw > 20 | pitch std | pitch > 20 | proxy std | proxy > 0.15 | mouth p90 "
          "| kept | faces/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        kept = f"{r['kept']:.1%}" if "kept" in r else ""
        rate = f"{r['faces_per_s']:.0f}" if "faces_per_s" in r else ""
        print(f"| {name} | {r['faces']} | {r['yaw_std']:.1f} | {r['yaw_beyond_20']:.1%} | {r['pitch_std']:.1f} | "
              f"{r['pitch_beyond_20']:.1%} | {r['proxy_std']:.3f} | {r['proxy_beyond_015']:.1%} | "
              f"{r['mouth_p90']:.3f} | {kept} | {rate} |")
    c = result["costs"]
    print(f"\nper face: pose labels {c['pose_labels_ms']:.3f} ms, steering move {c['steering_move_ms']:.3f} ms; "
          f"yaw reach {lo:.1f} .. {hi:.1f} degrees")
    for name, r in rows.items():
        if "kept_by_yaw_target" in r:
            bins = ", ".join(f"{b}: {v:.0%}" for b, v in r["kept_by_yaw_target"].items())
            print(f"kept per yaw-target bin, {name}: {bins}")


if __name__ == "__main__":
    main()
