"""The model's JSON form: schema version, document header, dataclass <-> dict.

Generic over the model's dataclasses: each class says which of its fields hold
nested data (``decode``'s ``nested`` table); everything else is taken as is.
Every problem with the data is a ValueError whose message names what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

SCHEMA = 1
"""Version of the JSON layout written by ``to_dict``; ``from_dict`` accepts only this."""

_T = TypeVar("_T")


def parse(text: str | bytes) -> dict[str, Any]:
    """The top-level JSON object of a document."""
    data = json.loads(text)
    if not isinstance(data, dict):
        msg = "not a greentrace document: top level is not a JSON object"
        raise ValueError(msg)  # noqa: TRY004 (bad data, reported like all bad data)
    return data


def check_header(data: dict[str, Any], kind: str) -> None:
    """Accept only this schema version and, when the document names one, ``kind``."""
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ValueError(
            f"unsupported greentrace schema {schema!r}: this version reads schema {SCHEMA}"
        )
    if data.get("kind", kind) != kind:
        raise ValueError(f"expected a greentrace {kind}, got kind {data.get('kind')!r}")


def encode(obj: Any) -> Any:
    """Dataclasses to dicts, lists element-wise; other values are JSON-ready already."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, list):
        return [encode(item) for item in obj]
    return obj


def decode(
    cls: type[_T],
    data: Any,
    nested: Mapping[str, Callable[[Any], Any]] | None = None,
) -> _T:
    """Build dataclass ``cls`` from a dict, with a ValueError naming what is wrong.

    ``nested`` maps a field name to how to rebuild its (non-None) value.
    """
    if not isinstance(data, dict):
        msg = f"malformed greentrace {cls.__name__}: expected an object"
        raise ValueError(msg)  # noqa: TRY004 (bad data, reported like all bad data)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"malformed greentrace {cls.__name__}: no {f.name!r}")
            continue
        value = data[f.name]
        convert = nested.get(f.name) if nested is not None else None
        kwargs[f.name] = value if convert is None or value is None else convert(value)
    return cls(**kwargs)
