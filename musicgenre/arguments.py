"""Command-line arguments of the thin entry points around the package: experiments/, benchmarks/, scripts/, app.py.

Each entry point declares its options as dataclasses (default and help in one place) and parses them
with ``parse_dataclasses``: plain argparse, one ``--field`` per field (its metadata, ``help`` say, passed
to argparse), a group per dataclass in ``--help``, a bool as ``--x`` / ``--no-x``, a list as one or more
values, ``X | None`` as an X. A single ``.json`` argument reads the options from that file instead.

Not transformers' ``HfArgumentParser``, which these entry points used to copy: importing it takes about
0.7 s (numpy and some 575 modules) in scripts that time their own start-up and in the app, it spells a
negation ``--no_x`` and only for fields that default to True (``--no-tune_top`` is documented), it reads no
JSON file, and it answers an unknown option with a traceback. Nothing in the library imports this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing


def _default(f: dataclasses.Field):
    """The field's default (its factory's value), or ``dataclasses.MISSING`` when the option is required."""
    return f.default if f.default_factory is dataclasses.MISSING else f.default_factory()


def _add_option(group, f: dataclasses.Field, kind) -> None:
    default = _default(f)
    options = {"help": "", **f.metadata}
    options.update({"required": True} if default is dataclasses.MISSING else {"default": default})
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None: an X, or the default
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(kind) is list:
        options.update(nargs="+", type=typing.get_args(kind)[0])
    else:
        options["type"] = kind
    group.add_argument(f"--{f.name}", **options)


def parse_dataclasses(*classes: type, argv: list[str] | None = None, description: str | None = None) -> tuple:
    """Instances of ``classes`` filled from the command line (``sys.argv[1:]`` by default), or from one JSON file."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=description)
    for cls in classes:
        group, hints = parser.add_argument_group(cls.__name__), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            _add_option(group, f, hints[f.name])
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as fh:
            values = json.load(fh)
        defaults = {f.name: _default(f) for cls in classes for f in dataclasses.fields(cls)}
        if unknown := set(values) - set(defaults):
            parser.error(f"unknown options in {argv[0]}: {sorted(unknown)}")
        if missing := [name for name, value in defaults.items() if value is dataclasses.MISSING and name not in values]:
            parser.error(f"{argv[0]} lacks required options: {missing}")
        namespace = argparse.Namespace(**{**defaults, **values})
    else:
        namespace = parser.parse_args(argv)
    return tuple(cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)}) for cls in classes)
