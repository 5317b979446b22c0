"""Import Gradio without the seconds it spends rewriting its own type stubs.

Every Gradio component class (about 80) is built by ``gradio.component_meta.ComponentMeta``,
which calls ``create_or_modify_pyi``: it reads and ``ast``-parses the component's source and its
``.pyi`` stub, regenerates the stub and writes it back if it differs. That serves Gradio's own
developers and custom-component authors; the wheel already ships the stubs. It is half of
``import gradio`` (6.31.0 on 2 cores: 6.2 s, 2.9 s without it; ``benchmarks/startup.py``) and a
write into site-packages at every start. PyInstaller builds of Gradio apps and the AUTOMATIC1111
web UI replace it with a no-op too; so does this module, for this process only, before Gradio's
components are defined (``gradio.blocks_events``, which imports the name later, gets the no-op too).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from types import ModuleType

log = logging.getLogger(__name__)
PATCHED_MODULE = "gradio.component_meta"


def _no_stub(*args: object, **kwargs: object) -> None:
    """Stand-in for ``create_or_modify_pyi``: leave the shipped ``.pyi`` stubs as they are."""


class _SkipStubs(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` as usual and swaps its stub writer as soon as the module has run."""

    def find_spec(self, name, path, target=None):
        if name != PATCHED_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            module.create_or_modify_pyi = _no_stub  # looked up by ComponentMeta.__new__ at each class

        spec.loader.exec_module = exec_module
        return spec


def import_gradio() -> ModuleType:
    """``import gradio``, skipping the stub rewriting if Gradio is not imported yet in this process."""
    if "gradio" in sys.modules:
        log.debug("gradio was imported before musicgenre.serving.gradio_import: its stubs were rewritten as usual")
        import gradio

        return gradio
    finder = _SkipStubs()
    sys.meta_path.insert(0, finder)
    try:
        import gradio
    finally:
        sys.meta_path.remove(finder)
    return gradio
