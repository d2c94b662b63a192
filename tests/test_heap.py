"""Pauses of the cyclic collector in several threads at once (`ledger.heap`, decision 80)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import ledger.heap
from ledger.heap import no_cyclic_gc


class _Switch:
    """The collector's on/off switch, standing in for `gc`'s; `between` runs once, in the middle
    of the next read of the switch: what another thread might do between a read and a write."""

    def __init__(self) -> None:
        self.enabled = True
        self.between: Callable[[], None] | None = None

    def isenabled(self) -> bool:
        enabled = self.enabled
        if self.between is not None:
            between, self.between = self.between, None
            between()
        return enabled

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def freeze(self) -> None:
        pass


@pytest.fixture
def switch(monkeypatch: pytest.MonkeyPatch) -> _Switch:
    fake = _Switch()
    monkeypatch.setattr(ledger.heap, "gc", fake)
    monkeypatch.setattr(ledger.heap, "_PAUSES", ledger.heap._Pauses())
    return fake


def test_pauses_overlapping_in_two_threads_leave_the_collector_on(switch: _Switch) -> None:
    """A fold ends in another thread while the committer begins its pause (where the two-step code
    read the switch; the counting code does not read it then, and the fold's end is forced after
    the second pause began). The collector stays off until the last pause ends, then is on again."""
    first, second = no_cyclic_gc(), no_cyclic_gc()
    first.__enter__()
    ended = threading.Thread(target=first.__exit__, args=(None, None, None))

    def end_the_first() -> None:
        if ended.ident is None:
            ended.start()
            ended.join(0.2)  # it waits for the second pause to have begun, if anything makes it wait

    switch.between = end_the_first
    with second:
        end_the_first()  # now, if the second pause did not read the switch
        ended.join(5)
        assert not ended.is_alive()
        assert not switch.enabled  # the second pause still holds
    assert switch.enabled


def test_a_pause_inside_a_pause_resumes_only_at_the_outer_end(switch: _Switch) -> None:
    with no_cyclic_gc():
        with no_cyclic_gc(settling=True):
            assert not switch.enabled
        assert not switch.enabled
    assert switch.enabled


def test_a_collector_switched_off_by_someone_else_stays_off(switch: _Switch) -> None:
    switch.enabled = False
    with no_cyclic_gc():
        pass
    assert not switch.enabled
