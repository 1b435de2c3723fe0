"""Plain literal values and declared types: what a parameters file or a notebook parameter may hold.

A value read from a file is data: a str, int, float, bool or None, or a list / dict of those, nested at
most ``MAX_DEPTH`` deep. Anything else (YAML's ``!!binary`` bytes, its dates, sets and tagged objects) is
refused by name before it reaches code that renders or runs it: papermill writes notebook parameters
into a code cell, and renders a type it does not know with ``str()``, unescaped. Declared types
(``STR``, ``PATH``, ``INT`` ...) then say which of the plain values a parameter takes.

Torch-free and importing only ``errors``, so the command line and every layer can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .errors import UsageError

MAX_DEPTH = 32  # lists / dicts inside each other; a parameters file needs two or three
PLAIN_SCALARS = (str, int, float, bool, type(None))


def type_name(value) -> str:
    """A value's type as a user reads it (YAML's !!binary gives bytes, its dates datetime.date)."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def check_literal(value, what: str, where: str = "", depth: int = 0):
    """``value`` if it is a plain literal (see the module docstring), else a UsageError naming ``what`` (the
    file or parameter), ``where`` inside it, and the type found. Floats must be finite; keys text."""
    at = f"{what}: {where}" if where else what
    if depth > MAX_DEPTH:
        raise UsageError(f"{at}: nested more than {MAX_DEPTH} deep; settings are names and plain values")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{at}: {value!r} is not a finite number")
    if isinstance(value, str) and "\0" in value:
        raise UsageError(f"{at}: a text value holds a NUL character")
    if type(value) in PLAIN_SCALARS:
        return value
    if type(value) is list:
        for i, item in enumerate(value):
            check_literal(item, what, f"{where}[{i}]", depth + 1)
        return value
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise UsageError(f"{at}: key {key!r} is a {type_name(key)}; keys must be text")
            check_literal(item, what, f"{where}.{key}" if where else key, depth + 1)
        return value
    raise UsageError(f"{at}: a {type_name(value)} value is not allowed; values are text, numbers, true/false, "
                     "null, and lists or mappings of those (YAML tags such as !!binary, and dates, are refused)")


# --------------------------------------------------------------------------- declared types

@dataclass(frozen=True)
class Type:
    """A declared type: its name (used in messages) and the test a plain value must pass."""

    name: str
    accepts: Callable[[object], bool]

    def __or__(self, other: "Type") -> "Type":
        return Type(f"{self.name} or {other.name}", lambda v: self.accepts(v) or other.accepts(v))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


STR = Type("text", lambda v: isinstance(v, str))
PATH = Type("a path", lambda v: isinstance(v, str) and "\0" not in v)
INT = Type("a whole number", _is_int)
FLOAT = Type("a number", lambda v: (_is_int(v) or isinstance(v, float)) and math.isfinite(v))
BOOL = Type("true or false", lambda v: isinstance(v, bool))
NONE = Type("null", lambda v: v is None)


def optional(kind: Type) -> Type:
    return kind | NONE


def list_of(kind: Type) -> Type:
    return Type(f"a list of {kind.name}", lambda v: isinstance(v, list) and all(kind.accepts(x) for x in v))


def dict_of(key: Type, value: Type) -> Type:
    return Type(f"a mapping of {key.name} to {value.name}",
                lambda v: isinstance(v, dict) and all(key.accepts(k) and value.accepts(x) for k, x in v.items()))


def check_type(name: str, value, kind: Type):
    """``value`` if it is a plain literal of the declared ``kind``, else a UsageError naming the parameter,
    the type wanted and the type got."""
    check_literal(value, name)
    if not kind.accepts(value):
        raise UsageError(f"{name} must be {kind.name}. Got: {type_name(value)} {value!r}")
    return value
