"""Scenes for face-detector training: generated faces pasted on backgrounds.

Copy-paste synthesis (Dwibedi et al. 2017, "Cut, Paste and Learn"): local realism matters
more than global; blending each paste a different way keeps a detector from keying on
paste edges; variety of scale, position, occlusion and truncation matters.

`make_scenes` first makes the faces as a plain dataset in DATASET/.synthface/faces (with
landmarks; resumable, as every make-dataset run), then composes the scenes from them in
order: scene i takes the next faces, as many as its own draw says (`--faces-per-image`,
or `--group-faces` for the share `--groups` of scenes that are group photos),
and everything about it (background, sizes, places, angles, blending, occluders) comes
from its own seed, candidate_seed(seed, i) in a stream of its own. So the same command
gives the same scenes, and a resumed run recomposes only the scenes it lacks.

This module is the run: the settings (`SceneConfig`), the scenes handed to the workers
and labelled in order, and the card. One scene's composition (its background, where
and how each face is pasted, occluders, group photos) is compose.py's; hard negatives
for a detector, drawn as the scenes' backgrounds are, negatives.py's.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.dataset.compose import MIN_BACKGROUND, _STREAM, background_files, compose_scene, is_group
from synthface.dataset.compose import procedural_background  # noqa: F401 (public here too)
from synthface.dataset.negatives import mine_negatives  # noqa: F401 (public here too: the detector's commands)
from synthface.dataset.photometric import photo_line

# the scene recipe's version, part of a run's identity: a folder made by an earlier recipe
# (before group photos, the head blend, prints and halftone) is not resumed with this one
SCENE_RECIPE = 2
BLENDS = ("none", "gaussian", "feather", "poisson", "head")


@dataclass
class SceneConfig:
    faces_per_image: tuple = (1, 6)
    face_size: tuple = (48, 256)  # face box width in scene pixels
    image_size: int = 640
    backgrounds: str | None = None  # folder of face-free photos; None: procedural
    blends: tuple = BLENDS
    max_angle: float = 10.0  # degrees, in-plane
    occlude: float = 0.15  # share of faces with an occluder
    truncate: float = 0.1  # share of faces that may be cut by the border
    photometric: float = 1.0  # how often each photo-like transform hits a scene (x its own rate; 0: never)
    groups: float = 0.15  # share of scenes that are group photos (rows of faces on shoulders; synthface.dataset.groups)
    group_faces: tuple = (6, 20)  # faces a group photo

    def validate(self) -> None:
        lo, hi = self.faces_per_image
        if not 1 <= lo <= hi <= 50:
            raise SynthfaceError(f"--faces-per-image must be MIN:MAX with 1 <= MIN <= MAX <= 50, got {lo}:{hi}")
        if not 64 <= self.image_size <= 4096:
            raise SynthfaceError(f"--image-size must be from 64 to 4096 for scenes, got {self.image_size}")
        a, b = self.face_size
        if not 16 <= a <= b <= self.image_size // 2:
            raise SynthfaceError(f"--face-size must be MIN:MAX with 16 <= MIN <= MAX <= image size / 2 "
                                 f"({self.image_size // 2}), got {a}:{b}")
        unknown = set(self.blends) - set(BLENDS)
        if unknown or not self.blends:
            raise SynthfaceError(f"--blend must be some of {', '.join(BLENDS)}, got {', '.join(self.blends)}")
        if not 0.0 <= self.groups <= 1.0:  # NaN fails too
            raise SynthfaceError(f"--groups must be a share from 0 (no group photos) to 1, got {self.groups}")
        lo, hi = self.group_faces
        if not 1 <= lo <= hi <= 50:
            raise SynthfaceError(f"--group-faces must be MIN:MAX with 1 <= MIN <= MAX <= 50, got {lo}:{hi}")
        if not 0.0 <= self.photometric <= 2.0:  # NaN fails too
            raise SynthfaceError(f"--photometric must be from 0 (off) to 2, got {self.photometric}")
        if self.backgrounds is not None and not background_files(self.backgrounds):
            raise SynthfaceError(f"--backgrounds {self.backgrounds}: no images there")

    def check_backgrounds(self, out=None) -> None:
        """Every background photo decodable and at least MIN_BACKGROUND px a side, checked
        before any face is made (a bad one found late would cost the run)."""
        if self.backgrounds is None:
            return
        import cv2

        from synthface.core.imagefiles import is_incomplete

        for path in background_files(self.backgrounds, out):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise SynthfaceError(f"--backgrounds: {path} cannot be read ({exc.strerror})") from None
            # libjpeg decodes a cut-off JPEG into a grey-bottomed image without failing
            img = (None if not data or is_incomplete(data)
                   else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
            if img is None:
                raise SynthfaceError(f"--backgrounds: {path} is not a readable image (or is cut off); "
                                     "remove or replace it")
            if min(img.shape[:2]) < MIN_BACKGROUND:
                raise SynthfaceError(f"--backgrounds: {path} is {img.shape[1]}x{img.shape[0]} px; backgrounds need "
                                     f"at least {MIN_BACKGROUND} px a side")

    def identity(self, out=None) -> dict:
        d = asdict(self)
        d["faces_per_image"], d["face_size"], d["blends"] = list(self.faces_per_image), list(self.face_size), list(self.blends)
        d["group_faces"] = list(self.group_faces)
        d["recipe"] = SCENE_RECIPE
        if self.backgrounds is not None:
            from synthface.core.imagefiles import ImageSource

            excluded = [Path(out)] if out is not None else []
            d["backgrounds"] = {"folder": str(Path(self.backgrounds).resolve()),
                                "fingerprint": ImageSource(self.backgrounds, exclude=excluded).fingerprint()}
        return d


def parse_pair(text: str, flag: str, kind=int) -> tuple:
    parts = str(text).split(":")
    try:
        lo, hi = (kind(parts[0]), kind(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None:
        raise SynthfaceError(f"{flag} must be MIN:MAX, got '{text}'")
    return lo, hi



# -- what --scenes implies for make-dataset -----------------------------------------------
def check_scene_flags(scenes: bool, *, backgrounds=None, photometric=None, groups=None, group_faces=None,
                      faces_per_image=None, face_size=None, blend=None, predictor=None,
                      landmarks: bool = False) -> None:
    """make-dataset's flags that shape scenes go with --scenes only (None: not given), and
    --predictor goes with --landmarks or --scenes (scenes always have points)."""
    scene_only = [flag for flag, value in (("--backgrounds", backgrounds), ("--photometric", photometric),
                                           ("--groups", groups), ("--group-faces", group_faces),
                                           ("--faces-per-image", faces_per_image),
                                           ("--face-size", face_size), ("--blend", blend))
                  if value is not None]
    if scene_only and not scenes:
        verb = "goes" if len(scene_only) == 1 else "go"
        raise SynthfaceError(f"{' and '.join(scene_only)} {verb} with --scenes (they shape scenes, not single faces)")
    if predictor is not None and not (landmarks or scenes):
        raise SynthfaceError("--predictor goes with --landmarks (boxes only use no 68-point model)")


def scene_implied(scenes: bool, *, image_size=None, augment="auto", rotate3d="auto", landmarks: bool = False) -> dict:
    """MakeConfig's image_size, augment and rotate3d, and AnnotateConfig's landmarks, as
    --scenes leaves them: a scene sizes itself (image_size None), always has points
    (landmarks), and takes no dataset-time augmentation or 3D turn by default ("auto",
    the library default for single faces, becomes None; asked-for ones stay, for
    MakeConfig and scene_config_from_flags to refuse). Scenes are for detectors, which
    the 3D turn did not help."""
    if not scenes:
        return {"image_size": image_size, "augment": augment, "rotate3d": rotate3d, "landmarks": landmarks}
    return {"image_size": None, "augment": None if isinstance(augment, str) else augment,
            "rotate3d": None if isinstance(rotate3d, str) else rotate3d, "landmarks": True}


def scene_config_from_flags(*, image_size=None, faces_per_image=None, face_size=None, backgrounds=None, blend=None,
                            photometric=None, groups=None, group_faces=None, num_shards: int = 1,
                            augment: bool = False, pad: float = 0.0) -> SceneConfig:
    """A checked SceneConfig from make-dataset's scene flags as given (texts, None where
    not given: the defaults; the default face sizes fit any image size, at most half of
    it). --scenes takes no --num-shards, --augment or --pad."""
    if num_shards != 1 or augment or pad:
        raise SynthfaceError("--scenes does not take --num-shards, --augment or --pad (scenes place and scale "
                             "each face themselves)")
    d = SceneConfig()  # the defaults, for the flags not given
    size = image_size or d.image_size
    # the default face sizes fit any --image-size (at most half of it); given ones are checked as given
    face_size = parse_pair(face_size, "--face-size") if face_size is not None else (
        min(d.face_size[0], size // 2), min(d.face_size[1], size // 2))
    scfg = SceneConfig(faces_per_image=d.faces_per_image if faces_per_image is None else parse_pair(
                           faces_per_image, "--faces-per-image"),
                       face_size=face_size, image_size=size, backgrounds=backgrounds,
                       blends=d.blends if blend is None else tuple(b.strip() for b in blend.split(",") if b.strip()),
                       photometric=d.photometric if photometric is None else photometric,
                       groups=d.groups if groups is None else groups,
                       group_faces=d.group_faces if group_faces is None else parse_pair(group_faces, "--group-faces"))
    scfg.validate()
    return scfg

# -- the run ------------------------------------------------------------------------------
def scene_name(i: int) -> str:
    """Scene i's image in the dataset: 1,000 a folder."""
    return f"images/{i // 1000:05d}/{i:08d}.jpg"


def faces_per_scene(seed: int, i: int, cfg: SceneConfig) -> int:
    """How many faces scene i takes: cfg.group_faces for a group photo (no more than a
    group of the smallest --face-size surely holds in the frame), else cfg.faces_per_image."""
    from synthface.dataset.groups import group_capacity
    from synthface.generator.sampling import candidate_seed

    scene_seed = candidate_seed(seed, i)
    lo, hi = cfg.faces_per_image
    if is_group(scene_seed, cfg):
        lo, hi = cfg.group_faces
        hi = max(1, min(hi, group_capacity(cfg.image_size, cfg.face_size[0])))
        lo = min(lo, hi)
    return int(np.random.default_rng([scene_seed, _STREAM, 4]).integers(lo, hi + 1))


def _scene_init(out: str, faces_dir: str, cfg: SceneConfig):
    """A scene worker's context: (out, faces folder, cfg, background photos or None)."""
    files = background_files(cfg.backgrounds, out) if cfg.backgrounds is not None else None
    return Path(out), Path(faces_dir), cfg, files


def _scene_task(context, item):
    """Compose scene i (written unless its image is already there, whole) and return its placements."""
    import cv2

    from synthface.core.files import write_atomic
    from synthface.core.imaging import read_rgb
    from synthface.dataset.journal import image_complete

    out, faces_dir, cfg, files = context
    i, scene_seed, faces = item
    loaded = [(read_rgb(faces_dir / f), box, pts) for f, box, pts in faces]
    img, placed = compose_scene(scene_seed, loaded, cfg, files)
    path = out / scene_name(i)
    if not image_complete(path):  # new, or deleted or truncated since: written (again)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
        write_atomic(path, buf.tobytes())
    return i, placed


def scene_schema(turned: bool = False):
    """A scene dataset's columns: the scene per image; per face its index and seed in the
    faces it was cut from, then truncated, occluded (points under an occluder), blend,
    pose and expression, and (faces turned in 3D) the turn and the points it hid."""
    from synthface.dataset.export import TURN_COLS
    from synthface.face.labels import LabelSchema
    from synthface.face.pose import POSE_COLS

    return LabelSchema(landmarks=True, image_cols=["scene"], face_cols=["face", "seed"],
                       attr_cols=["truncated", "occluded", "blend", *POSE_COLS, *(TURN_COLS if turned else [])],
                       multi=True, kind="scenes")


def make_scenes(out, n: int, cfg: SceneConfig, sampler, *, seed: int = 0, workers: int | None = None,
                val_fraction: float = 0.1, annotate=None, resume: bool = False, progress: bool = True,
                command: str = "", formats="all", max_tries: int | None = None, rotate3d=None,
                box: str = "dlib") -> dict:
    """`-n` generated faces pasted into scenes in `out` (see the module docstring); `box`:
    the face boxes' convention (geometry.BOX_CONVENTIONS), a label setting like `formats`."""
    from synthface.core.progress import progress_bar

    from synthface.face.annotate import AnnotateConfig
    from synthface.core.files import folder_lock
    from synthface.formats import parse_formats, write_labels
    from synthface.dataset.config import MakeConfig, check_box
    from synthface.dataset.folder import prepare_folder
    from synthface.dataset.record import RunRecord
    from synthface.dataset.journal import STATE_DIR, iter_records
    from synthface.dataset.make import make_dataset
    from synthface.generator.sampling import candidate_seed
    from synthface.core.workers import RESUME_HINT, Pool

    cfg.validate()
    out = Path(out)
    formats = parse_formats(formats)
    check_box(box, True)
    workers = os.cpu_count() or 1 if workers is None else workers
    # scenes always carry landmarks and place and scale each face themselves (no
    # augmentation); the caller's config is left as it was
    annotate = replace(annotate or AnnotateConfig(), landmarks=True)
    faces_cfg = MakeConfig(n=n, seed=seed, workers=workers, formats=("csv",), val_fraction=0.0, annotate=annotate,
                           augment=None, max_tries=max_tries, rotate3d=rotate3d)
    faces_cfg.validate()
    if not 0.0 <= val_fraction < 1.0:
        raise SynthfaceError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    cfg.check_backgrounds(out)
    prepare_folder(out, resume)
    identity = {"kind": "scenes", "seed": seed, "n": n, "scenes": cfg.identity(out), "generator": sampler.identity,
                **({"rotate_3d": rotate3d.to_dict()} if rotate3d is not None else {})}
    with folder_lock(out / STATE_DIR, out, "make-dataset --scenes"):
        RunRecord.from_identity(identity).save(out)
        faces_dir = out / STATE_DIR / "faces"
        faces = make_dataset(faces_dir, faces_cfg, sampler, resume=faces_dir.exists(), progress=progress)
        faces_record = RunRecord.load(faces_dir)
        face_size = faces_record.image_size
        records = [r for r in iter_records(faces_dir / STATE_DIR / "journal.csv") if r.kept][:n]
        items, k, i = [], 0, 0
        while k < len(records):
            m = faces_per_scene(seed, i, cfg)
            chunk = records[k:k + m]
            items.append((i, candidate_seed(seed, i), [(r.file, r.box, r.landmarks) for r in chunk]))
            k, i = k + m, i + 1
        counts = {"faces": 0, "blends": Counter(), "splits": Counter()}
        with progress_bar(total=len(items), desc="scenes", unit="scene", disable=not progress, leave=False) as bar, \
                Pool(workers, _scene_init, (str(out), str(faces_dir), cfg), RESUME_HINT) as pool:
            from synthface.dataset.export import turn_labels

            turn = turn_labels(faces_record)
            scenes = _labelled_scenes(pool.imap(_scene_task, items, chunksize=4), items, records, cfg,
                                      face_size=face_size, val_fraction=val_fraction, counts=counts, bar=bar,
                                      turn=turn, convention=box)
            written = write_labels(out, scene_schema(turn is not None), scenes, formats)
        summary = {"faces": counts["faces"], "scenes": len(items), "unplaced": len(records) - counts["faces"],
                   "train_scenes": counts["splits"]["train"], "val_scenes": counts["splits"]["val"],
                   "blends": dict(counts["blends"])}
        _write_scene_card(out, cfg, identity, summary, command=command, formats=written, box=box)
        summary["faces_made"] = faces
    return summary


def _labelled_scenes(placements, items, records, cfg: SceneConfig, *, face_size: int, val_fraction: float,
                     counts: dict, bar, turn=None, convention: str = "dlib"):
    """Each composed scene as a LabelledImage (in scene order, as the pool returns them),
    its face boxes in `convention` (computed from the placed points; a box reaching past
    the border is truncated)."""
    from synthface.face.geometry import convention_box
    from synthface.dataset.journal import split_of
    from synthface.face.labels import Face, LabelledImage
    from synthface.face.pose import face_attributes

    offsets = np.cumsum([0] + [len(faces) for _, _, faces in items])
    for i, placed in placements:
        _, scene_seed, _ = items[i]
        split = split_of(scene_seed, val_fraction)
        faces = []
        for k, box, pts, truncated, occluded, blend, angle in placed:
            rec = records[offsets[i] + k]
            pose = face_attributes(rec.landmarks, face_size)
            pose["roll"] = round(pose["roll"] - angle, 4)  # the paste turned the face by `angle`
            if turn is not None:
                pose.update(turn(rec.seed), hidden=int(rec.hidden.sum()))
            hidden = occluded if rec.hidden is None else occluded | rec.hidden
            pts = np.round(pts, 3)  # as the labels hold them, so the box is theirs exactly
            if convention != "dlib":
                box = convention_box(pts, box, convention)
                x, y, w, h = box
                truncated = x < 0 or y < 0 or x + w > cfg.image_size or y + h > cfg.image_size
            faces.append(Face(box, rec.score, pts, np.where(hidden, 1, 2), ignore=bool(truncated),
                              attributes={"face": rec.index, "seed": rec.seed, "truncated": int(truncated),
                                          "occluded": int(occluded.sum()), "blend": blend, **pose}))
            counts["blends"][blend] += 1
        counts["faces"] += len(faces)
        counts["splits"][split] += 1
        bar.update()
        yield LabelledImage(scene_name(i), cfg.image_size, cfg.image_size, split, {"scene": i}, faces)


def _write_scene_card(out: Path, cfg: SceneConfig, identity: dict, summary: dict, *, command: str, formats,
                      box: str = "dlib") -> None:
    from synthface.dataset.card import (CONVENTIONS, box_card, box_line, files_section, generator_card,
                                        generator_line, keypoints_card, licence_note, loading_section,
                                        write_card)

    schema, size = scene_schema(), cfg.image_size
    scenes = dict(identity["scenes"])
    if cfg.backgrounds:  # named by the folder's name and its contents' fingerprint, no local path
        scenes["backgrounds"] = {**scenes["backgrounds"], "folder": Path(cfg.backgrounds).name}
    card = {"format": "synthface-scenes/1", "command": command, **identity, "scenes": scenes,
            "generator": generator_card(identity["generator"]), "counts": summary,
            "files": {"images": "images/SSSSS/NNNNNNNN.jpg, 1,000 a folder", "formats": sorted(formats)},
            "conventions": {"box": "x, y, w, h in scene pixels (" + ("dlib's HOG convention, scaled with the face"
                                                                     if box == "dlib" else f"--box {box}") + "); "
                                   "truncated boxes reach past the border (clipped in COCO / YOLO, ignore='1' "
                                   "in dlib.xml, iscrowd 1 in COCO)",
                            "landmarks": "68 iBUG points, 0-based, scene pixels; COCO / YOLO visibility 2 "
                                         "visible, 1 under an occluder, 0 outside the image", **box_card(box)},
            "keypoints": keypoints_card()}
    blends = ", ".join(f"{k} {v}" for k, v in sorted(summary["blends"].items()))
    background = (f"crops of the photos in a folder `{Path(cfg.backgrounds).name}` (fingerprint "
                  f"`{scenes['backgrounds']['fingerprint']}`)") if cfg.backgrounds else \
        "procedural (colour field, shapes, lines, multi-scale texture)"
    write_card(out, card, f"""# Synthetic face scenes (synthface)

{summary['faces']} generated faces pasted into {summary['scenes']} scenes of {size}x{size} pixels
({summary['train_scenes']} train, {summary['val_scenes']} val scenes; split by scene seed).

- Command: `{command}`
- Generator: {generator_line(identity["generator"])}
- Background: {background}
- Faces per scene {cfg.faces_per_image[0]}-{cfg.faces_per_image[1]}, face box width {cfg.face_size[0]}-{cfg.face_size[1]} px,
  angle +-{cfg.max_angle:g} degrees; blends: {blends}
- Group photos: {cfg.groups:.0%} of scenes (rows of {cfg.group_faces[0]}-{cfg.group_faces[1]} faces on necks and shoulders,
  pasted with their heads' outlines; synthface.dataset.groups)
- Photo-like variation after compositing: {photo_line(cfg.photometric)}
{box_line(box)}
- {summary['unplaced']} faces found no place without overlap and were left out.

## Columns (labels.csv: a row per face)
- `file`, `split`: the scene image and its split; `scene`: the scene's index
- `face`, `seed`: the face's index and seed among the single faces it was cut from (`.synthface/faces/`)
- `x`, `y`, `w`, `h`, `score`: its box in scene pixels (`--box {box}`) and dlib's score on the single face
- `truncated`: 1 when the box reaches past the scene's border (clipped in COCO / YOLO, ignored in dlib.xml)
- `occluded`: how many of its 68 points lie under an occluder or a head in front (visibility 1)
- `blend`: how it was pasted (none, feather, gaussian, poisson, head: with its hair and neck)
- `yaw`, `pitch`, `roll`, `mouth_open`, `eye_open`: pose and expression from its points
- `x0`, `y0` .. `x67`, `y67`: the 68 iBUG points, 0-based scene pixels

## Files
- `images/SSSSS/NNNNNNNN.jpg`: the scenes
{files_section(schema, formats)}
- `dataset.json`: this card as data (counts, conventions, keypoint names, skeleton, sigmas, flip_idx)
- `.synthface/faces/`: the single faces they were cut from (a plain synthface dataset)

## Loading it
DATASET is this folder.

```
synthface detector train --dataset DATASET -o faces.svm
synthface detector eval --model faces.svm --data PHOTOS --pr pr.png
```

{loading_section(schema, size, formats)}

{CONVENTIONS}
## Licence
{licence_note(identity["generator"])}
""")
