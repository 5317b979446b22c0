"""GTZAN as data: where the clips are and what genre each one is (``gtzan``: folders, file names, lists of
paths), and the split protocols (``splits``: random, grouped by track, the artist-conscious filtered lists
shipped in ``lists/``).

May import: ``audio``, ``util``, ``errors``."""
