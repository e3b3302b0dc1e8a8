"""Face detectors from synthetic scenes, scored on real photos.

    python bench/bench_detector.py                  # about 20 minutes on 2 cores
    python bench/bench_detector.py --sizes 1000 --out runs/det-quick
    python bench/bench_detector.py --sizes 1000 --rotate-only --out runs/det-rot   # about 10 minutes
    python bench/bench_detector.py --sizes 2000 --photo-study --out runs/det-photo  # about 40 minutes

--photo-study scores every detector on two test sets: the colour test photos, and the same
photos made like grey scans of small faces (greyscale, contrast 50-80%, shrunk so each
photo's largest face is 20-60 px wide, JPEG quality 60; seeded, written to OUT/grey-test).
Its rows: today's scene defaults, --photometric, smaller faces (--face-size 24:256), real
backgrounds, and the same trainer on the real crops; with --base RECIPE, then the trainer's
window 64, real crops mixed in, two rounds of hard negatives and the other --sizes.

The real photos are ../shared/data/helen-train-photos (783 whole HELEN photos, 870
annotated faces), split by photo: even positions (sorted by name) train the real
baseline (the same dlib HOG trainer on those photos' faces), odd positions are the test
photos every detector is scored on. Rows: dlib's stock frontal detector; the real
baseline; detectors trained on synthetic scenes (procedural and real backgrounds from
../shared/data/backgrounds, blending variants, pose steering, sizes). The same trainer
options throughout (synthface detector train's defaults). Writes results.json,
results.md and pr.png to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.trainers.detector import (DetectorOptions, evaluate_detector, load_boxes, plot_pr,  # noqa: E402
                                train_detector)
from synthface.face.rotate3d import parse_turns  # noqa: E402
from synthface.generator.sampling import open_sampler  # noqa: E402
from synthface.dataset.scenes import SceneConfig, make_scenes  # noqa: E402
from synthface.generator.steering import pose_mix_targets  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# the photo study's scene recipes (row name after "scenes N, " -> SceneConfig arguments)
RECIPES = {
    "defaults": {},
    "--photometric 1": {"photometric": 1.0},
    "--photometric 1, --face-size 24:256": {"photometric": 1.0, "face_size": (24, 256)},
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    p.add_argument("--out", default="runs/detector")
    p.add_argument("--rotate-only", action="store_true",
                   help="only the stock and real rows, the real-backgrounds scenes and the same with --rotate-3d")
    p.add_argument("--photo-study", action="store_true",
                   help="photo-like scenes and small faces, scored on the colour and the grey small-face test sets")
    p.add_argument("--rounds", type=int, default=2, help="with --base: rounds of hard negatives (default 2)")
    p.add_argument("--base", choices=list(RECIPES),
                   help="with --photo-study: then the follow-up on this recipe (train window 64, real "
                        "crops mixed in at weights 1 and 3, --rounds of hard negatives, the other --sizes)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    photos = load_boxes(DATA / "helen-train-photos")
    train_photos, test_photos = photos[0::2], photos[1::2]
    options = DetectorOptions()

    def save():
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    grey_photos = grey_test_set(test_photos, out / "grey-test") if args.photo_study else None

    def score(name, model, trained=None, made=None):
        if name in results:
            return
        r = evaluate_detector(model, None, images=test_photos, progress=False)
        r.update(train=trained, make_seconds=made)
        if grey_photos is not None:
            r["grey"] = evaluate_detector(model, None, images=grey_photos, progress=False)
        results[name] = r
        save()
        grey = f"; grey small faces AP50 {r['grey']['ap50']:.1%}" if "grey" in r else ""
        print(f"{name}: AP50 {r['ap50']:.1%}, max recall {r['max_recall']:.1%}, FP/image at 0 "
              f"{r['fp_per_image_at_0']:.2f}{grey}", flush=True)

    score("dlib stock frontal detector", "dlib")
    if "real: helen photos (train half)" not in results:
        xml = out / "real_train.xml"
        body = "".join(f"<image file='{img}'>" + "".join(
            f"<box top='{round(y)}' left='{round(x)}' width='{round(w)}' height='{round(h)}'/>" for x, y, w, h in boxes)
            + "</image>\n" for img, boxes, _ in train_photos)
        xml.write_text(f"<?xml version='1.0'?>\n<dataset><images>\n{body}</images></dataset>\n")
        s = train_detector(xml, out / "real.svm", options, progress=False)
        score("real: helen photos (train half)", str(out / "real.svm"), s)

    crops = "real: 300w helen-train crops of the train-half photos"
    if crops not in results:
        train_names = {Path(img).stem for img, _, _ in train_photos}
        xml = out / "real_crops.xml"
        body = "".join(f"<image file='{img}'>" + "".join(
            f"<box top='{round(y)}' left='{round(x)}' width='{round(w)}' height='{round(h)}'/>" for x, y, w, h in boxes)
            + "</image>\n" for img, boxes, _ in load_boxes(DATA / "300w-dev" / "helen-train")
            if Path(img).stem.rsplit("_", 1)[0] in train_names)
        xml.write_text(f"<?xml version='1.0'?>\n<dataset><images>\n{body}</images></dataset>\n")
        s = train_detector(xml, out / "real_crops.svm", options, progress=False)
        score(crops, str(out / "real_crops.svm"), s)

    def slug(name):
        return name.replace(" ", "_").replace("/", "_").replace(",", "").replace("=", "").replace(":", "_")

    def scenes(name, n, data_of=None, extra=(), weights=None, negatives=None, **kw):
        """A row: scenes made with SceneConfig(**kw) (or those of row `data_of`), the
        detector trained on them (+ `extra` datasets by `weights`, + `negatives`)."""
        if name in results:
            return
        targets = kw.pop("targets", None)
        rotate3d = kw.pop("rotate3d", None)
        train_opts = kw.pop("options", options)
        data = out / slug(data_of or name)
        made = None
        if data_of is None:
            t = time.perf_counter()
            make_scenes(data, n, SceneConfig(**kw), open_sampler(targets=targets), resume=data.exists(),
                        progress=False, rotate3d=rotate3d)
            made = time.perf_counter() - t
        model = out / f"{slug(name)}.svm"
        s = train_detector([data, *extra] if extra else data, model, train_opts, progress=False, weights=weights,
                           negatives=negatives)
        score(name, str(model), s, round(made, 1) if made else None)
        if made:
            results[name]["faces_per_s"] = n / made
        save()

    n0 = args.sizes[0]
    if args.photo_study:
        bg = str(DATA / "backgrounds")
        scenes(f"scenes {n0}, defaults", n0)
        scenes(f"scenes {n0}, --photometric 1", n0, photometric=1.0)
        scenes(f"scenes {n0}, --photometric 1, --face-size 24:256", n0, photometric=1.0, face_size=(24, 256))
        # (train --upsample 1 on these 2,000 faces held 19.6 GiB in dlib's trainer when it was stopped: the
        # trainer keeps every upsampled scene's feature pyramid; not a row on a 24 GiB machine)
        scenes(f"scenes {n0}, --photometric 1, real backgrounds", n0, photometric=1.0, backgrounds=bg)
        if args.base:  # the follow-up on the best recipe: windows, real faces mixed in, hard negatives, sizes
            base = f"scenes {n0}, {args.base}"
            kw = RECIPES[args.base]
            scenes(f"{base}, train --window 64", n0, data_of=base, options=DetectorOptions(window=64))
            # (--window 40 on the same scenes held 22 GiB in dlib's trainer when it was stopped: not a row here)
            for w in (1.0, 3.0):
                scenes(f"{base} + real crops, --weight 1 --weight {w:g}", n0, data_of=base,
                       extra=[out / "real_crops.xml"], weights=[1.0, w])
            previous = out / f"{slug(base)}.svm"
            mining = results.setdefault("mining", {})
            for r in range(1, args.rounds + 1):  # each round: 2,000 procedural and 1,000 photo backgrounds, the last model
                name = f"{base}, hard negatives round {r}"
                if f"round {r}" not in mining:
                    from synthface.dataset.scenes import mine_negatives

                    photometric = kw.get("photometric", 0.0)
                    procedural = mine_negatives(str(previous), out / "negatives", 2000,
                                                SceneConfig(photometric=photometric), seed=r, progress=False)
                    photos = mine_negatives(str(previous), out / "negatives", 1000,
                                            SceneConfig(photometric=photometric, backgrounds=bg), seed=100 + r,
                                            progress=False)
                    mining[f"round {r}"] = {"procedural": procedural, "photos": photos}
                    save()
                    print(f"round {r}: fired on {procedural['kept']} of 2000 procedural and {photos['kept']} of "
                          f"1000 photo backgrounds", flush=True)
                if not list((out / "negatives").glob("*.jpg")):
                    break  # nothing to train on: the model fires on no face-free scene
                scenes(name, n0, data_of=base, negatives=out / "negatives")
                results[name]["negatives"] = len(list((out / "negatives").glob("*.jpg")))
                save()
                previous = out / f"{slug(name)}.svm"
            for n in args.sizes[1:]:
                scenes(f"scenes {n}, {args.base}", n, **kw)
        _report(results, out, test_photos)
        return
    if not args.rotate_only:
        scenes(f"scenes {n0}, procedural, all blends", n0)
    scenes(f"scenes {n0}, real backgrounds, all blends", n0, backgrounds=str(DATA / "backgrounds"))
    scenes(f"scenes {n0}, real backgrounds, --rotate-3d=-45:45", n0, backgrounds=str(DATA / "backgrounds"),
           rotate3d=parse_turns("-45:45"))
    if not args.rotate_only:
        scenes(f"scenes {n0}, procedural, no blending", n0, blends=("none",))
        scenes(f"scenes {n0}, procedural, poisson only", n0, blends=("poisson",))
        scenes(f"scenes {n0}, procedural, --pose-mix", n0, targets=pose_mix_targets())
        for n in args.sizes[1:]:
            scenes(f"scenes {n}, real backgrounds, all blends", n, backgrounds=str(DATA / "backgrounds"))
    _report(results, out, test_photos)


def _report(results: dict, out: Path, test_photos: list) -> None:
    grey = any("grey" in r for r in results.values() if "ap50" in r)
    lines = ["| detector | AP50 | max recall | recall at 0 | FP / image at 0 | "
             + ("grey small faces: AP50 | max recall | " if grey else "") + "training faces | scenes faces/s |",
             "|---|---|---|---|---|" + ("---|---|" if grey else "") + "---|---|"]
    for name, r in results.items():
        if "ap50" not in r:
            continue
        faces = r["train"]["faces"] if r.get("train") else "-"
        rate = f"{r['faces_per_s']:.0f}" if r.get("faces_per_s") else "-"
        g = f"{r['grey']['ap50']:.1%} | {r['grey']['max_recall']:.1%} | " if "grey" in r else "- | - | " if grey else ""
        lines.append(f"| {name} | {r['ap50']:.1%} | {r['max_recall']:.1%} | {r['recall_at_0']:.1%} | "
                     f"{r['fp_per_image_at_0']:.2f} | {g}{faces} | {rate} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    rows = {k: r for k, r in results.items() if "ap50" in r}
    plot_pr(rows, out / "pr.png")
    if grey:
        plot_pr({k: r["grey"] for k, r in rows.items() if "grey" in r}, out / "pr_grey.png")
    print("\n".join(lines))
    print(f"# test: {len(test_photos)} photos, {sum(len(b) for _, b, _ in test_photos)} faces (odd positions)")


def grey_test_set(photos: list, folder: Path) -> list:
    """The test photos as grey scans of small faces: greyscale, contrast 50-80%, shrunk
    so the photo's largest face is 20-60 px wide, JPEG quality 60 (per photo from its
    position); [(image, boxes, ignored)] in the shrunk photos' pixels."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, (image, boxes, ignored) in enumerate(photos):
        rng = np.random.default_rng([k, 0x6E7])
        target, contrast = rng.uniform(20, 60), rng.uniform(0.5, 0.8)
        scale = target / max(w for _, _, w, _ in boxes)
        dst = folder / f"{k:04d}.jpg"
        if not dst.is_file():
            grey = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE).astype(np.float32)
            grey = grey.mean() + contrast * (grey - grey.mean())
            small = cv2.resize(np.clip(grey, 0, 255).astype(np.uint8), None, fx=scale, fy=scale,
                               interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(dst), small, [cv2.IMWRITE_JPEG_QUALITY, 60])
        out.append((dst, [tuple(v * scale for v in b) for b in boxes], [tuple(v * scale for v in b) for b in ignored]))
    return out


if __name__ == "__main__":
    main()
