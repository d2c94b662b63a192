"""Reading request bodies defensively: size, encoding, depth and string checks (§3).

FastAPI's own body parsing would pass JSON numbers through floats and knows
nothing of the contract's limits, so POST bodies are read here by hand.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request

MAX_BODY = 16 * 1024 * 1024
MAX_DEPTH = 32
_BAD_CHARS = re.compile(r"[\x00\ud800-\udfff]")


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check(value: Any, depth: int) -> bool:
    """Reject what the contract refuses; True if the value holds a JSON float (see `parse_json`)."""
    if depth > MAX_DEPTH:
        raise BodyError(400, f"the JSON nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _BAD_CHARS.search(value):
            raise BodyError(400, "a string holds a NUL character or a lone surrogate")
        return False
    if isinstance(value, dict):
        floats = False
        for key, item in value.items():
            _check(key, depth)
            floats = _check(item, depth + 1) or floats
        return floats
    if isinstance(value, list):
        floats = False
        for item in value:
            floats = _check(item, depth + 1) or floats
        return floats
    return isinstance(value, float)


def _shape(container: Any, depth: int) -> bool:
    """`_check` for what orjson read: its strings hold no lone surrogate (it refuses them) and no
    NUL unless the body spells one as an escape, so only containers need a walk (a fifth of the cost)."""
    floats = False
    if container and depth >= MAX_DEPTH:
        raise BodyError(400, f"the JSON nests deeper than {MAX_DEPTH} levels")
    for item in container.values() if type(container) is dict else container:
        kind = type(item)
        if kind is dict or kind is list:
            floats = _shape(item, depth + 1) or floats
        elif kind is float:
            floats = True
    return floats


def _long_int(text: str) -> int | Decimal:
    """A JSON integer; past the interpreter's limit on the digits `int` reads (a guard against its
    quadratic conversion), the same number as a Decimal. Such a body is valid JSON, so it is not a
    body error: the contract's value rules refuse the number where it stands (422, naming its
    field), and a resent event id is still checked first (decision 81)."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


_NEGATIVE_EXPONENT = re.compile(r"[eE]-")


def _exact_number(text: str) -> Decimal:
    """A JSON number with a fraction or an exponent, exactly. One whose exponent is beyond any
    Decimal's (more than 18 digits) is read as the nearest a Decimal holds, an infinity or a zero
    of its sign: valid JSON again, and no field takes a JSON number of either kind (decision 81)."""
    try:
        return Decimal(text)
    except ArithmeticError:  # decimal.InvalidOperation
        sign = "-" if text.startswith("-") else ""
        return Decimal(sign + ("0" if _NEGATIVE_EXPONENT.search(text) else "Infinity"))


def _load_exact(text: str) -> Any:
    """The standard library's reading, numbers exact. Integers are read by `int` unless one is
    longer than it reads (a `ValueError` that is no syntax error): then the text is read again with
    `_long_int` (a call into Python for every integer would double a large body's parse)."""
    try:
        return json.loads(text, parse_float=_exact_number, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise
    except ValueError:  # too long for `int`, or a constant refused (refused again below)
        return json.loads(text, parse_float=_exact_number, parse_int=_long_int, parse_constant=_reject_constant)


def parse_json(raw: bytes) -> Any:
    """orjson for speed; the standard library, with numbers as Decimal, for anything else.

    orjson reads numbers with a fraction as floats and refuses some JSON the
    standard library reads (integers beyond 64 bits, lone surrogates): such
    bodies are read again the exact way, so no float ever reaches the ledger
    and every body gets the same answer either way.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        plain = b"\\u0000" not in raw and type(value) in (dict, list)
        floats = _shape(value, 1) if plain else _check(value, 1)
        if not floats:
            return value
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the body is not UTF-8") from None
    try:
        value = _load_exact(text)
    except RecursionError:
        raise BodyError(400, f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise BodyError(400, f"the body is not valid JSON: {error}") from None
    _check(value, 1)
    return value


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, whatever Content-Type says: valid JSON is never refused for a header."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyError(413, "the body is larger than 16 MiB")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > MAX_BODY:
            raise BodyError(413, "the body is larger than 16 MiB")
    value = parse_json(bytes(chunks))
    if not isinstance(value, dict):
        raise BodyError(422, "the body must be a JSON object")
    return value
