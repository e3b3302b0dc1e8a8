"""One worker pool for every stage that needs models in processes (make-dataset,
evaluate, align).

- Each worker process loads its models once: `init(*args)` returns the worker's
  context (models, a sampler...), and every task is `fn(context, item)`.
- A failed load does not crash the process: a multiprocessing Pool restarts a worker
  whose initializer raised, forever (hundreds of tracebacks, never an end). The error is
  kept, and the worker's first task raises it as one SynthfaceError line instead.
- Workers ignore SIGINT from their first instruction: a terminal's Ctrl-C reaches the
  whole process group, and the parent turns it into one line and ends the workers.
- Processes are spawned (no fork of a process that holds torch threads or dlib).

`Pool` maps a function over items in order (processes=0: inline, same code path);
`ChunkWorkers` is make-dataset's: a thread of the calling process that starts at once,
plus processes that join when they have loaded their models.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from synthface.errors import SynthfaceError

# Workers past this many per core only cost memory (each loads its own models).
MAX_WORKERS_PER_CORE = 4


def check_workers(workers, flag: str = "--workers") -> int:
    """All cores when None; else 0 (inline) up to MAX_WORKERS_PER_CORE x cores."""
    cores = os.cpu_count() or 1
    if workers is None:
        return cores
    limit = MAX_WORKERS_PER_CORE * cores
    if not 0 <= workers <= limit:
        raise SynthfaceError(f"{flag} must be from 0 to {limit} ({MAX_WORKERS_PER_CORE} x {cores} cores), got {workers}")
    return workers


_context = None  # a worker process's models, from its init
_init_error = ""


def _init_process(init, args, ready=None) -> None:
    global _context, _init_error
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since its start: see sigint_held
    cv2.setNumThreads(1)
    try:
        _context = init(*args)
    except Exception as exc:  # noqa: BLE001 - reported by the first task, in one line
        _init_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return
    if ready is not None:
        with ready.get_lock():
            ready.value += 1


def _call(fn, *args):
    if _init_error:
        raise SynthfaceError(f"a worker process could not load its models: {_init_error}")
    return fn(_context, *args)


def _call_one(fn_item):
    fn, item = fn_item
    return _call(fn, item)


@contextmanager
def sigint_held():
    """SIGINT blocked while worker processes are started: they inherit the blocked mask
    (through fork and exec), so a Ctrl-C cannot reach one before it ignores SIGINT in
    `_init_process`; here a Ctrl-C that came meanwhile is delivered when the block ends
    (KeyboardInterrupt as usual; the main process ends the workers). The resource
    tracker is started first: starting it unblocks SIGINT, which would end the hold."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _spawn_pool(processes: int, init, args, ready=None):
    with sigint_held():
        return mp.get_context("spawn").Pool(processes, _init_process, (init, args, ready))


class Pool:
    """`with Pool(n, init, args) as pool: for r in pool.imap(fn, items): ...` where each
    worker runs `context = init(*args)` once and each item is `fn(context, item)`."""

    def __init__(self, processes: int, init, args=()):
        self.processes, self.init, self.args = processes, init, args
        self.pool, self.context = None, None

    def __enter__(self):
        if self.processes > 0:
            self.pool = _spawn_pool(self.processes, self.init, self.args)
        else:
            self.context = self.init(*self.args)
        return self

    def imap(self, fn, items, chunksize: int = 1):
        if self.pool is None:
            return (fn(self.context, item) for item in items)
        return self.pool.imap(_call_one, ((fn, item) for item in items), chunksize)

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


class _Task:
    """A chunk handed out: its candidates, where it runs, and its result when done."""

    def __init__(self, meta: list, where: str, done, get):
        self.meta, self.where, self.done, self.get = meta, where, done, get


class ChunkWorkers:
    """Where make-dataset's chunks run: inline (count=0), a thread of this process that
    uses `context` (the models the caller loaded), or a process once some have loaded
    their own. Each worker gets up to 2 unfinished chunks; `changed` is set whenever a
    chunk finishes. Why a thread and processes rather than threads: dlib's shape
    predictor holds the GIL (see make.py)."""

    def __init__(self, count: int, threads: int, init, init_args):
        self.context = None  # the calling process's models, set by the caller
        self.stop, self.changed = threading.Event(), threading.Event()
        self.threads = min(count, threads)
        self.thread = ThreadPoolExecutor(self.threads, thread_name_prefix="synthface") if count > 0 else None
        self.pool = self.ready = None
        if count > self.threads:
            self.ready = mp.get_context("spawn").Value("i", 0)
            self.pool = _spawn_pool(count - self.threads, init, init_args, self.ready)

    def free(self, pending) -> str | None:
        """A worker with room for another chunk, if any."""
        if self.thread is None:
            return None if pending else "inline"
        busy = Counter(t.where for t in pending if not t.done())
        if busy["thread"] < 2 * self.threads:
            return "thread"
        if self.pool is not None and busy["pool"] < 2 * self.ready.value:
            return "pool"
        return None

    def submit(self, meta: list, where: str, fn, *args) -> _Task:
        """Run fn(context, *args) there (a thread also gets `stop` as its last argument)."""
        if where == "inline":
            result = fn(self.context, *args)
            return _Task(meta, where, lambda: True, lambda: result)
        changed = self.changed
        if where == "thread":
            f = self.thread.submit(fn, self.context, *args, self.stop)
            f.add_done_callback(lambda _: changed.set())
            return _Task(meta, where, f.done, f.result)
        r = self.pool.apply_async(_call, (fn, *args), callback=lambda _: changed.set(),
                                  error_callback=lambda _: changed.set())
        return _Task(meta, where, r.ready, r.get)

    def close(self) -> None:
        """Drop the work past the target (or after an error): the thread stops at its
        next image, the processes are ended."""
        self.stop.set()
        if self.thread is not None:
            self.thread.shutdown(wait=True, cancel_futures=True)
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            # drop the pool's and the counter's semaphores now, not at exit (where an
            # interrupted run would leave them to the resource tracker, which warns)
            self.pool = self.ready = None


def _child(fn, args, conn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the child on Ctrl-C
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
        conn.send(("error", f"{type(exc).__name__}: {exc}" if not isinstance(exc, RuntimeError) else str(exc)))
    finally:
        conn.close()


def run_in_child(fn, *args, poll: float = 0.1):
    """fn(*args) in a spawned process, so that Ctrl-C stops long C++ work (dlib's
    trainers hold the GIL and never look at signals) within `poll` seconds: the child is
    ended and KeyboardInterrupt raised here. An exception in the child comes back as a
    RuntimeError with its message (what dlib raises, so callers parse it as before)."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    with sigint_held():
        proc = ctx.Process(target=_child, args=(fn, args, send), daemon=True)
        proc.start()
    send.close()
    try:
        while not recv.poll(poll):
            if not proc.is_alive():
                raise SynthfaceError(f"the worker process died (exit code {proc.exitcode}; out of memory?)")
        kind, value = recv.recv()
    except BaseException:
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        raise
    finally:
        recv.close()
    proc.join()
    if kind == "error":
        raise RuntimeError(value)
    return value
