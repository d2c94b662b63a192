"""Who may do what (§7): a table of role x endpoint x expected status, plus the 401 rules and view filtering.

Every row of `TABLE` is one request; each role runs the whole table in a ledger of its own (on SQLite and
on PostgreSQL), so appends that a role may make succeed against a known state. Any request that is not
answered 2xx must leave the event store and the token registry exactly as they were.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from replay.bootstrap import Services
from tests.support import Api, rules

ROLES = ("admin", "finance", "integration", "manager", "rep")
AUDITORS = frozenset({"admin", "finance"})
READERS = frozenset({"admin", "finance", "manager", "rep"})
PERIOD = "2026-01"
_fresh = itertools.count(1)

# The world every role test starts from (participants by team and manager, as of 2026-01-31):
#   t1: m1 (no manager), r1 -> m1, r2 -> m1          t2: m2, r3 -> m2
#   t3: r4 -> m1 (a direct report in another team)   t9: spare (target of the mutating events)
#   r5: t2 under m2 until 2026-01-14, then t1 under m1 (a transfer within January)
# Tokens: manager = m1, rep = r1.


def build_world(api: Api) -> dict[str, str]:
    api.participant("m1", "t1")
    api.participant("r1", "t1", "m1")
    api.participant("r2", "t1", "m1")
    api.participant("m2", "t2")
    api.participant("r3", "t2", "m2")
    api.participant("r4", "t3", "m1")
    api.participant("r5", "t2", "m2")
    api.participant("spare", "t9")
    api.add("ParticipantTransferred", "world-transfer", participant_id="r5", team_id="t1", manager_id="m1",
            effective_date="2026-01-15")
    api.plan("p", tiers=[("0", "0.05"), ("1.0", "0.10")])
    for who in ("m1", "r1", "r2", "m2", "r3", "r4", "r5", "spare"):
        api.assign(who, "p")
    for who, amount in (("r1", "10000"), ("r2", "20000"), ("r3", "5000"), ("m1", "50000"), ("r5", "1000")):
        api.target(who, PERIOD, amount)
    api.deal("d1", "2026-01-05", "6000", "r1")
    api.deal("d2", "2026-01-06", "9000", "r2")
    api.deal("d3", "2026-01-07", "7000", "r3")
    api.deal("d4", "2026-01-08", "3000", "r4")
    api.deal("d5", "2026-01-20", "2000", "r5")
    api.deal("dspare", "2026-01-09", "1000", "spare")
    api.deal("dcancel", "2026-01-09", "1000", "spare")
    api.payment("pspare", "dspare", "100", "2026-01-10")
    api.add("DisputeOpened", dispute_id="dispute-open", participant_id="spare", period=PERIOD, reason="why")
    api.close("2025-11")
    tokens = {"admin": api.headers["Authorization"].removeprefix("Bearer ")}
    for role, participant in (("finance", None), ("integration", None), ("manager", "m1"), ("rep", "r1")):
        response = api.client.post("/v1/tokens", headers=api.headers,
                                   json={"role": role, "participant_id": participant})
        assert response.status_code == 201, response.text
        tokens[role] = response.json()["token"]
        tokens[f"{role}_token_id"] = response.json()["token_id"]
    spare = api.client.post("/v1/tokens", headers=api.headers, json={"role": "finance"})
    tokens["spare_token_id"] = spare.json()["token_id"]
    return tokens


# --- the table -----------------------------------------------------------------------------------------------


def envelope(type_: str) -> dict[str, Any]:
    """A new event of each type that is valid in the world above (ids never repeat)."""
    n = next(_fresh)
    data: dict[str, Any] = {
        "ParticipantRegistered": {"participant_id": f"new-{n}", "name": "New", "team_id": "t9",
                                  "start_date": "2026-01-01"},
        "ParticipantTransferred": {"participant_id": "spare", "team_id": "t8", "effective_date": "2026-03-01"},
        "PlanPublished": {"plan_id": f"plan-{n}", "effective_from": "2026-01-01", "rules": rules()},
        "PlanAssigned": {"participant_id": "spare", "plan_id": "p", "effective_from": "2026-02-01"},
        "TargetSet": {"participant_id": "spare", "period": PERIOD, "amount": "100"},
        "DealBooked": {"deal_id": f"deal-{n}", "booked_on": "2026-01-11", "amount": "10", "currency": "USD",
                       "credits": [{"participant_id": "spare", "share": "1"}]},
        "DealAmended": {"deal_id": "dspare", "amount": "1200", "amended_on": "2026-01-12"},
        "DealCancelled": {"deal_id": "dcancel", "cancelled_on": "2026-01-12"},
        "PaymentReceived": {"payment_id": f"pay-{n}", "deal_id": "dspare", "amount": "10",
                            "received_on": "2026-01-13"},
        "PaymentReversed": {"payment_id": "pspare", "reversed_on": "2026-01-14"},
        "AdjustmentRecorded": {"adjustment_id": f"adj-{n}", "participant_id": "spare", "period": PERIOD,
                               "amount": "-5", "reason": "correction"},
        "PeriodClosed": {"period": "2025-12"},
        "DisputeOpened": {"dispute_id": f"dispute-{n}", "participant_id": "spare", "period": PERIOD,
                          "reason": "missing deal"},
        "DisputeResolved": {"dispute_id": "dispute-open", "resolution": "rejected", "note": "checked"},
    }[type_]
    return {"event_id": f"roles-{n}", "type": type_, "data": data}


def what_if_body(*participant_ids: str, events: list[dict[str, Any]] | None = None) -> Callable[[], Any]:
    def make() -> dict[str, Any]:
        hypothetical = events if events is not None else [{
            "event_id": f"wi-{next(_fresh)}", "type": "DealBooked",
            "data": {"deal_id": f"wi-deal-{next(_fresh)}", "booked_on": "2026-01-21", "amount": "500",
                     "currency": "USD", "credits": [{"participant_id": p, "share": "1"} for p in participant_ids]}}]
        return {"events": hypothetical, "periods": [PERIOD], "participant_ids": list(participant_ids)}
    return make


TRANSFER_R3_UNDER_M1 = [{"event_id": "wi-transfer", "type": "ParticipantTransferred",
                         "data": {"participant_id": "r3", "team_id": "t1", "manager_id": "m1",
                                  "effective_date": "2026-01-01"}}]
TRANSFER_R3_UNDER_R1 = [{"event_id": "wi-transfer", "type": "ParticipantTransferred",
                         "data": {"participant_id": "r3", "team_id": "t1", "manager_id": "r1",
                                  "effective_date": "2026-01-01"}}]


def only(roles: frozenset[str] | set[str], ok: int = 200, **others: int) -> dict[str, int]:
    """`ok` for `roles`, a given code for some named roles, 403 for the rest."""
    return {role: others.get(role, ok if role in roles else 403) for role in ROLES}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    expect: dict[str, int]
    body: Callable[[], Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)


APPEND_RIGHTS = {
    "admin": {"ParticipantRegistered", "ParticipantTransferred", "PlanPublished", "PlanAssigned", "TargetSet",
              "DealBooked", "DealAmended", "DealCancelled", "PaymentReceived", "PaymentReversed",
              "AdjustmentRecorded", "PeriodClosed", "DisputeOpened", "DisputeResolved"},
    "finance": {"AdjustmentRecorded", "PeriodClosed", "DisputeOpened", "DisputeResolved"},
    "integration": {"ParticipantRegistered", "ParticipantTransferred", "DealBooked", "DealAmended",
                    "DealCancelled", "PaymentReceived", "PaymentReversed"},
    "manager": set(),
    "rep": set(),
}
EVENT_TYPES = sorted(APPEND_RIGHTS["admin"])
ALL = frozenset(ROLES)


def _append_row(type_: str) -> Row:
    may = {role for role in ROLES if type_ in APPEND_RIGHTS[role]}
    return Row(f"append {type_}", "POST", "/v1/events", only(may, 201), lambda: envelope(type_))


def _batch(*types: str) -> Callable[[], Any]:
    return lambda: {"events": [envelope(t) for t in types]}


TABLE: list[Row] = [
    *(_append_row(t) for t in EVENT_TYPES),
    Row("batch of deals", "POST", "/v1/events/batch", only({"admin", "integration"}, 201),
        _batch("DealBooked", "PaymentReceived")),
    Row("batch of finance events", "POST", "/v1/events/batch", only({"admin", "finance"}, 201),
        _batch("AdjustmentRecorded", "DisputeOpened")),
    Row("batch mixing roles' events", "POST", "/v1/events/batch", only({"admin"}, 201),
        _batch("DealBooked", "AdjustmentRecorded")),
    Row("batch with an admin-only event", "POST", "/v1/events/batch", only({"admin"}, 201),
        _batch("DealBooked", "TargetSet")),
    Row("invalid append", "POST", "/v1/events", only({"admin", "finance", "integration"}, 422),
        lambda: {"event_id": "bad", "type": "NoSuchType", "data": {}}),
    Row("event log", "GET", "/v1/events", only(AUDITORS)),
    Row("event log as of", "GET", "/v1/events", only(AUDITORS), params={"as_of_position": 3}),
    Row("one event", "GET", "/v1/events/world-transfer", only(AUDITORS)),
    Row("one unknown event", "GET", "/v1/events/no-such-event", only(AUDITORS, 404)),
    # statements: r1 is the rep, m1 the manager; r2 is the rep's teammate and m1's report; r3 is elsewhere
    Row("statement of the rep", "GET", f"/v1/statements/r1/{PERIOD}", only(READERS)),
    Row("statement of the manager", "GET", f"/v1/statements/m1/{PERIOD}", only(AUDITORS | {"manager"})),
    Row("statement of the manager's report", "GET", f"/v1/statements/r2/{PERIOD}", only(AUDITORS | {"manager"})),
    Row("statement of a report in another team", "GET", f"/v1/statements/r4/{PERIOD}",
        only(AUDITORS | {"manager"})),
    Row("statement of someone else's report", "GET", f"/v1/statements/r3/{PERIOD}", only(AUDITORS)),
    Row("statement of another manager", "GET", f"/v1/statements/m2/{PERIOD}", only(AUDITORS)),
    Row("statement of an unknown participant", "GET", f"/v1/statements/ghost/{PERIOD}", only(AUDITORS, 404)),
    Row("statement with a malformed period", "GET", "/v1/statements/r1/2026-13",
        only(READERS, 422)),
    Row("other's statement with a malformed period", "GET", "/v1/statements/r3/2026-13",
        only(AUDITORS | {"manager"}, 422)),  # a manager's check needs the period; a rep's does not
    Row("statement as of a position", "GET", f"/v1/statements/r1/{PERIOD}", only(READERS),
        params={"as_of_position": 20}),
    Row("statement line", "GET", f"/v1/statements/r1/{PERIOD}/lines/1", only(READERS)),
    Row("statement line of another", "GET", f"/v1/statements/r3/{PERIOD}/lines/1", only(AUDITORS)),
    Row("statement line of an unknown participant", "GET", f"/v1/statements/ghost/{PERIOD}/lines/1",
        only(AUDITORS, 404)),
    Row("statement line out of range", "GET", f"/v1/statements/r1/{PERIOD}/lines/99", only(READERS, 404)),
    # views
    Row("attainment", "GET", "/v1/attainment", only(AUDITORS | {"manager"}), params={"period": PERIOD}),
    Row("attainment of own team", "GET", "/v1/attainment", only(AUDITORS | {"manager"}),
        params={"period": PERIOD, "team_id": "t1"}),
    Row("attainment of another team", "GET", "/v1/attainment", only(AUDITORS),
        params={"period": PERIOD, "team_id": "t2"}),
    Row("attainment with a malformed period", "GET", "/v1/attainment", only(AUDITORS | {"manager"}, 422),
        params={"period": "x"}),
    Row("rankings", "GET", "/v1/rankings", only(READERS), params={"period": PERIOD}),
    Row("rankings of own team", "GET", "/v1/rankings", only(READERS), params={"period": PERIOD, "team_id": "t1"}),
    Row("rankings of another team", "GET", "/v1/rankings", only(AUDITORS),
        params={"period": PERIOD, "team_id": "t2"}),
    Row("rankings of a closed period", "GET", "/v1/rankings", only(READERS), params={"period": "2025-11"}),
    # what-if
    Row("what-if for the rep", "POST", "/v1/what-if", only(READERS), what_if_body("r1")),
    Row("what-if for the manager", "POST", "/v1/what-if", only(AUDITORS | {"manager"}), what_if_body("m1")),
    Row("what-if for the manager's report", "POST", "/v1/what-if", only(AUDITORS | {"manager"}),
        what_if_body("r2")),
    Row("what-if for the manager and a report", "POST", "/v1/what-if", only(AUDITORS | {"manager"}),
        what_if_body("m1", "r4")),
    Row("what-if for someone else", "POST", "/v1/what-if", only(AUDITORS), what_if_body("r3")),
    Row("what-if for an unknown participant", "POST", "/v1/what-if", only(AUDITORS, 422), what_if_body("ghost")),
    Row("what-if for an unknown participant, no events", "POST", "/v1/what-if", only(AUDITORS, 422),
        lambda: {"events": [], "periods": [PERIOD], "participant_ids": ["r1", "ghost"]}),
    Row("what-if moving a stranger under the manager", "POST", "/v1/what-if", only(AUDITORS | {"manager"}, 200,
        manager=403), what_if_body("m1", events=TRANSFER_R3_UNDER_M1)),
    Row("what-if moving a stranger under the rep", "POST", "/v1/what-if", only(AUDITORS | {"rep"}, 200, rep=403),
        what_if_body("r1", events=TRANSFER_R3_UNDER_R1)),
    Row("what-if of no period (no rows)", "POST", "/v1/what-if", only(READERS, 200, manager=403),
        lambda: {"events": [], "periods": [], "participant_ids": ["r1"]}),
    # tokens
    Row("issue a token", "POST", "/v1/tokens", only({"admin"}, 201), lambda: {"role": "finance"}),
    Row("issue a rep token", "POST", "/v1/tokens", only({"admin"}, 201),
        lambda: {"role": "rep", "participant_id": "r2"}),
    Row("issue a rep token without participant", "POST", "/v1/tokens", only({"admin"}, 422), lambda: {"role": "rep"}),
    Row("issue a manager token for an unknown participant", "POST", "/v1/tokens", only({"admin"}, 422),
        lambda: {"role": "manager", "participant_id": "ghost"}),
    Row("issue a token that expired", "POST", "/v1/tokens", only({"admin"}, 201),
        lambda: {"role": "finance", "expires_at": "2001-01-01T00:00:00+00:00"}),
    Row("list tokens", "GET", "/v1/tokens", only({"admin"})),
    Row("revoke an unknown token", "DELETE", "/v1/tokens/tok_nope", only({"admin"}, 404)),
    Row("revoke a token", "DELETE", "/v1/tokens/{spare_token_id}", only({"admin"}, 204)),
    # audit
    Row("verify the chain", "GET", "/v1/audit/verify", only(AUDITORS)),
    Row("replay closed statements", "POST", "/v1/audit/replay", only(AUDITORS)),
    Row("payouts of a closed period", "GET", "/v1/payouts/2025-11", only(AUDITORS)),
    Row("payouts of an open period", "GET", f"/v1/payouts/{PERIOD}", only(AUDITORS, 409)),
    Row("disputes", "GET", "/v1/disputes", only(AUDITORS)),
    Row("open disputes of a period", "GET", "/v1/disputes", only(AUDITORS), params={"status": "open",
                                                                                      "period": PERIOD}),
    # health needs no token and shows nothing
    Row("liveness", "GET", "/healthz", only(ALL)),
    Row("readiness", "GET", "/readyz", only(ALL)),
]

#: Every route of the service, so a new endpoint without a row fails the coverage test below.
ROUTES = {
    ("POST", "/v1/events"), ("POST", "/v1/events/batch"), ("GET", "/v1/events"), ("GET", "/v1/events/{event_id}"),
    ("GET", "/v1/statements/{participant_id}/{period}"), ("GET", "/v1/statements/{participant_id}/{period}/lines/{n}"),
    ("GET", "/v1/attainment"), ("GET", "/v1/rankings"), ("POST", "/v1/what-if"),
    ("POST", "/v1/tokens"), ("GET", "/v1/tokens"), ("DELETE", "/v1/tokens/{token_id}"),
    ("GET", "/v1/audit/verify"), ("POST", "/v1/audit/replay"), ("GET", "/v1/payouts/{period}"),
    ("GET", "/v1/disputes"), ("GET", "/healthz"), ("GET", "/readyz"),
}


def _route_of(path: str) -> str:
    if any(path == template for _, template in ROUTES):
        return path
    for template in sorted({t for _, t in ROUTES}, key=len, reverse=True):
        parts, pattern = path.split("/"), template.split("/")
        if len(parts) == len(pattern) and all(p == q or q.startswith("{") for p, q in zip(parts, pattern, strict=True)):
            return template
    return path


def _stored(api: Api) -> tuple[int, int]:
    return api.services.store.head(), len(api.services.tokens.list())


def _request(client: Api, row: Row, tokens: dict[str, str]) -> Any:
    path = row.path.format(**tokens)
    body = row.body() if row.body is not None else None
    return client.client.request(row.method, path, headers=client.headers, params=row.params,
                                 json=body)


@pytest.mark.parametrize("role", ROLES)
def test_role_table(api: Api, role: str) -> None:
    tokens = build_world(api)
    client = api.as_token(tokens[role])
    wrong = []
    for row in TABLE:
        before = _stored(api)
        response = _request(client, row, tokens)
        expected = row.expect[role]
        if response.status_code != expected:
            wrong.append(f"{row.name}: {row.method} {row.path} -> {response.status_code}, expected {expected}: "
                         f"{response.text[:200]}")
        if response.status_code >= 300:
            assert _stored(api) == before, f"{row.name}: a rejected request stored something"
        if response.status_code == 403:
            assert response.json()["error"] == "forbidden"
    assert not wrong, f"role {role}:\n" + "\n".join(wrong)


def test_table_covers_every_route_and_every_append_right(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    served = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert served == ROUTES
    assert {(row.method, _route_of(row.path)) for row in TABLE} == ROUTES
    appended = {row.name.removeprefix("append ") for row in TABLE if row.name.startswith("append ")}
    assert appended == set(EVENT_TYPES)


# --- 401 -----------------------------------------------------------------------------------------------------


def _every_v1_request() -> list[tuple[str, str, dict[str, Any], Any]]:
    """One request per /v1 endpoint, well-formed except for its credentials."""
    return [
        ("POST", "/v1/events", {}, envelope("DealBooked")),
        ("POST", "/v1/events/batch", {}, {"events": [envelope("DealBooked")]}),
        ("GET", "/v1/events", {}, None),
        ("GET", "/v1/events/world-transfer", {}, None),
        ("GET", f"/v1/statements/r1/{PERIOD}", {}, None),
        ("GET", f"/v1/statements/r1/{PERIOD}/lines/1", {}, None),
        ("GET", "/v1/statements/ghost/not-a-period", {}, None),
        ("GET", "/v1/attainment", {"period": PERIOD}, None),
        ("GET", "/v1/attainment", {}, None),
        ("GET", "/v1/rankings", {"period": PERIOD}, None),
        ("POST", "/v1/what-if", {}, what_if_body("r1")()),
        ("POST", "/v1/tokens", {}, {"role": "admin"}),
        ("GET", "/v1/tokens", {}, None),
        ("DELETE", "/v1/tokens/tok_nope", {}, None),
        ("GET", "/v1/audit/verify", {}, None),
        ("POST", "/v1/audit/replay", {}, None),
        ("GET", "/v1/payouts/2025-11", {}, None),
        ("GET", "/v1/disputes", {}, None),
    ]


def _assert_all_401(api: Api, headers: dict[str, str], label: str) -> None:
    before = _stored(api)
    for method, path, params, body in _every_v1_request():
        response = api.client.request(method, path, headers=headers, params=params, json=body)
        assert response.status_code == 401, f"{label}: {method} {path} -> {response.status_code} {response.text}"
        assert response.headers.get("www-authenticate") == "Bearer"
        assert response.json()["error"] == "unauthorized"
    assert _stored(api) == before


def test_missing_or_malformed_credentials_are_401_everywhere(api: Api) -> None:
    build_world(api)
    for label, headers in (
        ("no header", {}),
        ("empty header", {"Authorization": ""}),
        ("scheme only", {"Authorization": "Bearer"}),
        ("scheme and blank", {"Authorization": "Bearer    "}),
        ("basic auth", {"Authorization": "Basic dGVzdC1hZG1pbi10b2tlbjo="}),
        ("token without scheme", {"Authorization": "test-admin-token"}),
        ("unknown token", {"Authorization": "Bearer pl_not-a-real-token"}),
        ("admin token with a suffix", {"Authorization": "Bearer test-admin-tokenX"}),
        ("admin token with inner text", {"Authorization": "Bearer test-admin-token extra"}),
    ):
        _assert_all_401(api, headers, label)
    # health endpoints need no token at all
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 200


def test_revoked_tokens_are_401(api: Api) -> None:
    tokens = build_world(api)
    listing = api.get("/v1/tokens").json()["tokens"]
    for role in ("finance", "integration", "manager", "rep"):
        token = tokens[role]
        assert api.as_token(token).get("/v1/statements/r1/2026-01").status_code in (200, 403)
        token_id = tokens[f"{role}_token_id"]
        assert next(t for t in listing if t["token_id"] == token_id)["role"] == role
        assert api.client.delete(f"/v1/tokens/{token_id}", headers=api.headers).status_code == 204
        assert api.client.delete(f"/v1/tokens/{token_id}", headers=api.headers).status_code == 204  # idempotent
        _assert_all_401(api, {"Authorization": f"Bearer {token}"}, f"revoked {role}")
    revoked = {t["token_id"]: t["revoked"] for t in api.get("/v1/tokens").json()["tokens"]}
    assert sum(revoked.values()) == 4
    # the token listing never shows a token or its digest
    assert all(set(t) == {"token_id", "role", "participant_id", "expires_at", "revoked"}
               for t in api.get("/v1/tokens").json()["tokens"])


@pytest.mark.parametrize("first_use", ["revoked", "issued last"])
def test_a_process_started_after_pages_of_token_events_knows_them_all_at_once(
    api: Api, make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch, first_use: str
) -> None:
    """A process reads the token events page by page until a page is short: reading one page a
    request, a process started after more than a page of them accepted, on its first request, a
    token revoked after that page (and refused one issued after it) (decision 120)."""
    import ledger.tokens

    monkeypatch.setattr(ledger.tokens, "PAGE", 2)  # five issues and a revocation: three pages
    issued = [api.client.post("/v1/tokens", headers=api.headers, json={"role": "finance"}).json()
              for _ in range(5)]
    assert api.client.delete(f"/v1/tokens/{issued[0]['token_id']}", headers=api.headers).status_code == 204
    started = Api(TestClient(create_app(make_services())), api.services)  # a process started now
    token, status = (issued[0]["token"], 401) if first_use == "revoked" else (issued[-1]["token"], 200)
    assert started.as_token(token).get("/v1/disputes").status_code == status  # its first request


def test_expired_tokens_are_401(api: Api) -> None:
    build_world(api)
    # through the API: a token that expires a moment from now works, then stops working
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    response = api.client.post("/v1/tokens", headers=api.headers,
                               json={"role": "rep", "participant_id": "r1", "expires_at": soon})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    started = time.monotonic()
    assert api.as_token(token).get(f"/v1/statements/r1/{PERIOD}").status_code == 200
    time.sleep(max(0.0, 1.6 - (time.monotonic() - started)))
    _assert_all_401(api, {"Authorization": f"Bearer {token}"}, "expired via API")
    # the API refuses past expiry, so a token already expired is crafted through the registry
    _, past = api.services.tokens.issue("finance", None, datetime(2020, 1, 1, tzinfo=UTC))
    _assert_all_401(api, {"Authorization": f"Bearer {past}"}, "expired at issue")
    # an expiry given with another offset is compared as an instant
    _, later = api.services.tokens.issue(
        "finance", None, datetime.now(UTC).astimezone(timezone(timedelta(hours=-10))) + timedelta(hours=1))
    assert api.as_token(later).get("/v1/events").status_code == 200


# --- what each reader sees ------------------------------------------------------------------------------------


def _rows(client: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(path, **params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


def test_attainment_is_filtered_to_what_the_caller_may_see(api: Api) -> None:
    tokens = build_world(api)
    everyone = {row["participant_id"] for row in _rows(api, "/v1/attainment", period=PERIOD)}
    assert everyone == {"m1", "r1", "r2", "m2", "r3", "r4", "r5", "spare"}
    assert {row["participant_id"] for row in _rows(api.as_token(tokens["finance"]), "/v1/attainment",
                                                   period=PERIOD)} == everyone
    manager = api.as_token(tokens["manager"])
    # their team t1 (m1, r1, r2, r5 after the transfer); never t2, t3 or t9 (§7: "attainment ... of their team")
    assert {row["participant_id"] for row in _rows(manager, "/v1/attainment", period=PERIOD)} == {
        "m1", "r1", "r2", "r5"}
    assert manager.get("/v1/attainment", period=PERIOD, team_id="t2").status_code == 403
    assert manager.get("/v1/attainment", period=PERIOD, team_id="t3").status_code == 403
    admin_rows = {row["participant_id"]: row for row in _rows(api, "/v1/attainment", period=PERIOD, team_id="t1")}
    assert _rows(manager, "/v1/attainment", period=PERIOD, team_id="t1") == list(admin_rows.values())
    rep = api.as_token(tokens["rep"])  # a rep has their statement and their team's ranking, not attainment
    assert rep.get("/v1/attainment", period=PERIOD).status_code == 403
    assert rep.get("/v1/attainment", period="x").status_code == 403


def test_a_reps_ranking_hides_others_amounts(api: Api) -> None:
    tokens = build_world(api)
    full = _rows(api, "/v1/rankings", period=PERIOD, team_id="t1")
    assert _rows(api.as_token(tokens["manager"]), "/v1/rankings", period=PERIOD) == full
    mine = _rows(api.as_token(tokens["rep"]), "/v1/rankings", period=PERIOD)
    assert mine == _rows(api.as_token(tokens["rep"]), "/v1/rankings", period=PERIOD, team_id="t1")
    assert [row["rank"] for row in mine] == [row["rank"] for row in full]
    for shown, real in zip(mine, full, strict=True):
        if real["participant_id"] == "r1":
            assert shown == {"rank": real["rank"], **{k: real[k] for k in real if k != "rank"}}
        else:
            assert set(shown) == {"rank", "participant_id", "team_id", "attainment"}
            assert shown == {k: real[k] for k in ("rank", "participant_id", "team_id", "attainment")}
    assert "credited" not in str([row for row in mine if row["participant_id"] != "r1"])


def _pseudonyms(admin: Api, rep: Api, period: str) -> dict[str, str]:
    """Real id -> the name the rep is shown, pairing the rep's rows with the admin's (same order)."""
    full = _rows(admin, "/v1/rankings", period=period, team_id="t1")
    shown = _rows(rep, "/v1/rankings", period=period)
    assert [row["rank"] for row in shown] == [row["rank"] for row in full]
    for row, real in zip(shown, full, strict=True):
        if real["participant_id"] == "r1":
            assert row == real  # the rep's own row is complete and named
        else:
            assert set(row) == {"rank", "participant_id", "team_id", "attainment"}
            assert (row["team_id"], row["attainment"]) == (real["team_id"], real["attainment"])
    return {real["participant_id"]: row["participant_id"] for row, real in zip(shown, full, strict=True)}


def test_anonymous_rankings_use_stable_pseudonyms(make_services: Callable[..., Services]) -> None:
    services = make_services(ranking_names="anonymous")
    with TestClient(create_app(services)) as client:
        admin = Api(client, services)
        tokens = build_world(admin)
        rep = admin.as_token(tokens["rep"])
        names = _pseudonyms(admin, rep, PERIOD)
        assert set(names) == {"m1", "r1", "r2", "r5"}
        assert names.pop("r1") == "r1"
        assert len(set(names.values())) == len(names) == 3  # one pseudonym per participant
        for real, shown in names.items():
            assert shown.startswith("peer-") and real not in shown
        assert not set(names.values()) & {"m1", "r1", "r2", "r3", "r4", "r5", "m2", "spare"}
        assert _pseudonyms(admin, rep, PERIOD) == {**names, "r1": "r1"}  # the same on every call
        # the same in another period and as of an earlier position, where the order differs
        assert _pseudonyms(admin, rep, "2026-02") == {**names, "r1": "r1"}
        admin.add("DealBooked", deal_id="big", booked_on="2026-01-22", amount="90000", currency="USD",
                  credits=[{"participant_id": "r2", "share": "1"}])
        assert _rows(admin, "/v1/rankings", period=PERIOD, team_id="t1")[0]["participant_id"] == "r2"
        assert _pseudonyms(admin, rep, PERIOD) == {**names, "r1": "r1"}
        # managers and auditors still see names
        manager = admin.as_token(tokens["manager"])
        assert {row["participant_id"] for row in _rows(manager, "/v1/rankings", period=PERIOD)} == {
            "m1", "r1", "r2", "r5"}
    # another process on the same database (or a restart) shows the same pseudonyms
    restarted = make_services(ranking_names="anonymous")
    with TestClient(create_app(restarted)) as client:
        assert _pseudonyms(Api(client, restarted), Api(client, restarted, tokens["rep"]), PERIOD) == {
            **names, "r1": "r1"}
    # in named mode the rep sees colleagues' ids (still without their amounts)
    named = make_services()
    with TestClient(create_app(named)) as client:
        assert _pseudonyms(Api(client, named), Api(client, named, tokens["rep"]), PERIOD) == {
            "m1": "m1", "r1": "r1", "r2": "r2", "r5": "r5"}


def test_a_transferred_report_belongs_to_the_new_manager_for_that_period(api: Api) -> None:
    build_world(api)
    m2 = api.client.post("/v1/tokens", headers=api.headers, json={"role": "manager", "participant_id": "m2"})
    old, new = api.as_token(m2.json()["token"]), api.as_token(
        api.client.post("/v1/tokens", headers=api.headers,
                        json={"role": "manager", "participant_id": "m1"}).json()["token"])
    # r5 moved from m2 to m1 on 2026-01-15: the manager on the period's last day decides
    assert new.get(f"/v1/statements/r5/{PERIOD}").status_code == 200
    assert old.get(f"/v1/statements/r5/{PERIOD}").status_code == 403
    assert new.get("/v1/statements/r5/2025-12").status_code == 403
    assert old.get("/v1/statements/r5/2025-12").status_code == 200
    assert "r5" in {row["participant_id"] for row in _rows(new, "/v1/attainment", period=PERIOD)}
    assert "r5" not in {row["participant_id"] for row in _rows(old, "/v1/attainment", period=PERIOD)}
    assert "r5" in {row["participant_id"] for row in _rows(old, "/v1/attainment", period="2025-12")}
    assert "r5" not in {row["participant_id"] for row in _rows(new, "/v1/attainment", period="2025-12")}
    assert new.client.post("/v1/what-if", headers=new.headers, json=what_if_body("r5")()).status_code == 200
    assert old.client.post("/v1/what-if", headers=old.headers, json=what_if_body("r5")()).status_code == 403
    assert old.client.post("/v1/what-if", headers=old.headers, json={
        **what_if_body("r5")(), "periods": ["2025-12"]}).status_code == 200
    # a quarter ends on 2026-03-31, after the transfer
    assert new.get("/v1/statements/r5/2026-Q1").status_code == 200
    assert old.get("/v1/statements/r5/2026-Q1").status_code == 403


def test_a_rep_gets_403_for_anyone_else_whether_or_not_they_exist(api: Api) -> None:
    tokens = build_world(api)
    rep, manager = api.as_token(tokens["rep"]), api.as_token(tokens["manager"])
    for who in ("r2", "m1", "r3", "ghost", "GHOST-2", "x" * 128):
        for path in (f"/v1/statements/{who}/{PERIOD}", f"/v1/statements/{who}/{PERIOD}/lines/1",
                     f"/v1/statements/{who}/2026-13"):
            response = rep.get(path)
            assert response.status_code == 403, (path, response.text)
            assert who not in response.text
    for who in ("r3", "m2", "ghost", "x" * 128):
        assert manager.get(f"/v1/statements/{who}/{PERIOD}").status_code == 403
    assert api.get(f"/v1/statements/ghost/{PERIOD}").status_code == 404
    assert api.as_token(tokens["finance"]).get(f"/v1/statements/ghost/{PERIOD}").status_code == 404


def test_a_refused_append_stores_nothing_even_in_a_valid_batch(api: Api) -> None:
    tokens = build_world(api)
    before = api.events()
    integration = api.as_token(tokens["integration"])
    response = integration.batch([envelope("DealBooked"), envelope("DealBooked"), envelope("PlanPublished")])
    assert response.status_code == 403
    finance = api.as_token(tokens["finance"])
    assert finance.batch([envelope("PeriodClosed"), envelope("TargetSet")]).status_code == 403
    for role in ("manager", "rep"):
        client = api.as_token(tokens[role])
        assert client.batch([envelope("DealBooked")]).status_code == 403
        # refused before the body is read: even a body that is not JSON is a 403
        bad = client.client.post("/v1/events", headers={**client.headers, "Content-Type": "application/json"},
                                 content=b"\xff not json")
        assert bad.status_code == 403
    # a replay of an event the caller may not append is refused too, not answered as a duplicate
    plan = next(e for e in before if e["type"] == "PlanPublished")
    replay = {"event_id": plan["event_id"], "type": plan["type"], "data": plan["data"]}
    assert integration.client.post("/v1/events", headers=integration.headers, json=replay).status_code == 403
    assert api.events() == before
