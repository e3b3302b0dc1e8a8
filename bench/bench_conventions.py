"""Box conventions and group photos: detectors from scenes, scored on colour photos and
on grey group-photo mosaics, each against the box convention it was trained for.

    python bench/bench_conventions.py --out runs/conventions        # about 60 minutes on 2 cores
    python bench/bench_conventions.py --faces 500 --out runs/conv-quick

Test sets, both built from the odd-position half of ../shared/data/helen-train-photos
(783 whole HELEN photos with 68 points a face; the even half trains the real baselines):
- colour: the 391 test photos as they are;
- grey groups: mosaics of those photos' faces cut with their hair and shoulders, laid out
  in staggered rows (4-8 a row, 10-30 a mosaic, face widths 34-64 px, median near 48)
  on a blurred piece of one of the photos, then made into prints of three kinds in
  turn: a halftone newspaper scan (a dot screen and the scanner's blur), a faded low-
  contrast print with JPEG, and a posterised drawing-like print. Written to OUT/groups
  (seeded: the same set every run).
Each set is scored against two truths, both from the 68 points: "points" (the points'
extent, as HELEN's boxes.json) and "head" (forehead to chin: synthface.face.geometry's head
box). A detector is scored against the truth of the convention it was trained on.

The grey groups are a development set: the layout and print recipes are not the
scenes' own (nothing here is tuned on it), but they are made from the same photos as the
colour set, so read a gain as a hint to check on photos of that kind, not a result.
Writes results.json, results.md, pr_colour.png and pr_groups.png to --out.
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

from synthface.trainers.detector import DetectorOptions, evaluate_detector, plot_pr, train_detector  # noqa: E402
from synthface.face.geometry import convention_box, points_extent  # noqa: E402
from synthface.formats.readers import read_labelled  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def truths(images, convention: str) -> list:
    """[(image, boxes, [])] with each face's box in `convention` (points: the extent)."""
    def box(pts):
        return points_extent(pts) if convention == "points" else tuple(float(v) for v in convention_box(pts, None, "head"))
    return [(img, [box(p) for p in faces], []) for img, faces in images]


def helen(half: int) -> list:
    """[(photo, [68x2 points a face])] of one half of the HELEN photos (0 even, 1 odd)."""
    photos = sorted(read_labelled(DATA / "helen-train-photos"), key=lambda im: Path(im.file).name)
    return [(Path(im.file), [np.asarray(f.landmarks, float) for f in im.faces]) for im in photos[half::2]]


def group_mosaics(photos: list, folder: Path, count: int = 60) -> list:
    """The grey group mosaics (see the module docstring): [(image, [68x2 points a face])]."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    faces = [(img, pts) for img, many in photos for pts in many]
    out, k = [], 0
    for m in range(count):
        rng = np.random.default_rng([m, 0x9A0])
        n = int(rng.integers(10, 31))
        w0 = rng.uniform(34, 64)
        per_row = int(rng.integers(4, 9))
        dx, dy = w0 * rng.uniform(1.5, 1.9), w0 * rng.uniform(1.5, 1.9)
        rows = -(-n // per_row)
        width, height = int(per_row * dx + 2 * w0), int(rows * dy + 2.2 * w0)
        src_img, _ = faces[int(rng.integers(len(faces)))]
        ground = cv2.imread(str(src_img))
        ground = cv2.GaussianBlur(cv2.resize(ground, (width, height)), (0, 0), rng.uniform(4, 12))
        canvas = ground.astype(np.float32)
        placed = []
        for r in range(rows - 1, -1, -1):  # the back row first
            in_row = min(per_row, n - r * per_row)
            for j in range(in_row):
                img, pts = faces[k % len(faces)]
                k += 1
                x0, y0, fw, fh = points_extent(pts)
                scale = w0 * rng.uniform(0.9, 1.1) * (0.95 ** (rows - 1 - r)) / fw
                cx = w0 + (j + 0.5 * (r % 2)) * dx + rng.uniform(-0.1, 0.1) * w0
                cy = w0 * 1.1 + r * dy
                photo = cv2.imread(str(img)).astype(np.float32)
                # the face with its hair and shoulders: 1.9 face widths across, from 1 height above to 1.5 below
                m_ = np.float32([[scale, 0, cx - scale * (x0 + fw / 2)], [0, scale, cy - scale * (y0 + fh / 2)]])
                warped = cv2.warpAffine(photo, m_, (width, height), flags=cv2.INTER_AREA)
                mask = np.zeros((height, width), np.float32)
                cv2.ellipse(mask, (int(cx), int(cy + 0.2 * fh * scale)), (int(0.95 * fw * scale), int(1.2 * fh * scale)),
                            0, 0, 360, 1.0, -1)
                cv2.rectangle(mask, (int(cx - 0.95 * fw * scale), int(cy + 0.6 * fh * scale)),
                              (int(cx + 0.95 * fw * scale), int(cy + 1.5 * fh * scale)), 1.0, -1)
                inside = np.zeros((height, width), np.float32)
                cv2.rectangle(inside, (int(m_[0, 2]), int(m_[1, 2])),
                              (int(m_[0, 2] + photo.shape[1] * scale), int(m_[1, 2] + photo.shape[0] * scale)), 1.0, -1)
                alpha = cv2.GaussianBlur(mask * inside, (0, 0), max(1.0, 0.06 * w0))[..., None]
                canvas = canvas * (1 - alpha) + warped * alpha
                placed.append(pts * scale + (m_[0, 2], m_[1, 2]))
        grey = cv2.cvtColor(np.clip(canvas, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        kind = m % 3
        if kind == 0:  # halftone newspaper, scanned: a 45-degree dot screen, blurred
            period = rng.uniform(2.5, 4.5)
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            u, v = (xx + yy) * (np.pi / period / np.sqrt(2)), (xx - yy) * (np.pi / period / np.sqrt(2))
            grey = np.where(grey > 127.5 + 63.75 * (np.sin(u) + np.sin(v)), 230.0, 25.0).astype(np.float32)
            grey = cv2.GaussianBlur(grey, (0, 0), period / 2.5)
            quality = 75
        elif kind == 1:  # a faded print: low contrast, lifted blacks, soft
            grey = 90 + 0.45 * (grey - grey.mean()) + rng.uniform(-15, 15)
            grey = cv2.GaussianBlur(grey, (0, 0), 0.8)
            quality = 50
        else:  # drawing-like: posterised to 4-6 levels, edges darkened
            levels = int(rng.integers(4, 7))
            edges = cv2.Canny(np.clip(grey, 0, 255).astype(np.uint8), 60, 140).astype(np.float32)
            grey = np.round(grey / 255 * (levels - 1)) * (255 / (levels - 1)) - 0.6 * cv2.GaussianBlur(edges, (0, 0), 0.7)
            quality = 70
        dst = folder / f"{m:04d}.jpg"
        cv2.imwrite(str(dst), np.clip(grey, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append((dst, placed))
    return out


def real_crop(im, convention: str, folder: Path) -> str:
    """One imglab <image> of a 300-W crop. Head boxes reach up to the hairline, which in
    these crops (twice the points' extent) lies near the top edge, where the trainer
    ignores a box: for them the crop is written with a reflected border of a quarter of
    its size on every side, the boxes moved with it."""
    import cv2

    image, pad = im.file, 0
    if convention == "head":
        img = cv2.imread(str(im.file))
        pad = max(img.shape[:2]) // 4
        folder.mkdir(parents=True, exist_ok=True)
        image = (folder / Path(im.file).name).resolve()
        if not image.is_file():
            cv2.imwrite(str(image), cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
    boxes = [points_extent(f.landmarks) if convention == "points" else convention_box(f.landmarks, None, "head")
             for f in im.faces]
    return f"<image file='{image}'>" + "".join(
        f"<box top='{round(y + pad)}' left='{round(x + pad)}' width='{round(w)}' height='{round(h)}'/>"
        for x, y, w, h in boxes) + "</image>\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=1500, help="faces a scenes row (default 1500)")
    p.add_argument("--out", default="runs/conventions")
    p.add_argument("--checkpoint", default=None,
                   help="the scenes' generator (a bundled name or a path; default: the bundled default); rows "
                        "made with another generator than the default are named after it")
    p.add_argument("--scenes-only", action="store_true",
                   help="only the scenes rows (the dlib and real-crop baselines are skipped)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    train, test = helen(0), helen(1)
    groups = group_mosaics(test, out / "groups")
    widths = [points_extent(p)[2] for _, faces in groups for p in faces]
    results["sets"] = {"colour": {"images": len(test), "faces": sum(len(f) for _, f in test)},
                       "groups": {"images": len(groups), "faces": len(widths),
                                  "face_width_median": round(float(np.median(widths)), 1),
                                  "face_width_p10": round(float(np.percentile(widths, 10)), 1)}}
    sets = {c: {"colour": truths(test, c), "groups": truths(groups, c)} for c in ("points", "head")}

    def save():
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    def score(name, model, convention, trained=None):
        if name in results:
            return
        r = {"convention": convention, "train": trained}
        for kind in ("colour", "groups"):
            r[kind] = evaluate_detector(model, None, images=sets[convention][kind], progress=False)
        results[name] = r
        save()
        print(f"{name}: " + "; ".join(f"{k} AP50 {r[k]['ap50']:.1%} AP30 {r[k]['ap30']:.1%} mean IoU "
                                      f"{r[k]['mean_iou_at_0'] or 0:.2f}" for k in ("colour", "groups")), flush=True)

    if not args.scenes_only:
        baselines(train, score, out)

    from synthface.generator.sampling import open_sampler
    from synthface.dataset.scenes import SceneConfig, make_scenes

    tag = f", {args.checkpoint}" if args.checkpoint else ""

    def scenes(name, box, convention, **kw):
        name += tag
        if name in results:
            return
        data = out / ("scenes_" + "_".join(f"{k}{v}" for k, v in sorted(kw.items())).replace(",", "").replace(" ", "")
                      + f"_{box}" + (f"_{Path(args.checkpoint).stem}" if args.checkpoint else ""))
        t = time.perf_counter()
        made = make_scenes(data, args.faces, SceneConfig(**kw), open_sampler(args.checkpoint), resume=data.exists(),
                           progress=False, box=box)
        made_s = time.perf_counter() - t
        model = out / f"{data.name}.svm"
        s = train_detector(data, model, DetectorOptions(), progress=False)
        s["scenes"], s["make_seconds"] = made["scenes"], round(made_s, 1)
        score(name, str(model), convention, s)

    n = args.faces
    scenes(f"scenes {n}, --box points", "points", "points")
    if args.scenes_only:
        report(results, out)
        return
    scenes(f"scenes {n}, --box head", "head", "head")
    scenes(f"scenes {n}, --box dlib (scored against points)", "dlib", "points")
    scenes(f"scenes {n}, --box points, --groups 0, blends without head", "points", "points", groups=0.0,
           blends=("none", "gaussian", "feather", "poisson"))
    report(results, out)


def baselines(train, score, out: Path) -> None:
    """dlib's stock detector and the trainer on real 300-W crops, in both conventions."""
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    score("dlib stock, against points", "dlib", "points")
    score("dlib stock, against head", "dlib", "head")
    crops = DATA / "300w-dev" / "helen-train"
    names = {img.stem for img, _ in train}
    for convention in ("points", "head"):
        name = f"real: 300-W crops of the train half, {convention} boxes"
        if name in results:
            continue
        xml = out / f"real_{convention}.xml"
        body = "".join(real_crop(im, convention, out / "real_crops") for im in read_labelled(crops)
                       if Path(im.file).stem.rsplit("_", 1)[0] in names)
        xml.write_text(f"<?xml version='1.0'?>\n<dataset><images>\n{body}</images></dataset>\n")
        s = train_detector(xml, out / f"real_{convention}.svm", DetectorOptions(), progress=False)
        score(name, str(out / f"real_{convention}.svm"), convention, s)


def report(results: dict, out: Path) -> None:
    rows = {k: r for k, r in results.items() if "colour" in r and k != "sets"}
    lines = ["| detector | truth | colour AP50 | AP30 | mean IoU | grey groups AP50 | AP30 | mean IoU | faces trained |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        c, g = r["colour"], r["groups"]
        faces = r["train"]["faces"] if r.get("train") else "-"
        lines.append(f"| {name} | {r['convention']} | {c['ap50']:.1%} | {c['ap30']:.1%} | {c['mean_iou_at_0'] or 0:.2f} "
                     f"| {g['ap50']:.1%} | {g['ap30']:.1%} | {g['mean_iou_at_0'] or 0:.2f} | {faces} |")
    s = results["sets"]
    lines.append(f"\nColour: {s['colour']['images']} photos, {s['colour']['faces']} faces; grey groups: "
                 f"{s['groups']['images']} mosaics, {s['groups']['faces']} faces (width median "
                 f"{s['groups']['face_width_median']} px, 10th percentile {s['groups']['face_width_p10']} px).")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot_pr({k: r["colour"] for k, r in rows.items()}, out / "pr_colour.png")
    plot_pr({k: r["groups"] for k, r in rows.items()}, out / "pr_groups.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
