"""Features: same values as the public GTZAN table and as the naive per-feature librosa code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage
from conftest import SR, synth, write_audio

from musicgenre.features.handcrafted import FEATURE_COLUMNS, TABLE_COLUMNS, extract_features, extract_features_naive
from musicgenre.features.medfilt import median_filter_1d
from musicgenre.features.table import extract_table


def test_columns_are_the_public_schema(shared_data):
    public = pd.read_csv(shared_data / "features_30_sec.csv", nrows=1)
    assert list(public.columns) == TABLE_COLUMNS
    assert len(FEATURE_COLUMNS) == 57


@pytest.mark.parametrize("shape", [(1025, 130), (7, 9), (40, 1), (1, 31), (3, 2), (6, 33), (4, 64)])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("ties", ["some", "mostly"])
def test_median_filter_is_scipys_exactly(shape, axis, ties):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    if ties == "some":
        x[:, ::7] = 0.25
    else:  # five distinct values: every window is full of ties, the pair rule's hard case
        x = np.round(x * 4).astype(np.float32)
    size = [1, 1]
    size[axis] = 31
    expected = scipy.ndimage.median_filter(x, size=tuple(size), mode="reflect")
    assert np.array_equal(median_filter_1d(x, 31, axis), expected)


@pytest.mark.slow  # librosa's compiled code (~30 s to build once), the reference path only
@pytest.mark.librosa
def test_fast_features_equal_naive_librosa():
    y = synth(8.0, seed=3)
    fast, naive = extract_features(y, SR), extract_features_naive(y, SR)
    for col in FEATURE_COLUMNS:
        # harmony/perceptr means are ~1e-6 averages of signed samples: compare them absolutely
        assert fast[col] == pytest.approx(naive[col], rel=1e-4, abs=1e-6), col


@pytest.fixture(scope="session")
def extracted_30s(mini_clips, tmp_path_factory):
    """Our 30-second table for every shared clip, extracted once with the parallel writer."""
    out = tmp_path_factory.mktemp("features") / "features_30_sec.csv"
    report = extract_table(mini_clips, out, workers=2, progress=False)
    assert report.written == len(mini_clips) and not report.failed
    return pd.read_csv(out)


@pytest.mark.slow
def test_values_match_the_public_table(extracted_30s, shared_data):
    public = pd.read_csv(shared_data / "features_30_sec.csv").set_index("filename")
    ours = extracted_30s.set_index("filename")
    theirs = public.loc[ours.index]
    assert (ours["length"] == theirs["length"]).all()
    assert (ours["label"] == theirs["label"]).all()
    sigma = public[FEATURE_COLUMNS].std()
    diff = (ours[FEATURE_COLUMNS] - theirs[FEATURE_COLUMNS]).abs()
    within = diff <= 0.02 * theirs[FEATURE_COLUMNS].abs() + 0.02 * sigma
    share = within.to_numpy().mean()
    misses = within.size - int(within.to_numpy().sum())
    print(f"{share:.4%} of {within.size} cells within tolerance ({misses} outside) over {len(ours)} clips")
    assert share >= 0.995, diff[~within].stack().head(10)


def test_three_second_segments(tmp_path):
    write_audio(tmp_path / "blues.00042.wav", seconds=10.0)
    out = tmp_path / "features_3_sec.csv"
    extract_table([tmp_path / "blues.00042.wav"], out, segment_seconds=3.0, workers=1, progress=False)
    table = pd.read_csv(out)
    assert list(table.columns) == TABLE_COLUMNS
    assert list(table["filename"]) == ["blues.00042.0.wav", "blues.00042.1.wav", "blues.00042.2.wav"]
    assert set(table["length"]) == {3 * SR}
    assert set(table["label"]) == {"blues"}
    assert np.isfinite(table[FEATURE_COLUMNS].to_numpy()).all()
