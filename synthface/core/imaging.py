"""Small image helpers: tensors to uint8, grids, PNG files, the loss plot.

Images are numpy uint8 arrays (H, W, 3) in RGB order everywhere in synthface;
OpenCV's BGR appears only inside `write_png` / `read_rgb`.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from synthface.errors import SynthfaceError
from synthface.core.files import write_atomic


LUMA = np.float32([0.299, 0.587, 0.114])  # ITU-R BT.601: an RGB image @ LUMA is its grey


def to_uint8(images) -> np.ndarray:
    """A torch batch (B, 3, H, W) in [-1, 1] -> numpy (B, H, W, 3) uint8."""
    x = images.detach().float().cpu().clamp_(-1, 1).add_(1).mul_(127.5).round_()
    return x.byte().permute(0, 2, 3, 1).contiguous().numpy()


def saturate_uint8(img: np.ndarray) -> np.ndarray:
    """A float image -> uint8, rounded and clipped to 0..255 (OpenCV's saturate cast: six
    times faster than numpy's clip and astype on a 640 px scene)."""
    return cv2.add(img, 0.0, dtype=cv2.CV_8U)


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """(B, H, W, 3) -> one image of the B faces in rows of `ncol`, on a black ground."""
    b, h, w, _ = images.shape
    ncol = ncol or math.ceil(math.sqrt(b))
    nrow = math.ceil(b / ncol)
    grid = np.zeros((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid


# PNG and JPEG: the formats that carry the mark of the command that wrote them
# (outputs.mark_image), by which a later run replaces its own file and nothing else.
IMAGE_WRITE_EXTS = (".png", ".jpg", ".jpeg")


def check_image_path(path) -> Path:
    """An image output path: a known extension (the file is written in that format) and
    a folder that can be written, checked before any work."""
    from synthface.core.files import check_writable_file

    path = Path(path)
    if path.suffix.lower() not in IMAGE_WRITE_EXTS:
        raise SynthfaceError(f"{path}: the image format is chosen by the extension; use one of "
                             f"{', '.join(IMAGE_WRITE_EXTS)}")
    return check_writable_file(path, "output")


def write_image(path, rgb: np.ndarray, mark: str | None = None) -> None:
    """Write in the format of the path's extension (PNG, JPEG at quality 95), with the
    mark of the command whose -o names it (`mark`: "sample", "preview")."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_WRITE_EXTS:
        raise SynthfaceError(f"{path}: unknown image extension (use {', '.join(IMAGE_WRITE_EXTS)})")
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise SynthfaceError(f"could not encode {path}")
    from synthface.core.outputs import mark_image

    write_atomic(path, mark_image(buf.tobytes(), mark) if mark else buf.tobytes())


def write_png(path, rgb: np.ndarray, mark: str | None = None) -> None:
    """Write atomically: a reader (or a resumed run) never sees half a PNG. mark: the
    command whose -o names the file (outputs.mark_image)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise SynthfaceError(f"could not encode {path} as PNG")
    from synthface.core.outputs import mark_image

    write_atomic(path, mark_image(buf.tobytes(), mark) if mark else buf.tobytes())


def read_image(path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """An image file decoded by OpenCV (BGR, or as `flags` say), or one line naming it:
    missing, cut off before its end (imagefiles.is_incomplete) or not an image.
    The bytes are read by Python: OpenCV's imread crashes on a name that is not UTF-8."""
    from synthface.core.imagefiles import is_incomplete

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SynthfaceError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if is_incomplete(data):
        raise SynthfaceError(f"cannot read image {path}: the file is incomplete (cut off before its end)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if img is None:
        raise SynthfaceError(f"cannot read image {path}: not an image OpenCV can decode")
    return img


def read_rgb(path) -> np.ndarray:
    return read_image(path)[..., ::-1].copy()


def plot_curves(xs, series: dict, path, *, x_label: str = "epoch", width: int = 720, height: int = 400,
                y_label: str = "", mark: str | None = None, x_ticks=None, y_range=None) -> None:
    """A line plot (series: name -> a value per x) as a PNG: loss curves, CED curves;
    `mark`: the command whose -o names it (write_png);
    `y_label` is written above the values axis; `x_ticks`: x values marked and labelled
    under the axis (else only its two ends); `y_range`: (low, high) of the values axis (else
    the values' own)."""
    epochs = xs
    colors = [(200, 60, 40), (40, 90, 200), (40, 150, 60), (150, 60, 180), (230, 140, 20), (20, 160, 170),
              (120, 120, 120), (0, 0, 0), (200, 40, 140), (120, 90, 30)]
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, 20, 46 if y_label else 30, 40
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    values = np.concatenate([np.asarray(v, float) for v in series.values()]) if series else np.zeros(1)
    values = values[np.isfinite(values)] if np.isfinite(values).any() else np.zeros(1)
    lo, hi = (float(values.min()), float(values.max())) if y_range is None else map(float, y_range)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    e = np.asarray(epochs, float)
    e_lo, e_hi = (float(e.min()), float(e.max())) if len(e) else (0.0, 1.0)
    if e_hi - e_lo < 1e-9:
        e_lo, e_hi = e_lo - 0.5, e_hi + 0.5

    def px(ex, v):
        return (int(x0 + (ex - e_lo) / (e_hi - e_lo) * (x1 - x0)),
                int(y0 - (v - lo) / (hi - lo) * (y0 - y1)))

    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (220, 220, 220)
    for k in range(5):  # horizontal grid lines with their values
        v = lo + (hi - lo) * k / 4
        _, y = px(e_lo, v)
        cv2.line(img, (x0, y), (x1, y), grey, 1)
        cv2.putText(img, f"{v:.2f}", (5, y + 4), font, 0.4, black, thickness=1, lineType=cv2.LINE_AA)
    cv2.rectangle(img, (x0, y1), (x1, y0), black, 1)
    if y_label:
        cv2.putText(img, y_label, (5, 14), font, 0.45, black, thickness=1, lineType=cv2.LINE_AA)
    if x_ticks is None:
        cv2.putText(img, f"{x_label} {e_lo:g}", (x0, height - 12), font, 0.45, black, thickness=1, lineType=cv2.LINE_AA)
        cv2.putText(img, f"{e_hi:g}", (x1 - 40, height - 12), font, 0.45, black, thickness=1, lineType=cv2.LINE_AA)
    else:
        for t in x_ticks:
            if e_lo <= t <= e_hi:
                x, _ = px(t, lo)
                cv2.line(img, (x, y0), (x, y0 + 5), black, 1)
                text = f"{t:g}"
                cv2.putText(img, text, (x - 4 * len(text), y0 + 18), font, 0.4, black, thickness=1, lineType=cv2.LINE_AA)
        cv2.putText(img, x_label, (x1 - 9 * len(x_label), height - 6), font, 0.45, black, thickness=1, lineType=cv2.LINE_AA)
    for i, (name, vals) in enumerate(series.items()):
        color = colors[i % len(colors)]
        pts = np.array([px(a, b) for a, b in zip(e, vals) if np.isfinite(b)], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
        elif len(pts) == 1:
            cv2.circle(img, tuple(int(c) for c in pts[0]), 3, color, -1)
        # a legend: in one row above the plot for a few series, else one line each inside it
        where = (x0 + 10 + 150 * i, y1 - 10) if len(series) <= 4 else (x0 + 10, y1 + 16 + 15 * i)
        cv2.putText(img, name, where, font, 0.45 if len(series) > 4 else 0.5, color, thickness=1, lineType=cv2.LINE_AA)
    write_png(path, img, mark)
