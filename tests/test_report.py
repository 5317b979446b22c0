"""experiments/report.py: one report from the experiments' result files, every row kept, nothing typed in."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from musicgenre.data.gtzan import GENRES
from musicgenre.errors import DataError
from musicgenre.families.shallow.train import FeatureSet, run_protocol
from musicgenre.study.report import ANCHORS, README_END, README_START, gather, headline, read

EYE = np.eye(len(GENRES), dtype=int).tolist()


def _features(n_per_genre: int, segments: int, seed: int) -> FeatureSet:
    """Separable synthetic features: a genre moves the mean of every column (57, the table's)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(GENRES)), n_per_genre * segments)
    tracks = np.array([f"{GENRES[g]}.{i // segments:05d}" for g in range(len(GENRES)) for i in range(n_per_genre * segments)])
    X = rng.normal(size=(len(y), 57)) + y[:, None] * 0.3
    X[:, 1::2] = np.abs(X[:, 1::2]) + 0.1  # variance-like columns stay positive
    return FeatureSet(X, y, tracks, "30s" if segments == 1 else "3s")


@pytest.fixture(scope="module")
def result_files(tmp_path_factory):
    """Real result rows written by the shallow study's own code, plus a CNN file, a fine-tuning run and a benchmark."""
    root = tmp_path_factory.mktemp("results")
    rows = []
    for dataset, data, protocol in (("30s audio", _features(6, 1, 0), "random"), ("3s audio", _features(4, 3, 1), "grouped")):
        for model, search in (("lda", "grid"), ("logreg", "grid"), ("knn", "grid")):
            r = run_protocol(model, data, protocol, search, outer_folds=2, inner_folds=2, n_jobs=1)
            rows.append({**r, "dataset": dataset})
    (root / "shallow.json").write_text(json.dumps(rows))
    cnn = {
        "settings": {"seconds": 3.0, "width": 16, "blocks": 4, "mixup": 0.2, "batch_size": 32, "folds": 5, "seed": 0},
        "tracks": 76,
        "parameters": 303578,
        "size_bytes": 3_700_000,
        "track_accuracy": {"mean": 0.5, "std": 0.1},
        "out_of_fold": {
            "segment": {"accuracy": 0.41, "macro_f1": 0.4, "n": 757},
            "track": {"accuracy": 0.5, "macro_f1": 0.48, "n": 76, "labels": list(GENRES), "confusion_matrix": EYE},
        },
    }  # fmt: skip
    (root / "cnn.json").write_text(json.dumps([cnn]))
    run = {
        "model": {"model_name_or_path": "ntu-spml/distilhubert"},
        "data": {"protocol": "filtered"},
        "settings": {"protocol": "filtered (train list -> valid list)", "seed": 42},
        "metrics": {"eval_accuracy": 0.61, "eval_macro_f1": 0.6, "eval_clips": 188},
    }
    (root / "run.json").write_text(json.dumps(run))
    lda = rows[0]  # the benchmark measured the pipeline of exactly this cell and variant
    measures = {k: lda[k] for k in ("dataset", "protocol", "feature_set", "search")}
    timing = {"size_bytes": 40_000, "seconds_per_30s_clip": 0.31}
    served = {"size_bytes": 70_000, "seconds_per_30s_clip": 0.4, "peak_rss_mb": 600}
    bench = {
        "results": [
            {"family": "lda", "input": "30 s", "model": "LDA", "measures": measures, **timing},
            {"family": "bundled", "input": "30 s", "model": "the bundled one", **served},
        ]
    }
    (root / "bench.json").write_text(json.dumps(bench))
    return root, rows


def test_every_row_is_in_the_report_and_the_readme_table_is_refreshed(result_files, tmp_path):
    root, rows = result_files
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n\n{README_START}\nstale table\n{README_END}\n\n## Next section\n")
    out = tmp_path / "docs" / "results.md"
    files = [str(root / n) for n in ("shallow.json", "cnn.json", "run.json", "bench.json")]
    cmd = [sys.executable, "experiments/report.py", "--files", *files, "--out", str(out), "--readme", str(readme)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = out.read_text()
    every = report.split("## Every result (8 rows)", 1)[1]  # 6 shallow + 1 CNN + 1 fine-tuning run
    for r in rows:
        variant = f"{r['feature_set']} features, {r['search']} search"
        accuracy = r["track_accuracy"] if r["input"] == "3s" else r["accuracy"]
        lines = [line for line in every.splitlines() if variant in line and r["train_description"] in line]
        assert any(f"| {accuracy:.3f} |" in line for line in lines)
    assert "| CNN (Keras, log-mel) |" in every and "| DistilHuBERT (fine-tuned) |" in every and "0.610" in every
    every_lines = every.splitlines()
    measured = [line for line in every_lines if "| 40 kB | 0.31 |" in line]
    assert len(measured) == 1 and measured[0].startswith("| LDA |") and "| 30 s | audio | random |" in measured[0]
    assert "| bundled | 30 s | the bundled one | 70 kB | 0.40 | 600 MB |" in report  # served models listed too
    for name, *_ in ANCHORS:
        assert f"| {name} |" in report
    assert report.count(" (published, not measured here) |") == len(ANCHORS)
    figures = sorted(p.name for p in (out.parent / "figures" / "report").iterdir())
    assert figures and all(f"figures/report/{name}" in report for name in figures)
    text = readme.read_text()
    assert "stale table" not in text and text.endswith("## Next section\n") and "| CNN (Keras, log-mel) |" in text


def test_headline_picks_by_inner_cv_not_by_the_reported_score(result_files):
    root, rows = result_files
    found, _, _ = gather([root / "shallow.json"])
    assert len(found) == len(rows)
    for row in headline(found):
        same_cell = [r for r in found if r.cell == row.cell]
        assert row.selection_score == max(r.selection_score for r in same_cell)
    assert len(headline(found)) == 6  # 3 families x 2 cells: one variant each here


def test_no_result_files_is_an_error_that_leaves_the_readme_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\nkept\n{README_END}\n")
    cmd = [sys.executable, "experiments/report.py", "--files", str(tmp_path / "missing.json"), "--readme", str(readme)]
    done = subprocess.run(cmd + ["--out", str(tmp_path / "r.md")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode != 0 and "error: no result files" in done.stderr and "Traceback" not in done.stderr
    assert "kept" in readme.read_text() and not (tmp_path / "r.md").exists()


def test_unknown_or_broken_files_are_a_data_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match="not a readable JSON"):
        read(tmp_path / "bad.json")
    with pytest.raises(DataError, match="not a result file this report knows"):
        read(tmp_path / "other.json")
