"""The second process of a parallel export (formats.write_labels with `side`): some of
the writers, fed the same images made again in this process, finished, then published
or discarded as the first process says through the pipe."""

from __future__ import annotations

import signal
import sys


def run_side(conn, out, schema, keys, source) -> None:
    from synthface.formats.registry import open_writers

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a stop from the first process: discard below
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the first process, which stops this one
    writers = []
    try:
        writers = open_writers(out, schema, keys)
        fn, args = source
        for i, image in enumerate(fn(*args)):
            # the first process says nothing until this one has finished: a readable
            # pipe now means it has ended (killed), and a later run may own the folder
            if i % 256 == 0 and conn.poll():
                raise SystemExit(1)
            for w in writers:
                w.add(image)
        for w in writers:
            w.finish()
        conn.send("finished")
        if _recv(conn) == "publish":
            for w in writers:
                w.publish()
            conn.send("published")
        else:
            for w in writers:
                w.discard()
    except BaseException as exc:
        for w in writers:
            w.discard()
        if not isinstance(exc, SystemExit):
            try:
                try:
                    conn.send(exc)
                except (TypeError, AttributeError, ValueError):  # an exception that does not pickle: its text
                    conn.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
            except OSError:  # the first process has gone
                pass


def _recv(conn):
    try:
        return conn.recv()
    except EOFError:  # the first process has gone: nothing is published
        return "discard"
