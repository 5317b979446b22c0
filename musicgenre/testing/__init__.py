"""Test support, as ``numpy.testing`` is for NumPy: the app as a real process on 127.0.0.1 (``app_process``), and
the corpus of broken audio every entry point must survive (``bad_inputs``). Used by ``tests/`` and ``benchmarks/``
(whose own measuring code lives beside them, in ``benchmarks/harness``); the Space upload leaves it out.

May import: anything; nothing in the library imports it."""
