"""Every route answers through `FastJSONResponse` (orjson): the bytes must be what Starlette's
standard-library `JSONResponse` writes, for every kind of value the ledger's answers hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from api.responses import FastJSONResponse
from tests.support import Api

# No floats: money, rates and attainment go out as strings (orjson spells some floats differently).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),  # past 64 bits: the standard library's way
    st.text(),  # any code point, lone surrogates included
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=5),
    ),
    max_leaves=30,
)


def _body(response_class: type[JSONResponse], value: Any) -> bytes | str:
    try:
        return bytes(response_class(value).body)
    except (UnicodeEncodeError, TypeError, ValueError) as error:
        return type(error).__name__


@settings(max_examples=400, deadline=None)
@given(values)
def test_orjson_answers_are_the_standard_librarys_bytes(value: Any) -> None:
    assert _body(FastJSONResponse, value) == _body(JSONResponse, value)


def test_reads_answer_through_orjson(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.participant("m1")
    api.participant("r1", manager_id="m1")
    api.plan("p1")
    api.assign("r1", "p1")
    api.target("r1", "2026-03", "1000.00")
    api.deal("d1", "2026-03-10", "500.00", "r1")
    rendered: list[Any] = []
    render = FastJSONResponse.render

    def spy(self: FastJSONResponse, content: Any) -> bytes:
        rendered.append(content)
        return render(self, content)

    monkeypatch.setattr(FastJSONResponse, "render", spy)
    response = api.get("/v1/rankings", period="2026-03", team_id="t1")
    statement = api.statement("r1", "2026-03")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert [row["participant_id"] for row in response.json()["rows"]] == ["r1", "m1"]
    assert statement["total"] == "25.00"  # 500.00 at the first tier's 5 %
    assert [body["period"] for body in rendered] == ["2026-03", "2026-03"]
