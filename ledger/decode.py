"""Rebuilding parsed events from the log without validating them again.

Everything in the log was validated when it was accepted, so reading it back
(start-up, catch-up) only needs the conversions: decimal strings to Decimal,
date strings to dates, nested objects to their models. The converters are
derived once from the models' own field declarations, so they cannot drift
from the validating path; a test compares both on generated ledgers.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from ledger.events import EVENT_TYPES, EventData
from ledger.values import Wire

Convert = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _shared(convert: Convert, limit: int | None = None) -> Convert:
    """`convert`, giving one shared (immutable) result per distinct input: a ledger's shares, rates
    and days repeat across millions of events, and each result kept by the state costs 32 to 104
    bytes. Bounded: the cache starts again past `limit` (`_SHARED_MAX`) inputs."""
    cache: dict[Any, Any] = {}
    bound = _SHARED_MAX if limit is None else limit

    def shared(value: Any) -> Any:
        found = cache.get(value)
        if found is None:
            if len(cache) >= bound:
                cache.clear()
            found = cache[value] = convert(value)
        return found

    return shared


_SHARED_MAX = 100_000
_SHARED_INSTANCES_MAX = 20_000  # about 10 MB of credits at most
#: Fields naming things many events refer to (people, teams, plans, periods): one string each.
_INTERNED = frozenset({"participant_id", "manager_id", "team_id", "plan_id", "period", "currency", "product"})


def _from_wire(metadata: list[Any] | tuple[Any, ...]) -> Convert | None:
    for item in metadata:
        if isinstance(item, Wire):
            match item.kind:
                case "money":
                    return Decimal
                case "rate":
                    return _shared(Decimal)
                case "day":
                    return _shared(date.fromisoformat)
                case "text":
                    return _identity
    return None


def _interned(value: Any) -> Any:
    return None if value is None else sys.intern(value)


def _not_none(annotation: Any) -> Any:
    """`X` of `X | None`; anything else as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        others = [a for a in get_args(annotation) if a is not type(None)]
        if len(others) == 1:
            return others[0]
    return annotation


def _shared_instances(construct: Convert) -> Convert:
    """`construct`, giving one shared instance per distinct stored object, for frozen models of
    single values (a credit: a participant and a share): the same few thousand credits recur in
    every deal, and building each took a third of a deal's decoding. Bounded, more tightly than
    `_shared`: an entry keeps about 500 bytes."""
    by_items = _shared(lambda items: construct(dict(items)), _SHARED_INSTANCES_MAX)
    return lambda data: by_items(tuple(data.items()))


def _of_single_values(model: type[BaseModel]) -> bool:
    """Whether every field holds one value (no list, no nested model): then a stored object of the
    model is hashable as it stands, and its instances can be shared."""
    def single(annotation: Any) -> bool:
        origin = get_origin(annotation)
        if origin is Annotated:
            return single(get_args(annotation)[0])
        if origin in (Union, types.UnionType):
            return all(single(a) for a in get_args(annotation))
        if origin is not None:
            return False
        return not (isinstance(annotation, type) and issubclass(annotation, BaseModel))

    return all(single(info.annotation) for info in model.model_fields.values())


def _converter(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> Convert:
    found = _from_wire(metadata)
    if found is not None:
        return found
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _converter(base, extra)
    if origin in (Union, types.UnionType):
        inner = _converter(next(a for a in get_args(annotation) if a is not type(None)))
        return lambda value: None if value is None else inner(value)
    if origin is list:
        item = _converter(get_args(annotation)[0])
        return lambda values: [item(v) for v in values]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        construct = _constructor(annotation)
        return _shared_instances(construct) if _of_single_values(annotation) else construct
    return _identity


def _constructor(model: type[BaseModel]) -> Convert:
    """What `model_construct` does for these models, without its per-call generality.

    Our models have plain aliases at most, no extras, private attributes or
    post-init hook (checked here, once): an instance is its field values, the
    set of fields given, and two empty slots. `model_construct` cost a third
    of a rebuild.
    """
    assert not model.__private_attributes__ and not model.__pydantic_post_init__
    assert model.model_config.get("frozen"), f"{model.__name__} instances share their fields set"
    assert model.model_config.get("extra") != "allow"
    fields: list[tuple[str, str, Convert | None, Any]] = []
    for name, info in model.model_fields.items():
        assert info.validation_alias in (None, info.alias), f"{model.__name__}.{name}"
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        convert = _converter(info.annotation, info.metadata)
        if name in _INTERNED and _converter(_not_none(info.annotation), info.metadata) is _identity:
            convert = _interned  # optional ones too (a product, a manager): a null stays None
        fields.append((info.alias or name, name, None if convert is _identity else convert, default))
    aliases = {key: name for key, name, _, _ in fields}
    new = model.__new__

    #: The models are frozen, so instances with the same fields given can share one set of
    #: their names (pydantic copies it before changing it, in `model_copy`): a set per event
    #: and per credit was a tenth of the log's memory.
    shared: dict[tuple[str, ...], set[str]] = {}  # by the stored keys, in their (sorted) order

    def construct(data: dict[str, Any]) -> BaseModel:
        values = {}
        for key, name, convert, default in fields:
            raw = data.get(key, _ABSENT)
            if raw is _ABSENT:
                values[name] = default
            else:
                values[name] = raw if convert is None else convert(raw)
        keys = tuple(data)  # only fields: extra keys were refused when the event was appended
        fields_set = shared.get(keys)
        if fields_set is None:
            fields_set = shared[keys] = {aliases[key] for key in keys}
        instance = new(model)
        _set(instance, "__dict__", values)
        _set(instance, "__pydantic_fields_set__", fields_set)
        _set(instance, "__pydantic_extra__", None)
        _set(instance, "__pydantic_private__", None)
        return instance

    return construct


_set = object.__setattr__
_ABSENT = object()


_CONSTRUCTORS: dict[str, Convert] = {name: _constructor(model) for name, model in EVENT_TYPES.items()}


def decode_trusted(type_: str, data: dict[str, Any]) -> EventData:
    """The parsed event of a stored record (validated when it was appended)."""
    event: EventData = _CONSTRUCTORS[type_](data)
    return event
