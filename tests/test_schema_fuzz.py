"""Schemathesis against the service's own OpenAPI schema (issue 4): no input gets a 5xx.

Every operation of /openapi.json gets bounded generated cases (positive and negative data); each case is
sent with a valid admin token, with a valid rep token, and with an invalid token. The only check is
schemathesis' `not_a_server_error`, plus: an invalid token is a 401 and stores nothing. SQLite only, to
stay quick; the HTTP layer above the store is the same on both backends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from ledger.settings import Settings
from replay.bootstrap import Services, build
from tests.support import ADMIN_TOKEN, Api

MAX_EXAMPLES = 25
COUNTS: Counter[str] = Counter()


def _seed(api: Api) -> str:
    """A small ledger with a closed period, so generated reads can land on real data; returns a rep token."""
    api.participant("m1", "t1")
    api.participant("r1", "t1", "m1")
    api.participant("r2", "t2")
    api.plan("p1", tiers=[("0", "0.05"), ("1.0", "0.10")])
    api.assign("r1", "p1")
    api.target("r1", "2026-01", "1000")
    api.deal("d1", "2026-01-10", "800", "r1")
    api.payment("pay1", "d1", "100", "2026-01-15")
    api.close("2025-12")
    response = api.client.post("/v1/tokens", headers=api.headers, json={"role": "rep", "participant_id": "r1"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


# Schemathesis reads the schema when this module is imported, so the app exists from the start; serving
# /openapi.json needs no database. The module fixture below gives it its services (pytest 9 cannot use
# schemathesis' lazy `from_fixture` loader, which sets a private attribute pytest no longer has).
APP = create_app(cast(Services, None))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, str]]:
    database = Path(tmp_path_factory.mktemp("schema-fuzz")) / "ledger.db"
    services = build(Settings(database_url=f"sqlite:///{database}", admin_token=ADMIN_TOKEN))
    APP.state.services = services
    with TestClient(APP) as client:
        rep_token = _seed(Api(client, services))
    yield services, rep_token
    services.close()


def _stored(services: Services) -> tuple[int, int]:
    return services.store.head(), len(services.tokens.list())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: Any, fuzzed_app: tuple[Services, str]) -> None:
    services, rep_token = fuzzed_app
    protected = case.path.startswith("/v1")
    for label, token in (("admin", ADMIN_TOKEN), ("rep", rep_token), ("invalid", "pl_not-a-valid-token")):
        before = _stored(services)
        headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call(headers=headers)
        COUNTS[f"{label}: calls"] += 1
        COUNTS[f"{label}: {response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=[not_a_server_error], headers=headers)
        if label == "invalid":
            if protected:
                # 401 for every route; 404/405 only when the generated path matches no route at all
                assert response.status_code in (401, 404, 405), (case.method, case.formatted_path,
                                                                 response.status_code, response.text)
            assert _stored(services) == before


def test_zz_report_schema_fuzz_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints what schemathesis tried (kept last in the file)."""
    with capsys.disabled():
        print("\nschemathesis calls:", dict(sorted(COUNTS.items())))
