import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FACES = FIXTURES / "faces"        # 16 real aligned faces (UTKFace, non-commercial)
FACES_300W = FIXTURES / "300w"    # 6 HELEN faces with hand-made 300-W points


@pytest.fixture
def faces_dir(tmp_path) -> Path:
    """A writable copy of the fixture faces, in FFHQ's nested layout."""
    dst = tmp_path / "faces" / "00000"
    dst.mkdir(parents=True)
    for i, f in enumerate(sorted(FACES.glob("*.jpg"))):
        shutil.copy(f, dst / f"{i:05d}.jpg")
    return tmp_path / "faces"


@pytest.fixture
def tiny_cfg():
    from synthface.generator.config import load_config

    return load_config("tiny", ["data.cache_dir="])


def processes(where) -> list[str]:
    """PIDs of the running processes (not zombies, which an init that does not reap
    leaves in some sandboxes) whose /proc stat fields pass `where` (state, ppid, pgid, ...)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and where(fields):
            found.append(stat.parent.name)
    return found


def with_dlib(pids) -> list[str]:
    """The processes among `pids` that have dlib loaded (a worker past its start-up)."""
    def loaded(pid):
        try:
            return "_dlib_pybind11" in Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return False
    return [p for p in pids if loaded(p)]


def run_cli(*args, timeout=600, in_process=False, cwd=None):
    """`synthface ARGS` as a user runs it: in a fresh process (the default: kills,
    signals, worker pools, a clean import), or with `in_process` through cli.main.main in
    this one (a usage mistake in milliseconds). Returns (returncode, stdout, stderr) as
    a subprocess.CompletedProcess."""
    import subprocess
    import sys

    argv = [str(a) for a in args]
    if not in_process:
        return subprocess.run([sys.executable, "-m", "synthface", *argv], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)
    import contextlib
    import io
    import os
    import signal

    from synthface.cli.main import main

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's --help and --version
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return subprocess.CompletedProcess(["synthface", *argv], code, out.getvalue(), err.getvalue())


def one_line_error(r, *words) -> str:
    """A user's mistake as the CLI reports it: exit 1 and exactly one stderr line
    `synthface: error: ...` holding every one of `words`; returns the line."""
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthface: error: "), r.stderr
    for w in words:
        assert w in lines[0], r.stderr
    return lines[0]
