"""`musicgenre robustness FOLDER`: the top genre's stability under each degradation, on real files, no labels;
with calibration per degradation where the paths name the genres."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_cli, write_audio

from musicgenre.audio.degradations import Degradation, select
from musicgenre.data.gtzan import GENRES
from musicgenre.families import resolve_model
from musicgenre.study.stability import NO_LABELS, stability
from musicgenre.training.metrics import calibration_metrics

pytest.importorskip("pedalboard", reason="the degradations need pedalboard (the robustness extra)")


@pytest.mark.slow
def test_stability_counts_what_the_files_say(mini_clips):
    """An identity keeps every genre; swapping in one fixed clip keeps only the files that already had its genre."""
    from musicgenre.audio.io import load_audio
    from musicgenre.models.predict import predict_file
    from musicgenre.study.stability import DEGRADE_RATE

    model = resolve_model("bundled:shallow")
    clips = [c for c in mini_clips if c.name.startswith(("metal.", "classical."))][:4]
    other = next(c for c in mini_clips if c.name.startswith("classical."))
    swapped = load_audio(other, sr=DEGRADE_RATE).samples
    conditions = [
        Degradation("clean", "reference", lambda y, sr, rng: y.copy()),
        Degradation("same", "identity", lambda y, sr, rng: y.copy()),
        Degradation("swap", "another clip", lambda y, sr, rng: swapped.copy()),
        *select(["excerpt_5s"])[0],
    ]
    report = stability(model, "bundled:shallow", clips, conditions)
    assert report.degradations == ["same", "swap", "excerpt_5s"]  # clean is the reference, not a condition
    assert len(report.files) == len(clips) and not report.failed and not report.errors()
    clean = [predict_file(model, c)["genre"] for c in clips]
    assert [f["clean"] for f in report.files] == clean
    shares = report.unchanged()
    assert shares["same"] == {"unchanged": 1.0, "n": len(clips)}
    target = predict_file(model, other)["genre"]
    assert shares["swap"]["unchanged"] == pytest.approx(sum(g == target for g in clean) / len(clips), abs=1e-4)
    assert "| swap |" in report.table()


def test_the_command_on_a_folder_with_a_bad_file(tmp_path):
    folder = tmp_path / "my music"
    folder.mkdir()
    for i in range(2):
        write_audio(folder / f"song{i}.wav", seconds=8.0, seed=i)
    (folder / "broken.mp3").write_bytes(b"ID3" + bytes(300))
    out = tmp_path / "stability.json"
    result = run_cli("robustness", str(folder), "--model", "bundled:shallow", "--degradations", "pink_10db", "gain_-30db",
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 1, result.stderr  # a file failed, after the others were measured
    assert "broken.mp3" in result.stderr and "| pink_10db |" in result.stdout
    record = json.loads(out.read_text())
    assert record["files"] == 2 and list(record["stability"]) == ["pink_10db", "gain_-30db"]
    assert all(r["n"] == 2 and 0 <= r["unchanged"] <= 1 for r in record["stability"].values())
    assert list(record["failed"]) == [str(folder / "broken.mp3")]
    # no path names a genre: stability and confidence as before, no calibration, and one line that says why
    assert record["labelled"] == 0 and record["calibration"] is None and NO_LABELS in result.stdout
    assert "accuracy" not in result.stdout and "| mean top p | uncertain |" in result.stdout
    assert list(record["confidence"]) == ["clean", "pink_10db", "gain_-30db"]
    assert all(r["n"] == 2 and 0.1 <= r["mean_top"] <= 1 and 0 <= r["uncertain"] <= 1 for r in record["confidence"].values())


def test_calibration_where_the_paths_name_the_genres(mini_clips, tmp_path):
    """Three GTZAN clips give calibration per condition from the very answers the stability counts; a song without
    a genre in its path counts for stability and confidence only. Swapping in a country clip makes wrong answers."""
    from musicgenre.audio.io import load_audio
    from musicgenre.study.stability import DEGRADE_RATE

    clips = [next(c for c in mini_clips if c.name.startswith(f"{g}.")) for g in ("metal", "classical", "blues")]
    country = load_audio(next(c for c in mini_clips if c.name.startswith("country.")), sr=DEGRADE_RATE, max_seconds=10).samples
    song = write_audio(tmp_path / "song.wav", seconds=6.0)
    conditions = [*select(["gain_-30db", "excerpt_5s"])[0], Degradation("swap", "a country clip", lambda y, sr, rng: country)]
    report = stability(resolve_model("bundled:shallow"), "bundled:shallow", [*clips, song], conditions, max_seconds=10)
    record = json.loads(json.dumps(report.to_dict()))  # what --out writes
    assert record["files"] == 4 and record["labelled"] == 3 and "3 of 4 files" in report.calibration_line()
    assert [row["label"] for row in record["per_file"]] == ["metal", "classical", "blues", None]
    labelled = record["per_file"][:3]
    for name, cal in record["calibration"].items():
        right = [(row["clean"] if name == "clean" else row["degraded"][name]) == row["label"] for row in labelled]
        assert cal["clips"] == 3 and cal["accuracy"] == pytest.approx(np.mean(right))
        assert cal["log_loss"] >= 0 and 0 <= cal["ece"] <= 1 and 0 <= cal["brier"] <= 2
        assert all(math.isfinite(v) for v in cal.values() if v is not None)
        probs = np.array([row["answers"][name]["probs"] for row in labelled])
        again = calibration_metrics(probs, np.array([GENRES.index(r["label"]) for r in labelled]))
        assert {k: cal[k] for k in again} == pytest.approx(again)
        assert record["confidence"][name]["n"] == 4
    assert record["calibration"]["swap"]["accuracy"] < 1 and record["calibration"]["swap"]["wrong_top_probability"] > 0
    assert record["calibration"]["swap"]["uncertain_wrong"] is not None
    table = report.table()
    assert "| accuracy | log loss | Brier | ECE | wrong top p | uncertain if right | uncertain if wrong |" in table
    assert table.count("\n") == 1 + len(report.conditions())


def test_unknown_degradations_and_empty_folders_are_clear_errors(tmp_path):
    write_audio(tmp_path / "a.wav", seconds=3.0)
    result = run_cli("robustness", str(tmp_path), "--degradations", "underwater")
    assert result.returncode == 2 and "unknown degradation" in result.stderr and "mp3_64k" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("robustness", str(tmp_path / "empty"))
    assert result.returncode == 2 and "no audio files" in result.stderr
