"""The shipped `docker-compose.yml` and `Dockerfile` agree with the code they run.

No Docker engine runs in CI, so these read the files: what a user gets from `docker compose up`
must not depend on someone having tried it by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ledger.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _built_from_dockerfile(service: dict[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "Dockerfile"


def test_the_dockerfile_health_check_asks_the_http_service() -> None:
    # The premise of the next test: if the image's check changes, so must the compose file.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"HEALTHCHECK .*\n.*http://127\.0\.0\.1:8000/readyz", dockerfile)


def test_containers_that_serve_no_http_do_not_inherit_the_http_health_check() -> None:
    """A `ledger project` container would otherwise show as unhealthy for ever."""
    services = _compose()["services"]
    image_services = {name: s for name, s in services.items() if _built_from_dockerfile(s)}
    assert {"ledger", "projector"} <= image_services.keys()
    for name, service in image_services.items():
        serves = service["command"][:2] == ["ledger", "serve"]
        disabled = service.get("healthcheck", {}).get("disable") is True
        assert serves != disabled, f"{name}: {service['command']} with healthcheck {service.get('healthcheck')}"


def test_every_ledger_variable_the_compose_file_sets_is_one_the_service_reads() -> None:
    """A misspelt variable would be ignored silently (settings ignore unknown ones)."""
    known = {f"LEDGER_{name.upper()}" for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        for variable in environment:
            if variable.startswith("LEDGER_"):
                assert variable in known, f"{name} sets {variable}, which nothing reads"


def test_the_compose_services_reach_the_compose_database() -> None:
    services = _compose()["services"]
    database = services["db"]["environment"]
    for name in ("ledger", "projector"):
        url = services[name]["environment"]["LEDGER_DATABASE_URL"]
        expected = (
            f"postgresql://{database['POSTGRES_USER']}:${{POSTGRES_PASSWORD:-ledger}}@db:5432/{database['POSTGRES_DB']}"
        )
        assert url == expected, name
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy", name


def test_the_database_is_healthy_only_once_it_answers_over_tcp() -> None:
    """The image's first start-up runs a temporary server on the Unix socket alone: a socket check
    would pass while the ledger, which connects over TCP, is still refused."""
    check = " ".join(_compose()["services"]["db"]["healthcheck"]["test"])
    assert "pg_isready -h 127.0.0.1" in check


def test_the_service_is_published_on_this_host_only() -> None:
    assert _compose()["services"]["ledger"]["ports"] == ["127.0.0.1:8000:8000"]


def test_both_processes_take_the_memo_setting_and_an_init() -> None:
    services = _compose()["services"]
    for name in ("ledger", "projector"):
        assert services[name]["environment"]["LEDGER_MEMO_LINES"] == "${LEDGER_MEMO_LINES:-1000000}", name
        assert services[name]["init"] is True, name
