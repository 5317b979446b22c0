"""The package's layers (docs/architecture.md), checked by import-linter's contracts in pyproject.toml: every import,
at module level or inside a function, goes down the stack or stays in its own subpackage, nothing in the library
imports the measurement and test support, and no modules import each other. And importing any module changes
nothing in the process: no environment variable, no thread."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT

import musicgenre

PACKAGE = ROOT / "musicgenre"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
FAMILY_FOLDERS = [m.rpartition(".")[2] for c in CONTRACTS if c["type"] == "independence" for m in c["modules"]]
LAYERS = [name.strip() for c in CONTRACTS if c["type"] == "layers" for layer in c["layers"] for name in layer.split("|")]


def lint_imports(root: Path, config: Path = ROOT / "pyproject.toml") -> subprocess.CompletedProcess:
    """``lint-imports`` on the ``musicgenre`` package found under ``root``, with ``config``'s contracts."""
    assert LINT_IMPORTS.is_file(), "import-linter is a development dependency: pip install -e '.[dev]'"
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_every_import_goes_down_the_layers_and_none_makes_a_cycle():
    """import-linter's contracts on the package: its layers (``exhaustive``: a new subpackage or top-level module must
    be given a place), serving without training code, and no import cycles, lazy ones included."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


def test_the_contracts_report_an_upward_a_testing_and_a_cyclic_import_inside_functions(tmp_path):
    """The contracts themselves, on a skeleton package that breaks them with imports inside functions only: models
    importing training code, the CLI importing the test support, two modules of features importing each other, one
    model family importing another, serving importing a family's folder instead of the registry."""
    root = tmp_path / "musicgenre"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name in LAYERS:
        if (PACKAGE / name).is_dir():
            (root / name).mkdir()
            (root / name / "__init__.py").write_text("")
        else:
            (root / f"{name}.py").write_text("")
    (root / "training" / "metrics.py").write_text("")
    for family in FAMILY_FOLDERS:  # the folders the families' contracts name
        (root / "families" / family).mkdir()
        (root / "families" / family / "__init__.py").write_text("")
    (root / "families" / "cnn" / "model.py").write_text("def f():\n    from musicgenre.families.probe import model\n")
    (root / "families" / "probe" / "model.py").write_text("")
    (root / "serving" / "app.py").write_text("def f():\n    from musicgenre.families.cnn import model\n")
    (root / "models" / "bad.py").write_text("def f():\n    from musicgenre.training.metrics import fmt\n")
    (root / "cli.py").write_text("def f():\n    from musicgenre.testing import bad_inputs\n")
    (root / "features" / "a.py").write_text("def f():\n    from musicgenre.features import b\n")
    (root / "features" / "b.py").write_text("from musicgenre.features import a\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = lint_imports(tmp_path, tmp_path / "pyproject.toml")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    out = " ".join(result.stdout.split())
    assert "musicgenre.models.bad -> musicgenre.training.metrics" in out
    assert "musicgenre.cli -> musicgenre.testing" in out
    assert "No cycles are allowed in musicgenre.features" in out
    assert "musicgenre.families.cnn.model -> musicgenre.families.probe" in out  # one family importing another
    assert "musicgenre.serving.app -> musicgenre.families.cnn" in out  # a family by its folder, not the registry
    assert f"Contracts: 1 kept, {len(CONTRACTS) - 1} broken." in out  # serving imports nothing here


# Importing these changes the environment itself, whoever imports them; they are imported before the check.
THIRD_PARTY = {
    "sklearn": "sets KMP_DUPLICATE_LIB_OK and KMP_INIT_AT_FORK (its OpenMP settings) on import",
}
CHECK_IMPORTS = """
import importlib, json, os, sys, threading
for name in sys.argv[1:]:
    env, threads = dict(os.environ), threading.active_count()
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported, and the other modules still checked
        print(json.dumps([name, f"cannot be imported: {type(exc).__name__}: {exc}"]))
        continue
    changed = sorted(k for k in env.keys() | os.environ.keys() if env.get(k) != os.environ.get(k))
    if changed or threading.active_count() != threads:
        print(json.dumps([name, changed, threading.active_count() - threads]))
"""


def test_importing_any_module_changes_no_environment_variable_and_starts_no_thread():
    """Each module of musicgenre (the package first; not ``__main__``, which runs the command) imported in turn in
    one fresh process: what a module's import changes is reported against the first module that imports it. The
    variables musicgenre sets when asked (NUMBA_CACHE_DIR, KERAS_BACKEND) are unset there, so a setdefault shows."""
    names = [m.name for m in pkgutil.walk_packages(musicgenre.__path__, "musicgenre.") if not m.name.endswith(".__main__")]
    assert len(names) > 50 and "musicgenre.features.jitcache" in names
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "KERAS_BACKEND")}
    code = "".join(f"import {name}  # {why}\n" for name, why in THIRD_PARTY.items()) + CHECK_IMPORTS
    result = subprocess.run(
        [sys.executable, "-c", code, "musicgenre", *names], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [json.loads(line) for line in result.stdout.splitlines()] == []


def test_each_subpackage_says_what_lives_there_and_what_it_may_import():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc and init.parent.name in LAYERS, init


def test_readme_is_a_front_page_whose_links_resolve():
    """The README stays short (details live in docs/), keeps its two set-up commands, and every relative
    link in it and in docs/*.md points at a file that exists."""
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 12_000
    assert readme.count("python3 -m venv .venv && .venv/bin/pip install") == 2
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://", "mailto:")):
                assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_paths_computed_from_a_modules_file_still_point_where_they_did(monkeypatch):
    """Moving a module one folder deeper changes what ``Path(__file__).parents[n]`` means: the shared data
    default is ``../shared/data`` beside the checkout, and the numba cache's checking child imports this
    checkout's package."""
    from musicgenre.data.gtzan import SHARED_DATA_ENV, default_shared_data
    from musicgenre.features import jitcache

    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    assert default_shared_data() == ROOT.parent / "shared" / "data"
    import musicgenre

    assert jitcache.PACKAGE_ROOT == Path(musicgenre.__file__).resolve().parents[1]


def test_the_deprecated_module_names_are_the_moved_modules():
    """Each family's old module names (before issue 34) stay for one release as the very modules now in its folder,
    so old imports, and monkeypatching through them, behave as before; ``models.io`` re-exports what it held."""
    import importlib

    from musicgenre.families import FAMILIES, load_model_folder, resolve_model
    from musicgenre.families.shallow.folder import ShallowModel

    moved = {
        "musicgenre.models.cnn": "musicgenre.families.cnn.model",
        "musicgenre.models.probe": "musicgenre.families.probe.model",
        "musicgenre.models.shallow": "musicgenre.families.shallow.model",
        "musicgenre.models.transformer": "musicgenre.families.transformer.model",
        "musicgenre.training.cnn": "musicgenre.families.cnn.train",
        "musicgenre.training.probe": "musicgenre.families.probe.train",
        "musicgenre.training.probe_top": "musicgenre.families.probe.top",
        "musicgenre.training.robust": "musicgenre.families.probe.robust",
        "musicgenre.training.robust_views": "musicgenre.families.probe.robust_views",
        "musicgenre.training.finetune": "musicgenre.families.transformer.train",
        "musicgenre.training.shallow_study": "musicgenre.families.shallow.train",
    }
    for old, new in moved.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    io = importlib.import_module("musicgenre.models.io")
    assert (io.resolve_model, io.load_model_folder, io.ShallowModel) == (resolve_model, load_model_folder, ShallowModel)
    hub = importlib.import_module("musicgenre.models.hub")
    assert hub.checkpoint_kind(io.bundled_model_path("cnn")) == "keras"
    assert list(FAMILIES) == ["probe", "shallow", "cnn", "transformer"]
    assert FAMILIES["cnn"].trainer() is importlib.import_module("musicgenre.training.cnn")
