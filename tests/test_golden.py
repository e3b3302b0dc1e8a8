"""The same datasets before and after a change of the code's house: small runs of the
per-face path (turn, augment, flip labels, every format), the scenes and `sample
--rotate-3d`, each file's content compared with tests/fixtures/golden.json, recorded
before the per-face stage was split out of make-dataset.

Images are compared by their decoded pixels (a newer PNG encoder may pack the same
pixels differently); label files byte for byte. Files that hold a date, the command
line or a local path (dataset.json, README.md, data.yaml, run.json) are left out. To record
again after a deliberate change of the output: `python tests/test_golden.py`.

The generator's convolutions (torch's oneDNN) round differently by instruction set: on an
AVX-512 machine 2 of the 'plain' run's 6 images differ by a rounding from an AVX2 one's,
labels unchanged. The runs pin oneDNN to AVX2 (ONEDNN_MAX_CPU_ISA), the set golden.json
was recorded with, so the test compares the code's output, not the machine's.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import FACES, run_cli  # noqa: E402

GOLDEN = Path(__file__).parent / "fixtures" / "golden.json"
LEFT_OUT = {"dataset.json", "README.md", "data.yaml", "run.json", "lock"}  # by name, in any folder

RUNS = {
    # landmarks (turn -30:30 and augment by default), flip labels, points boxes, all formats
    "faces": ["make-dataset", "-n", 10, "--checkpoint", "default64", "--landmarks", "--labels", "flip", "--seed", 5, "--box", "points",
              "--workers", 0, "--no-progress"],
    # boxes only, resized and padded, no turn or augment
    "plain": ["make-dataset", "-n", 6, "--checkpoint", "default64", "--seed", 2, "--image-size", 80, "--pad", 0.25, "--workers", 0,
              "--no-progress", "--format", "csv,coco,yolo"],
    "scenes": ["make-dataset", "-n", 40, "--scenes", "--landmarks", "--seed", 3, "--replay-faces", FACES,
               "--workers", 0, "--no-progress", "--format", "csv,coco"],
    "sample": ["sample", "-n", 2, "--checkpoint", "default64", "--rotate-3d=-40:40", "--steps", 3, "--seed", 1],
}


def _digest(path: Path) -> str:
    if path.suffix in (".png", ".jpg"):
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        data = repr(img.shape).encode() + img.tobytes()
    else:
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def manifest(root: Path) -> dict:
    """{relative path: digest} of every file a run wrote (or of the one file)."""
    if root.is_file():
        return {root.name: _digest(root)}
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): _digest(p) for p in files if p.name not in LEFT_OUT}


ISA = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # read by torch when it starts: the runs are fresh processes


def make(name: str, where: Path) -> dict:
    import os
    from unittest import mock

    out = where / (name + (".png" if name == "sample" else ""))
    with mock.patch.dict(os.environ, ISA):
        r = run_cli(*RUNS[name], "-o", out)
    assert r.returncode == 0, r.stderr
    return manifest(out)


@pytest.mark.parametrize("name", list(RUNS))
def test_the_same_output_as_recorded(name, tmp_path):
    want = json.loads(GOLDEN.read_text())[name]
    got = make(name, tmp_path)
    assert sorted(got) == sorted(want), "files written differ"
    changed = [f for f in want if got[f] != want[f]]
    assert not changed, f"{len(changed)} of {len(want)} files changed, e.g. {changed[:5]}"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(json.dumps({name: make(name, Path(tmp)) for name in RUNS}, indent=1, sort_keys=True) + "\n")
    print(f"recorded {GOLDEN}")
