"""Bearer tokens (§7): issued, listed and revoked as events in their own table.

Only a SHA-256 digest of each token is stored. Tokens are 256 random bits, so a
fast digest is as safe as a slow password hash here, and lets every request be
checked in microseconds. The lookup is by digest; the final comparison is
constant-time. Each check first reads token events other processes wrote, so a
revocation takes effect everywhere on the next request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ledger.store import EventStore, PositionTaken

Role = Literal["admin", "finance", "integration", "manager", "rep"]
ROLES: tuple[Role, ...] = ("admin", "finance", "integration", "manager", "rep")
BOOTSTRAP_ADMIN_ID = "bootstrap-admin"
_ENV_ADMIN_ID = "env-admin"
_SALT_ID = "pseudonym-salt"
#: Token events read per query: a registry reads on until a page comes back short (decision 120).
PAGE = 10_000


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    participant_id: str | None
    expires_at: datetime | None = None
    revoked: bool = False

    def body(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "role": self.role,
            "participant_id": self.participant_id,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "revoked": self.revoked,
        }


class TokenRegistry:
    def __init__(self, store: EventStore, env_admin_token: str | None = None) -> None:
        self._store = store
        self._by_digest: dict[str, Principal] = {}
        self._by_id: dict[str, str] = {}
        self._seen = 0
        self._salt: str | None = None
        self._lock = threading.Lock()
        # Stripped as a presented token is: a secret file's trailing newline must not lock the admin out.
        env_admin_token = (env_admin_token or "").strip()
        self._env_admin = digest(env_admin_token) if env_admin_token else None

    def _refresh(self) -> None:
        """Take in every token event stored since the last look, page by page: one page a request
        left a process that had just started (or had not looked while more than a page was stored)
        answering from the first pages only, a token revoked after them still valid (decision 120)."""
        with self._lock:
            while True:
                page = self._store.read_token_events(self._seen, PAGE)
                self._take(page)
                if len(page) < PAGE:
                    return

    def _take(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Token events, in order, into the registry's tables (the caller holds its lock)."""
        for notification_id, body in events:
            self._seen = notification_id
            if body["type"] == "TokenIssued":
                expires = body.get("expires_at")
                principal = Principal(
                    body["token_id"],
                    body["role"],
                    body.get("participant_id"),
                    datetime.fromisoformat(expires) if expires else None,
                )
                self._by_digest[body["digest"]] = principal
                self._by_id[principal.token_id] = body["digest"]
            elif body["type"] == "SaltGenerated":
                self._salt = body["salt"]
            elif body["type"] == "TokenRevoked":
                key = self._by_id[body["token_id"]]
                old = self._by_digest[key]
                self._by_digest[key] = Principal(
                    old.token_id, old.role, old.participant_id, old.expires_at, True
                )

    def ensure_bootstrap_admin(self) -> str | None:
        """Generate the first admin token when none is configured; return it once, else None."""
        self._refresh()
        if self._env_admin is not None or BOOTSTRAP_ADMIN_ID in self._by_id:
            return None
        token = "pl_" + secrets.token_urlsafe(32)
        try:
            self._issue(BOOTSTRAP_ADMIN_ID, token, "admin", None, None)
        except PositionTaken:  # another process starting on the same new database issued it first
            self._refresh()
            return None
        return token

    def _issue(
        self, token_id: str, token: str, role: Role, participant_id: str | None, expires_at: datetime | None
    ) -> None:
        self._store.append_token_event(
            token_id,
            1,
            {
                "type": "TokenIssued",
                "token_id": token_id,
                "role": role,
                "participant_id": participant_id,
                "expires_at": None if expires_at is None else expires_at.isoformat(),
                "digest": digest(token),
                "issued_at": datetime.now(UTC).isoformat(),
            },
        )
        self._refresh()

    def issue(self, role: Role, participant_id: str | None, expires_at: datetime | None) -> tuple[str, str]:
        token_id = "tok_" + secrets.token_hex(8)
        token = "pl_" + secrets.token_urlsafe(32)
        self._issue(token_id, token, role, participant_id, expires_at)
        return token_id, token

    def revoke(self, token_id: str) -> bool:
        """False when no such token exists (already revoked counts as found)."""
        self._refresh()
        key = self._by_id.get(token_id)
        if key is None:
            return False
        if not self._by_digest[key].revoked:
            with contextlib.suppress(PositionTaken):  # revoked by another process at the same moment
                self._store.append_token_event(token_id, 2, {"type": "TokenRevoked", "token_id": token_id})
            self._refresh()
        return True

    def salt(self) -> str:
        """A random per-ledger secret, made once, for stable ranking pseudonyms."""
        self._refresh()
        if self._salt is None:
            with contextlib.suppress(PositionTaken):  # another process made it first
                self._store.append_token_event(
                    _SALT_ID, 1, {"type": "SaltGenerated", "token_id": _SALT_ID, "salt": secrets.token_hex(16)}
                )
            self._refresh()
        assert self._salt is not None
        return self._salt

    def list(self) -> list[Principal]:
        self._refresh()
        return sorted((self._by_digest[k] for k in self._by_id.values()), key=lambda p: p.token_id)

    def configured_admin(self, token: str) -> Principal | None:
        """The admin of LEDGER_ADMIN_TOKEN, recognised without the database (nothing to revoke)."""
        if self._env_admin is not None and hmac.compare_digest(digest(token), self._env_admin):
            return Principal(_ENV_ADMIN_ID, "admin", None)
        return None

    def authenticate(self, token: str, now: datetime) -> Principal | None:
        """Any token; issued ones are checked against the token events stored so far (revocations
        from other processes count at once), which reads the database."""
        admin = self.configured_admin(token)
        if admin is not None:
            return admin
        presented = digest(token)
        self._refresh()
        principal = self._by_digest.get(presented)
        if principal is None or not hmac.compare_digest(self._by_id[principal.token_id], presented):
            return None
        if principal.revoked or (principal.expires_at is not None and principal.expires_at <= now):
            return None
        return principal
