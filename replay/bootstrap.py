"""The composition root: build the whole ledger from settings, the same way everywhere.

The service, the CLI and the tests all call `build`; only the settings differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.appender import LedgerLog
from ledger.settings import Settings, parse_database_url
from ledger.store import EventStore
from ledger.tokens import TokenRegistry
from replay.asof import Books


@dataclass
class Services:
    settings: Settings
    store: EventStore
    log: LedgerLog
    books: Books
    tokens: TokenRegistry

    def close(self) -> None:
        self.books.close()
        self.log.close()
        self.store.close()


def build(settings: Settings | None = None) -> Services:
    settings = settings or Settings()
    store = EventStore(parse_database_url(settings.database_url))
    log = LedgerLog(store, settings.currency)
    books = Books(log, settings.memo_lines)
    books.catch_up()
    books.follow()
    tokens = TokenRegistry(store, settings.admin_token)
    return Services(settings, store, log, books, tokens)
