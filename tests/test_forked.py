"""Work shared with forked workers (`replay.forked`): the same answers in the same order, whatever
a worker does."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from replay import forked

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="workers are forked on Linux only")


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork after the first item, on a machine with two CPUs at least (detached, if asked)."""
    monkeypatch.setattr(forked, "FORK_AFTER_S", 0.0)
    monkeypatch.setattr(forked, "FORK_WORTH_S", 0.0)
    monkeypatch.setattr(forked, "DETACH_WORTH_S", 0.0)
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)


def _square(n: int) -> list[int]:
    time.sleep(0.002)
    return [n * n, os.getpid()]


def _failing_in_workers(behaviour: Callable[[], Any]) -> Callable[[int], list[int]]:
    parent = os.getpid()

    def work(n: int) -> list[int]:
        if os.getpid() != parent:
            behaviour()
        return _square(n)

    return work


@pytest.mark.usefixtures("eager")
def test_a_forked_worker_shares_the_items_and_answers_come_back_in_order() -> None:
    answers = map_squares(_square, 2)
    assert len({pid for _, pid in answers}) == 2  # both processes computed some
    assert not multiprocessing.active_children()


def map_squares(work: Callable[[int], list[int]], workers: int, count: int = 200) -> list[list[int]]:
    answers = forked.map_forked(list(range(count)), work, workers)
    assert [square for square, _ in answers] == [n * n for n in range(count)]
    return answers


@pytest.mark.usefixtures("eager")
@pytest.mark.parametrize(("behaviour", "logged"), [
    (lambda: os._exit(3), "a forked worker failed; items left to compute here: 1"),
    (lambda: time.sleep(3600), "a forked worker had not answered in time; stopping it"),
], ids=["dies", "hangs"])
def test_a_worker_that_dies_or_hangs_leaves_its_items_to_the_parent(
    behaviour: Callable[[], Any], logged: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(forked, "_PATIENCE_S", 0.1)
    with caplog.at_level(logging.WARNING, "ledger.forked"):
        answers = map_squares(_failing_in_workers(behaviour), 2)
    assert {pid for _, pid in answers} == {os.getpid()}
    assert logged in caplog.text
    assert not multiprocessing.active_children()


def _killed_midway(pid_file: Path) -> None:
    """A process sharing work with a forked worker, killed (no clean-up) once the worker is at it."""
    def two_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
        return 2

    forked.FORK_AFTER_S, forked.FORK_WORTH_S = 0.0, 0.0  # this process's own copy of the module
    forked.usable_cpus = two_cpus
    me = os.getpid()

    def work(n: int) -> int:
        if os.getpid() != me and not pid_file.exists():
            pid_file.write_text(str(os.getpid()))
        elif os.getpid() == me and pid_file.exists():
            os._exit(9)  # as a SIGKILL would end it
        time.sleep(0.02)
        return n

    forked.map_forked(list(range(5_000)), work, 2)  # 100 s of work if nobody stopped


def _ended(pid: int) -> bool:
    """Whether the process is gone or a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_worker_whose_parent_is_killed_stops(tmp_path: Path) -> None:
    """Its parent killed mid-way (a SIGKILL, the kernel's OOM killer), a worker computed its share on
    and then waited for ever to send it, holding what it inherited: a projector's election
    connection, so no standby could lead (decision 134). Now it stops after its item in hand."""
    pid_file = tmp_path / "worker.pid"
    middle = multiprocessing.get_context("fork").Process(target=_killed_midway, args=(pid_file,))
    middle.start()
    middle.join(60)
    assert middle.exitcode == 9
    worker = int(pid_file.read_text())
    deadline = time.monotonic() + 30  # its items take 20 ms each: far less unless it went on
    while not _ended(worker):
        assert time.monotonic() < deadline, "the orphaned worker is still computing"
        time.sleep(0.05)


@pytest.mark.usefixtures("eager")
def test_a_fork_the_system_refuses_leaves_the_work_to_the_parent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    monkeypatch.setattr(forked, "usable_cpus", lambda: 4)
    with caplog.at_level(logging.WARNING, "ledger.forked"):
        answers = map_squares(_square, 3)
    assert {pid for _, pid in answers} == {os.getpid()}
    assert caplog.text.count("could not fork a worker") == 2


@pytest.mark.usefixtures("eager")
def test_a_host_without_shared_memory_computes_everything_here(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The shared counter is a semaphore in /dev/shm; a container may have none to give."""
    def no_shm(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/dev/shm")

    monkeypatch.setattr(multiprocessing.context.ForkContext, "Value", no_shm)
    with caplog.at_level(logging.WARNING, "ledger.forked"):
        answers = map_squares(_square, 2)
    assert {pid for _, pid in answers} == {os.getpid()}
    assert "no shared counter for forked workers" in caplog.text


@pytest.mark.usefixtures("eager")
def test_a_worker_started_before_a_later_start_fails_is_stopped_and_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    started = multiprocessing.process.BaseProcess.start
    starts: list[int] = []

    def second_fails(self: multiprocessing.process.BaseProcess) -> None:
        starts.append(1)
        if len(starts) > 1:
            raise RuntimeError("out of something")
        started(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", second_fails)
    monkeypatch.setattr(forked, "usable_cpus", lambda: 3)
    with pytest.raises(RuntimeError, match="out of something"):
        forked.map_forked(list(range(200)), _square, 3)
    assert len(starts) == 2
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
def test_a_worker_that_dies_holding_the_counter_does_not_stop_the_parent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def die_holding_it(send: object, items: object, work: object, taken: Any, *rest: object) -> None:
        taken.get_lock().acquire()
        os._exit(9)

    monkeypatch.setattr(forked, "_LOCK_S", 0.2)
    monkeypatch.setattr(forked, "_serve", die_holding_it)
    with caplog.at_level(logging.WARNING, "ledger.forked"):
        answers = map_squares(_square, 2)
    assert {pid for _, pid in answers} == {os.getpid()}
    assert "a forked worker failed; items left to compute here" in caplog.text
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
def test_an_error_in_the_parent_stops_the_workers() -> None:
    parent = os.getpid()

    def work(n: int) -> list[int]:
        if os.getpid() == parent and n >= 20:
            raise ValueError("bad item")
        return _square(n)

    with pytest.raises(ValueError, match="bad item"):
        forked.map_forked(list(range(200)), work, 2)
    assert not multiprocessing.active_children()


def test_short_work_is_never_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)
    answers = map_squares(lambda n: [n * n, os.getpid()], 2)
    assert {pid for _, pid in answers} == {os.getpid()}


@pytest.mark.usefixtures("eager")
def test_one_worker_or_one_cpu_forks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {pid for _, pid in map_squares(_square, 1, count=20)} == {os.getpid()}
    monkeypatch.setattr(forked, "usable_cpus", lambda: 1)
    assert {pid for _, pid in map_squares(_square, 4, count=20)} == {os.getpid()}


@pytest.mark.parametrize(("cpu_max", "limit"), [
    ("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000\n", 1), ("50000 100000\n", 1),
    ("400000 100000\n", 4), (None, None), ("garbled\n", None),
])
def test_usable_cpus_respect_a_cgroup_quota(tmp_path: Path, cpu_max: str | None, limit: int | None) -> None:
    """`docker run --cpus=1.5` writes `150000 100000`: one whole CPU, so no worker is forked."""
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max)
    cpus = len(os.sched_getaffinity(0))
    assert forked.usable_cpus(tmp_path) == (cpus if limit is None else min(cpus, limit))


def test_the_last_item_is_done_first_and_a_costly_rest_forks_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Costly items come first: waiting for the first to finish before forking left the second CPU
    idle meanwhile. The last (cheapest) item is a probe: at its cost, the others take long enough."""
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)
    monkeypatch.setattr(forked, "FORK_AFTER_S", 3600.0)  # the check after each item never forks here
    monkeypatch.setattr(forked, "FORK_WORTH_S", 0.1)  # 199 more items of 2 ms each: 0.4 s
    parent = os.getpid()
    done_here: list[int] = []

    def work(n: int) -> list[int]:
        if os.getpid() == parent:
            done_here.append(n)
        return _square(n)

    answers = map_squares(work, 2)
    assert done_here[0] == 199
    assert len({pid for _, pid in answers}) == 2
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
def test_detached_workers_compute_every_item_but_the_probe_and_answer_in_order() -> None:
    """Decision 138: detached, this process computes the probe (the last item) and forks as many
    workers as it was given; they compute the rest while the caller goes on."""
    detached = forked.map_detached(list(range(200)), _square, 2)
    assert isinstance(detached, forked.Detached)
    answers = detached.collect()
    assert answers is not None
    assert [square for square, _ in answers] == [n * n for n in range(200)]
    assert [n for n, (_, pid) in enumerate(answers) if pid == os.getpid()] == [199]
    assert len({pid for _, pid in answers[:199]}) == 2  # two workers, neither of them this process
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
@pytest.mark.parametrize("behaviour", [lambda: os._exit(3), lambda: time.sleep(3600)], ids=["dies", "hangs"])
def test_a_detached_worker_that_dies_or_hangs_leaves_nothing_to_collect(
    behaviour: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its items needed the memory as it was at the fork: this process cannot compute them now, so
    the caller is told (None) and asks again."""
    monkeypatch.setattr(forked, "_PATIENCE_S", 0.1)
    detached = forked.map_detached(list(range(200)), _failing_in_workers(behaviour), 2)
    assert isinstance(detached, forked.Detached)
    with caplog.at_level(logging.WARNING, "ledger.forked"):
        assert detached.collect() is None
    assert "a forked worker failed; items it left unanswered: 199" in caplog.text
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
def test_detached_work_no_worker_could_be_forked_for_is_computed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    answers = forked.map_detached(list(range(50)), _square, 2)
    assert isinstance(answers, list)
    assert answers == [[n * n, os.getpid()] for n in range(50)]


def test_short_detached_work_is_computed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)
    answers = forked.map_detached(list(range(200)), lambda n: [n * n, os.getpid()], 2)
    assert answers == [[n * n, os.getpid()] for n in range(200)]


@pytest.mark.usefixtures("eager")
def test_overlapping_detached_work_keeps_its_own_counter() -> None:
    """Decision 138's review: a detached map's shared counter must live until its workers are
    reaped. Freed when the map returned, its memory was the next map's counter, and each map's
    workers took the other's items: both came back incomplete."""
    release = multiprocessing.get_context("fork").Event()
    parent = os.getpid()

    def waiting(n: int) -> list[int]:
        if os.getpid() != parent:
            assert release.wait(30)
        return _square(n)

    first = forked.map_detached(list(range(40)), waiting, 2)
    second = forked.map_detached(list(range(40)), waiting, 2)
    release.set()
    for detached in (first, second):
        assert isinstance(detached, forked.Detached)
        answers = detached.collect()
        assert answers is not None
        assert [square for square, _ in answers] == [n * n for n in range(40)]
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
def test_detached_workers_are_waited_for_while_they_take_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patience counts from the last item taken: work that goes on for minutes is not given up."""
    monkeypatch.setattr(forked, "_PATIENCE_S", 1.0)
    parent = os.getpid()

    def slow(n: int) -> list[int]:
        if os.getpid() != parent:
            time.sleep(0.2)
        return _square(n)

    detached = forked.map_detached(list(range(21)), slow, 2)  # ten items each: two seconds, past 1 s
    assert isinstance(detached, forked.Detached)
    answers = detached.collect()
    assert answers is not None and [square for square, _ in answers] == [n * n for n in range(21)]


@pytest.mark.usefixtures("eager")
def test_detached_work_forks_no_more_workers_than_items_left(monkeypatch: pytest.MonkeyPatch) -> None:
    forks: list[int] = []
    fork = forked._fork

    def counted(*args: Any) -> Any:
        forks.append(1)
        return fork(*args)

    monkeypatch.setattr(forked, "_fork", counted)
    detached = forked.map_detached([1, 2], _square, 2)  # the probe here, one item left
    assert isinstance(detached, forked.Detached)
    answers = detached.collect()
    assert answers is not None and [square for square, _ in answers] == [1, 4]
    assert len(forks) == 1


@pytest.mark.usefixtures("eager")
def test_a_detached_worker_computing_one_long_item_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A manager over many periods may take a worker longer than the patience, taking no other item
    meanwhile; it computes (its CPU time grows), so it is not given up (decision 138's review)."""
    monkeypatch.setattr(forked, "_PATIENCE_S", 0.3)
    parent = os.getpid()

    def long(n: int) -> list[int]:
        if os.getpid() != parent:
            until = time.monotonic() + 1.5
            while time.monotonic() < until:  # busy, as the statement engine is
                pass
        return _square(n)

    detached = forked.map_detached([0, 1, 2], long, 2)  # the probe here; one long item per worker
    assert isinstance(detached, forked.Detached)
    answers = detached.collect()
    assert answers is not None and [square for square, _ in answers] == [0, 1, 4]


def test_a_late_detached_fork_starts_no_more_workers_than_items_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked after this process computed some items, a detached map starts one worker per item
    left at most: another would cost a fork for nothing."""
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)
    monkeypatch.setattr(forked, "FORK_AFTER_S", 0.0)
    monkeypatch.setattr(forked, "FORK_WORTH_S", 0.1)  # not at once (the probe is quick); after item 0
    monkeypatch.setattr(forked, "DETACH_WORTH_S", 0.1)
    forks: list[int] = []
    fork = forked._fork

    def counted(*args: Any) -> Any:
        forks.append(1)
        return fork(*args)

    def first_slow(n: int) -> list[int]:
        if n == 0:
            time.sleep(0.4)
        return _square(n)

    monkeypatch.setattr(forked, "_fork", counted)
    detached = forked.map_detached([0, 1, 2], first_slow, 2)
    assert isinstance(detached, forked.Detached)
    answers = detached.collect()
    assert answers is not None and [square for square, _ in answers] == [0, 1, 4]
    assert len(forks) == 1


@pytest.mark.usefixtures("eager")
def test_detached_work_shorter_than_detaching_is_worth_is_shared_with_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Detached workers each copy the pages they write (decision 138): work that would take less
    than `DETACH_WORTH_S` here alone is shared as `map_forked` shares it, this process included."""
    monkeypatch.setattr(forked, "DETACH_WORTH_S", 3600.0)
    answers = forked.map_detached(list(range(200)), _square, 2)
    assert isinstance(answers, list)
    assert [square for square, _ in answers] == [n * n for n in range(200)]
    pids = {pid for _, pid in answers[:199]}
    assert os.getpid() in pids and len(pids) == 2  # this process and one worker
    assert not multiprocessing.active_children()


def _costly_first(n: int) -> list[int]:
    """Items 0 and 1 take 0.5 s, the others (the probe among them) 2 ms."""
    if n < 2:
        time.sleep(0.5)
    return _square(n)


def test_costs_make_a_few_costly_items_among_cheap_ones_detached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 139: the probe (the last, cheapest item) takes 2 ms; at its cost the eleven items
    left look like 22 ms, and were shared with this process, the caller's lock held throughout,
    though the two costly ones among them take a second. With their costs, the rest looks like
    2 ms × (500 + 500 + 9): detached."""
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)
    monkeypatch.setattr(forked, "FORK_AFTER_S", 0.0)
    monkeypatch.setattr(forked, "FORK_WORTH_S", 0.0)
    monkeypatch.setattr(forked, "DETACH_WORTH_S", 1.0)
    items, costs = list(range(12)), [500.0, 500.0] + [1.0] * 10
    shared = forked.map_detached(items, _costly_first, 2)
    assert isinstance(shared, list) and [square for square, _ in shared] == [n * n for n in items]
    detached = forked.map_detached(items, _costly_first, 2, costs)
    assert isinstance(detached, forked.Detached)
    answers = detached.collect()
    assert answers is not None and [square for square, _ in answers] == [n * n for n in items]
    assert [n for n, (_, pid) in enumerate(answers) if pid == os.getpid()] == [11]  # the probe only
    assert not multiprocessing.active_children()


def test_costs_fork_a_costly_rest_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the probe's 2 ms the two items left look like 4 ms, not worth a fork: all were computed
    here, one after the other. Costed at 250 probes each, they are forked at once."""
    monkeypatch.setattr(forked, "usable_cpus", lambda: 2)
    monkeypatch.setattr(forked, "FORK_AFTER_S", 3600.0)  # the check after each item never forks here
    monkeypatch.setattr(forked, "FORK_WORTH_S", 0.1)
    items = [0, 1, 2]
    assert {pid for _, pid in forked.map_forked(items, _costly_first, 2)} == {os.getpid()}
    answers = forked.map_forked(items, _costly_first, 2, [250.0, 250.0, 1.0])
    assert [square for square, _ in answers] == [0, 1, 4]
    assert len({pid for _, pid in answers[:2]}) == 2  # the costly two computed at once, here and in a worker
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("costs", [[1.0, 1.0], [1.0, 0.0, 1.0], [1.0, -1.0, 1.0], [1.0, math.inf, 1.0]],
                         ids=["too few", "zero", "negative", "infinite"])
def test_costs_are_one_positive_finite_figure_per_item(
    costs: list[float], cpus: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused wherever the work runs, on one CPU too (the work is then computed here)."""
    monkeypatch.setattr(forked, "usable_cpus", lambda: cpus)
    with pytest.raises(ValueError, match="costs: one positive, finite figure per item"):
        forked.map_forked([0, 1, 2], _square, 2, costs)


@pytest.mark.usefixtures("eager")
def test_detached_work_dropped_without_collecting_stops_its_workers() -> None:
    """Whatever leaves a `Detached` uncollected (an error between the fork and the collection),
    its workers do not compute on for nobody, nor stay unreaped (decision 138's review)."""
    parent = os.getpid()

    def endless_in_workers(n: int) -> list[int]:
        if os.getpid() != parent:
            time.sleep(3600)
        return _square(n)

    detached = forked.map_detached(list(range(20)), endless_in_workers, 2)
    assert isinstance(detached, forked.Detached)
    workers = multiprocessing.active_children()
    assert len(workers) == 2
    del detached
    assert not multiprocessing.active_children()
    assert all(worker.exitcode is not None for worker in workers)


def _encoded(n: int) -> bytes:
    """An answer already encoded, with a string holding the separator of a worker's message."""
    time.sleep(0.002)
    return orjson.dumps({"n": n * n, "text": "a\x1eb", "pid": os.getpid()})


@pytest.mark.usefixtures("eager")
@pytest.mark.parametrize("detach", [False, True], ids=["shared", "detached"])
def test_raw_answers_come_back_as_encoded_from_every_process(detach: bool) -> None:
    """Decision 141: answers already encoded are handed back as they are, never decoded and
    encoded again, whichever process computed them; a string that holds the byte separating a
    worker's answers is escaped in JSON, so it never splits one."""
    items = list(range(200))
    mapped = forked.map_detached(items, _encoded, 2, raw=True) if detach else forked.map_forked(
        items, _encoded, 2, raw=True)
    answers = mapped.collect() if isinstance(mapped, forked.Detached) else mapped
    assert answers is not None and all(isinstance(answer, bytes) for answer in answers)
    decoded = [orjson.loads(answer) for answer in answers]
    assert [(d["n"], d["text"]) for d in decoded] == [(n * n, "a\x1eb") for n in items]
    assert len({d["pid"] for d in decoded}) == (3 if detach else 2)  # detached: the probe here, two workers
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("eager")
def test_answers_holding_the_separator_are_decoded_whole() -> None:
    """Answers that are not raw are encoded by the worker and decoded here one by one."""
    parent = os.getpid()

    def work(n: int) -> dict[str, Any]:
        time.sleep(0.002)
        return {"n": n, "text": "\x1e" * n, "here": os.getpid() == parent}

    answers = forked.map_forked(list(range(200)), work, 2)
    assert [(a["n"], a["text"]) for a in answers] == [(n, "\x1e" * n) for n in range(200)]
    assert {a["here"] for a in answers} == {True, False}
