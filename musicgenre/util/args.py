"""Dataclass command-line arguments, in the style of transformers' HfArgumentParser.

Experiments and scripts declare their options as dataclasses (defaults and help in one
place); this turns them into an argparse parser without pulling in transformers.
A single ``.json`` argument loads the options from that file instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field, hints: dict[str, Any]) -> None:
    kind = hints[f.name]
    default = _default(f)
    required = default is dataclasses.MISSING
    kwargs: dict[str, Any] = {"help": f.metadata.get("help", ""), "required": required}
    if not required:
        kwargs["default"] = default
    origin, inner = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        kind = next(a for a in inner if a is not type(None))
        origin, inner = typing.get_origin(kind), typing.get_args(kind)
    if "choices" in f.metadata:
        kwargs["choices"] = f.metadata["choices"]
    name = f"--{f.name}"
    if kind is bool:
        parser.add_argument(name, action=argparse.BooleanOptionalAction, **kwargs)
    elif origin is list:
        parser.add_argument(name, nargs="+", type=inner[0], **kwargs)
    else:
        parser.add_argument(name, type=kind, **kwargs)


def parse_dataclasses(*classes: type, argv: list[str] | None = None, description: str | None = None) -> tuple:
    """Instances of ``classes`` filled from the command line (or one JSON file)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=description)
    for cls in classes:
        group = parser.add_argument_group(cls.__name__)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            _add_field(group, f, hints)
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as fh:
            values = json.load(fh)
        fields = [f for cls in classes for f in dataclasses.fields(cls)]
        unknown = set(values) - {f.name for f in fields}
        if unknown:
            parser.error(f"unknown options in {argv[0]}: {sorted(unknown)}")
        defaults = {f.name: _default(f) for f in fields}
        missing = [name for name, value in defaults.items() if value is dataclasses.MISSING and name not in values]
        if missing:
            parser.error(f"{argv[0]} lacks required options: {missing}")
        namespace = argparse.Namespace(**{**defaults, **values})
    else:
        namespace = parser.parse_args(argv)
    return tuple(cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)}) for cls in classes)
