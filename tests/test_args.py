"""The options of the scripts around the package (``musicgenre.arguments``, which replaced ``util/args.py``): each
experiment, benchmark and script, and the app, parses its command line (or one JSON file) into its dataclasses,
their defaults and types intact."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import types
import typing
from dataclasses import MISSING, fields

import pytest
from conftest import ROOT

from musicgenre.arguments import parse_dataclasses

SCRIPTS = sorted(p for folder in ("experiments", "benchmarks", "scripts") for p in (ROOT / folder).glob("*.py"))
ENTRY_POINTS = [*(p for p in SCRIPTS if "parse_dataclasses(" in p.read_text()), ROOT / "app.py"]


def options_of(relative: str, monkeypatch) -> tuple[types.ModuleType, list[type]]:
    """An entry point imported as a module (its folder importable, as when it runs), and the dataclasses it parses."""
    path = ROOT / relative
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # what app.py sets on import, undone after the test
    spec = importlib.util.spec_from_file_location(f"entry_point_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    call = next(
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "parse_dataclasses"
    )
    return module, [getattr(module, arg.id) for arg in call.args]


def test_command_line(monkeypatch):
    """An experiment's command line, typed: lists of words, floats and ints, an optional path, and bools turned off
    with ``--no-<field>`` as the docs write it (``--no-tune_top``)."""
    _, classes = options_of("experiments/pretrained_probe.py", monkeypatch)
    argv = ["--data_dir", "d", "--protocols", "grouped", "filtered", "--c_grid", "0.1", "1", "--epochs", "3", "5"]
    args, probe, top = parse_dataclasses(*classes, argv=[*argv, "--model_dir", "m", "--no-tune_top", "--no-normalise"])
    assert (args.data_dir, args.protocols, args.model_dir, args.tune_top) == ("d", ["grouped", "filtered"], "m", False)
    assert probe.c_grid == [0.1, 1.0] and probe.normalise is False and top.epochs == [3, 5]
    defaults = [cls() for cls in classes]
    assert (args.embeddings, probe.folds, top.batch_size) == (defaults[0].embeddings, defaults[1].folds, defaults[2].batch_size)


def test_defaults_required_and_usage_errors(monkeypatch, capsys):
    """A script's required options, its defaults (``X | None`` ones included), and a usage error, not a traceback,
    for a missing option, a value of the wrong type or an unknown option."""
    _, (options,) = options_of("scripts/extract_features.py", monkeypatch)
    (opts,) = parse_dataclasses(options, argv=["--inputs", "a.wav", "b.wav", "--out", "t.csv"])
    assert opts == options(inputs=["a.wav", "b.wav"], out="t.csv") and opts.workers is None and opts.save_every == 10.0
    (opts,) = parse_dataclasses(options, argv=["--inputs", "a.wav", "--out", "t.csv", "--workers", "2", "--segment_seconds", "3"])
    assert (opts.workers, opts.segment_seconds) == (2, 3.0)
    wrong = [["--inputs", "a", "--out", "t", *extra] for extra in (["--workers", "many"], ["--x"])]
    for argv in ([], ["--inputs", "a.wav"], *wrong):
        with pytest.raises(SystemExit) as exit_:
            parse_dataclasses(options, argv=argv)
        assert exit_.value.code == 2, argv
    assert "required: --inputs, --out" in capsys.readouterr().err


def test_json_file(monkeypatch, tmp_path):
    """One ``.json`` argument gives the options instead: defaults for what it leaves out, unknown or missing ones refused."""
    _, classes = options_of("experiments/robustness.py", monkeypatch)
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"data_dir": "clips", "folds": 2, "augment": ["none"]}))
    args, settings = parse_dataclasses(*classes, argv=[str(path)])
    assert args.data_dir == "clips" and (settings.folds, settings.augment, settings.seed) == (2, ["none"], 0)
    path.write_text(json.dumps({"data_dir": "clips", "bogus": 1}))
    with pytest.raises(SystemExit):
        parse_dataclasses(*classes, argv=[str(path)])
    _, (options,) = options_of("scripts/extract_features.py", monkeypatch)
    path.write_text(json.dumps({"inputs": ["a.wav"]}))
    with pytest.raises(SystemExit):  # --out is required
        parse_dataclasses(options, argv=[str(path)])


SAMPLE = {str: "x", int: "7", float: "0.5"}  # a value of each type the entry points' fields have


def _default(f):
    return f.default if f.default_factory is MISSING else f.default_factory()


@pytest.mark.parametrize("relative", [str(p.relative_to(ROOT)) for p in ENTRY_POINTS])
def test_every_entry_point_parses_its_options_with_their_defaults_and_types(relative, monkeypatch, capsys):
    """Every field is an option named after it; left out, it is the field's default; given, a value of the field's
    type (a bool by ``--<field>`` or ``--no-<field>``); ``--help`` shows the entry point's docstring and every option."""
    module, classes = options_of(relative, monkeypatch)
    required, given, want = [], [], []
    for f, kind in [(f, typing.get_type_hints(cls)[f.name]) for cls in classes for f in fields(cls)]:
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if kind is bool:
            words, value = [f"--no-{f.name}" if f.default else f"--{f.name}"], not f.default
        elif typing.get_origin(kind) is list:
            inner = typing.get_args(kind)[0]
            words, value = [f"--{f.name}", SAMPLE[inner], SAMPLE[inner]], [inner(SAMPLE[inner])] * 2
        else:
            words, value = [f"--{f.name}", SAMPLE[kind]], kind(SAMPLE[kind])
        given += words
        want.append(value)
        required += words if _default(f) is MISSING else []
    for cls, instance in zip(classes, parse_dataclasses(*classes, argv=required), strict=True):
        for f in fields(cls):
            assert _default(f) is MISSING or getattr(instance, f.name) == _default(f), (cls.__name__, f.name)
    parsed = parse_dataclasses(*classes, argv=given)
    got = [getattr(instance, f.name) for cls, instance in zip(classes, parsed, strict=True) for f in fields(cls)]
    assert repr(got) == repr(want)  # repr: 7 is not 7.0
    with pytest.raises(SystemExit) as exit_:
        parse_dataclasses(*classes, argv=["--help"], description=module.__doc__)
    text = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0 and " ".join(module.__doc__.split()[:6]) in text
    assert all(f"--{f.name}" in text for cls in classes for f in fields(cls))
