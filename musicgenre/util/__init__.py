"""Plumbing every layer may use: atomic writes of files and folders (``atomic``), arrays computed from a
file's content kept on disk (``cache``), joining a Ray cluster to map work over paths (``cluster``), tables
built a file at a time that survive interruption (``resumable``), Parquet with the settings a table was made
with (``parquet``), and inputs named by URIs, ``file://`` or any fsspec filesystem (``uri``).

May import: ``musicgenre.errors`` only. Knows nothing of audio, genres or models."""
