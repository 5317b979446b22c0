"""Dataclass arguments for experiments and scripts (HfArgumentParser style)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from musicgenre.util.args import parse_dataclasses


@dataclass
class Options:
    data: str = field(metadata={"help": "required"})
    models: list[str] = field(default_factory=lambda: ["svm"])
    n_trials: int = 15
    workers: int | None = None
    fast: bool = False
    protocol: str = field(default="random", metadata={"choices": ["random", "filtered"]})


def test_command_line():
    (opts,) = parse_dataclasses(
        Options, argv=["--data", "d", "--models", "svm", "knn", "--n_trials", "3", "--fast", "--workers", "2"]
    )
    assert opts == Options("d", ["svm", "knn"], 3, 2, True, "random")


def test_defaults_choices_and_required(capsys):
    (opts,) = parse_dataclasses(Options, argv=["--data", "x"])
    assert opts.models == ["svm"] and opts.workers is None and opts.fast is False
    with pytest.raises(SystemExit):
        parse_dataclasses(Options, argv=["--data", "x", "--protocol", "nope"])
    with pytest.raises(SystemExit):
        parse_dataclasses(Options, argv=[])
    assert "required" in capsys.readouterr().err


def test_json_file(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"data": "j", "n_trials": 7}))
    (opts,) = parse_dataclasses(Options, argv=[str(path)])
    assert opts.data == "j" and opts.n_trials == 7 and opts.models == ["svm"]
    path.write_text(json.dumps({"data": "j", "bogus": 1}))
    with pytest.raises(SystemExit):
        parse_dataclasses(Options, argv=[str(path)])
