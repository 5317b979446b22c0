"""scripts/test_durations.py reads pytest's own report: each test's setup, call and teardown added, and its closing line."""

from __future__ import annotations

import importlib.util

from conftest import ROOT

OUTPUT = """\
tests/test_a.py ..                                                      [100%]
============================= slowest durations ==============================
12.50s call     tests/test_a.py::test_slow[a b]
0.75s setup    tests/test_a.py::test_slow[a b]
0.25s teardown tests/test_a.py::test_slow[a b]
0.01s call     tests/test_a.py::test_quick
========================= 2 passed, 1 warning in 14.02s =========================
"""


def test_each_tests_phases_are_added_and_the_closing_line_kept():
    spec = importlib.util.spec_from_file_location("test_durations_script", ROOT / "scripts" / "test_durations.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.parse_durations(OUTPUT) == {"tests/test_a.py::test_slow[a b]": 13.5, "tests/test_a.py::test_quick": 0.01}
    assert script.result_line(OUTPUT) == "2 passed, 1 warning in 14.02s"
