"""The package's layers (docs/architecture.md): every import, at module level or inside a function, goes
down the stack or stays in its own subpackage; the measurement and test support is never imported by the
library."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "musicgenre"
# Each subpackage and what it may import besides itself, bottom to top.
BELOW = {"errors": set(), "util": {"errors"}}
for layer, under in [("audio", "util"), ("data", "audio"), ("features", "data"), ("models", "features")]:
    BELOW[layer] = {under, *BELOW[under]}
BELOW["training"] = {"models", *BELOW["models"]}
BELOW["study"] = {"training", *BELOW["training"]}
BELOW["serving"] = {"models", *BELOW["models"]}  # the app never needs training or study code
TOP = {"__init__", "__main__", "cli", "shallow"}  # entry points, and the skops alias of models.shallow
BELOW["testing"] = set(BELOW) | TOP
for name in TOP:
    BELOW[name] = (set(BELOW) | TOP) - {"testing", name}


def unit(module: str) -> str:
    """``musicgenre.models.io`` -> ``models``; ``musicgenre.cli`` -> ``cli``; ``musicgenre`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """The musicgenre modules ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "musicgenre":
            found |= {node.module} if node.module != "musicgenre" else {f"musicgenre.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "musicgenre"}
    return found - {"musicgenre.__version__"}


def layer_of(path: Path) -> str:
    """The subpackage (or top-level module) a file of the package belongs to."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[1] if len(parts) > 2 else "__init__" if parts[1] == "__init__" else parts[1]


def violations(path: Path, here: str) -> list[str]:
    return [f"{path.name} ({here}) imports {m} ({unit(m)})" for m in sorted(imports(path)) if unit(m) not in {here, *BELOW[here]}]


def test_every_import_goes_down_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = layer_of(path)
        assert here in BELOW, f"{path}: a new subpackage or top-level module; give it a layer here and in docs/architecture.md"
        wrong += violations(path, here)
    assert wrong == []


def test_the_rule_reports_an_upward_or_a_testing_import(tmp_path):
    """The checker itself, on files that break the rule: models importing training code, a lazy import of the
    test support from the library."""
    bad = tmp_path / "bad.py"
    bad.write_text("from musicgenre.models import io\n\ndef f():\n    from musicgenre.training.metrics import fmt\n")
    assert violations(bad, "models") == ["bad.py (models) imports musicgenre.training.metrics (training)"]
    bad.write_text("def f():\n    from musicgenre.testing import bad_inputs\n")
    assert violations(bad, "cli") == ["bad.py (cli) imports musicgenre.testing (testing)"]
    assert layer_of(PACKAGE / "models" / "io.py") == "models" and layer_of(PACKAGE / "__init__.py") == "__init__"


def test_each_subpackage_says_what_lives_there_and_what_it_may_import():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc and init.parent.name in BELOW, init


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
