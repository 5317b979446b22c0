"""The robust probe (issue 33): calibration, the uncertain threshold, routing by channel, the saved format, and the
shipped model flagging what it cannot judge."""

from __future__ import annotations

import random

import numpy as np
import pytest

from musicgenre.data.gtzan import GENRES
from musicgenre.families.probe.model import ProbeModel, load_probe, route, save_probe
from musicgenre.families.probe.robust import (
    RobustSettings,
    choose_threshold,
    cross_validate,
    fit_robust,
    fit_temperature,
    log_softmax,
)
from musicgenre.training.metrics import calibration_metrics

WIDTH = 753  # MSD_musicnn's mean_pool


def test_temperature_recovers_the_one_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4000, 10))
    probs = np.exp(log_softmax(logits / 2.0))
    labels = np.array([rng.choice(10, p=p) for p in probs])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_calibration_metrics_agree_with_netcal_and_sklearn():
    netcal = pytest.importorskip("netcal.metrics", reason="netcal (the dev extra) cross-checks the ECE")
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(10, 0.4), size=500)
    labels = rng.integers(0, 10, size=500)
    m = calibration_metrics(probs, labels)
    assert m["ece"] == pytest.approx(netcal.ECE(10).measure(probs, labels), abs=1e-9)
    assert m["log_loss"] == pytest.approx(log_loss(labels, probs, labels=range(10)), rel=1e-9)
    assert m["brier"] == pytest.approx(np.mean(np.sum((probs - np.eye(10)[labels]) ** 2, axis=1)))
    assert m["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))


def test_threshold_flags_wrong_answers_within_the_budget_for_right_ones():
    rng = np.random.default_rng(2)
    right = rng.random(1000) < 0.8
    top = np.where(right, rng.uniform(0.5, 1.0, 1000), rng.uniform(0.2, 0.8, 1000))
    t = choose_threshold(top, right, 0.2)

    def j(x: float) -> float:
        return np.mean(top[~right] < x) - np.mean(top[right] < x)

    assert np.mean(top[right] < t) <= 0.2 and np.mean(top[~right] < t) > 0.4
    assert all(j(t) >= j(x) - 1e-9 for x in np.linspace(0, 1, 201) if np.mean(top[right] < x) <= 0.2)


def _synthetic(clips_per_genre: int = 6, seed: int = 0):
    """Embeddings with genre structure: clean clips, wide copies (noisier) and narrow copies (another offset), plus
    channels that say which is which."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, WIDTH))
    labels = np.repeat(np.arange(10), clips_per_genre)
    tracks = np.array([f"{GENRES[g]}.{i:05d}" for i, g in enumerate(labels)])
    shift = rng.normal(size=WIDTH)
    views = {"clean": centres[labels] + rng.normal(scale=4.0, size=(len(labels), WIDTH))}
    for j in range(2):
        views[f"wide{j}"] = centres[labels] + rng.normal(scale=5.0, size=(len(labels), WIDTH))
        views[f"narrow{j}"] = centres[labels] + shift + rng.normal(scale=5.0, size=(len(labels), WIDTH))
    views["telephone"] = centres[labels] + shift + rng.normal(scale=5.0, size=(len(labels), WIDTH))
    full, narrow = np.tile([20.0, 8000.0, 30.0], (len(labels), 1)), np.tile([300.0, 3400.0, 30.0], (len(labels), 1))
    channels = {name: narrow if name.startswith(("narrow", "telephone")) else full for name in views}
    channels["narrow1"] = full.copy()  # a gently filtered narrow copy that measures as wide: it trains the wide head
    return views, channels, labels, tracks


SMALL = RobustSettings(
    layer="mean_pool", design="routed", wide_copies=2, narrow_copies=2, c_grid=[0.1], inner_folds=3, route_rows=True
)


def test_routed_fit_answers_each_window_with_the_head_its_channel_calls_for():
    views, channels, labels, tracks = _synthetic()
    fit = fit_robust(views, channels, labels, tracks, np.arange(len(labels)), SMALL, seed=0)
    model = fit.model
    assert set(model.heads) == {"wide", "clean", "narrow"} and set(model.temperature) == set(model.heads)
    n = len(labels)  # rows by measured channel: narrow0 to the narrow head; clean, wide0, wide1, narrow1 to the wide
    assert fit.chosen["narrow"]["rows"] == n and fit.chosen["wide"]["rows"] == 4 * n and fit.chosen["clean"]["rows"] == n
    assert 0 < fit.chosen["uncertain_below"] < 1 and model.meta["uncertain_below"] == fit.chosen["uncertain_below"]
    X = views["telephone"][:5]
    narrow = model.probabilities(X, [tuple(c) for c in channels["telephone"][:5]])
    np.testing.assert_allclose(narrow, model.head_probabilities("narrow", X))
    clean = model.probabilities(views["clean"][:5], [tuple(c) for c in channels["clean"][:5]])
    blend = (model.head_probabilities("clean", views["clean"][:5]) + model.head_probabilities("wide", views["clean"][:5])) / 2
    np.testing.assert_allclose(clean, blend)
    np.testing.assert_allclose(narrow.sum(axis=1), 1.0, atol=1e-6)
    assert route(model.heads, 20.0, 8000.0, 5.0, 4500.0) == "wide"  # noisy: neither clean nor narrow


def test_cross_validation_scores_only_held_out_clips_under_every_condition():
    views, channels, labels, tracks = _synthetic()
    cv = cross_validate(views, channels, labels, tracks, ["clean", "telephone"], SMALL, [0], folds=3, progress=lambda m: None)
    for condition in ("clean", "telephone"):
        probs = cv["probabilities"][0][condition]
        assert not np.isnan(probs).any() and np.mean(probs.argmax(1) == labels) > 0.5  # chance: 0.1
    assert len(cv["folds"]) == 3 and not np.isnan(cv["thresholds"][0]).any()


def test_saved_probe_round_trips_and_a_version_1_head_still_loads(tmp_path):
    import json

    views, channels, labels, tracks = _synthetic()
    model = fit_robust(views, channels, labels, tracks, np.arange(len(labels)), SMALL, seed=0).model
    folder = save_probe(model, tmp_path / "robust")
    config = json.loads((folder / "musicgenre.json").read_text())
    assert config["version"] == 2 and [h["name"] for h in config["heads"]] == ["wide", "clean", "narrow"]
    loaded = load_probe(folder, config)
    X, ch = views["telephone"][:4], [tuple(c) for c in channels["telephone"][:4]]
    np.testing.assert_allclose(loaded.probabilities(X, ch), model.probabilities(X, ch), rtol=1e-5)
    assert loaded.meta["uncertain_below"] == model.meta["uncertain_below"]

    single = ProbeModel(model.backbone, model.layer, model.head)  # one head, no temperature: version 1
    config1 = json.loads((save_probe(single, tmp_path / "v1") / "musicgenre.json").read_text())
    assert config1["version"] == 1 and "heads" not in config1
    old = load_probe(tmp_path / "v1", config1)
    np.testing.assert_allclose(old.probabilities(X), single.probabilities(X), rtol=1e-5)


def test_augmented_copies_are_reproducible_and_leave_the_callers_random_state_alone():
    pytest.importorskip("audiomentations", reason="training copies need the robustness extra")
    from musicgenre.audio.augment import augmented

    y = np.random.default_rng(3).normal(scale=0.1, size=16000 * 4).astype(np.float32)
    random.seed(11), np.random.seed(11)
    before = (random.random(), np.random.random())
    random.seed(11), np.random.seed(11)
    a, b = augmented(y, 16000, "narrow", 5), augmented(y, 16000, "narrow", 5)
    assert (random.random(), np.random.random()) == before
    np.testing.assert_array_equal(a, b)
    assert a.shape == y.shape and np.abs(a).max() <= 1.0 and not np.array_equal(a, augmented(y, 16000, "narrow", 6))
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    freqs = np.fft.rfftfreq(len(a), 1 / 16000)
    assert spectrum[freqs > 5500].mean() < 1e-3 * spectrum[(freqs > 500) & (freqs < 2500)].mean()  # a telephone band


def test_the_shipped_probe_is_routed_calibrated_and_unsure_of_speech(speech):
    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_array

    model = resolve_model("bundled")
    assert set(model.heads) == {"wide", "clean", "narrow"} and all(0.3 < t < 3 for t in model.temperature.values())
    out = predict_array(model, speech.astype(np.float32), 22050)
    assert out["uncertain"] is True and "speech" in out["quality"]["issues"]
    assert sum(out["scores"].values()) == pytest.approx(1.0, abs=1e-6)


def test_the_fine_tuned_back_end_is_scored_in_the_same_folds_and_format():
    """The weighed alternative (issue 33): musicnn's pretrained back-end with a genre layer, trained on clean clips
    and copies of the mean_max embedding (1506 = mean_pool + max_pool), is cross-validated like the linear heads."""
    from musicgenre.families.probe.robust_backend import cross_validate_backend
    from musicgenre.families.probe.top import TopSettings

    views, channels, labels, tracks = _synthetic(clips_per_genre=4)
    views = {name: np.hstack([v, v[:, ::-1]]) for name, v in views.items()}  # (clips, 1506)
    tiny = TopSettings(epochs=[1, 3], backbone_lr=[0.0, 1e-3], batch_size=64)
    cv = cross_validate_backend(
        views, labels, tracks, ["clean", "telephone"], SMALL, [0], folds=2, top=tiny, progress=lambda m: None
    )
    probs = cv["probabilities"][0]["clean"]
    assert not np.isnan(probs).any() and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(probs.argmax(1) == labels) > 0.3  # chance: 0.1
    assert len(cv["folds"]) == 2 and {f["backbone_lr"] for f in cv["folds"]} <= {0.0, 1e-3}
    assert all(f["epochs"] in (1, 3) and f["temperature"] > 0 for f in cv["folds"]) and not np.isnan(cv["thresholds"][0]).any()
