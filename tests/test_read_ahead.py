"""Whole-log reads fetch the next page while they work on the one before (decision 69)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import replay.asof
from ledger.store import EventStore
from replay.bootstrap import Services
from tests.support import Api


def _small_log(api: Api) -> None:
    for n in range(4):
        api.participant(f"r{n}")
    api.plan("p")
    api.assign("r1", "p")
    api.deal("d1", "2026-01-10", "1000", "r1")
    api.deal("d2", "2026-01-11", "2500", "r1")


def test_start_up_reads_pages_ahead_and_folds_the_same_books(
    api: Api, make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_log(api)
    readers: list[str] = []
    select = EventStore._select_range

    def recorded(self: EventStore, *args: Any, **kwargs: Any) -> Any:
        readers.append(threading.current_thread().name)
        return select(self, *args, **kwargs)

    monkeypatch.setattr(EventStore, "_select_range", recorded)
    monkeypatch.setattr(replay.asof, "_PAGE", 3)
    restarted = make_services()
    start_up = list(readers)
    assert restarted.books.head.position == api.head() == 8
    assert restarted.books.head.statement("r1", "2026-01").body(8) == api.statement("r1", "2026-01")
    if restarted.store.kind == "postgres":
        # Pages of three: 1 read, 2 and 3 read ahead, the short page 3 read again, the empty page 4.
        assert [name.startswith("ledger-read-ahead") for name in start_up] == [False, True, True, False, False]


def test_a_short_page_read_ahead_is_read_again(api: Api) -> None:
    """Read ahead before the log grew, it would look like the end of the log."""
    _small_log(api)
    store = api.services.store
    assert [position for position, _, _ in store.read_rows(0, 6, page=6, ahead=True)] == list(range(1, 7))
    pending = store._read_ahead._pending
    if store.kind == "postgres":
        assert pending is not None and len(pending[2].result()) == 2  # positions 7 and 8 of (6, 12]
    for n in range(4):
        api.target("r1", f"2026-0{n + 1}", "1000")
    assert [position for position, _, _ in store.read_rows(6, 12, page=6, ahead=True)] == list(range(7, 13))

