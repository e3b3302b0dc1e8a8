"""One worker pool for every stage that needs models in processes (make-dataset,
evaluate, align).

- Each worker process loads its models once: `init(*args)` returns the worker's
  context (models, a sampler...), and every task is `fn(context, item)`.
- A failed load does not crash the process: a multiprocessing Pool restarts a worker
  whose initializer raised, forever (hundreds of tracebacks, never an end). The error is
  kept, and the worker's first task raises it as one SynthfaceError line instead.
- Workers ignore SIGINT and SIGHUP from their first instruction: a terminal's Ctrl-C
  (or its closing) reaches the whole process group, and the parent turns it into one
  line and ends the workers.
- A worker process that dies (killed when memory runs out, a crash in native code) is
  noticed within a fraction of a second: its tasks would never finish, and a pool would
  wait for them forever. The parent raises one line saying so (`WorkerDied`).
- Processes are spawned (no fork of a process that holds torch threads or dlib).

`Pool` maps a function over items in order (processes=0: inline, same code path);
`ChunkWorkers` is make-dataset's: a thread of the calling process that starts at once,
plus processes that join when they have loaded their models.
"""

from __future__ import annotations

import itertools
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
# signals the parent turns into one line and an orderly end (Ctrl-C; a closed terminal's
# SIGHUP): its workers ignore them
_PARENT_SIGNALS = {signal.SIGINT, signal.SIGHUP}
POLL_S = 0.1  # how often a waiting parent looks for dead workers
# what a user can do when a worker died: the end of WorkerDied's line
AGAIN_HINT = "run the command again (with fewer --workers if memory ran out)"
RESUME_HINT = "run the same command with --resume to continue (with fewer --workers if memory ran out)"


class WorkerDied(SynthfaceError):
    """A worker process ended in the middle of a run."""


def death_message(exitcode: int, hint: str = "") -> str:
    """One line for a worker process that ended with `exitcode` (negative: a signal)."""
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "an unknown signal"
        why = {signal.SIGKILL: ": out of memory?", signal.SIGSEGV: ": a crash in native code"}.get(-exitcode, "")
        how = f"killed by signal {-exitcode}, {name}{why}"
    else:
        how = f"exit code {exitcode}"
    return f"a worker process died ({how}){'; ' + hint if hint else ''}"


class _Watch:
    """The processes of a multiprocessing Pool, checked for one that died. The Pool
    replaces a dead worker silently and the tasks it held are lost, so any worker seen
    to end before the pool is closed is a death."""

    def __init__(self, pool, hint: str):
        self.pool, self.hint = pool, hint
        self.seen = list(pool._pool)  # noqa: SLF001 - the Pool keeps no other list of its processes

    def check(self) -> None:
        self.seen += [p for p in list(self.pool._pool) if p not in self.seen]  # noqa: SLF001 - replacements
        for p in self.seen:
            if p.exitcode is not None:
                raise WorkerDied(death_message(p.exitcode, self.hint))


def _init_process(init, args, ready=None) -> None:
    global _context, _init_error
    import cv2

    for sig in _PARENT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)  # blocked since its start: see sigint_held
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


def _call_chunk(fn_chunk):
    fn, chunk = fn_chunk
    return [_call(fn, item) for item in chunk]


def _chunks(items, size: int):
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


@contextmanager
def sigint_held():
    """SIGINT and SIGHUP blocked while worker processes are started: they inherit the
    blocked mask (through fork and exec), so a Ctrl-C or a closed terminal cannot reach
    one before it ignores them in `_init_process`; here a signal that came meanwhile is
    delivered when the block ends (KeyboardInterrupt, or main()'s handler; the main
    process ends the workers). The resource tracker is started inside the SIGHUP block
    (it then never unblocks SIGHUP, so a closed terminal does not end it under the
    parent) and before the SIGINT block: starting it unblocks SIGINT."""
    from multiprocessing import resource_tracker

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _spawn_pool(processes: int, init, args, ready=None):
    with sigint_held():
        return mp.get_context("spawn").Pool(processes, _init_process, (init, args, ready))


class Pool:
    """`with Pool(n, init, args) as pool: for r in pool.imap(fn, items): ...` where each
    worker runs `context = init(*args)` once and each item is `fn(context, item)`.
    `hint`: what the user can do when a worker dies (ends WorkerDied's line)."""

    def __init__(self, processes: int, init, args=(), hint: str = AGAIN_HINT):
        self.processes, self.init, self.args, self.hint = processes, init, args, hint
        self.pool, self.context, self.watch = None, None, None

    def __enter__(self):
        if self.processes > 0:
            self.pool = _spawn_pool(self.processes, self.init, self.args)
            self.watch = _Watch(self.pool, self.hint)
        else:
            self.context = self.init(*self.args)
        return self

    def imap(self, fn, items, chunksize: int = 1):
        if self.pool is None:
            return (fn(self.context, item) for item in items)
        # chunked here, not by the Pool: its chunked imap is a generator, with no timeout
        results = self.pool.imap(_call_chunk, ((fn, chunk) for chunk in _chunks(items, chunksize)))
        return self._watched(results, self.watch)

    @staticmethod
    def _watched(results, watch: _Watch):
        """The results in order, the workers checked while waiting for each chunk."""
        while True:
            try:
                chunk = results.next(timeout=POLL_S)
            except StopIteration:
                return
            except mp.TimeoutError:
                watch.check()
                continue
            yield from chunk

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

    def __init__(self, count: int, threads: int, init, init_args, hint: str = RESUME_HINT):
        self.context = None  # the calling process's models, set by the caller
        self.stop, self.changed = threading.Event(), threading.Event()
        self.threads = min(count, threads)
        self.thread = ThreadPoolExecutor(self.threads, thread_name_prefix="synthface") if count > 0 else None
        self.pool = self.ready = self.watch = None
        if count > self.threads:
            with sigint_held():  # the resource tracker started here, not by the counter's lock: see sigint_held
                self.ready = mp.get_context("spawn").Value("i", 0)
            self.pool = _spawn_pool(count - self.threads, init, init_args, self.ready)
            self.watch = _Watch(self.pool, hint)

    def check(self) -> None:
        """WorkerDied if a worker process has died (its chunks would never finish)."""
        if self.watch is not None:
            self.watch.check()

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
            self.pool = self.ready = self.watch = None


def _child(fn, args, conn) -> None:
    for sig in _PARENT_SIGNALS:  # the parent ends the child on Ctrl-C or a closed terminal
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)
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
                raise WorkerDied(death_message(proc.exitcode))
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
