"""What the experiments conclude and what ships because of it: the generated report (``report``), the EDA
(``eda``), the labelled robustness study (``robustness``: its ``catalogue``, ``views``, ``fit``, ``run`` and
``report``), the robust probe on real recordings (``real_recordings``), prediction stability under
degradations (``stability``), the filtered ceiling (``ceiling``), and the builder of the bundled models from
those results (``bundle``).

May import: ``training`` and everything below it."""
