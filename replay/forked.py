"""Reads split by participant across forked processes that share the books copy-on-write.

The statement engine is pure Python, so one process computes on one core. A forked worker gets
the books as they stand without copying or re-reading them (the kernel shares the pages until
either side writes one), and only its answers travel back, as JSON. See decision 57.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ledger.heap import no_cyclic_gc

T = TypeVar("T")
_log = logging.getLogger("ledger.forked")
#: How long the parent waits for a worker after finishing its own share (detached: for a worker
#: that takes no item and uses no CPU): a worker never takes this long unless something is wrong
#: with it, and then the parent computes its share itself (detached: the caller asks again).
_PATIENCE_S = 60.0
#: Fork at once if the items left, at the cost of the last (cheapest) item done first, take at
#: least `FORK_WORTH_S`; else only after `FORK_AFTER_S`, when they look like taking that long more.
FORK_AFTER_S = 0.25
FORK_WORTH_S = 1.0
#: `map_detached` lets its caller go only for work that would take this long here alone: detached
#: workers each copy the pages they write, where this process computing a share writes its own
#: (decision 138: the benchmark's what-if, two seconds' work, took a second longer detached).
DETACH_WORTH_S = 10.0
#: How long anyone waits for the shared counter, which only a dead worker holds for long.
_LOCK_S = 5.0
#: How often the answers of detached workers are looked for (and their progress).
_POLL_S = 0.05


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may keep busy: those it may run on (a container's cpuset included), and
    no more than whole CPUs of its cgroup's quota (cgroup v2 `cpu.max`, as `docker run --cpus`
    sets it): past a quota, a worker only takes turns with the service."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, _, period = (cgroup / "cpu.max").read_text().strip().partition(" ")
        if quota != "max":
            cpus = min(cpus, max(int(quota) // int(period), 1))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to respect here
    return cpus


def can_fork() -> bool:
    """Only where fork is the platform's own way (Linux): macOS's system libraries do not
    support it after threads have started, and Windows has none."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def map_forked(items: Sequence[T], work: Callable[[T], Any], workers: int,
               costs: Sequence[float] | None = None, raw: bool = False) -> list[Any]:
    """`work(item)` for every item in order, shared with up to `workers - 1` forked processes
    once the work has shown it is worth a fork (`FORK_AFTER_S`, `FORK_WORTH_S`): each process
    takes the next item nobody has taken yet, so put costly items first. Answers must be JSON
    values (dicts, lists, strings, numbers, None); they come back in the items' order, those of
    the forked workers decoded from JSON. A worker that fails or hangs leaves its items to this
    process: the answer is the same, only later.

    The last item, presumably the cheapest, is done first, alone: if the others look like taking
    `FORK_WORTH_S` even at its cost, the fork comes at once, not after the costliest item.

    `costs`: each item's cost relative to the others' (positive, finite; by default all the same). How
    long the items left will take is judged from the time the items done took, scaled by
    these (decision 139). `raw`: `work` answers bytes orjson encoded (JSON, or a list's items),
    which come back as they are, never decoded (decision 141)."""
    answers = _map(items, work, workers, costs, raw, detach=False)
    assert isinstance(answers, list)
    return answers


def map_detached(items: Sequence[T], work: Callable[[T], Any], workers: int,
                 costs: Sequence[float] | None = None, raw: bool = False) -> list[Any] | Detached:
    """`map_forked` for a caller that holds something only so that the work sees it unchanged (a
    what-if holds the books, decision 138): once the work is worth a fork and would take
    `DETACH_WORTH_S` here alone, `workers` processes are forked and this one computes nothing
    more. The caller lets go, and then collects the answers (`Detached.collect`); the workers
    compute on the memory as it was when they were forked. Shorter work is shared as by
    `map_forked`, and its answers come back at once. The judgement is made once, at the fork, from
    the time the items done took and `costs` (decision 139: without them, a few managers among
    many reps, the probe a rep, looked like a fraction of what they cost)."""
    return _map(items, work, workers, costs, raw, detach=True)


class Detached:
    """Items left to forked workers (`map_detached`), whose answers are collected later."""

    def __init__(
        self,
        children: list[tuple[multiprocessing.process.BaseProcess, Connection]],
        answers: dict[int, Any],
        count: int,
        taken: Synchronized[int],
        raw: bool,
    ) -> None:
        self._children, self._answers, self._count, self._raw = children, answers, count, raw
        #: Kept until the workers are reaped: freed, its shared memory would be the next counter's,
        #: and another what-if's workers would take from this one's.
        self._taken = taken
        #: Reaps the workers once: after `collect`, or when this is dropped without it (an error
        #: between the fork and the collection), so that none computes on for nobody.
        self._reap = weakref.finalize(self, _reap_detached, children, taken)

    def _progress(self, waiting: Iterable[multiprocessing.process.BaseProcess]) -> tuple[int, int]:
        """Items taken so far (read without the counter's lock, which a dead worker may hold), and
        the CPU time the workers still computing have used: a worker on one long item (a manager
        over many periods) takes nothing for a while, but it computes."""
        taken: int = self._taken.get_obj().value
        return taken, sum(_cpu_ticks(child.pid) for child in waiting)

    def collect(self) -> list[Any] | None:
        """Every answer in the items' order; None if a worker failed, or the workers that had not
        answered made no progress (took no item, used no CPU) for `_PATIENCE_S`: the memory its
        items needed is gone from this process, so the caller must ask again. Patience counts from
        the last progress, not from the start: a large what-if may rightly take minutes."""
        waiting = {receive: child for child, receive in self._children}
        try:
            seen, moved = self._progress(waiting.values()), time.monotonic()
            while waiting:
                for ready in wait(list(waiting), timeout=_POLL_S):
                    assert isinstance(ready, Connection)
                    del waiting[ready]
                    # Decoded (unless raw, as a what-if's are) without the collector: young
                    # collections over 5 MB of decoded JSON took half as long again as the decoding.
                    # Nothing is settled, so other threads' garbage cycles meanwhile are collected
                    # once it resumes.
                    with no_cyclic_gc():
                        self._answers.update(_received(ready, self._raw))
                progress, now = self._progress(waiting.values()), time.monotonic()
                if progress != seen:
                    seen, moved = progress, now
                elif waiting and now - moved > _PATIENCE_S:
                    _log.warning("a forked worker had not answered in time; stopping it")
                    break
        finally:
            self._reap()
        missing = self._count - len(self._answers)
        if missing:
            _log.warning("a forked worker failed; items it left unanswered: %d", missing)
            return None
        return [self._answers[i] for i in range(self._count)]


def _map(items: Sequence[T], work: Callable[[T], Any], workers: int, costs: Sequence[float] | None,
         raw: bool, detach: bool) -> list[Any] | Detached:
    cost = list(costs) if costs is not None else [1.0] * len(items)
    if len(cost) != len(items) or not all(c > 0 and math.isfinite(c) for c in cost):
        raise ValueError("costs: one positive, finite figure per item")
    workers = min(workers, len(items), usable_cpus())
    if workers <= 1 or not can_fork():
        return [work(item) for item in items]
    context = multiprocessing.get_context("fork")
    try:  # a semaphore in shared memory: a host without a usable /dev/shm has none to give
        taken = context.Value("q", 0)
    except OSError:
        _log.warning("no shared counter for forked workers; computing here", exc_info=True)
        return [work(item) for item in items]
    last = len(items) - 1
    #: `after[i]`: the cost of items i to `last - 1`, those a process takes from the counter.
    after = list(itertools.accumulate(reversed(cost[:last]), initial=0.0))[::-1]
    started = time.monotonic()
    answers: dict[int, Any] = {last: work(items[last])}
    done = cost[last]
    forked = (time.monotonic() - started) / done * after[0] >= FORK_WORTH_S
    children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    detaching = detached = False

    def fork() -> None:
        """Detached only if the rest would take `DETACH_WORTH_S` here alone: this process then
        computes nothing more, and forks a worker for each item left, up to `workers`."""
        nonlocal detaching
        left = last - taken.value
        detaching = detach and (time.monotonic() - started) / done * after[taken.value] >= DETACH_WORTH_S
        sent = work if raw else _encoding(work)  # a worker sends each answer as JSON
        _fork_all(children, context, items[:last], sent, taken, min(workers, left) if detaching else workers - 1)

    try:
        if forked:
            fork()
        while not (detaching and children) and (index := _take(taken)) < last:
            answers[index] = work(items[index])
            done += cost[index]
            if not forked and _worth_forking(time.monotonic() - started, done, after[taken.value]):
                forked = True
                fork()
        if detaching and children:
            handed = Detached(children, answers, len(items), taken, raw)
            detached = True
            return handed
        deadline = time.monotonic() + _PATIENCE_S + 2 * (time.monotonic() - started)
        for _, receive in children:
            answers.update(_collect(receive, deadline, raw))
    finally:
        if not detached:
            _reap(children)
    missing = [i for i in range(len(items)) if i not in answers]
    if missing:
        _log.warning("a forked worker failed; items left to compute here: %d", len(missing))
        answers.update((i, work(items[i])) for i in missing)
    return [answers[i] for i in range(len(items))]


def _fork_all(children: list[tuple[multiprocessing.process.BaseProcess, Connection]], context: Any,
              items: Sequence[T], work: Callable[[T], Any], taken: Synchronized[int], count: int) -> None:
    """Start `count` workers into `children` one by one, so that each started one is stopped and
    reaped in the end even if a later start fails."""
    for _ in range(count):
        if (child := _fork(context, items, work, taken)) is not None:
            children.append(child)


def _reap_detached(children: list[tuple[multiprocessing.process.BaseProcess, Connection]],
                   taken: Synchronized[int]) -> None:
    """`_reap`, holding the workers' shared counter until then (a finalizer's argument)."""
    _reap(children)


def _reap(children: list[tuple[multiprocessing.process.BaseProcess, Connection]]) -> None:
    for child, receive in children:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def _worth_forking(elapsed: float, done: float, left: float) -> bool:
    """A fork costs this process too (it faults on every page it writes first, as the worker
    does): about 0.15 s at a million events. Worth it only for work that goes on a while."""
    return elapsed >= FORK_AFTER_S and elapsed / done * left >= FORK_WORTH_S


def _take(taken: Synchronized[int]) -> int:
    """The next item's index; past the end if the counter cannot be had: a worker that died
    holding its lock (killed, say) must not stop this process, which then computes whatever
    nobody answered."""
    lock = taken.get_lock()
    if not lock.acquire(timeout=_LOCK_S):
        return sys.maxsize
    try:
        index: int = taken.value
        taken.value = index + 1
    finally:
        lock.release()
    return index


def _fork(context: Any, items: Sequence[T], work: Callable[[T], Any],
          taken: Synchronized[int]) -> tuple[multiprocessing.process.BaseProcess, Connection] | None:
    """A started worker and the end of its pipe; None if the system would not give one (memory,
    processes or descriptors): this process then does the work without it."""
    try:
        receive, send = context.Pipe(duplex=False)
    except OSError:
        _log.warning("could not open a pipe for a forked worker", exc_info=True)
        return None
    try:
        child = context.Process(target=_serve, args=(send, items, work, taken, receive, os.getpid()), daemon=True)
        child.start()
    except OSError:
        _log.warning("could not fork a worker", exc_info=True)
        receive.close()
        return None
    except BaseException:
        receive.close()
        raise
    finally:
        send.close()
    return child, receive


def _serve(send: Connection, items: Sequence[T], work: Callable[[T], Any], taken: Synchronized[int],
           receive: Connection, parent: int) -> None:
    """The forked worker. A signal meant for the service must not reach the service's event loop
    through the wakeup descriptor the two share: the worker just ends, and its share is redone.

    It closes its copy of the pipe's other end and stops once `parent` is gone (killed, say):
    otherwise it computed on and then waited for ever on a full pipe that only it still held,
    keeping what it inherited open, a projector's election connection among them, so that no
    standby could lead (decision 134)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    receive.close()

    def orphaned() -> bool:
        return os.getppid() != parent

    answers = []
    while not orphaned() and (index := _take(taken)) < len(items):
        answers.append((index, work(items[index])))
    if orphaned():
        return  # nobody to answer
    send.send_bytes(_message(answers))
    send.close()


#: Separates a worker's answers in its message: orjson writes no control character outside a
#: string, and escapes every one inside.
_SEP = b"\x1e"


def _encoding(work: Callable[[T], Any]) -> Callable[[T], bytes]:
    """`work`, its answer encoded as JSON (by the worker, for `_message`)."""
    return lambda item: orjson.dumps(work(item))


def _message(answers: list[tuple[int, bytes]]) -> bytes:
    """A worker's answers, each already JSON (`_encoding`, or raw): their indexes as JSON, then
    each answer, each after a `_SEP`: the receiver decodes each on its own, or none (raw)."""
    return _SEP.join([orjson.dumps([index for index, _ in answers]), *(answer for _, answer in answers)])


def _collect(receive: Connection, deadline: float, raw: bool) -> list[tuple[int, Any]]:
    """A worker's answers as (index, answer) pairs; none if it ended without answering (its error
    is on stderr) or had not answered by the deadline (`time.monotonic()`)."""
    try:
        if receive.poll(max(deadline - time.monotonic(), 0)):
            return _received(receive, raw)
        _log.warning("a forked worker had not answered in time; stopping it")
    except (EOFError, OSError):
        pass
    return []


def _cpu_ticks(pid: int | None) -> int:
    """A process's CPU time so far, in clock ticks (user and kernel, `/proc/<pid>/stat`); 0 if it
    cannot be read (the process is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _received(receive: Connection, raw: bool) -> list[tuple[int, Any]]:
    """The answers of a worker whose pipe is ready (`_message`), decoded unless raw; none if it
    ended without answering."""
    try:
        head, *answers = receive.recv_bytes().split(_SEP)
    except (EOFError, OSError):
        return []
    return list(zip(orjson.loads(head), answers if raw else map(orjson.loads, answers), strict=True))
