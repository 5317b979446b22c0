"""Handcrafted features in the public GTZAN table's schema: the features of one clip (``handcrafted``), the
HPSS median filter (``medfilt``), the project's own numba cache for librosa (``jitcache``, checked by running
``jitcheck``), one file's rows (``rows``), and tables of many clips: parallel, resumable, atomic, read back and
checked (``table``), or on a Ray cluster (``cluster``).

May import: ``data``, ``audio``, ``util``, ``errors``."""
