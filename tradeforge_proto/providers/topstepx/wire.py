"""Mapping between the gateway's JSON entities and the generic models.

Reading is tolerant: unknown fields are ignored, optional fields may be missing or null, unknown
enum values are kept. Reading is not lax: a required field that is missing or of the wrong JSON
type raises ``RemoteProtocolError`` naming the field, instead of becoming a wrong value.
Writing produces the gateway's field names exactly; ``omit_none`` gives the realtime hubs' shape
(null fields left out) instead of the REST shape (explicit nulls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ...core.enums import OpenIntEnum
from ...core.errors import LocalProtocolError, RemoteProtocolError
from ...core.jsoncodec import to_decimal
from ...core.models import (
    Account,
    Bar,
    Contract,
    DepthUpdate,
    Fill,
    MarketTrade,
    Order,
    Position,
    Quote,
)

M = TypeVar("M")

_EXACT_FLOAT_INT: Final = 2**53  # beyond this a JSON float no longer names one integer

# Wire names that are not the camelCase of the model's field name.
_RENAMES: Final[dict[type[Any], dict[str, str]]] = {
    Contract: {"active": "activeContract"},
    Order: {"created_at": "creationTimestamp", "updated_at": "updateTimestamp"},
    Position: {"created_at": "creationTimestamp", "side": "type"},
    Fill: {"created_at": "creationTimestamp"},
    Bar: {"time": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"},
    MarketTrade: {"aggressor": "type"},
}

# Fields that never appear inside the wire entity (the hubs send them as a separate argument).
_OUTSIDE: Final[dict[type[Any], frozenset[str]]] = {
    Quote: frozenset({"contract_id"}),
    MarketTrade: frozenset({"contract_id"}),
    DepthUpdate: frozenset({"contract_id"}),
}

WIRE_MODELS: Final = (
    Account,
    Contract,
    Order,
    Position,
    Fill,
    Bar,
    Quote,
    MarketTrade,
    DepthUpdate,
)


def camel(name: str) -> str:
    """``created_at`` -> ``createdAt``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def wire_name(cls: type[Any], field: str) -> str:
    """The gateway's name for ``field`` of model ``cls``."""
    return _RENAMES.get(cls, {}).get(field) or camel(field)


# Realtime entries of one message share their timestamp: remember recent parses.
_TIMESTAMPS: dict[str, datetime] = {}
_TIMESTAMPS_MAX: Final = 4096


def parse_timestamp(value: Any) -> datetime:
    """An ISO-8601 timestamp (any number of fractional digits, ``Z`` or offset) as aware UTC."""
    if type(value) is not str:
        raise ValueError(f"expected a timestamp string, got {value!r}")
    cached = _TIMESTAMPS.get(value)
    if cached is not None:
        return cached
    try:
        # The gateway's usual form parses as it is; only the rest needs cleaning up first.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.fromisoformat(_normalized_timestamp(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        result = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range in UTC: {value!r}") from None
    if len(_TIMESTAMPS) >= _TIMESTAMPS_MAX:
        _TIMESTAMPS.clear()
    _TIMESTAMPS[value] = result
    return result


def _normalized_timestamp(value: str) -> str:
    text = value.strip()
    # fromisoformat refuses blanks around the text, and some 3.11 releases a long fraction.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        if digits > 6:
            text = f"{head}.{tail[:6]}{tail[digits:]}"
    return text


def format_timestamp(value: datetime) -> str:
    """An aware datetime as the ISO-8601 UTC form the gateway accepts (``...Z``)."""
    if value.tzinfo is None:
        raise LocalProtocolError(f"timestamps must be timezone-aware, got {value!r}")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise LocalProtocolError(f"timestamp out of range in UTC: {value.isoformat()}") from None
    return utc.isoformat().replace("+00:00", "Z")


def read_int(value: Any) -> int:
    """A JSON integer (a whole float within double precision is accepted); ValueError else."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float and value.is_integer() and abs(value) <= _EXACT_FLOAT_INT:
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def read_str(value: Any) -> str:
    """A JSON string; ValueError for anything else (null is never turned into "None")."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _strict_int(value: Any, _: type[int]) -> int:
    return read_int(value)


def _strict_str(value: Any, _: type[str]) -> str:
    return read_str(value)


def _strict_bool(value: Any, _: type[bool]) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _open_enum(value: Any, cls: type[OpenIntEnum]) -> OpenIntEnum:
    return cls(_strict_int(value, int))


def _unstructure_decimal(value: Decimal) -> Decimal:
    # Left as Decimal: the JSON codec writes it exactly (or refuses).
    return value


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(Decimal, lambda v, _: to_decimal(v))
    conv.register_structure_hook(datetime, lambda v, _: parse_timestamp(v))
    conv.register_unstructure_hook(Decimal, _unstructure_decimal)
    conv.register_unstructure_hook(datetime, format_timestamp)
    # Registered on the base class so that it wins over the int hook for every open enum.
    conv.register_structure_hook(OpenIntEnum, _open_enum)
    conv.register_unstructure_hook(OpenIntEnum, int)
    for cls in WIRE_MODELS:
        outside = _OUTSIDE.get(cls, frozenset())
        reading = {
            f.name: override(
                rename=_outside_key(f.name) if f.name in outside else wire_name(cls, f.name)
            )
            for f in attrs.fields(cls)
        }
        writing = {
            f.name: override(omit=True)
            if f.name in outside
            else override(rename=wire_name(cls, f.name))
            for f in attrs.fields(cls)
        }
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **reading))  # type: ignore[arg-type]
        conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, **writing))  # type: ignore[arg-type]
    return conv


def _outside_key(field: str) -> str:
    # A key no gateway object can contain: values sent beside the entity are injected under it.
    return f"\0{field}"


_CONVERTER: Final = _build_converter()


def _describe(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    # Detailed validation wraps every hook error; a bare one would come from cattrs itself.
    return str(exc)  # pragma: no cover


def from_wire(cls: type[M], data: Any, **outside: Any) -> M:
    """Build model ``cls`` from a gateway JSON object; ``outside`` supplies fields sent apart."""
    if not isinstance(data, Mapping):
        raise RemoteProtocolError(f"expected a {cls.__name__} object, got {type(data).__name__}")
    if outside:
        data = {**data, **{_outside_key(k): v for k, v in outside.items()}}
    try:
        return _CONVERTER.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise RemoteProtocolError(f"malformed {cls.__name__}: {_describe(exc)}") from None


def many_from_wire(cls: type[M], items: Any, **outside: Any) -> list[M]:
    """A list of ``cls`` from a JSON array (null counts as empty)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise RemoteProtocolError(f"expected a list of {cls.__name__}, got {type(items).__name__}")
    return [from_wire(cls, item, **outside) for item in items]


def to_wire(model: Any, *, omit_none: bool = False) -> dict[str, Any]:
    """The gateway's JSON object for ``model``; nulls left out when ``omit_none``."""
    data: dict[str, Any] = _CONVERTER.unstructure(model)
    if omit_none:
        return {k: v for k, v in data.items() if v is not None}
    return data


def structure_hook(cls: type[M]) -> Callable[[Any], M]:
    """A one-argument reader for ``cls`` (handy for mapping over lists)."""
    return lambda data: from_wire(cls, data)
