"""The functions behind the app: loading the served models, analysing one clip with one or all of them."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import CACHE_ROOT, SR, synth, write_audio

from musicgenre.data.gtzan import GENRES
from musicgenre.errors import AudioError, ModelError
from musicgenre.serving.service import (
    BUNDLED_CNN_NAME,
    BUNDLED_NAME,
    BUNDLED_PROBE_NAME,
    DEFAULT_MODEL_ID,
    LIVE_MIN_SECONDS,
    LIVE_SECONDS,
    LiveBuffer,
    analyse,
    live_answer,
    load_models,
    mel_spectrogram_db,
    ordered_scores,
)


@pytest.fixture(scope="module")
def models(tiny_hubert):
    served = load_models(DEFAULT_MODEL_ID, [str(tiny_hubert)], cache_root=CACHE_ROOT)
    served.warm_up()
    return served


def test_offline_start_serves_what_it_has_and_says_why(models, tiny_hubert):
    names = list(models.models)
    assert names == [BUNDLED_PROBE_NAME, BUNDLED_NAME, BUNDLED_CNN_NAME, f"hubert: {tiny_hubert.name}"]
    assert any("cannot be reached" in n for n in models.notices)
    assert any(DEFAULT_MODEL_ID in n for n in models.notices)
    described = models.describe()
    assert [d["name"] for d in described] == names and described[0]["backbone"] == "MSD_musicnn"
    assert described[1]["estimator"]


def test_nothing_loadable_is_an_error_and_bad_folders_are_notices(tmp_path):
    with pytest.raises(ModelError, match="no model could be loaded"):
        load_models("someone/missing", bundled=False)
    served = load_models(None, [str(tmp_path)])  # an empty folder is no model
    assert list(served.models) == [BUNDLED_PROBE_NAME, BUNDLED_NAME, BUNDLED_CNN_NAME] and "Not loaded" in served.notices[0]


def test_analyse_all_models_window_by_window(models, tmp_path):
    path = write_audio(tmp_path / "song.wav", seconds=65.0, channels=2)
    analysis = analyse(path, models.select("all"))
    assert analysis.duration == pytest.approx(65.0) and not analysis.truncated
    assert [r.name for r in analysis.results] == list(models.models)
    # Windows of each model's length; a tail of at least half a window is padded, a shorter one dropped.
    expected = {BUNDLED_PROBE_NAME: 2, BUNDLED_NAME: 2, BUNDLED_CNN_NAME: 22}  # 30 + 30 (+5 dropped); 21 x 3 (+2 padded)
    for result in analysis.results:
        n = expected.get(result.name, 2)
        step = models.models[result.name].window_seconds
        assert result.window_probs.shape == (n, 10) and np.allclose(result.window_probs.sum(axis=1), 1)
        assert list(result.window_starts) == pytest.approx([i * step for i in range(n)])
        scores = ordered_scores(result)
        assert list(scores) == list(GENRES) and sum(scores.values()) == pytest.approx(1.0)
        d = result.to_dict()
        assert d["genre"] == max(scores, key=scores.get) and d["windows"] == n and d["seconds"] >= 0
    out = analysis.to_dict()
    assert out["duration_seconds"] == 65.0 and out["truncated"] is False and "notice" not in out
    # The probe's tagger: its ten most probable of the 50 tags, most probable first.
    probabilities = [t["probability"] for t in out["tags"]]
    assert len(out["tags"]) == 10 and probabilities == sorted(probabilities, reverse=True) and 0 <= min(probabilities)


def test_models_run_side_by_side_answer_as_each_alone(models, tmp_path):
    """``analyse`` runs the models in threads at once: each answers exactly as when it runs by itself."""
    path = write_audio(tmp_path / "song.wav", seconds=31.0)
    together = {r.name: r.window_probs for r in analyse(path, models.select("all")).results}
    for name in models.models:
        (alone,) = analyse(path, models.select(name)).results
        np.testing.assert_allclose(together[name], alone.window_probs, rtol=0, atol=1e-6, err_msg=name)


def test_one_model_and_unknown_names(models, tmp_path):
    path = write_audio(tmp_path / "song.ogg", seconds=8.0)
    analysis = analyse(path, models.select(BUNDLED_NAME))
    assert [r.name for r in analysis.results] == [BUNDLED_NAME] and "tags" not in analysis.to_dict()  # no probe, no tagger
    with pytest.raises(ModelError, match="choose one of"):
        models.select("nope")


def test_long_input_is_cut_with_a_notice(models, tmp_path):
    path = write_audio(tmp_path / "long.wav", seconds=50.0)
    analysis = analyse(path, models.select(BUNDLED_NAME), max_seconds=20.0)
    out = analysis.to_dict()
    assert out["truncated"] is True and out["duration_seconds"] == 20.0
    assert "50 s" in out["notice"] and "first 20 s" in out["notice"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"<html>not audio</html>" * 50, "not a readable audio file"),
    ],
)
def test_bad_input_is_an_audio_error(models, tmp_path, content, message):
    path = tmp_path / "input.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        analyse(path, models.select("all"))


def test_mel_spectrogram_for_display():
    y = np.random.default_rng(0).normal(size=SR * 4).astype(np.float32) * 0.1
    db, sr, hop = mel_spectrogram_db(y, 44100)  # resampled to 22,050 Hz first
    assert sr == 22050 and hop == 512 and db.shape[0] == 128
    assert db.max() == pytest.approx(0.0) and db.min() >= -80.0


def test_models_with_the_same_name_are_both_served(tiny_hubert):
    served = load_models(None, [str(tiny_hubert), str(tiny_hubert)], bundled=False, cache_root=CACHE_ROOT)
    assert list(served.models) == [f"hubert: {tiny_hubert.name}", f"hubert: {tiny_hubert.name} (2)"]


def with_silent_edges(path, sr: int = 48000, music: float = 6.0, edge: float = 2.0, noise_dbfs: float | None = None):
    """A microphone-like WAV: ``edge`` s of silence (or room noise at ``noise_dbfs``) around ``music`` s of music."""
    rng = np.random.default_rng(0)
    quiet = np.zeros(int(edge * sr)) if noise_dbfs is None else rng.normal(size=int(edge * sr)) * 10 ** (noise_dbfs / 20)
    sf.write(path, np.concatenate([quiet, synth(music, sr), quiet]).astype(np.float32), sr, subtype="PCM_16")
    return path


def test_microphone_recordings_are_trimmed_uploads_are_not(models, tmp_path):
    """48 kHz in (the browser's rate), silence cut only when asked; quality once, ``uncertain`` per model."""
    path = with_silent_edges(tmp_path / "mic.wav")
    trimmed = analyse(path, models.select(BUNDLED_NAME), trim=True).to_dict()
    assert 6.0 <= trimmed["duration_seconds"] <= 6.6  # the music and a quarter-second margin either side
    assert trimmed["trimmed_seconds"]["start"] == pytest.approx(1.75, abs=0.06)
    assert trimmed["quality"]["duration_s"] == pytest.approx(trimmed["duration_seconds"], abs=0.01)
    assert isinstance(trimmed["results"][0]["uncertain"], bool)
    upload = analyse(path, models.select(BUNDLED_NAME)).to_dict()
    assert upload["duration_seconds"] == pytest.approx(10.0) and "trimmed_seconds" not in upload


def test_a_quiet_room_gets_an_answer_marked_uncertain(models, tmp_path):
    """Nothing but room noise: kept whole (not trimmed away), answered by every model, every answer uncertain."""
    analysis = analyse(
        with_silent_edges(tmp_path / "room.wav", music=0.0, edge=3.0, noise_dbfs=-70), models.select("all"), trim=True
    )
    out = analysis.to_dict()
    assert out["duration_seconds"] == pytest.approx(6.0) and out["quality"]["notes"]
    assert all(r["uncertain"] for r in out["results"])
    assert all(analysis.uncertainty_note(r) for r in analysis.results)


def test_live_buffer_keeps_the_recent_audio_and_answers_after_a_few_seconds(models):
    name = next(iter(models.models))
    chunk = (synth(LIVE_MIN_SECONDS / 2, 48000) * 32767).astype(np.int16)  # what the browser streams: int16 PCM
    buffer = LiveBuffer().add(48000, chunk)
    assert live_answer(name, models.models[name], buffer) is None  # too little heard yet
    for _ in range(int(2 * LIVE_SECONDS / LIVE_MIN_SECONDS)):
        buffer = buffer.add(48000, np.stack([chunk, chunk], axis=1))  # stereo is downmixed
    answer = live_answer(name, models.models[name], buffer).to_dict()
    assert buffer.seconds == pytest.approx(LIVE_SECONDS) and answer["seconds"] == pytest.approx(LIVE_SECONDS)
    assert answer["genre"] in GENRES and 0 < answer["probability"] <= 1 and isinstance(answer["uncertain"], bool)
    assert LiveBuffer().add(48000, chunk).add(44100, chunk[:44100]).seconds == pytest.approx(1.0)  # a new device: afresh
