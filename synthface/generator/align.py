"""`align`: FFHQ's dlib alignment for any folder of face photos.

For every face dlib finds (HOG detector, upsampled for small faces) and its 68
landmarks, FFHQ's recipe (recreate_aligned_images in the FFHQ repository):
eye centres = means of points 36-41 and 42-47, mouth corners = points 48 and 54;
x = eye_to_eye - rot90(eye_to_mouth), normalised and scaled to
max(2 x |eye_to_eye|, 1.8 x |eye_to_mouth|); y = rot90(x); centre c = eye_avg +
0.1 x eye_to_mouth; the square quad c -+ x -+ y. Where the quad leaves the photo the
photo is reflect-padded and the padding blurred towards the median colour; the quad is
then resampled to `size` (antialiased).

Output: FFHQ's layout (DST/00000/00000.png, 1,000 a folder) and DST/alignment.json with,
per face: source file, face index in the photo, box, 68 landmarks in the source photo,
the quad. Resumable: `.synthface/align-journal.jsonl` holds one line per photo done,
each with a check chained to the line before (record_check), so that a hand edit is
refused rather than carried into alignment.json.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError

log = logging.getLogger("synthface")


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """FFHQ's oriented crop square for 68 landmarks: (4, 2) corners, side length."""
    lm = np.asarray(landmarks, np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])  # TL, BL, BR, TR
    return quad, float(np.hypot(*x) * 2)


def quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine map from photo pixels to the aligned image (pixel centres)."""
    import cv2

    src = np.float32(quad[[0, 1, 3]])  # TL, BL, TR
    dst = np.float32([[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, -0.5]])
    return cv2.getAffineTransform(src, dst)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFHQ crop of one face: (size, size, 3) uint8 RGB and its quad in the photo."""
    import cv2

    quad, qsize = ffhq_quad(landmarks)
    img = rgb
    # shrink first (as FFHQ does) so the resampling below never decimates by much
    shrink = int(np.floor(qsize / size * 0.5))
    offset = np.zeros(2)
    if shrink > 1:
        h, w = img.shape[:2]
        img = cv2.resize(img, (int(np.rint(w / shrink)), int(np.rint(h / shrink))), interpolation=cv2.INTER_AREA)
        quad_s, qsize_s = quad / shrink, qsize / shrink
    else:
        quad_s, qsize_s = quad.copy(), qsize
    # reflect-pad where the quad leaves the photo, blurring the padding
    border = max(int(np.rint(qsize_s * 0.1)), 3)
    h, w = img.shape[:2]
    pad = [max(-int(np.floor(quad_s[:, 0].min())) + border, 0), max(-int(np.floor(quad_s[:, 1].min())) + border, 0),
           max(int(np.ceil(quad_s[:, 0].max())) - w + border, 0), max(int(np.ceil(quad_s[:, 1].max())) - h + border, 0)]
    if max(pad) > border - 4:
        pad = [max(p, int(np.rint(qsize_s * 0.3))) for p in pad]
        img = cv2.copyMakeBorder(img, pad[1], pad[3], pad[0], pad[2], cv2.BORDER_REFLECT_101).astype(np.float32)
        hh, ww = img.shape[:2]
        yy, xx = np.ogrid[:hh, :ww]
        mask = np.maximum(1.0 - np.minimum(xx / max(pad[0], 1), (ww - 1 - xx) / max(pad[2], 1)),
                          1.0 - np.minimum(yy / max(pad[1], 1), (hh - 1 - yy) / max(pad[3], 1)))[..., None]
        blur = qsize_s * 0.02
        blurred = cv2.GaussianBlur(img, (0, 0), blur) if blur > 0.1 else img
        img += (blurred - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        offset = np.array(pad[:2], float)
    # resample the quad at up to 4x the output size, then area-downsample (antialiasing)
    k = int(min(4, max(1, np.ceil(qsize_s / size))))
    m = quad_transform(quad_s + offset, size * k)
    out = cv2.warpAffine(img, m, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if k > 1:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return out, quad


# -- worker side ------------------------------------------------------------------------
def _load_models(upsample: int, predictor_path):
    import dlib

    from synthface.face.annotate import load_shape_predictor

    return dlib.get_frontal_face_detector(), load_shape_predictor(predictor_path), upsample


def _align_photo(models, args):
    """(status, faces): status "" | "unreadable" | "no_face"; faces: (png bytes, meta)."""
    import cv2
    import dlib

    from synthface.face.annotate import rect_to_box, shape_to_array
    from synthface.core.imagefiles import is_incomplete

    path, size = args
    detector, predictor, upsample = models
    try:
        data = Path(path).read_bytes()
        whole = data and not is_incomplete(data)  # a cut-off photo may decode, grey below the cut
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if whole else None
    except OSError:
        bgr = None
    if bgr is None:
        return "unreadable", []
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    rects = sorted(detector(rgb, upsample), key=lambda r: (r.left(), r.top()))
    faces = []
    for i, rect in enumerate(rects):
        lm = shape_to_array(predictor(rgb, dlib.rectangle(rect.left(), rect.top(), rect.right(), rect.bottom())))
        aligned, quad = align_face(rgb, lm, size)
        png = cv2.imencode(".png", aligned[:, :, ::-1])[1].tobytes()
        faces.append((png, {"face_index": i, "box": list(rect_to_box(rect)),
                            "landmarks": np.round(lm, 2).tolist(), "quad": np.round(quad, 3).tolist()}))
    return ("" if faces else "no_face"), faces


MAX_ALIGN_SIZE = 4096


def _photos(src: Path, dst: Path) -> tuple[list[Path], str]:
    """One photo, or every image under a folder as the data layer lists them (leaving
    out `dst` when it lies inside: a resumed run must not align its own crops); and a
    fingerprint of that list, which changes when a photo is added, removed or rewritten."""
    from synthface.core.imagefiles import ImageSource

    if not src.exists():
        raise SynthfaceError(f"source not found: {src}")
    if src.is_file():
        st = src.stat()
        return [src], f"{src.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    source = ImageSource(src, exclude=[dst])
    return [src / name for name in source.names], source.fingerprint()


STATUSES = ("", "unreadable", "no_face")


def _face_name(k: int) -> str:
    """Aligned face k's file in DST: FFHQ's layout, 1,000 a folder."""
    return f"{k // 1000:05d}/{k:05d}.png"


# pixels: no photo is a million pixels a side (readers.MAX_COORD); a larger value, or one
# that is not a finite number, is a damaged journal, and would reach alignment.json
MAX_COORD = 1_000_000
FACE_NUMBERS = {"box": 4, "landmarks": 68, "quad": 4}  # each face's lists: 4 numbers, 68 and 4 (x, y) pairs
FACE_KEYS = {"file", "source", "face_index", *FACE_NUMBERS}


def _face_values_ok(face: dict) -> str:
    """"" when a journaled face's box, landmarks and quad are lists of the right lengths
    of finite numbers within MAX_COORD (its face_index a count); else what is wrong."""
    if not (type(face.get("face_index")) is int and face["face_index"] >= 0):
        return "face_index"
    for key, n in FACE_NUMBERS.items():
        value = face.get(key)
        if not (isinstance(value, list) and len(value) == n):
            return key
        if key != "box":
            if not all(isinstance(p, list) and len(p) == 2 for p in value):
                return key
            value = [v for p in value for v in p]
        if not all(type(v) in (int, float) and math.isfinite(v) and abs(v) <= MAX_COORD for v in value):
            return key
    return ""


def record_check(previous: str, record: dict) -> str:
    """A journal record's check: its canonical JSON (keys sorted, no spaces, without its
    own "check") chained to the previous record's check ("" before the first), as
    make-dataset's rows are (journal.row_check), so that an edited, removed or moved
    record breaks it."""
    from synthface.dataset.journal import row_check

    values = {k: v for k, v in record.items() if k != "check"}
    return row_check(previous, [json.dumps(values, sort_keys=True, separators=(",", ":"))])


def _align_records(journal: Path):
    """The journal's per-photo records, a torn last line dropped (read a line at a time:
    a 46k-photo journal with every face's 68 points is 100 MB of JSON), each checked: a
    record of the next photo, a known status, its faces named in order, their numbers
    finite and within MAX_COORD, its "check" its record_check. A hand-edited or damaged
    journal is one line naming the line. Records written before checks existed (no
    "check") are read as they are; the chain starts at the first record that has one,
    and every record after it must have one too."""
    from synthface.dataset.journal import cut_torn_tail

    cut_torn_tail(journal)
    if not journal.is_file():
        return
    n_faces, check, checked = 0, "", False
    with open(journal, "rb") as f:
        for line, raw in enumerate(f, start=1):
            def damaged(what):
                return SynthfaceError(f"{journal}, line {line}: {what}; the align journal is damaged (restore it, "
                                      "or align into a new DST)")

            try:
                rec = json.loads(raw)
            except ValueError:  # not JSON, or not text
                raise damaged("not a JSON record") from None
            if not (isinstance(rec, dict) and isinstance(rec.get("faces"), list)):
                raise damaged("not a photo's record")
            if type(rec.get("photo")) is not int or rec["photo"] != line - 1:
                raise damaged(f"the record of photo {rec.get('photo')!r}, not {line - 1}")
            if rec.get("status") not in STATUSES:
                raise damaged(f"unknown status {rec.get('status')!r}")
            if bool(rec["faces"]) != (rec["status"] == ""):
                raise damaged(f"status {rec['status']!r} with {len(rec['faces'])} face(s)")
            for face in rec["faces"]:
                name = _face_name(n_faces)
                if not (isinstance(face, dict) and face.get("file") == name):
                    raise damaged(f"face {n_faces} is not {name} (a record removed or edited?)")
                if set(face) != FACE_KEYS:
                    raise damaged(f"face {n_faces} has the fields {sorted(face)}, not {sorted(FACE_KEYS)}")
                if not isinstance(face.get("source"), str):
                    raise damaged(f"face {n_faces}'s source is not a file name")
                wrong = _face_values_ok(face)
                if wrong:
                    what = ("a count" if wrong == "face_index" else
                            f"{FACE_NUMBERS[wrong]} {'numbers' if wrong == 'box' else '(x, y) pairs'} "
                            f"within +-{MAX_COORD:,} pixels")
                    raise damaged(f"face {n_faces}'s {wrong} is not {what}")
                n_faces += 1
            if "check" in rec:  # after the checks above, which say more precisely what is wrong
                expected = record_check(check, rec)
                if rec["check"] != expected:
                    raise damaged("the record's values do not match its check (edited by hand, or a record "
                                  "before it removed or moved?)")
                check, checked = expected, True
            elif checked:
                raise damaged("the record has no check, as the records before it have (edited by hand?)")
            yield rec


def _read_align_journal(journal: Path) -> tuple[int, int, str]:
    """(photos done, faces so far, the last record's check: where the next record's
    chain starts, "" after records written before checks existed)."""
    done = n_faces = 0
    check = ""
    for rec in _align_records(journal):
        done, n_faces, check = rec["photo"] + 1, n_faces + len(rec["faces"]), rec.get("check", "")
    return done, n_faces, check


def _remake_damaged(dst: Path, journal: Path, photos: list, size: int, upsample: int, predictor_path) -> int:
    """On resume: every journaled face's image must be there and whole (image_complete:
    its two ends, no decoding); the photo of a missing or cut-off one is aligned again,
    which gives the same crops, written under the same names. Returns how many images
    were made again."""
    from synthface.core.files import write_atomic
    from synthface.dataset.journal import image_complete

    damaged = [rec for rec in _align_records(journal)
               if not all(image_complete(dst / face["file"]) for face in rec["faces"])]
    if not damaged:
        return 0
    models = _load_models(upsample, predictor_path)
    remade = []
    for rec in damaged:
        photo = photos[rec["photo"]]
        status, faces = _align_photo(models, (str(photo), size))
        again = [json.loads(json.dumps(meta)) for _, meta in faces]
        saved = [{k: v for k, v in face.items() if k not in ("file", "source")} for face in rec["faces"]]
        if status != rec["status"] or again != saved:
            missing = next(face["file"] for face in rec["faces"] if not image_complete(dst / face["file"]))
            raise SynthfaceError(f"{dst / missing} is missing or damaged, and {photo} aligned again gives other "
                                 "faces than the align journal holds (another dlib version?); restore the image, "
                                 "or align into a new DST")
        for (png, _), face in zip(faces, rec["faces"]):
            if not image_complete(dst / face["file"]):
                write_atomic(dst / face["file"], png)
                remade.append(face["file"])
    log.warning("%d aligned image(s) missing or damaged (e.g. %s): made again", len(remade), dst / remade[0])
    return len(remade)


def _remove_empty_run(dst: Path, made: Path | None) -> None:
    """Undo a run that aligned no face into a folder it started: its state and
    alignment.json go, and the folders it made (`made`: the first of them), so that
    the same command can run again there."""
    import shutil

    from synthface.dataset.journal import STATE_DIR

    shutil.rmtree(dst / STATE_DIR, ignore_errors=True)
    (dst / "alignment.json").unlink(missing_ok=True)
    if made is None:
        return
    for folder in (dst, *dst.parents):
        try:
            folder.rmdir()  # only when empty: nothing but what this run made goes
        except OSError:
            return
        if folder == made:
            return


def _write_alignment(path: Path, journal: Path, head: dict) -> None:
    """alignment.json: `head`, then "faces": every face's record, streamed from the
    journal (memory flat in the number of photos), published by rename."""
    from synthface.core.files import atomic_open

    with atomic_open(path, "w") as f:
        f.write(json.dumps(head)[:-1] + ', "faces": [')
        first = True
        for rec in _align_records(journal):
            for face in rec["faces"]:
                f.write(("" if first else ", ") + json.dumps(face))
                first = False
        f.write("]}\n")


def align_folder(src, dst, *, size: int = 128, upsample: int = 1, workers: int | None = None,
                 resume: bool = False, predictor_path: str | None = None, progress: bool = True) -> dict:
    """Align every face of every photo under `src` into `dst` (FFHQ layout)."""
    from synthface.core.progress import progress_bar

    from synthface.face.annotate import check_upsample, load_shape_predictor
    from synthface.core.files import folder_lock, write_atomic
    from synthface.dataset.journal import STATE_DIR
    from synthface.core.workers import RESUME_HINT, Pool, check_workers

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not 16 <= size <= MAX_ALIGN_SIZE:
        raise SynthfaceError(f"--size must be from 16 to {MAX_ALIGN_SIZE}, got {size}")
    check_upsample(upsample)
    workers = check_workers(workers)
    if dst.exists() and not dst.is_dir():
        raise SynthfaceError(f"{dst} is a file, not a folder")
    # the first folder this run makes (dst or one above it), None when dst is there
    made = next((f for f in reversed((dst, *dst.parents)) if not f.exists()), None)
    photos, fingerprint = _photos(src, dst)
    if not photos:
        raise SynthfaceError(f"no photos (png, jpg, webp, bmp) under {src}")
    load_shape_predictor(predictor_path)  # a missing or wrong model fails here, once, in one line
    journal = dst / STATE_DIR / "align-journal.jsonl"
    settings = {"src": str(src.resolve()), "size": size, "upsample": upsample}
    fresh = not (dst.exists() and any(dst.iterdir()))
    if not fresh:
        run = dst / STATE_DIR / "align.json"
        if not resume:
            raise SynthfaceError(f"{dst} is not empty; add --resume to continue, or choose a new DST")
        if not run.is_file():
            raise SynthfaceError(f"{dst} is not an align output folder (no {STATE_DIR}/align.json)")
        try:
            saved = json.loads(run.read_text())
        except ValueError:
            saved = None
        if not isinstance(saved, dict):
            raise SynthfaceError(f"{run} is damaged (not a JSON object); align into a new DST")
        if {k: saved.get(k) for k in settings} != settings:
            raise SynthfaceError(f"{dst} holds another alignment run (other source, size or upsample)")
        if saved.get("fingerprint", fingerprint) != fingerprint:
            raise SynthfaceError(f"{src} has changed since {dst} was started (photos added, removed or "
                                 "rewritten); align into a new DST")
    with folder_lock(dst / STATE_DIR, dst, "align"):
        if not (dst / STATE_DIR / "align.json").is_file():
            write_atomic(dst / STATE_DIR / "align.json", json.dumps({**settings, "fingerprint": fingerprint}))
        done, n_faces, check = _read_align_journal(journal)
        if done > len(photos):
            raise SynthfaceError(f"{journal} records {done} photos, {src} has {len(photos)}; the align journal is "
                                 "damaged (restore it, or align into a new DST)")
        remade = _remake_damaged(dst, journal, photos, size, upsample, predictor_path) if n_faces else 0
        todo = [(str(p), size) for p in photos[done:]]
        with progress_bar(total=len(photos), initial=done, desc="align", unit="photo", disable=not progress) as bar, \
                Pool(workers, _load_models, (upsample, predictor_path), RESUME_HINT) as pool, \
                open(journal, "a") as jf:
            for k, (status, faces) in enumerate(pool.imap(_align_photo, todo, chunksize=4), start=done):
                metas = []
                for png, meta in faces:
                    name = _face_name(n_faces)
                    write_atomic(dst / name, png)
                    metas.append({"file": name, "source": str(photos[k].relative_to(src) if src.is_dir()
                                                              else photos[k].name), **meta})
                    n_faces += 1
                rec = {"photo": k, "status": status, "faces": metas}
                check = record_check(check, rec)
                jf.write(json.dumps({**rec, "check": check}) + "\n")
                jf.flush()
                bar.update(1)

        counts = {"photos": len(photos), "faces": 0, "unreadable": 0, "no_face": 0}
        for rec in _align_records(journal):
            if rec["status"]:
                counts[rec["status"]] += 1
            counts["faces"] += len(rec["faces"])
        _write_alignment(dst / "alignment.json", journal, {"format": "synthface-alignment/1",
                         "method": "FFHQ (dlib 68 landmarks, oriented quad)", **settings, "counts": counts})
    if not counts["faces"]:
        if fresh:  # nothing to keep: the folder is left as it was, so the same command can run again
            _remove_empty_run(dst, made)
        raise SynthfaceError(f"no face aligned from {src}: {counts['unreadable']} unreadable photo(s), "
                             f"{counts['no_face']} without a face dlib finds (try --upsample 2 for small faces)")
    if remade:
        counts["remade"] = remade
    if counts["unreadable"]:
        log.warning("%d unreadable photo(s) skipped", counts["unreadable"])
    return counts
