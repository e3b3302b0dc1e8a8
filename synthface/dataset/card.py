"""A dataset's card: dataset.json (the card as data) and README.md (for people), for
face datasets and scenes alike. Each label format's lines (the file it wrote, how to load
it) come from its writer (formats/); this module adds what is common: the run, the
counts, the split, the conventions, pose statistics and the licence.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from synthface import __version__
from synthface.core.files import write_atomic
from synthface.formats import FORMATS
from synthface.face.geometry import BOX_CONVENTIONS
from synthface.face.scheme68 import FACE_SIGMAS_68, FLIP_IDX_68, IBUG68_NAMES, SKELETON_68

LICENCE_NOTE = (
    "The images are synthetic, made by the generator named here. The landmark labels come "
    "from dlib's shape_predictor_68_face_landmarks.dat, trained on the iBUG 300-W dataset, "
    "whose licence excludes commercial use: treat the landmark labels as non-commercial. "
    "Faces are found by dlib's HOG frontal face detector (Boost Software License), which gives "
    "the boxes of --box dlib; --box points and head are computed from the 68 points. The "
    "generator's licence follows from the data it was trained on (see its model card).")

REPLAY_NOTE = ("The images are not synthetic: they are real faces replayed from a folder (--replay-faces, a "
               "testing stand-in for a generator), photos of real people under their own licence.")


def licence_note(generator: dict | None) -> str:
    """The card's licence text; a replay of real faces (`generator` kind "replay", as a
    sampler's identity or generator_card has it) says so instead of "synthetic"."""
    if (generator or {}).get("kind") == "replay":
        return REPLAY_NOTE + LICENCE_NOTE.split(".", 1)[1].replace(
            " The generator's licence follows from the data it was trained on (see its model card).", "")
    return LICENCE_NOTE


def licence_terms(generator: dict | None) -> str:
    """The terms in one line (dataset.json's `licence_terms`, the card's front matter)."""
    if (generator or {}).get("kind") == "replay":
        return ("non-commercial research only: the landmarks come from a dlib model trained on iBUG 300-W; "
                "the images are replayed real photos under their own licence")
    return LICENCE_TERMS


# the terms in one line: dataset.json's `licence_terms` and the card's front matter
LICENCE_TERMS = ("non-commercial research only: the landmarks come from a dlib model trained on iBUG 300-W, "
                 "and the generator's training data (UTKFace, CelebA for the bundled ones) sets its own terms")

CONVENTIONS = """## Conventions
Coordinates are in pixels of the saved image, with pixel centres at integer coordinates
((0, 0) is the centre of the top-left pixel). Boxes are x, y, w, h: the top-left pixel and
the size of dlib's (inclusive) rectangle; in labels.csv, labels.parquet, metadata.jsonl and
dlib.xml a box may reach past the image's edge (the face does: dlib's box of a face filling
the frame), while COCO and YOLO boxes are clipped to the image. Landmarks follow the iBUG
300-W 68-point order, 0-based (x0, y0 .. x67, y67; left and right are the subject's own);
.pts files are 1-based. A point outside the image is kept as is in labels.csv / parquet /
metadata / dlib.xml / .pts and is written (0, 0, 0), not labelled, in COCO and YOLO; inside
the image its visibility is 2, or 1 where an occluder hides it (scenes; dlib labels every
point, occluded or not).
"""

TORCH_SNIPPET = """```python
from torch.utils.data import DataLoader
from synthface import FaceLandmarks
loader = DataLoader(FaceLandmarks("DATASET", split="train"), batch_size=64, shuffle=True)
for batch in loader:  # image (B, 3, H, W) in [0, 1], box (B, 4), {points}seed, score, ...
    ...
```"""
TORCH_SNIPPET_MULTI = """```python
from torch.utils.data import DataLoader
from synthface import FaceLandmarks
ds = FaceLandmarks("DATASET", split="train")  # a sample per image: box (N, 4), landmarks (N, 68, 2)
loader = DataLoader(ds, batch_size=8, shuffle=True, collate_fn=list)  # images hold different numbers of faces
```"""


def box_card(convention: str) -> dict:
    """The card's words for a box convention (geometry.BOX_CONVENTIONS), as data."""
    return {"box_convention": convention, "box_convention_text": BOX_CONVENTIONS[convention]}


def box_line(convention: str) -> str:
    """The card's README line for a box convention."""
    return f"- Face boxes (`--box {convention}`): {BOX_CONVENTIONS[convention]} (synthface.face.geometry.convention_box)"


def pose_statistics(values: dict) -> dict:
    """Per attribute: mean, std, 5/50/95th percentiles; for yaw and pitch also the share
    beyond 20 degrees (from 0 for yaw, from the median for pitch)."""
    out = {}
    for name, v in values.items():
        v = np.asarray(v, float)
        out[name] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
                     **{f"p{q}": round(float(np.percentile(v, q)), 4) for q in (5, 50, 95)}}
    if "yaw" in values:
        out["yaw"]["beyond_20"] = round(float(np.mean(np.abs(values["yaw"]) > 20)), 4)
        pitch = np.asarray(values["pitch"], float)
        out["pitch"]["beyond_20_from_median"] = round(float(np.mean(np.abs(pitch - np.median(pitch)) > 20)), 4)
    return out


def plot_pose(values: dict, path: Path) -> None:
    """pose.png: the share of faces per 5-degree bin of measured yaw and pitch, and of
    their steering targets where the run was steered."""
    from synthface.core.imaging import plot_curves

    edges = np.arange(-60.0, 60.1, 5.0)
    series = {}
    for name in ("yaw", "pitch", "yaw_target", "pitch_target"):
        if values.get(name):
            counts, _ = np.histogram(np.clip(values[name], -59.9, 59.9), edges)
            series[name.replace("_target", " target")] = counts / max(len(values[name]), 1)
    plot_curves((edges[:-1] + edges[1:]) / 2, series, path, x_label="degrees",
                y_label="share of faces per 5-degree bin", x_ticks=range(-45, 46, 15))


def _pose_section(summary: dict, steering) -> str:
    pose = summary.get("pose")
    if not pose:
        return ""
    rows = "\n".join(f"| {name} | {p['mean']:.3g} | {p['std']:.3g} | {p['p5']:.3g} | {p['p50']:.3g} | {p['p95']:.3g} |"
                     for name, p in pose.items())
    steer = ""
    if steering:
        parts = []
        for t in steering["targets"]:
            how = (f"N({t['centre']:g}, {t['std']:g}) clipped to {t['low']:g}..{t['high']:g}" if t.get("std") is not None
                   else f"uniform in {t['low']:g}..{t['high']:g}")
            parts.append(f"{t['name']} {how}")
        steer = ("\nSteered: each face's targets were drawn from its seed (" + "; ".join(parts) + "); the columns "
                 "without `_target` are measured on the face made. Candidates kept and rejected per target bin are "
                 "in dataset.json (`counts.steering.by_target`).\n")
    return f"""## Pose and expression
Measured on each face's 68 points (synthface.face.pose: yaw > 0 turned to the image's right,
pitch > 0 up, roll > 0 clockwise, in degrees, from cv2.solvePnP against a generic 3D face;
mouth_open = inner-lip gap / outer-eye-corner distance; eye_open = eye aspect ratio).

| attribute | mean | std | p5 | p50 | p95 |
|---|---|---|---|---|---|
{rows}
{steer}
"""


def loading_section(schema, size: int, formats) -> str:
    """Each written format's loading snippet, and PyTorch's."""
    parts = []
    for key in formats:
        got = FORMATS[key].loading(schema, size, formats)
        if got is not None:
            parts.append(got)
        if key == "csv":
            parts.append(("PyTorch (with synthface installed)", TORCH_SNIPPET_MULTI if schema.multi else
                          TORCH_SNIPPET.format(points="landmarks (B, 68, 2), " if schema.landmarks else "")))
    return "\n\n".join(f"**{title}**\n{text}" for title, text in parts)


def files_section(schema, formats) -> str:
    return "\n".join(FORMATS[key].describe(schema) for key in formats)


def trained_on(checkpoint) -> str:
    """What a generator was trained on: its JSON's `trained_on`, else its data folder's name."""
    import json

    try:
        meta = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    except (OSError, ValueError, TypeError):
        return "unknown data (no readable NAME.json beside the weights)"
    return meta.get("trained_on") or f"`{Path(meta.get('data_path') or 'unknown').name}`"


def generator_card(identity: dict) -> dict:
    """The generator as a card names it, with no local path: a bundled generator's name
    (default64, celeba64) or its file's, its sha256, architecture, steering and what it
    was trained on; a replay of real faces by its folder's name."""
    if identity["kind"] != "generator":
        return {**{k: v for k, v in identity.items() if k != "folder"}, "folder": Path(identity["folder"]).name}
    path = Path(identity["checkpoint"])
    bundled = path.parent == Path(__file__).resolve().parents[1] / "models"
    return {"kind": "generator", "name": path.name.removesuffix(".safetensors"), "bundled": bundled,
            **{k: v for k, v in identity.items() if k not in ("kind", "checkpoint")},
            "trained_on": trained_on(path)}


def generator_line(identity: dict) -> str:
    """The card's line on the generator (Markdown)."""
    g = generator_card(identity)
    if g["kind"] != "generator":
        return f"stand-in replay of real faces in a folder `{g['folder']}`"
    where = "bundled with synthface" if g["bundled"] else "its own checkpoint"
    return (f"`{g['name']}` ({where}; sha256 `{g.get('sha256', '')[:16]}...`, arch `{g.get('arch')}`), "
            f"trained on {g['trained_on']}")


def keypoints_card() -> dict:
    return {"names": IBUG68_NAMES, "skeleton": SKELETON_68, "oks_sigmas": list(FACE_SIGMAS_68),
            "flip_idx": FLIP_IDX_68, "note": "0-based; left/right are the subject's; sigmas from COCO-WholeBody's face set"}


def write_card(out: Path, card: dict, text: str) -> None:
    """dataset.json (with the version, time and platform) and README.md."""
    card = {"format": card.pop("format"), "synthface_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **card,
            "licence_terms": licence_terms(card.get("generator")), "licence": licence_note(card.get("generator")),
            "platform": platform.platform()}
    write_atomic(Path(out) / "dataset.json", json.dumps(card, indent=2) + "\n")
    generator = card.get("generator") or {}
    named = generator.get("name") or generator.get("folder") or "unknown"
    # front matter as Hugging Face dataset cards have it: the terms before anything else
    front = ("---\nlicense: other\nlicense_name: synthface-non-commercial\n"
             f"license_details: {json.dumps(card['licence_terms'])}\n"
             f"generator: {json.dumps(named)}\ngenerator_sha256: {json.dumps(generator.get('sha256'))}\n"
             "tags: [synthetic, faces, landmarks]\n---\n\n")
    write_atomic(Path(out) / "README.md", front + text)


def run_lines(summary: dict, out, *, wall_s: float, rotate3d=None, augmented: bool = False,
              turn_by_default: bool = False, augment_by_default: bool = False) -> list[str]:
    """What make-dataset prints when it ends: the dataset (faces, samples, rejections) and
    the wall time from the command's start to its published labels, what was done to the
    faces (and how to turn a default off), then where this run's time went."""
    run = summary["this_run"]
    rate = run["faces"] / run["seconds"] if run["seconds"] else 0.0
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(summary["rejected"].items())) or "none"
    lines = [f"{summary['faces']} faces in {out}, {wall_s:.1f} s from start to published labels "
             f"({summary['candidates']} samples drawn; rejected: {rejected}; {summary['rejection_rate']:.1%})"]
    if rotate3d is not None:
        yaw, pitch = rotate3d.yaw, rotate3d.pitch
        lines.append(f"turned in 3D: yaw {yaw[0]:g} to {yaw[1]:g} degrees, pitch {pitch[0]:g} to {pitch[1]:g} "
                     "(labels turned with the faces; columns turn_yaw, turn_pitch, hidden)"
                     + ("; --no-rotate-3d turns it off" if turn_by_default else ""))
    if augmented:
        lines.append("augmented at dataset time (rotation, scale, shift, flip, colour, blur, noise, JPEG; labels "
                     "moved with the pixels)" + ("; --no-augment turns it off" if augment_by_default else ""))
    lines.append(f"this run: {run['faces']} faces sampled in {run['seconds']:.1f} s ({rate:.1f} faces/s): "
                 f"generation {run['gen_s']:.1f} s, dlib {run['dlib_s']:.1f} s (summed over workers), "
                 f"PNG encoding {run['encode_s']:.1f} s, writing {run['write_s']:.1f} s; then labels "
                 f"{run['export_s']:.1f} s; the rest start-up (models, workers)")
    return lines

