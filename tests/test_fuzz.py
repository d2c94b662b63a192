"""Hypothesis fuzzing of hostile input (issue 4): the event parser never raises, the HTTP API never answers 5xx.

(a) `parse_envelope` + `check_references` over arbitrary JSON-like values and over mutations of valid
    envelopes: the answer is always an `Envelope` or a list of problems, never an exception.
(b) Random bodies (bytes, JSON of any shape, mutated envelopes and batches, odd content types) posted to
    /v1/events, /v1/events/batch, /v1/what-if and /v1/tokens on SQLite and PostgreSQL: never a 5xx, and
    nothing is stored unless the answer is 2xx (what-if stores nothing whatever it answers).

Each test counts the malformed inputs it tried and prints the figure (run with -s to see it).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.validation import Envelope, Problem, ReferenceIndex, check_references, parse_envelope
from tests.support import Api, rules

PROFILE: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large],
}
COUNTS: Counter[str] = Counter()

# --- values -----------------------------------------------------------------------------------------------------

ODD_STRINGS = [
    "", " ", "\x00", "a\x00b", "\ud800", "\udfff", "\u200b", "\u202e", "\ufeff", "\U0001f4b0", "é", "e\u0301",
    "１２３", "٣٤٥", "१२३", "Ⅻ", "NaN", "Infinity", "-0", "+1", "1e3", "1E-2", "0x10", "1_000", "1,000.00",
    " 1.00", "1.00 ", "1.", ".5", "--1", "-", "1.005", "0.0000001", "9" * 16, "9" * 15 + ".99", "9" * 400,
    "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31", "10000-01-01", "+2026-01-01", "2026-1-1",
    "２０２６-01-01", "2026-01-01T00:00:00Z", "20260101", "0000-01", "9999-12", "9999-Q4", "2026-Q5", "2026-Q0",
    "2026-00", "2026-q1", "x" * 128, "x" * 129, "a b", "a/b", "a\nb", "<script>", "'; DROP TABLE x;--",
    "USD", "usd", "EUR", "upheld", "rejected", "month", "quarter", "booking", "collection", "marginal",
    "retroactive", "ParticipantRegistered", "DealBooked", "PeriodClosed", "r1", "d1", "p1",
]
odd_strings = st.sampled_from(ODD_STRINGS)
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # surrogates included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    odd_strings,
    any_text,
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.one_of(odd_strings, any_text, st.sampled_from(["event_id", "type", "data"])),
                      children, max_size=5),
    max_leaves=25,
)

# --- valid envelopes (for a ledger holding the world below) ----------------------------------------------------

PEOPLE = ["m1", "r1", "r2"]
POOL = st.sampled_from(["r1", "r2", "m1", "d1", "d2", "pay1", "ds1", "p1", "adj1", "new-1", "new-2", "ghost"])
DAYS = st.dates().map(lambda d: d.isoformat())
MONEY = st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=2).map(str)
RATE = st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=6).map(str)
PERIODS = st.one_of(
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1, 9999), st.integers(1, 12)),
    st.builds(lambda y, q: f"{y:04d}-Q{q}", st.integers(1, 9999), st.integers(1, 4)),
    st.sampled_from(["2026-01", "2026-02", "2026-03", "2026-Q1"]),
)


def _data(type_: str) -> st.SearchStrategy[dict[str, Any]]:
    """Data for each type whose shape is valid; ids come from a small pool, so references vary."""
    return {
        "ParticipantRegistered": st.fixed_dictionaries(
            {"participant_id": POOL, "name": st.just("Name"), "team_id": POOL, "start_date": DAYS},
            optional={"manager_id": st.sampled_from(PEOPLE)}),
        "ParticipantTransferred": st.fixed_dictionaries(
            {"participant_id": POOL, "team_id": POOL, "effective_date": DAYS},
            optional={"manager_id": st.sampled_from([*PEOPLE, None])}),
        "PlanPublished": st.fixed_dictionaries(
            {"plan_id": POOL, "effective_from": DAYS,
             "rules": st.builds(lambda r, c: rules([("0", r)], clawback_days=c), RATE,
                                st.none() | st.integers(0, 3650))}),
        "PlanAssigned": st.fixed_dictionaries(
            {"participant_id": POOL, "plan_id": POOL, "effective_from": DAYS},
            optional={"effective_to": DAYS}),
        "TargetSet": st.fixed_dictionaries({"participant_id": POOL, "period": PERIODS, "amount": MONEY}),
        "DealBooked": st.fixed_dictionaries(
            {"deal_id": POOL, "booked_on": DAYS, "amount": MONEY, "currency": st.sampled_from(["USD", "EUR"]),
             "credits": st.lists(st.fixed_dictionaries({"participant_id": POOL, "share": RATE}),
                                 min_size=1, max_size=3)},
            optional={"product": POOL, "customer": st.just("ACME")}),
        "DealAmended": st.fixed_dictionaries({"deal_id": POOL, "amount": MONEY, "amended_on": DAYS}),
        "DealCancelled": st.fixed_dictionaries({"deal_id": POOL, "cancelled_on": DAYS}),
        "PaymentReceived": st.fixed_dictionaries(
            {"payment_id": POOL, "deal_id": POOL, "amount": MONEY, "received_on": DAYS}),
        "PaymentReversed": st.fixed_dictionaries({"payment_id": POOL, "reversed_on": DAYS}),
        "AdjustmentRecorded": st.fixed_dictionaries(
            {"adjustment_id": POOL, "participant_id": POOL, "period": PERIODS, "amount": MONEY,
             "reason": st.just("why")}),
        "PeriodClosed": st.fixed_dictionaries({"period": PERIODS}),
        "DisputeOpened": st.fixed_dictionaries(
            {"dispute_id": POOL, "participant_id": POOL, "period": PERIODS, "reason": st.just("why")},
            optional={"deal_id": POOL}),
        "DisputeResolved": st.fixed_dictionaries(
            {"dispute_id": POOL, "resolution": st.sampled_from(["upheld", "rejected", "maybe"]),
             "note": st.just("ok")}),
    }[type_]


TYPES = [
    "ParticipantRegistered", "ParticipantTransferred", "PlanPublished", "PlanAssigned", "TargetSet", "DealBooked",
    "DealAmended", "DealCancelled", "PaymentReceived", "PaymentReversed", "AdjustmentRecorded", "PeriodClosed",
    "DisputeOpened", "DisputeResolved",
]
EVENT_IDS = st.one_of(st.sampled_from(["w-1", "fz-a", "fz-b"]), st.uuids().map(lambda u: f"fz-{u.hex}"))
valid_envelopes = st.sampled_from(TYPES).flatmap(
    lambda t: st.fixed_dictionaries({"event_id": EVENT_IDS, "type": st.just(t), "data": _data(t)}))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any] = valid_envelopes) -> Any:
    """A valid envelope with 1-3 mutations: a value replaced, a key dropped or added, a string made odd."""
    value = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        if not path:
            value = draw(st.sampled_from([[value], {"event": value}, json.dumps(value, default=str), value]))
            continue
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "odd", "drop", "add", "number", "duplicate"]))
        if action == "replace":
            parent[last] = draw(json_like)
        elif action == "odd":
            parent[last] = draw(odd_strings | any_text)
        elif action == "number":
            parent[last] = draw(st.sampled_from([0, 1, -1, 1.5, 10**30, True, Decimal("1.5"), Decimal("1E+3")]))
        elif action == "drop" and isinstance(parent, dict):
            del parent[last]
        elif action == "drop" and isinstance(parent, list):
            parent.pop(last)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(odd_strings | any_text)] = draw(json_like)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif isinstance(parent, dict):
            parent[last] = None
    return value


# --- (a) the parser and validator ------------------------------------------------------------------------------


def _world_envelopes() -> list[dict[str, Any]]:
    events = [
        ("ParticipantRegistered", {"participant_id": "m1", "name": "M", "team_id": "t1", "start_date": "2020-01-01"}),
        ("ParticipantRegistered", {"participant_id": "r1", "name": "R", "team_id": "t1", "manager_id": "m1",
                                   "start_date": "2020-01-01"}),
        ("ParticipantRegistered", {"participant_id": "r2", "name": "S", "team_id": "t2", "start_date": "2025-06-01"}),
        ("PlanPublished", {"plan_id": "p1", "effective_from": "2020-01-01", "rules": rules()}),
        ("PlanAssigned", {"participant_id": "r1", "plan_id": "p1", "effective_from": "2020-01-01"}),
        ("DealBooked", {"deal_id": "d1", "booked_on": "2026-01-10", "amount": "1000.00", "currency": "USD",
                        "credits": [{"participant_id": "r1", "share": "1"}]}),
        ("DealBooked", {"deal_id": "d2", "booked_on": "2026-01-11", "amount": "500.00", "currency": "USD",
                        "credits": [{"participant_id": "r2", "share": "0.5"}]}),
        ("PaymentReceived", {"payment_id": "pay1", "deal_id": "d1", "amount": "100.00", "received_on": "2026-01-15"}),
        ("AdjustmentRecorded", {"adjustment_id": "adj1", "participant_id": "r1", "period": "2026-02",
                                "amount": "10.00", "reason": "bonus"}),
        ("DisputeOpened", {"dispute_id": "ds1", "participant_id": "r1", "period": "2026-01", "reason": "why"}),
        ("PeriodClosed", {"period": "2025-12"}),
    ]
    return [{"event_id": f"w-{i}", "type": t, "data": d} for i, (t, d) in enumerate(events, 1)]


def _reference_index() -> ReferenceIndex:
    refs = ReferenceIndex()
    for envelope in _world_envelopes():
        parsed = parse_envelope(envelope)
        assert isinstance(parsed, Envelope), parsed
        assert check_references(parsed.event, refs, "USD") == []
        refs.apply(parsed.event)
    return refs


REFS = _reference_index()


def _check_parser(value: Any, kind: str) -> None:
    COUNTS[f"{kind}: tried"] += 1
    parsed = parse_envelope(value)
    if isinstance(parsed, list):
        assert parsed and all(isinstance(p, Problem) for p in parsed)
        json.dumps([p.body() for p in parsed])  # every problem can be answered as JSON
        COUNTS[f"{kind}: malformed (shape)"] += 1
        return
    assert isinstance(parsed, Envelope)
    overlay = REFS.overlay()
    problems = check_references(parsed.event, overlay, "USD")
    assert all(isinstance(p, Problem) for p in problems)
    json.dumps([p.body() for p in problems])
    if problems:
        COUNTS[f"{kind}: malformed (references)"] += 1
    else:
        overlay.apply(parsed.event)  # what the appender does next must not raise either
        COUNTS[f"{kind}: accepted"] += 1


@settings(max_examples=500, **PROFILE)
@given(json_like)
def test_the_parser_never_raises_on_arbitrary_values(value: Any) -> None:
    _check_parser(value, "parser/arbitrary")
    for type_ in TYPES:  # the same value as the data of every event type
        _check_parser({"event_id": "fz-1", "type": type_, "data": value}, "parser/arbitrary data")


@settings(max_examples=500, **PROFILE)
@given(st.fixed_dictionaries({"event_id": json_like | EVENT_IDS, "type": st.sampled_from(TYPES) | json_like,
                              "data": json_like}))
def test_the_parser_never_raises_on_envelopes_of_any_data(value: Any) -> None:
    _check_parser(value, "parser/any data")


@settings(max_examples=1000, **PROFILE)
@given(valid_envelopes | mutated())
def test_the_parser_never_raises_on_mutated_envelopes(value: Any) -> None:
    _check_parser(value, "parser/mutated")


# --- (b) through HTTP -------------------------------------------------------------------------------------------


def _hostile_bytes() -> st.SearchStrategy[bytes]:
    deep = st.integers(20, 60).map(lambda n: ("[" * n + "]" * n).encode())
    deep_obj = st.integers(20, 60).map(lambda n: ('{"a":' * n + "1" + "}" * n).encode())
    return st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"", b"null", b"[]", b"{}", b'""', b"1", b"NaN", b'{"a": NaN}', b'{"a": Infinity}',
                         b"\xef\xbb\xbf{}", b'{"a":"\\ud800"}', b'{"a":"\\u0000"}', b"\xff\xfe{\x00}\x00",
                         b'{"events": [' + b"{}," * 10 + b"{}]}", b'{"a": 1' + b"0" * 5000 + b"}",
                         b'{"a": 1e99999}', b'{"a": -0.0e-9999}', b'{"a":1,"a":2}', b'{"role": "admin"',
                         b"\x00" * 10]),
        deep, deep_obj,
    )


def _json_body(value: Any) -> bytes:
    return json.dumps(value, default=str, ensure_ascii=True).encode()


ENDPOINTS = ["/v1/events", "/v1/events/batch", "/v1/what-if", "/v1/tokens"]


@st.composite
def requests_(draw: st.DrawFn) -> tuple[str, bytes, str]:
    path = draw(st.sampled_from(ENDPOINTS))
    envelope_like = st.one_of(valid_envelopes, valid_envelopes, mutated(), json_like)
    if path == "/v1/events":
        body = draw(envelope_like)
    elif path == "/v1/events/batch":
        body = draw(st.one_of(
            st.fixed_dictionaries({"events": st.lists(envelope_like, max_size=6)}),
            mutated(st.fixed_dictionaries({"events": st.lists(valid_envelopes, min_size=1, max_size=4)})),
            json_like,
        ))
    elif path == "/v1/what-if":
        body = draw(st.one_of(
            st.fixed_dictionaries({"events": st.lists(envelope_like, max_size=4),
                                   "periods": st.lists(PERIODS | odd_strings, max_size=3),
                                   "participant_ids": st.lists(POOL | odd_strings, max_size=3)}),
            mutated(st.fixed_dictionaries({"events": st.lists(valid_envelopes, max_size=3),
                                           "periods": st.lists(PERIODS, min_size=1, max_size=2),
                                           "participant_ids": st.lists(st.sampled_from(PEOPLE), min_size=1,
                                                                       max_size=2)})),
            json_like,
        ))
    else:
        body = draw(st.one_of(
            mutated(st.fixed_dictionaries(
                {"role": st.sampled_from(["admin", "finance", "integration", "manager", "rep"])},
                optional={"participant_id": POOL | st.none(),
                          "expires_at": st.sampled_from([None, "2999-01-01T00:00:00+00:00", "2001-01-01T00:00:00Z",
                                                         "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                                         "2999-01-01", "tomorrow"])})),
            json_like,
        ))
    raw = _json_body(body) if draw(st.integers(0, 4)) else draw(_hostile_bytes())
    content_type = draw(st.sampled_from(["application/json"] * 6 + [
        "application/json; charset=utf-8", "application/problem+json", "", "text/plain", "multipart/form-data"]))
    return path, raw, content_type


def _seed(api: Api) -> None:
    response = api.batch(_world_envelopes())
    assert response.status_code == 201, response.text


@settings(max_examples=250, **PROFILE)
@given(request=requests_())
def test_hostile_requests_never_get_a_5xx_or_store_anything(api: Api, request: tuple[str, bytes, str]) -> None:
    path, raw, content_type = request
    if api.services.store.head() == 0:
        _seed(api)
    COUNTS["http: tried"] += 1
    head, tokens = api.services.store.head(), len(api.services.tokens.list())
    headers = {**api.headers, **({"Content-Type": content_type} if content_type else {})}
    response = api.client.post(path, content=raw, headers=headers)
    status = response.status_code
    assert status < 500, f"{path} {raw[:300]!r} -> {status} {response.text[:300]}"
    body = response.json()
    stored = api.services.store.head() - head, len(api.services.tokens.list()) - tokens
    if 200 <= status < 300:
        COUNTS["http: accepted"] += 1
        if path == "/v1/events":
            assert stored == (0 if body["duplicate"] else 1, 0)
        elif path == "/v1/events/batch":
            assert stored == (sum(not r["duplicate"] for r in body["results"]), 0)
        elif path == "/v1/tokens":
            assert stored == (0, 1)
    else:
        COUNTS["http: malformed (4xx)"] += 1
        COUNTS[f"http: {status}"] += 1
        assert "error" in body and "message" in body
    if path == "/v1/what-if" or not 200 <= status < 300:
        assert stored == (0, 0), f"{path} answered {status} but stored {stored}"


def test_a_year_0000_period_close_breaks_nothing(api: Api) -> None:
    api.add("ParticipantRegistered", participant_id="early", name="Early", team_id="t1", start_date="0001-01-01")
    api.add("DealBooked", deal_id="first", booked_on="0001-01-02", amount="10", currency="USD",
            credits=[{"participant_id": "early", "share": "1"}])
    what_if = {"events": [{"event_id": "z-0", "type": "PeriodClosed", "data": {"period": "0000-12"}},
                          {"event_id": "z-00", "type": "TargetSet",
                           "data": {"participant_id": "early", "period": "0001-01", "amount": "1"}}],
               "periods": ["0001-01"], "participant_ids": ["early"]}
    assert api.client.post("/v1/what-if", headers=api.headers, json=what_if).status_code < 500
    assert api.post("PeriodClosed", "z-1", period="0000-12").status_code < 500
    api.target("early", "0001-01", "100")
    for path, params in (("/v1/statements/early/0001-01", {}), ("/v1/attainment", {"period": "0001-01"}),
                         ("/v1/events", {})):
        assert api.get(path, **params).status_code < 500, path
    assert api.client.post("/v1/audit/replay", headers=api.headers).status_code < 500
    assert api.get("/v1/statements/early/0000-12").json()["status"] == "closed"
    assert api.statement("early", "0001-01")["total"] == "0.00"  # no plan: the deal earns nothing


def test_zz_report_fuzz_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints what the fuzzers above tried (kept last in the file)."""
    with capsys.disabled():
        print("\nfuzz counts:", json.dumps(dict(sorted(COUNTS.items())), indent=1))
