"""Evaluation protocols: which rows train and which score.

- ``random``: stratified K-fold over rows, as most GTZAN notebooks do. For 3-second rows
  this puts segments of one track on both sides, which inflates accuracy (leaky).
- ``grouped``: stratified K-fold over tracks; segments of one track never straddle folds.
- ``filtered``: the artist-conscious, fault-filtered split of Kereliuk, Sturm & Larsen (2015),
  shipped in ``resources/splits`` (see the README there). Train on ``train``, report on
  ``valid``; ``test`` tracks are held back for independent evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache
from importlib import resources

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from musicgenre.data.gtzan import track_id
from musicgenre.errors import DataError

PROTOCOLS = ("random", "grouped", "filtered")
FILTERED_PARTS = ("train", "valid", "test")


@cache
def filtered_split() -> dict[str, frozenset[str]]:
    """Track ids (``blues.00000``) of each part of the fault-filtered split."""
    folder = resources.files("musicgenre.data") / "lists"
    parts = {}
    for part in FILTERED_PARTS:
        text = (folder / f"gtzan_filtered_{part}.txt").read_text()
        parts[part] = frozenset(track_id(line.strip()) for line in text.splitlines() if line.strip())
    return parts


def filtered_part(tracks: np.ndarray | list[str]) -> np.ndarray:
    """For each row's track id, its filtered-split part ('train', 'valid', 'test' or '' if excluded)."""
    split = filtered_split()
    lookup = {t: part for part, ids in split.items() for t in ids}
    return np.array([lookup.get(t, "") for t in tracks], dtype=object)


def artist_proxy_groups(tracks: np.ndarray | list[str]) -> np.ndarray:
    """Group ids for runs of consecutive track numbers within a genre.

    GTZAN orders each genre's tracks mostly by artist, and the filtered split keeps every
    artist in one part, so within one part a run of consecutive numbers holds whole artists.
    Cross-validating over these runs imitates the filtered split's unseen-artist test when
    tuning, where track-grouped folds would share artists and overrate memorising models.
    """
    keys = sorted({(t.rsplit(".", 1)[0], int(t.rsplit(".", 1)[1])) for t in tracks if "." in t})
    run_of: dict[str, int] = {}
    run = -1
    for k, (genre, number) in enumerate(keys):
        if k == 0 or genre != keys[k - 1][0] or number != keys[k - 1][1] + 1:
            run += 1
        run_of[f"{genre}.{number:05d}"] = run
    return np.array([run_of.get(t, -1) for t in tracks])


def kfold(
    protocol: str, labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Train/test row indices of each fold under ``random`` or ``grouped``."""
    labels = np.asarray(labels)
    n_splits = min(n_splits, max_folds(protocol, labels, groups))
    if n_splits < 2:
        raise DataError(f"too few examples per genre for {protocol} cross-validation")
    if protocol == "random":
        yield from StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(labels, labels)
    elif protocol == "grouped":
        splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
        yield from splitter.split(labels, labels, groups)
    else:
        raise DataError(f"unknown cross-validation protocol {protocol!r}; use 'random' or 'grouped'")


def max_folds(protocol: str, labels: np.ndarray, groups: np.ndarray) -> int:
    """The most folds that still give every class a member in each fold."""
    if protocol == "grouped":
        per_class = [len(set(groups[labels == c])) for c in np.unique(labels)]
    else:
        per_class = [int(np.sum(labels == c)) for c in np.unique(labels)]
    return min(per_class)


def course_split(n: int, test_size: float = 0.1, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices exactly as ``datasets.Dataset.train_test_split(test_size, seed=seed)`` draws them.

    The Hugging Face audio course splits GTZAN this way (test_size 0.1, seed 42); reproducing the
    draw without ``datasets`` keeps results comparable with its 0.83 DistilHuBERT accuracy when the
    clips are in the same order. A random split: artists straddle train and test.
    """
    if not 0 < test_size < 1:
        raise DataError(f"test_size must be between 0 and 1, got {test_size}")
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise DataError(f"{n} clips are too few to hold out {test_size:.0%} for testing")
    permutation = np.random.default_rng(seed).permutation(n)
    return permutation[n_test:], permutation[:n_test]
