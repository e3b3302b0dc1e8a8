"""Progress: a bar on a terminal only; a log line now and then elsewhere (captured logs,
Slurm files), with the count, the rate and the time left; a heartbeat around dlib's
silent trainers."""

import logging
import time

from conftest import FACES, run_cli
from synthface.core.progress import Heartbeat, heartbeat, progress_bar


def test_off_a_terminal_the_bar_is_a_log_line_with_the_time_left(caplog):
    with caplog.at_level(logging.INFO, logger="synthface"):
        bar = Heartbeat(total=100, desc="make-dataset", unit="face", every=0.0)
        with bar:
            bar.update(25)
            bar.set_postfix(rejected="3.0%")
            bar.update(25)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("make-dataset: 25 of 100 faces, 0 s, ") and "left" in lines[0]
    assert lines[1].startswith("make-dataset: 50 of 100 faces") and lines[1].endswith("(rejected 3.0%)")
    assert lines[-1].startswith("make-dataset: 50 of 100 faces")  # where it ended
    assert list(Heartbeat(range(3), desc="x", every=60)) == [0, 1, 2]


def test_pytest_s_captured_stderr_gets_no_bar():
    assert isinstance(progress_bar(total=3, desc="x"), Heartbeat)


def test_a_long_silent_call_gets_a_heartbeat(caplog):
    with caplog.at_level(logging.INFO, logger="synthface"), heartbeat("landmarks train", estimate_s=100, every=0.02):
        deadline = time.monotonic() + 30
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert caplog.records[0].getMessage().startswith("landmarks train: still working, 0 s, about 1 min 40 s left")


def test_a_command_s_captured_output_has_no_carriage_returns(tmp_path):
    r = run_cli("make-dataset", "-n", 6, "--landmarks", "--replay-faces", FACES, "--workers", 0, "--format", "csv",
                "-o", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "\r" not in r.stdout
