"""Gradio imported without rewriting its type stubs: the same components, seconds sooner (benchmarks/startup.py)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={"GRADIO_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


# Which modules call ast.parse while gradio is imported: the stub writer, gradio.component_meta, parses every component's source.
_COUNT_PARSES = (
    "import ast, sys\n"
    "callers = set()\n"
    "real_parse = ast.parse\n"
    "ast.parse = lambda *a, **k: callers.add(sys._getframe(1).f_globals['__name__']) or real_parse(*a, **k)\n"
)


def test_components_are_built_without_parsing_their_sources():
    code = _COUNT_PARSES + (
        "from musicgenre.serving.gradio_import import _SkipStubs, _no_stub, import_gradio\n"
        "gr = import_gradio()\n"
        "import gradio.component_meta as meta\n"
        "assert meta.create_or_modify_pyi is _no_stub\n"
        "assert not any(isinstance(f, _SkipStubs) for f in sys.meta_path)  # the hook is gone once gradio is in\n"
        "with gr.Blocks() as demo:\n"
        "    audio = gr.Audio(type='filepath'); label = gr.Label()\n"
        "print('gradio.component_meta' in callers, type(audio).__name__, type(label).__name__)"
    )
    assert _run(code) == "False Audio Label"  # the same count sees the stub writer in a plain import: the next test


def test_a_gradio_imported_earlier_is_returned_as_it_is():
    """A plain ``import gradio`` parses its components' sources (what the previous test's count would see without
    the hook); a Gradio imported that way is returned as it is."""
    code = _COUNT_PARSES + (
        "import gradio, gradio.component_meta as meta\n"
        "original = meta.create_or_modify_pyi\n"
        "from musicgenre.serving.gradio_import import import_gradio\n"
        "assert import_gradio() is gradio and meta.create_or_modify_pyi is original\n"
        "print('gradio.component_meta' in callers)"
    )
    assert _run(code) == "True"
