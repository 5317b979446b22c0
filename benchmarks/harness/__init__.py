"""The benchmarks' measuring code, beside the scripts that run it (``python benchmarks/NAME.py`` puts
``benchmarks/`` first on ``sys.path``, so they import ``harness.benchmark`` and the like): ``benchmark``
(feature extraction, Ray scaling, transformer inference), ``inference_benchmark`` (every served model, each in
its own process) and ``load_benchmark`` (bursts of clients against the running app; the load test uses it too,
``tests/conftest.py`` puts ``benchmarks/`` on the path). Not part of the library: nothing in ``musicgenre``
imports it, and neither the package nor the Space ships it. The app as a process and the bad-input corpus, which
the tests use as well, stay in ``musicgenre.testing``."""
