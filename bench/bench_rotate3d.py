"""Faces turned in 3D (`--rotate-3d`): do the carried labels hold, and do they teach?

    python bench/bench_rotate3d.py agreement --faces 100 --out runs/rot3d     # a minute
    python bench/bench_rotate3d.py boxes --faces 150 --out runs/rot3d         # a minute
    python bench/bench_rotate3d.py train --n 10000 --out runs/rot3d \\
        --baseline runs/m/lm10k_default.dat                                    # about 25 min on 2 cores

agreement: generated faces (the bundled generator, kept by dlib as make-dataset keeps
them) turned to -60 .. +60 degrees in 15-degree steps. Per |turn| bin: dlib's 68-point
model run on the rendered face (in the carried box) against the carried labels (NME by
the outer-eye-corner distance, the teacher's disagreement with the labels); the yaw that
pose.fitted_pose and pose.head_pose measure against the face's own plus the turn; the
points the turn hid; the CPU time of a turn (one thread). Writes agreement.json and
turn_grid.jpg (one face a row, its labels drawn, hidden points yellow).

train: a make-dataset --landmarks --rotate-3d=-60:60 dataset of --n faces (seed 0, with
the default augmentation), a landmark model trained on it with the default options, and
both it and --baseline (the same recipe without the turn) scored on 300w-dev afw and
helen-train (boxes from dlib's detector, as `landmarks eval`), and on afw's turned faces
(|yaw| > 20 degrees by pose.fitted_pose of their human points). Writes train.json.

boxes: the same turned faces through dlib's HOG detector: where it puts their box against
the turned box (rotate3d.HOG_SHIFT comes from here). Writes boxes.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data" / "300w-dev"
ANGLES = [-60, -45, -30, -15, 0, 15, 30, 45, 60]


def agreement(out: Path, n_faces: int, seed: int) -> dict:
    import cv2
    import dlib

    from synthface.face.annotate import AnnotateConfig, Annotator, shape_to_array
    from synthface.core.imaging import make_grid, write_image
    from synthface.trainers.landmarks import nme
    from synthface.face.pose import fitted_pose, head_pose
    from synthface.dataset.preview import draw_labels
    from synthface.face.rotate3d import turn_face
    from synthface.generator.sampling import candidates, open_sampler

    cv2.setNumThreads(1)
    annotator = Annotator(AnnotateConfig(landmarks=True))
    predictor = annotator.predictor
    sampler = open_sampler(device="cpu")
    rows, tiles, times = [], [], []
    faces = 0
    for j, s, img in candidates(sampler, seed, 0, None):
        found = annotator.annotate(img)
        if annotator.rejection_reason(found):
            continue
        face = found[0]
        pts, box = face["landmarks"], face["box"]
        yaw0_fit, yaw0_pnp = fitted_pose(pts)[0], head_pose(pts, img.shape[0])[0]
        row_tiles = []
        for a in ANGLES:
            t0 = time.thread_time()
            r = turn_face(img, pts, box, a)
            times.append(time.thread_time() - t0)
            x, y, w, h = r.box
            pred = shape_to_array(predictor(r.image, dlib.rectangle(x, y, x + w - 1, y + h - 1)))
            rows.append({"face": j, "turn": a, "teacher_nme": nme(pred, r.points),
                         "fit_yaw_error": fitted_pose(r.points)[0] - yaw0_fit - a,
                         "pnp_yaw_error": head_pose(r.points, img.shape[0])[0] - yaw0_pnp - a,
                         "hidden": int(r.hidden.sum())})
            if faces < 8:
                vis = draw_labels(r.image, [(r.box, r.points, False)], 3)
                for i in np.flatnonzero(r.hidden):
                    px, py = r.points[i]
                    cv2.circle(vis, (int(round((px + 0.5) * 3 - 0.5)), int(round((py + 0.5) * 3 - 0.5))), 2,
                               (255, 230, 0), -1, cv2.LINE_AA)
                row_tiles.append(vis)
        tiles += row_tiles
        faces += 1
        if faces == n_faces:
            break
    write_image(out / "turn_grid.jpg", make_grid(np.stack(tiles), len(ANGLES)))
    bins = {}
    for lo in (0, 15, 30, 45, 60):
        sel = [r for r in rows if abs(r["turn"]) == lo]
        bins[f"{lo}"] = {
            "faces": len(sel),
            "teacher_nme_mean": float(np.mean([r["teacher_nme"] for r in sel])),
            "teacher_nme_median": float(np.median([r["teacher_nme"] for r in sel])),
            "fit_yaw_error_mean_abs": float(np.mean([abs(r["fit_yaw_error"]) for r in sel])),
            "fit_yaw_error_max_abs": float(np.max([abs(r["fit_yaw_error"]) for r in sel])),
            "pnp_yaw_error_mean_abs": float(np.mean([abs(r["pnp_yaw_error"]) for r in sel])),
            "pnp_yaw_share_of_turn": float(np.mean([(r["pnp_yaw_error"] + r["turn"]) / r["turn"] for r in sel]))
            if lo else None,
            "hidden_mean": float(np.mean([r["hidden"] for r in sel]))}
    result = {"faces": faces, "angles": ANGLES, "ms_per_turn_median": 1000 * float(np.median(times)),
              "ms_per_turn_mean": 1000 * float(np.mean(times)), "by_abs_turn": bins}
    (out / "agreement.json").write_text(json.dumps(result, indent=2) + "\n")
    for k, b in bins.items():
        print(f"|turn| {k:>2}: teacher NME {b['teacher_nme_mean']:.2%} (median {b['teacher_nme_median']:.2%}), "
              f"fitted yaw error {b['fit_yaw_error_mean_abs']:.1f} (max {b['fit_yaw_error_max_abs']:.1f}), "
              f"PnP yaw error {b['pnp_yaw_error_mean_abs']:.1f}, hidden points {b['hidden_mean']:.1f}", flush=True)
    print(f"turn: {result['ms_per_turn_median']:.2f} ms median a face (one thread)")
    return result


def boxes(out: Path, n_faces: int, seed: int) -> dict:
    """Where dlib's HOG detector puts the box of a turned face, against the turned box
    (rotate3d._turned_box): per turn, how often it fires, the IoU, the centre offset in
    box widths and the size ratio."""
    import dlib

    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.face.geometry import iou
    from synthface.face.rotate3d import turn_face
    from synthface.generator.sampling import candidates, open_sampler

    annotator = Annotator(AnnotateConfig(landmarks=True))
    detector = dlib.get_frontal_face_detector()
    rows, faces = {a: [] for a in ANGLES}, 0
    for _, _, img in candidates(open_sampler(device="cpu"), seed, 0, None):
        found = annotator.annotate(img)
        if annotator.rejection_reason(found):
            continue
        for a in ANGLES:
            r = turn_face(img, found[0]["landmarks"], found[0]["box"], a)
            dets = detector(r.image, 1)
            if len(dets) != 1:
                rows[a].append(None)
                continue
            d = dets[0]
            hog = (d.left(), d.top(), d.width(), d.height())
            x, y, w, h = r.box
            rows[a].append((iou(hog, r.box), (d.left() + d.width() / 2 - x - w / 2) / d.width(), w / d.width()))
        faces += 1
        if faces == n_faces:
            break
    result = {}
    for a, found in rows.items():
        hits = np.array([f for f in found if f is not None])
        result[str(a)] = {"fires": len(hits) / len(found), **({"iou": float(hits[:, 0].mean()),
                          "centre_offset": float(hits[:, 1].mean()), "size_ratio": float(hits[:, 2].mean())}
                          if len(hits) else {})}
        r = result[str(a)]
        print(f"turn {a:+3d}: the detector fires on {r['fires']:.0%}" + (
            f", IoU {r['iou']:.3f}, centre offset {r['centre_offset']:+.3f} widths, size ratio {r['size_ratio']:.3f}"
            if len(hits) else ""), flush=True)
    (out / "boxes.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def score(model: str, data: str, turned_only: bool = False) -> dict:
    """NME per face (detector boxes, as `landmarks eval`); turned_only: faces with
    |fitted yaw| > 20 degrees."""
    import dlib

    from synthface.face.annotate import shape_to_array
    from synthface.core.imaging import read_rgb
    from synthface.trainers.landmarks import (_detector_boxes, _rect, load_face_set, load_predictor, match_detection, nme,
                                     summarize_nme)
    from synthface.face.pose import fitted_pose

    predictor = load_predictor(model)
    detector = dlib.get_frontal_face_detector()
    faces = load_face_set(data)
    if turned_only:
        faces = [f for f in faces if abs(fitted_pose(f.points)[0]) > 20]
    errors, missed = [], 0
    for f in faces:
        rgb = read_rgb(f.image)
        box = match_detection(_detector_boxes(detector, rgb, 1), f.points)
        if box is None:
            missed += 1
            continue
        errors.append(nme(shape_to_array(predictor(rgb, _rect(box))), f.points))
    r = summarize_nme(np.array(errors), len(faces), missed)
    r.pop("errors")
    return r


def train(out: Path, n: int, baseline: str | None, seed: int, yaw: str = "-60:60", pitch: str | None = None) -> dict:
    from synthface.face.annotate import AnnotateConfig
    from synthface.trainers.landmarks import TrainOptions, train_landmarks
    from synthface.dataset.make import MakeConfig, make_dataset
    from synthface.face.rotate3d import parse_turns
    from synthface.generator.sampling import open_sampler

    path = out / "train.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    tag = f"rot{yaw.replace(':', '_')}" + (f"_pitch{pitch.replace(':', '_')}" if pitch else "") + f"_{n}"
    data = out / tag
    model = out / f"{tag}.dat"
    if not model.is_file():
        cfg = MakeConfig(n=n, seed=seed, formats=("csv",), val_fraction=0.0, annotate=AnnotateConfig(landmarks=True),
                         rotate3d=parse_turns(yaw, pitch))
        t = time.perf_counter()
        make_dataset(data, cfg, open_sampler(device="cpu"), resume=data.exists(), progress=False)
        results[f"{tag} make_seconds"] = round(time.perf_counter() - t, 1)
        s = train_landmarks(data, model, TrainOptions(), progress=False, split="all")
        results[f"{tag} train_seconds"] = s["seconds"]
        path.write_text(json.dumps(results, indent=2) + "\n")
    models = {f"augmented + rotated {yaw}" + (f", pitch {pitch}" if pitch else "") + f" [{n}]": str(model)}
    if baseline:
        models[f"augmented alone [{n}]"] = baseline
    for name, m in models.items():
        for test, where, turned in (("afw", "afw", False), ("helen-train", "helen-train", False),
                                    ("afw |yaw| > 20", "afw", True)):
            key = f"{name} / {test}"
            if key not in results:
                results[key] = score(m, str(SHARED / where), turned)
                path.write_text(json.dumps(results, indent=2) + "\n")
            r = results[key]
            print(f"{key}: NME {r['nme_mean']:.2%} (median {r['nme_median']:.2%}, AUC {r['auc_at_8pct']:.3f}, "
                  f"{r['scored']} of {r['faces']} scored)", flush=True)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=("agreement", "boxes", "train"))
    p.add_argument("--out", default="runs/rot3d")
    p.add_argument("--faces", type=int, default=100, help="agreement: faces (each at 9 angles)")
    p.add_argument("--n", type=int, default=10000, help="train: dataset size")
    p.add_argument("--baseline", help="train: a model from the same recipe without --rotate-3d")
    p.add_argument("--yaw", default="-60:60", help="train: the --rotate-3d range")
    p.add_argument("--pitch", help="train: the --rotate-3d-pitch range")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.part == "agreement":
        agreement(out, args.faces, args.seed)
    elif args.part == "boxes":
        boxes(out, args.faces, args.seed)
    else:
        train(out, args.n, args.baseline, args.seed, args.yaw, args.pitch)


if __name__ == "__main__":
    main()
