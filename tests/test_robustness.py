"""`musicgenre robustness FOLDER`: the top genre's stability under each degradation, on real files, no labels."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, write_audio

from musicgenre.audio.degradations import Degradation, select
from musicgenre.models.io import resolve_model
from musicgenre.study.stability import stability

pytest.importorskip("pedalboard", reason="the degradations need pedalboard (the robustness extra)")


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


def test_unknown_degradations_and_empty_folders_are_clear_errors(tmp_path):
    write_audio(tmp_path / "a.wav", seconds=3.0)
    result = run_cli("robustness", str(tmp_path), "--degradations", "underwater")
    assert result.returncode == 2 and "unknown degradation" in result.stderr and "mp3_64k" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("robustness", str(tmp_path / "empty"))
    assert result.returncode == 2 and "no audio files" in result.stderr
