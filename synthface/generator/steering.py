"""Steered sampling: faces drawn with a chosen head pose or mouth opening.

Each candidate draws its targets from its own seed (a NumPy stream of the seed, apart
from the generator's noise), so a steered dataset keeps make-dataset's guarantees: the
same images whatever workers, batch size, resume point or shards. Its code z is then
moved so that its distances along the steered directions (directions.py) are those the
calibration gives for the targets, with the least change to z:
z' = z + D^T (D D^T)^-1 (s - D z) for the steered rows D. The labels record the pose
measured on the result, and the targets beside it.

A range beyond what the calibration reaches (the mean attribute at the largest
calibrated distance, where faces still hold together) is refused before any work: the
generator cannot go there, and sampling for it would never end.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError

STEERABLE = ("yaw", "pitch", "mouth_open")
LIMITS = {"yaw": (-90.0, 90.0), "pitch": (-90.0, 90.0), "mouth_open": (0.0, 2.0)}
FLAGS = {"yaw": "--yaw", "pitch": "--pitch", "mouth_open": "--mouth-open"}
# --pose-mix: the spread of real landmark faces, measured with pose.py on 300w-dev
# (afw and helen-train, 1,207 faces with human points): yaw std 18.1, pitch std 11.3
# degrees (bench/bench_pose.py). Targets ~ N(0, std), clipped to what the generator reaches.
POSE_MIX = {"yaw": 18.1, "pitch": 11.3}
_STREAM = 0x57EE7  # the seed's target stream, apart from its noise


@dataclass
class Target:
    """A steered attribute: uniform in [low, high], or (std set) N(centre, std) clipped
    to [low, high]."""

    name: str
    low: float
    high: float
    std: float | None = None


def parse_range(text: str, name: str) -> Target:
    """"MIN:MAX" (or one number) -> Target, with one-line errors."""
    flag = FLAGS[name]
    parts = str(text).split(":")
    try:
        low, high = (float(parts[0]), float(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        low = high = None
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        raise SynthfaceError(f"{flag} must be MIN:MAX (numbers), got '{text}'")
    if low > high:
        raise SynthfaceError(f"{flag}={text}: MIN is above MAX")
    lo, hi = LIMITS[name]
    if low < lo or high > hi:
        raise SynthfaceError(f"{flag}={text}: must lie within {lo:g}:{hi:g}")
    return Target(name, low, high)


def draw_targets(spec: dict, seed: int) -> dict:
    """The targets of the face with this seed: {name: value}. Every attribute's draws are
    taken in a fixed order, so a target does not depend on which others are steered."""
    rng = np.random.default_rng([int(seed), _STREAM])
    u, n = rng.random(len(STEERABLE)), rng.standard_normal(len(STEERABLE))
    out = {}
    for t in spec["targets"]:
        i = STEERABLE.index(t["name"])
        if t.get("std") is not None:
            value = min(max(t["centre"] + t["std"] * n[i], t["low"]), t["high"])
        else:
            value = t["low"] + u[i] * (t["high"] - t["low"])
        out[t["name"]] = value
    return out


def _table(summary: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The calibration's increasing stretch around distance 0: (values, distances)."""
    cal = summary["attributes"][name]["calibration"]
    d = np.array(cal["distance"], float)
    v = np.array([np.nan if x is None else x for x in cal["value"]], float)
    i0 = int(np.argmin(np.abs(d)))
    lo = i0
    while lo > 0 and np.isfinite(v[lo - 1]) and v[lo - 1] < v[lo]:
        lo -= 1
    hi = i0
    while hi < len(v) - 1 and np.isfinite(v[hi + 1]) and v[hi + 1] > v[hi]:
        hi += 1
    return v[lo:hi + 1], d[lo:hi + 1]


def reach(summary: dict, name: str) -> tuple[float, float]:
    values, _ = _table(summary, name)
    return float(values[0]), float(values[-1])


class Steering:
    """Targets and code moves for one run (see the module docstring)."""

    def __init__(self, targets: list[Target], vectors: np.ndarray, summary: dict, directions_sha256: str):
        names = summary["names"]
        self.rows = [names.index(t.name) for t in targets]
        self.vectors, self.summary = vectors, summary
        self.tables = {t.name: _table(summary, t.name) for t in targets}
        spec_targets = []
        for t in targets:
            lo, hi = reach(summary, t.name)
            values, _ = self.tables[t.name]
            if t.std is not None:  # a mix: centred on the generator's own mean, clipped to its reach
                centre = float(np.interp(0.0, self.tables[t.name][1], values))
                spec_targets.append({"name": t.name, "low": round(lo, 4), "high": round(hi, 4),
                                     "centre": round(centre, 4), "std": t.std})
                continue
            if t.low < lo - 1e-9 or t.high > hi + 1e-9:
                raise SynthfaceError(
                    f"{FLAGS[t.name]}={t.low:g}:{t.high:g} is beyond this generator: along its {t.name} direction "
                    f"its faces reach {lo:.3g} to {hi:.3g} on average (the calibration in its directions file); "
                    "narrow the range")
            spec_targets.append({"name": t.name, "low": t.low, "high": t.high})
        self.spec = {"targets": spec_targets, "directions_sha256": directions_sha256}

    @classmethod
    def open(cls, checkpoint, targets: list[Target]) -> "Steering":
        from synthface.generator.weights import file_sha256

        vectors, summary = load_directions(checkpoint)
        return cls(targets, vectors, summary, file_sha256(directions_path(checkpoint).with_suffix(".safetensors")))

    @classmethod
    def from_spec(cls, checkpoint, spec: dict) -> "Steering":
        """The same steering in a worker process."""
        targets = [Target(t["name"], t["low"], t["high"], t.get("std")) for t in spec["targets"]]
        return cls.open(checkpoint, targets)

    def distances(self, values: dict) -> np.ndarray:
        return np.array([np.interp(values[t["name"]], *self.tables[t["name"]]) for t in self.spec["targets"]])

    def move(self, z: np.ndarray, seeds) -> np.ndarray:
        """Codes (B, z_dim) moved to each seed's targets."""
        d = self.vectors[self.rows].astype(np.float64)  # (k, z_dim)
        s = np.stack([self.distances(draw_targets(self.spec, seed)) for seed in seeds])  # (B, k)
        gram_inv = np.linalg.inv(d @ d.T)
        return (z + ((s - z @ d.T) @ gram_inv) @ d).astype(np.float32)

    def at_distances(self, z: np.ndarray, name: str, distance: float) -> np.ndarray:
        """Codes moved to one distance along one direction (the walk of `sample`)."""
        d = self.vectors[self.summary["names"].index(name)].astype(np.float64)
        return (z + (distance - z @ d)[:, None] * d[None]).astype(np.float32)


def pose_mix_targets() -> list[Target]:
    return [Target(name, -90.0, 90.0, std) for name, std in POSE_MIX.items()]


def spec_dict(targets: list[Target]) -> list[dict]:
    return [asdict(t) for t in targets]


def directions_path(checkpoint) -> Path:
    """NAME.directions.json beside NAME.safetensors."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".directions.json")


def load_directions(checkpoint) -> tuple[np.ndarray, dict]:
    """(vectors (k, z_dim), summary) saved beside a generator, or a one-line error that
    says how to make them."""
    from safetensors.numpy import load_file

    path = directions_path(checkpoint)
    if not path.is_file() or not path.with_suffix(".safetensors").is_file():
        raise SynthfaceError(f"{checkpoint} has no latent directions ({path.name}); make them with: "
                             f"synthface directions --checkpoint {checkpoint}")
    try:
        summary = json.loads(path.read_text())
        vectors = load_file(str(path.with_suffix(".safetensors")))["directions"]
    except Exception as exc:  # bad JSON, a damaged safetensors file
        raise SynthfaceError(f"{path}: not a readable directions file ({exc})".splitlines()[0]) from None
    if vectors.shape[0] != len(summary.get("names", ())):
        raise SynthfaceError(f"{path}: {vectors.shape[0]} directions for {len(summary.get('names', ()))} names")
    return vectors, summary
