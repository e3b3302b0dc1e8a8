"""The package's import graph (imports inside functions count): no circles, every
import goes down the tiers below, and the leaves import nothing of synthface's. A new
module must be placed in a tier here. Also what `pip install .` puts where."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "synthface"

# Lowest first. A module may import from its own tier or any tier before it. Names are
# the package's subpackages and modules: face (the face and its labels), core (files,
# images, processes), formats (writers, the reader, the torch Dataset), generator (the
# GAN and its sampling), dataset (a run, from journal to labels), trainers (landmark
# models, detectors). A package counts as a module when its __init__ imports ours.
TIERS = [
    ["errors", "face.scheme68", "face.geometry", "face.pose"],  # leaves: constants and pure functions
    ["core.files", "core.outputs", "core.progress", "trainers.cnn_net", "face.labels", "generator.diffaugment", "generator.networks", "face.rotate3d"],
    ["core.imaging", "core.imagefiles", "dataset.journal", "generator.weights", "core.workers", "generator.config",
     "dataset.folder", "trainers.cnn_state",
     "face.annotate", "formats.registry", "formats.base", "formats.table", "formats.parquet", "formats.hf", "formats.imglab",
     "formats.pts", "formats.coco", "formats.yolo", "formats.side"],
    ["formats", "generator.steering", "formats.readers", "face.augment", "face.stage", "dataset.card", "generator.data", "generator.gan",
     "dataset.compose", "trainers.landmarks_eval",
     "dataset.photometric", "dataset.groups",
     "dataset.record"],
    ["generator.sampling", "dataset.export",
     "dataset.config"],
    ["dataset.make", "generator.evaluate", "generator.directions", "trainers.landmarks", "trainers.detector",
     "dataset.faces", "dataset.negatives",
     "dataset.preview", "formats.torchdata", "generator.align",
     "generator.samples"],
    ["dataset.merge", "dataset.scenes", "generator.train", "trainers.cnn",
     "trainers.reports"],
]
LEAVES = TIERS[0][1:]  # errors aside: the 68-point scheme, geometry and pose import nothing of ours


def import_graph() -> dict:
    mods = {p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."): p for p in PACKAGE.rglob("*.py")}
    mods = {(m[:-len(".__init__")] if m.endswith(".__init__") else m): p for m, p in mods.items()
            if m not in ("__init__", "__main__")}
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # `from synthface.formats import X`: the package, and X when X is one of its modules
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                target = name[len("synthface."):] if name.startswith("synthface.") else None
                if target in mods and target != m:
                    edges[m].add(target)
    # a package whose __init__ imports nothing of ours is a folder, not a module of the graph
    empty = {m for m, p in mods.items() if p.name == "__init__.py" and not edges[m]}
    return {m: bs - empty for m, bs in edges.items() if m not in empty}


def test_imports_go_down_the_tiers_and_form_no_circle():
    edges = import_graph()
    tier = {m: i for i, names in enumerate(TIERS) for m in names}
    assert sorted(edges) == sorted(tier), "place every module in a tier (and only modules that exist)"
    upward = [f"{a} -> {b}" for a, bs in edges.items() for b in bs if tier[b] > tier[a]]
    assert upward == []
    for leaf in LEAVES:
        assert edges[leaf] == set(), f"{leaf} is a leaf: it imports {edges[leaf]}"
    seen, done = set(), set()

    def visit(m, path):
        assert m not in seen or m in done, f"import circle: {' -> '.join(path + [m])}"
        if m in done:
            return
        seen.add(m)
        for t in sorted(edges[m]):
            visit(t, path + [m])
        done.add(m)

    for m in sorted(edges):
        visit(m, [])


def test_a_label_format_is_written_and_read_in_one_place():
    """What writes or reads each format stands in one module: its writer, or the reader."""
    places = {"self.w.writerows(": "formats/table.py", "ParquetWriter(self.f": "formats/parquet.py",
              '"objects"': "formats/hf.py", "<image file=": "formats/imglab.py", "pts_text(face": "formats/pts.py",
              '"annotations": [': "formats/coco.py", "kpt_shape": "formats/yolo.py",
              "read_csv(": "formats/readers.py", 'data["annotations"]': "formats/readers.py",
              "load_image_dataset_metadata": "face/annotate.py", "def parse_pts": "face/scheme68.py",
              "def iou": "face/geometry.py", "IMAGE_EXTS = ": "core/imagefiles.py"}
    for needle, home in places.items():
        found = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if needle in p.read_text()]
        assert found == [home], f"{needle!r} stands in {found}"


@pytest.mark.slow
def test_the_wheel_holds_the_cli_and_every_preset_inside_the_package(tmp_path):
    pytest.importorskip("setuptools", reason="builds the wheel with the environment's own setuptools")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next(tmp_path.glob("synthface-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    presets = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("synthface/configs/") and n.endswith(".yaml")) \
        == presets and len(presets) >= 4
    assert "synthface/cli/main.py" in names and "synthface/formats/coco.py" in names
    assert "synthface/models/default64.safetensors" in names
    assert not [n for n in names if n.startswith("cli/") or n.startswith("configs/")]
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "synthface = synthface.cli.main:main" in entry


def _sources():
    """Every .py of the package and its command line, as (path relative to ROOT, text)."""
    for root in (PACKAGE, ROOT / "cli"):
        for path in sorted(root.rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def test_no_module_is_over_450_lines():
    long = [f"{name}: {text.count(chr(10))} lines" for name, text in _sources() if text.count("\n") > 450]
    assert not long, "split these modules: " + "; ".join(long)


# whose functions take their arguments positionally by design (cv2.putText, np.pad, ...)
POSITIONAL_APIS = {"cv2", "np", "numpy", "dlib", "torch", "math"}


def test_no_call_passes_more_than_6_positional_arguments():
    """Past six, positional arguments are easy to swap unseen: name them."""
    calls = []
    for name, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            if sum(not isinstance(a, ast.Starred) for a in node.args) <= 6:
                continue
            base = node.func
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(node.func, ast.Attribute) and isinstance(base, ast.Name) and base.id in POSITIONAL_APIS:
                continue
            calls.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
    assert not calls, "pass these arguments by keyword: " + "; ".join(calls)


def test_no_function_takes_more_than_6_positional_parameters():
    """A function with many options takes the rest by keyword only (after `*`), so callers name them."""
    wide = []
    for name, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(params) > 6:
                    wide.append(f"{name}:{node.lineno} {node.name}")
    assert not wide, "make these parameters keyword-only: " + "; ".join(wide)
