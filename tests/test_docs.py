"""The README and docs keep their promises: every file they name exists, every command
they show is one the CLI takes, the set-up's main job runs (and runs again) as written,
and docs/turns.jpg is what the README's command draws."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a Markdown link's target, or a path of the repository named in the text
PATH = re.compile(r"\]\(([^)#\s]+)\)|(?<![\w/.-])((?:docs|bench|tests|synthface|cli|configs)/[\w./-]*[\w/])")


def _commands(text: str) -> list[str]:
    """Every `synthface ...` command in the code of a Markdown text (indented blocks and
    fences), continuation lines joined, `a && b` split."""
    code, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            code.append(line.strip())
    joined = re.sub(r"\\\n\s*", " ", "\n".join(code))
    out = []
    for line in joined.splitlines():
        for part in line.split("&&"):
            part = part.split("#", 1)[0].strip()
            if part.startswith("synthface "):
                out.append(part)
    return out


def test_every_path_the_docs_name_exists():
    missing = []
    for doc in DOCS:
        for m in PATH.finditer(doc.read_text()):
            target = m.group(1) or m.group(2)
            if target.startswith(("http://", "https://")):
                continue
            if not ((doc.parent / target).exists() if m.group(1) else (ROOT / target).exists()):
                missing.append(f"{doc.name}: {target}")
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_command_shown_is_one_the_cli_takes(doc):
    from synthface.cli.main import build_parser

    commands = _commands(doc.read_text())
    bad = []
    for command in commands:
        command = re.sub(r"\[[^\]]*\]", "", command).replace("$SLURM_ARRAY_TASK_ID", "3")
        try:
            args, extra = build_parser().parse_known_args(shlex.split(command)[1:])
        except SystemExit:
            bad.append(command)
            continue
        if extra or not getattr(args, "func", None):
            bad.append(command)
    assert bad == []
    if doc.name == "README.md":
        assert len(commands) >= 15


def test_the_set_up_makes_the_demo_and_can_be_run_again(tmp_path):
    setup = (ROOT / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = _commands(setup)[:2]  # the first block: make-dataset, preview
    assert commands[0].startswith("synthface make-dataset -n 1000") and commands[1].startswith("synthface preview")
    for attempt in range(2):  # the README says it may be run again
        for command in commands:
            r = run_cli(*shlex.split(command)[1:], cwd=tmp_path)
            assert r.returncode == 0, (attempt, command, r.stderr)
    demo = tmp_path / "runs" / "demo"
    assert len((demo / "labels.csv").read_text().splitlines()) == 1001
    assert (tmp_path / "runs" / "demo-preview.png").stat().st_size > 10_000


def test_docs_turns_jpg_is_what_the_readme_s_command_draws(tmp_path):
    import cv2
    import numpy as np

    command = next(c for c in _commands((ROOT / "README.md").read_text()) if "--rotate-3d" in c and " sample " in c)
    r = run_cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    drawn = cv2.imread(str(tmp_path / "turns.jpg")).astype(float)
    shipped = cv2.imread(str(ROOT / "docs" / "turns.jpg")).astype(float)
    assert drawn.shape == shipped.shape and np.abs(drawn - shipped).mean() < 1.0
