"""Measurement and test support, as ``numpy.testing`` is for NumPy: the benchmarks' code (``benchmark``,
``inference_benchmark``, ``load_benchmark``), the app as a real process on 127.0.0.1 (``app_process``), and
the corpus of broken audio every entry point must survive (``bad_inputs``). Used by ``benchmarks/`` and
``tests/``; the Space upload leaves it out.

May import: anything; nothing in the library imports it."""
