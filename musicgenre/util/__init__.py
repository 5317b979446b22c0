"""Plumbing every layer may use: atomic writes of files and folders (``atomic``), dataclass command-line
arguments (``args``), and joining a Ray cluster to map work over paths (``cluster``).

May import: ``musicgenre.errors`` only. Knows nothing of audio, genres or models."""
