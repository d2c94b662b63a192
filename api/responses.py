"""A JSON response encoded by orjson: the default for every route (decision 51).

Starlette's `JSONResponse` encodes with the standard library: a few percent of
a single append's time on two cores, and 0.7 ms of a 500-row ranking that
orjson writes in 0.05 ms. orjson writes the same compact UTF-8, and writes a
dataclass as an object of its fields in their order, so an append's results go
out without a dict each. What orjson refuses (integers beyond 64 bits, lone
surrogates, keys that are not strings) is encoded the standard library's way.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError included
            return super().render(content)
