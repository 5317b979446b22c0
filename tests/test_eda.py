"""experiments/eda.py: the EDA figures are drawn from the data they are given and all shown on one page."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, synth

from musicgenre.data.gtzan import GENRES, Clip, track_id
from musicgenre.features.handcrafted import FEATURE_COLUMNS
from musicgenre.study.eda import write_eda

PNG = b"\x89PNG\r\n\x1a\n"


def _table(per_genre: int, seed: int, segments: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g, genre in enumerate(GENRES):
        for i in range(per_genre):
            for s in range(segments):
                values = np.abs(rng.normal(size=len(FEATURE_COLUMNS))) + g * 0.2 + 0.01
                name = f"{genre}.{i:05d}.{s}.wav" if segments > 1 else f"{genre}.{i:05d}.wav"
                rows.append({"filename": name, **dict(zip(FEATURE_COLUMNS, values, strict=True)), "label": genre})
    table = pd.DataFrame(rows)
    table["track"] = table["filename"].map(track_id)
    return table


@pytest.mark.slow
def test_every_figure_is_drawn_and_on_the_page(tmp_path):
    clips = [Clip(synth(4.0, seed=g), g, f"{genre}.00000") for g, genre in enumerate(GENRES)]
    splits = {"train": ["blues.00001", "rock.00002"], "valid": ["jazz.00003"], "test": []}
    page = write_eda(_table(4, 0), clips, _table(2, 1, segments=3), splits, tmp_path, {"30 s table": "t.csv"}, "python x")
    figures = sorted((tmp_path / "figures" / "eda").iterdir())
    names = [f.name for f in figures]
    assert names == sorted(
        ["genre_examples.png", "class_balance.png", "tempo_by_genre.png", "feature_distributions.png", "correlation.png"]
        + ["projection_30s.png", "projection_3s.png"]
    )
    text = page.read_text()
    for f in figures:
        assert f.read_bytes().startswith(PNG) and f.stat().st_size > 5_000
        assert f"](figures/eda/{f.name})" in text
    assert "40 clips" in text and "60 segments of 20 clips" in text  # captions name the data they show


@pytest.mark.slow
def test_script_on_the_shared_data(shared_data, three_per_genre, three_second_table, tmp_path):
    """The script on the public table and three real clips per genre (the whole folder only costs more extraction
    and draws the same figures); its 3-second table resumes the session's (test_models' study reads it too)."""
    (tmp_path / "work").mkdir()
    shutil.copy(three_second_table, tmp_path / "work" / "features_3_sec.csv")
    out = tmp_path / "docs"
    cmd = [sys.executable, "experiments/eda.py", "--out_dir", str(out), "--work_dir", str(tmp_path / "work")]
    cmd += ["--audio_dir", str(three_per_genre)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (out / "eda.md").read_text()
    assert "627 clips" in text and len(list((out / "figures" / "eda").glob("*.png"))) == 7
