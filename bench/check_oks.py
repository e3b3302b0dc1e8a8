"""How strict the face OKS is: dlib's 68-point model scored by OKS against human 300-W
labels, as Ultralytics' pose metric scores (area = the points box x 0.53, data.yaml's
sigmas) and as COCOeval does (area = the box). If a good landmark model passes OKS 0.5 on a
fair share of faces, a pose mAP of zero is the pose model's, not the sigmas'.

    python bench/check_oks.py 300W/afw [--faces 150]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from synthface.core.imaging import read_rgb
    from synthface.face.scheme68 import FACE_SIGMAS_68
    from synthface.trainers.landmarks_eval import load_face_set, nme, points_function

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="faces with true 68 points (a 300-W folder, a synthface dataset, ...)")
    ap.add_argument("--faces", type=int, default=150)
    args = ap.parse_args()
    predict, sigmas = points_function("dlib68"), np.array(FACE_SIGMAS_68)
    rows = []
    for face in load_face_set(args.data)[: args.faces]:
        (x0, y0), (x1, y1) = face.points.min(0), face.points.max(0)
        pred = predict(read_rgb(face.image), (int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        d2 = ((pred - face.points) ** 2).sum(1)
        rows.append([nme(pred, face.points)] + [float(np.exp(-d2 / ((2 * sigmas) ** 2 * area * 2)).mean())
                                                for area in ((x1 - x0) * (y1 - y0), (x1 - x0) * (y1 - y0) * 0.53)])
    r = np.array(rows)
    print(f"{len(r)} faces, dlib68 NME median {np.median(r[:, 0]):.2%} (points boxes)")
    for k, name in ((1, "COCOeval (area = box)"), (2, "Ultralytics (area = box x 0.53)")):
        print(f"{name}: mean OKS {r[:, k].mean():.3f}, OKS >= 0.5 on {np.mean(r[:, k] >= 0.5):.0%} of the faces")


if __name__ == "__main__":
    main()
