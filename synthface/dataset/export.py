"""A face dataset's labels, written from its journal: journal -> labelled images ->
every chosen format's writer (formats/) -> the card (card.py).

Labelling done here, at export time, from each candidate's seed and points alone: its
split (journal.split_of), its pose and expression (pose.py), its steering targets drawn
again (steering.draw_targets). So every export of a run, its shards' merge included,
gives the same labels. Every writer finishes before any publishes (formats.write_labels):
a failed or interrupted export leaves the previous label files, never half of them.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from synthface import __version__
from synthface.dataset.card import (CONVENTIONS, _pose_section, box_card, box_line, files_section,
                            generator_card, generator_line, keypoints_card, licence_note, loading_section, plot_pose,
                            pose_statistics, write_card)
from synthface.formats import parse_formats, write_labels
from synthface.face.geometry import convention_box
from synthface.dataset.journal import STATE_DIR, iter_records, split_of
from synthface.dataset.record import RunRecord
from synthface.face.labels import Face, LabelledImage, LabelSchema
from synthface.face.pose import POSE_COLS, face_attributes
from synthface.generator.steering import draw_targets


TURN_COLS = ["turn_yaw", "turn_pitch", "hidden"]


def face_schema(landmarks: bool, flip: bool = False, steered=(), turned: bool = False) -> LabelSchema:
    """A face dataset's columns: seed and index per image; pose and expression (with
    landmarks), the flip disagreement, the steering targets and (faces turned in 3D) the
    turn and the count of points it hid, per face."""
    attr_cols = ((POSE_COLS if landmarks else []) + (["disagreement"] if flip else [])
                 + [f"{name}_target" for name in steered] + (TURN_COLS if turned else []))
    return LabelSchema(landmarks=landmarks, image_cols=["seed", "index"], attr_cols=attr_cols)


# From this many faces the export runs the formats that need no per-face attributes
# (a file per image: .pts, YOLO) in a second process, beside the others (2 cores: 20,000
# faces 48 -> 20 s; 50,000 83 -> 72 s, where the small files wait on the disk); below
# it the second process's start (about a second) costs more than it saves.
PARALLEL_FROM = 5000


def write_exports(out: Path, cfg, record: RunRecord, command: str = "", progress: bool = False,
                  parallel: bool | None = None) -> dict:
    """Every label format chosen in cfg.formats, then dataset.json / README.md
    (`progress`: a bar over the faces, which at 100,000 take a minute or more).
    `record`: the run's RunRecord (or its identity dict). `parallel`: the per-image
    formats in a second process (None: from PARALLEL_FROM faces); the files are the
    same either way."""
    out = Path(out)
    record = RunRecord.of(record)
    landmarks = cfg.annotate.landmarks
    steering = record.steering
    schema = face_schema(landmarks, record.flip_labels, record.steered, record.turned)
    tally = {"values": {c: [] for c in schema.attr_cols}, "by_target": {}, "faces": 0, "candidates": 0,
             "rejected": Counter(), "splits": Counter()}
    if parallel is None:
        parallel = cfg.target >= PARALLEL_FROM
    from synthface.core.progress import progress_bar

    images = labelled_images(out, cfg, record, schema, tally)
    with progress_bar(images, total=cfg.target, unit="face", desc="labels", disable=not progress, leave=False,
              dynamic_ncols=True) as bar:
        side = (labelled_images, (out, cfg, record, schema)) if parallel else None
        formats = write_labels(out, schema, bar, parse_formats(cfg.formats), side=side)
    count, rejected, values, by_target = tally["faces"], tally["rejected"], tally["values"], tally["by_target"]
    summary = {"faces": count, "train": tally["splits"]["train"], "val": tally["splits"]["val"],
               "candidates": tally["candidates"], "rejected": dict(rejected),
               "rejection_rate": round(sum(rejected.values()) / max(tally["candidates"], 1), 4)}
    if landmarks and count:
        summary["pose"] = pose_statistics({c: values[c] for c in POSE_COLS})
        plot_pose(values, out / "pose.png")
    if steering:
        summary["steering"] = {"targets": steering["targets"], "by_target": {
            name: {k: dict(c) for k, c in sorted(bins.items(), key=lambda kv: float(kv[0].split(" ")[0]))}
            for name, bins in by_target.items()}}
    _write_face_card(out, cfg, record, summary, command=command, formats=formats, schema=schema)
    return summary


def labelled_images(out: Path, cfg, record: RunRecord, schema: LabelSchema, tally: dict | None = None):
    """The run's kept faces as labelled images, in order, from its journal. With `tally`
    (the export's own pass): every face's attributes, counted there too; without (the
    second process's pass, for writers that need no attributes): boxes, points and
    splits only."""
    from synthface.generator.sampling import candidate_seed

    record = RunRecord.of(record)
    size = record.image_size
    steering = record.steering
    flip = record.flip_labels
    turn = turn_labels(record) if tally is not None else None
    faces = 0
    for rec in iter_records(Path(out) / STATE_DIR / "journal.csv", lambda j: candidate_seed(cfg.seed, j),
                            contiguous=cfg.num_shards == 1):
        if faces == cfg.target:
            return
        attrs = {}
        if tally is not None:
            tally["candidates"] += 1
            if steering:
                for name, v in draw_targets(steering, rec.seed).items():
                    attrs[f"{name}_target"] = round(v, 4)
                    bins = tally["by_target"].setdefault(name, {})
                    bins.setdefault(target_bin(name, v), Counter())[rec.status or "kept"] += 1
        if not rec.kept:
            if tally is not None:
                tally["rejected"][rec.status] += 1
            continue
        split = split_of(rec.seed, cfg.val_fraction)
        if tally is not None:
            if cfg.annotate.landmarks:
                attrs.update(face_attributes(rec.landmarks, size))
            if flip:
                attrs["disagreement"] = round(rec.disagreement, 6)
            if turn is not None:
                attrs.update(turn(rec.seed), hidden=int(rec.hidden.sum()))
            for c in schema.attr_cols:
                tally["values"][c].append(attrs[c])
            tally["splits"][split] += 1
            tally["faces"] += 1
        faces += 1
        yield LabelledImage(rec.file, size, size, split, {"seed": rec.seed, "index": rec.index},
                            [Face(convention_box(rec.landmarks, rec.box, cfg.box), rec.score, rec.landmarks,
                                  None if rec.hidden is None else np.where(rec.hidden, 1, 2), attributes=attrs)])


def turn_labels(record: RunRecord):
    """For a run (its RunRecord, or identity dict) with faces turned in 3D: seed ->
    {turn_yaw, turn_pitch} as the saved image shows it (a mirrored face's yaw turn
    changes sign); else None."""
    record = RunRecord.of(record)
    if not record.turned:
        return None
    from synthface.face.stage import turn_as_saved

    def turn(seed: int) -> dict:
        yaw, pitch = turn_as_saved(seed, record.rotate3d, record.augment)
        return {"turn_yaw": round(yaw, 4), "turn_pitch": round(pitch, 4)}

    return turn


def target_bin(name: str, value: float) -> str:
    """The bin of a steering target, for counts per bin: 10 degrees, or 0.05 of mouth opening."""
    width = 0.05 if name == "mouth_open" else 10.0
    lo = math.floor(value / width) * width
    return f"{lo:g} to {lo + width:g}"


def _write_face_card(out: Path, cfg, record: RunRecord, summary: dict, *, command: str, formats, schema) -> None:
    """The dataset card of a face run: how it was made, its counts and its conventions."""
    landmarks = cfg.annotate.landmarks
    card = {
        "format": "synthface-dataset/1", "command": command, "seed": cfg.seed, "generator": generator_card(record.generator),
        "image_size": record.image_size, "augment": record.augment_settings,
        "rotate_3d": record.rotate3d_settings,
        "annotation": {"labels": "single", **record.annotate,
                       "detector": ("dlib.cnn_face_detection_model_v1 (MMOD, mmod_human_face_detector.dat), boxes "
                                    "mapped to the HOG convention (annotate.MMOD_TO_HOG)"
                                    if record.detector == "mmod" else "dlib.get_frontal_face_detector (HOG)"),
                       "predictor": "shape_predictor_68_face_landmarks.dat" if landmarks else None,
                       "predictor_sha256": record.predictor_sha256,
                       "filter": f"exactly one face with detector score >= {cfg.annotate.min_score}"},
        "counts": summary,
        "files": {"images": "images/SSSSS/NNNNNNNN.png, 1,000 a folder", "formats": sorted(formats)},
        "split": {"val_fraction": cfg.val_fraction, "train": summary["train"], "val": summary["val"],
                  "rule": "a face is in val when splitmix64(seed) / 2**64 < val_fraction (synthface.dataset.journal.split_of)"},
        "conventions": {
            "coordinates": "pixels of the saved image; pixel centres at integers, (0, 0) = centre of the top-left pixel",
            "box": "x, y, w, h: top-left pixel and size (dlib rectangle, inclusive)", **box_card(cfg.box),
            "landmarks": "68 points, iBUG 300-W order, 0-based (x0, y0 .. x67, y67)" if landmarks else None,
            "seed": "each image is candidate `index` of the run, made from its own `seed`"},
    }
    if landmarks:
        card["keypoints"] = keypoints_card()
    write_card(out, card, _card_text(cfg, record, summary, command, formats, schema))


def _card_text(cfg, record: RunRecord, summary, command, formats, schema) -> str:
    """The dataset's README.md: what it is, each file, how to load it in each ecosystem
    (only the formats written), its conventions and split."""
    landmarks, gen = cfg.annotate.landmarks, record.generator
    steering = record.steering
    size = record.image_size
    gen_line = generator_line(gen)
    rej = ", ".join(f"{k}: {v}" for k, v in sorted(summary["rejected"].items())) or "none"
    pad_note = "" if cfg.pad else (
        "\nFor detector training, make the dataset with `--pad` (e.g. 0.25): without it most faces\n"
        "fill the frame and their boxes reach past the image, which dlib's detector trainer refuses.\n")
    pose_files = ("\n- `pose.png`: the share of faces per 5-degree bin of measured yaw and pitch"
                  + (" and of their steering targets" if steering else "")) if landmarks else ""
    if record.rotate3d_settings:
        pose_files += ("\n- `turns.jpg`: the first face, as dlib labelled it, turned across the yaw range with its "
                       "labels (hidden points yellow)")
    extra = ""
    if record.detector == "mmod":
        extra += "\n- Detector: dlib's MMOD CNN face detector, boxes mapped to the HOG convention"
    if record.flip_labels:
        extra += ("\n- Labels: flip-checked (the 68-point prediction on the image and on its mirror, mapped "
                  "back and averaged); `disagreement` = the two predictions' mean distance / outer-eye-corner "
                  "distance" + (f"; faces above {cfg.annotate.max_disagreement:g} rejected"
                                if cfg.annotate.max_disagreement is not None else ""))
    if record.augment is not None:
        a = record.augment
        extra += (f"\n- Augmented at dataset time, labels transformed exactly (synthface.face.augment, parameters "
                  f"from each face's seed): roll +-{a.rotate:g} degrees, scale +-{a.scale:g}, shift "
                  f"+-{a.shift:g}, flip {a.flip:g}, colour +-{a.colour:g}, blur {a.blur:g}, "
                  f"noise {a.noise:g}, JPEG {a.jpeg:g} (`--no-augment` turns it off)")
    if record.rotate3d_settings:
        r = record.rotate3d
        extra += (f"\n- Turned in 3D (synthface.face.rotate3d, before the augmentation): yaw {r.yaw[0]:g} to "
                  f"{r.yaw[1]:g} degrees, pitch {r.pitch[0]:g} to {r.pitch[1]:g}, drawn per face from its "
                  "seed (`turn_yaw`, `turn_pitch`); the points go through the same turn, jaw points hidden by it "
                  "sit on the face's outline (300-W's convention), and the points the turn hid are counted in "
                  "`hidden` and marked visibility 1 in COCO and YOLO")
    return f"""# Synthetic face dataset (synthface {__version__})

{summary['faces']} faces of {size}x{size} pixels, each with its face box
{'and 68 landmarks ' if landmarks else ''}from dlib: {summary['train']} in the train split, {summary['val']} in val.

- Command: `{command or 'make_dataset()'}`
- Generator: {gen_line}
- Seed: {cfg.seed} (image `index` j is made from `candidate_seed(seed, j)`, stored as `seed`)
- Candidates drawn: {summary['candidates']}; rejected: {rej} (rate {summary['rejection_rate']:.1%})
- Filter: exactly one face, detector score >= {cfg.annotate.min_score}, detector upsampling {cfg.annotate.upsample}
{box_line(cfg.box)}{extra}

## Files
- `images/SSSSS/NNNNNNNN.png`: the faces, 1,000 a folder
{files_section(schema, formats)}
- `dataset.json`: this card as data (counts, split, conventions{', pose statistics, keypoint names, skeleton, sigmas, flip_idx' if landmarks else ''}){pose_files}

Only the formats chosen with `--format` are written: {', '.join(sorted(formats))}.

## Loading it
DATASET is this folder.

{loading_section(schema, size, formats)}

{_pose_section(summary, steering) if landmarks else ""}## Split
The `val` split holds {summary['val']} of the {summary['faces']} faces (`--val-fraction {cfg.val_fraction:g}`), `train` the rest.
A face's split is chosen from its own seed alone (`synthface.dataset.journal.split_of`: val when
splitmix64(seed) / 2**64 < {cfg.val_fraction:g}), so it is the same however the dataset was made
(workers, resume, shards and merge). Each format carries it: the `split` column / field,
Ultralytics' trainset.txt / valset.txt, COCO's per-image `split`.

{CONVENTIONS}{pad_note}
## Licence
{licence_note(gen)}
"""
