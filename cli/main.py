"""`synthface` command line: flags in, one library call, one line per error out.

This module holds the parser (each command family adds its own subcommands: train.py,
make.py, show.py, generator.py, detector.py, landmarks.py, merge.py, align.py), main()
and its error and signal handling. Library modules are imported inside each command,
so `synthface --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from synthface import __version__
from synthface.cli import align, detector, generator, landmarks, make, merge, show, train
from synthface.cli.common import resolve_paths
from synthface.errors import SynthfaceError


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as every other mistake: one line and exit 1, not argparse's usage
    block and exit 2 (its subcommands' parsers are of this class too)."""

    def __init__(self, *args, **kwargs):
        # no abbreviations: `--outp x` or preview's `--out` (a prefix of --output) would slip
        # past the check below and silently replace an -o given before them
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, after one check: an option that takes one value given twice (as -o
        and --out, or --data twice) is one line, not silently the last of them."""
        argv = sys.argv[1:] if args is None else list(args)
        self._argv = argv  # for error()'s hint
        seen: dict = {}
        for token in argv:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if token.startswith("-") and not token.startswith("--") and name not in self._option_string_actions:
                name = token[:2]  # a short flag with its value attached: -oFILE, -n5
            action = self._option_string_actions.get(name) if token.startswith("-") else None
            if action is None:
                if token in self._name_parser_map_of_subparsers():  # a command: its own parser checks the rest
                    break
                continue
            if isinstance(action, argparse._StoreAction) and action in seen:
                if seen[action] == name:
                    self.error(f"{name} given twice: it takes one value")
                self.error(f"{seen[action]} and {name} given both: they are one option "
                           f"({'/'.join(action.option_strings)}); give it once")
            seen[action] = name
        return super().parse_known_args(args, namespace)

    def _attached(self, message: str) -> str:
        """The flag that lost its value, as the user typed it, with that value after '='
        (`--pitch -10:10` -> `--pitch=-10:10`); `--flag=-VALUE` when it cannot be told."""
        import re

        names = re.search(r"argument (\S+):", message)
        names = names.group(1).split("/") if names else []
        argv = getattr(self, "_argv", [])
        for k, token in enumerate(argv[:-1]):
            if token in names and argv[k + 1].startswith("-"):
                return f"{token}={argv[k + 1]}"
        return f"{names[-1] if names else '--flag'}=-VALUE"

    def _name_parser_map_of_subparsers(self) -> dict:
        """The command names this parser dispatches to (none for a leaf parser)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action._name_parser_map
        return {}

    def error(self, message):
        hint = ""
        if "expected one argument" in message:
            hint = f" (a value that starts with '-' goes after '=': {self._attached(message)})"
        print(f"synthface: error: {_one_line(message)}{hint}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    """The `synthface` parser: every command, in the order `--help` lists them."""
    parser = _Parser(
        prog="synthface",
        description="Synthetic face datasets: train a DCGAN on aligned faces, then sample "
                    "faces labelled by dlib (boxes and 68 landmarks).",
        epilog="examples:\n  synthface make-dataset -n 1000 --landmarks -o data/faces   # the bundled generator\n"
               "  synthface preview data/faces -o preview.png\n"
               "  synthface landmarks train --data data/faces -o faces.dat\n"
               "  synthface train --data my-aligned-faces/ -o runs/mine            # a generator of your own\n"
               "  synthface COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"synthface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in (train, make, show, generator, detector, landmarks, merge, align):  # --help's order
        family.add(sub)
    return parser


class _Terminated(BaseException):
    """SIGTERM (a scheduler's kill, `timeout`) or SIGHUP (a closed terminal): unwinds like
    Ctrl-C, so workers are ended. Its argument: the signal."""


_signalled: list = []  # the signal that ended the run, once one came


def _on_sigterm(signum, frame):
    """SIGTERM / SIGHUP handler: unwind the run as Ctrl-C does (once)."""
    if _signalled:  # a second one (timeout forwards its own): the run is already unwinding
        return
    _signalled.append(signum)
    raise _Terminated(signum)


def _on_sigint(signum, frame):
    """Ctrl-C: KeyboardInterrupt once; a second one (a quick second press, or `timeout`
    forwarding its own) while the run unwinds or the interpreter exits is let go, so it
    cannot break the cleanup into tracebacks."""
    if _signalled:
        return
    _signalled.append(signum)
    raise KeyboardInterrupt


def _setup_logging() -> None:
    """One stderr handler for the "synthface" logger, however often main() runs."""
    logger = logging.getLogger("synthface")
    handler = next((h for h in logger.handlers if getattr(h, "_synthface", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("synthface: %(levelname)s: %(message)s"))
        handler._synthface = True
        logger.addHandler(handler)
    handler.setStream(sys.stderr)  # today's stderr: a caller may have redirected it since
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _one_line(text: str) -> str:
    """`text` with its whitespace runs (line breaks included) as single spaces."""
    return " ".join(str(text).split())


def main(argv=None) -> int:
    """Run `synthface ARGV`; returns the exit status (0, 1 for a mistake, 130 / 128+N for a signal)."""
    import os
    import signal
    import time

    from synthface.core.outputs import check_plan, check_utf8

    parser = build_parser()
    try:  # before argparse, whose messages would show such bytes as escapes
        check_utf8(sys.argv[1:] if argv is None else argv)
    except SynthfaceError as exc:
        print(f"synthface: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    started = time.perf_counter()  # a command's wall time starts here (its heavy imports come later)
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        commands = ", ".join(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse's own table
        print(f"synthface: error: give a command: {commands}; `synthface --help` says what each does",
              file=sys.stderr)
        return 1
    if extra:
        print(f"synthface: error: unrecognized arguments: {' '.join(extra)}; see `synthface {command_name(args)} "
              "--help`", file=sys.stderr)
        return 1
    args.started = started
    _setup_logging()
    _signalled.clear()
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGHUP, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when a caller ignores it
            signal.signal(signal.SIGINT, _on_sigint)
    try:
        resolve_paths(args)  # SRC or --data, DST or -o: one of each (cli/common.py)
        # what the command writes, named and checked before any work (cli/plans.py)
        check_plan(args.plan(args), command_name(args))
        return args.func(args)
    except SynthfaceError as exc:
        print(f"synthface: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synthface: interrupted", file=sys.stderr)
        return 130
    except _Terminated as exc:
        print("synthface: terminated" + (" (hangup)" if exc.args[0] == signal.SIGHUP else ""), file=sys.stderr)
        return 128 + exc.args[0]
    except OSError as exc:  # permission, disk full, not a directory, read-only file system
        where = f": {exc.filename}" if exc.filename else ""
        print(f"synthface: error: {_one_line(exc.strerror or exc)}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print("synthface: error: out of memory; lower -n, --image-size or --batch-size", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug, not a user's mistake: still one line
        if _signalled:  # a signal raised inside a library's import or callback, which wrapped it
            if _signalled[0] == signal.SIGINT:
                print("synthface: interrupted", file=sys.stderr)
                return 130
            print("synthface: terminated" + (" (hangup)" if _signalled[0] == signal.SIGHUP else ""), file=sys.stderr)
            return 128 + _signalled[0]
        if os.environ.get("SYNTHFACE_DEBUG"):
            raise
        print(f"synthface: error: unexpected {type(exc).__name__}: {_one_line(exc)[:300]} "
              "(SYNTHFACE_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
        return 1


def command_name(args) -> str:
    """The command as a user types it: "make-dataset", "landmarks train"."""
    sub = getattr(args, "detector_command", None) or getattr(args, "landmarks_command", None)
    return f"{args.command} {sub}" if sub else args.command


def threading_main() -> bool:
    """Whether this is the main thread (the only one that may set signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
