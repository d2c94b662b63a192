"""Content negotiation of the payroll export (`api.negotiation`, decision 146): CSV only where the
client's `Accept` header prefers it, by q-value, then by how exactly a range names it."""

from __future__ import annotations

import pytest

from api.negotiation import preferred

OFFERED = ("application/json", "text/csv")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("text/csv", "text/csv"),
        ("TEXT/CSV; charset=utf-8", "text/csv"),
        ("text/*", "text/csv"),
        ("text/*, application/json", "application/json"),  # equal q: the more exact range first
        ("text/csv;q=, application/json;q=0.5", "application/json"),  # `q=` alone is malformed
        ("*/csv", "application/json"),
        ("*/*", "application/json"),
        ("text/csv, */*;q=0.8", "text/csv"),
        ("text/csv, application/json", "text/csv"),  # equal q: the range named first
        ("application/json, text/csv", "application/json"),
        ("application/json, text/csv;q=0.5", "application/json"),
        ("text/csv;q=0", "application/json"),  # refused
        ("*/*, text/csv;q=0", "application/json"),  # the exact range decides, not the wildcard
        ("text/csv;q=0.9, application/json;q=0.1", "text/csv"),
        ("text/csv;q=abc", "application/json"),  # a malformed q: the range is left out
        ("text/csv;q=2", "application/json"),
        ("application/xml", "application/json"),  # neither: the default
        ("text/csv;q=0, application/json;q=0", "application/json"),
        ("nonsense, text/csv", "text/csv"),
    ],
)
def test_the_preferred_type_by_q_then_exactness_then_order(accept: str | None, chosen: str) -> None:
    assert preferred(accept, OFFERED) == chosen
