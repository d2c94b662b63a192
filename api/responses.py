"""A JSON response encoded by orjson, for the append answers (plain strings, integers and booleans).

Starlette's `JSONResponse` encodes with the standard library, a few percent of a
single append's time on two cores; orjson writes the same compact UTF-8.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
