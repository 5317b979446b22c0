"""The labelled robustness study (experiments/robustness.py): its views give the served models' answers, and it
runs end to end on a few real clips, resumes, and feeds the report."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT

from musicgenre.errors import DataError

pytest.importorskip("pedalboard", reason="the degradations need pedalboard (the robustness extra)")
sys.path.insert(0, str(ROOT / "experiments"))


def excerpt_folder(mini_clips, root, per_genre: int, seconds: float):
    """Real GTZAN audio written to disk: the middle ``seconds`` of ``per_genre`` clips of every genre."""
    from musicgenre.data.gtzan import GENRES

    for genre in GENRES:
        for clip in [c for c in mini_clips if c.name.startswith(genre + ".")][:per_genre]:
            y, sr = sf.read(clip, dtype="float32")
            mid, half = len(y) // 2, int(seconds * sr / 2)
            (root / genre).mkdir(parents=True, exist_ok=True)
            sf.write(root / genre / clip.name, y[mid - half : mid + half], sr)
    return root


def test_views_give_each_served_model_its_own_answer(mini_clips):
    """What the study computes per clip and condition, classified, equals predict_array on that audio."""
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.audio.io import load_audio
    from musicgenre.families import resolve_model
    from musicgenre.models.musicnn import load_backbone
    from musicgenre.models.predict import predict_array
    from musicgenre.study.robustness.catalogue import DEGRADE_RATE, Recipes
    from musicgenre.study.robustness.fit import cnn_probabilities, features_probabilities, probe_probabilities
    from musicgenre.study.robustness.views import views_of

    recipes = Recipes.bundled()
    clip = next(c for c in mini_clips if c.name.startswith("jazz."))
    y = load_audio(clip, sr=DEGRADE_RATE).samples
    models = {k: resolve_model(f"bundled:{k}") for k in ("shallow", "musicnn", "cnn")}
    for name in ("clean", "phone", "excerpt_5s"):
        degraded = DEGRADATIONS[name](y, DEGRADE_RATE, 7)
        views = views_of(degraded, recipes, load_backbone())
        got = {
            "shallow": features_probabilities(models["shallow"], views),
            "musicnn": probe_probabilities(models["musicnn"], views),
            "cnn": cnn_probabilities(models["cnn"].network, views),
        }
        for kind, model in models.items():
            want = predict_array(model, degraded, DEGRADE_RATE)["scores"]
            assert got[kind] == pytest.approx([want[g] for g in model.labels], abs=1e-6), (name, kind)


@pytest.mark.slow
def test_the_study_end_to_end_on_a_few_clips(shared_data, mini_clips, tiny_hubert, tmp_path, monkeypatch):
    """Four real 4 s excerpts per genre (the probe's inner CV needs two per genre in training), two folds, three
    conditions, every family with and without augmentation plus two models as given (one a transformers
    checkpoint); then a rerun recomputes nothing, and the report draws the heat map."""
    import robustness as experiment

    from musicgenre.study.report import render, robustness_studies
    from musicgenre.study.robustness import run, views

    data = excerpt_folder(mini_clips, tmp_path / "clips", per_genre=4, seconds=4.0)
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = [
        *("--data_dir", str(data), "--out_dir", str(out), "--cache_dir", str(cache)),
        *("--folds", "2", "--cnn_epochs", "1", "--degradations", "clean", "phone", "gain_-30db"),
        *("--augment", "phone", "--models", "bundled:shallow", str(tiny_hubert)),
        *("--feature_table", str(shared_data / "features_30_sec.csv")),
    ]
    experiment.main(argv)
    study = json.loads((out / "results.json").read_text())
    assert study["kind"] == "robustness" and study["clips"] == 40
    assert study["conditions"] == ["clean", "phone", "gain_-30db"]
    labels = [(m["family"], tuple(m["augment"])) for m in study["models"]]
    assert labels == [
        ("features", ()),
        ("features", ("phone",)),
        ("features_table", ()),
        ("features_table", ("phone",)),
        ("probe", ()),
        ("probe", ("phone",)),
        ("cnn", ()),
        ("cnn", ("phone",)),
        ("external", ()),
        ("external", ()),
    ]
    assert [m["name"] for m in study["models"][-2:]] == ["bundled:shallow", str(tiny_hubert)]
    truth = np.array(study["truth"])
    for m in study["models"]:
        assert set(m["conditions"]) == set(study["conditions"])
        for condition, s in m["conditions"].items():
            pred = np.array(m["predictions"][condition])
            assert s["n"] == 40 and s["accuracy"] == pytest.approx(np.mean(pred == truth))
            clean = np.array(m["predictions"]["clean"])
            assert s["unchanged"] == pytest.approx(np.mean(pred == clean))
            assert s["change"] == pytest.approx(s["accuracy"] - m["conditions"]["clean"]["accuracy"])
        if m["family"] != "external":
            assert len(m["folds"]) == 2 and sum(f["tracks"] for f in m["folds"]) == 40
        if m["family"] == "features_table":  # every table row but the held-out clips', plus augmented copies
            table_rows = sum(1 for _ in open(shared_data / "features_30_sec.csv")) - 1
            for f in m["folds"]:
                assert f["table_rows"] == table_rows - f["tracks"]
                assert f["rows"] == f["table_rows"] + (40 - f["tracks"]) * len(m["augment"])
    assert m["note"].startswith("not refitted")
    verdicts = {v["family"]: v for v in study["augmentation"]}
    assert set(verdicts) == {"features", "features_table", "probe", "cnn"}
    for family, v in verdicts.items():
        clean = {tuple(m["augment"]): m["conditions"]["clean"]["accuracy"] for m in study["models"] if m["family"] == family}
        assert (v["clean_before"], v["clean_after"]) == (clean[()], clean[("phone",)])
        mean = {
            tuple(m["augment"]): m["conditions"]["gain_-30db"]["accuracy"]  # the one condition not trained on
            for m in study["models"]
            if m["family"] == family
        }
        assert (v["mean_degraded_before"], v["mean_degraded_after"]) == pytest.approx((mean[()], mean[("phone",)]))
        assert v["kept"] == (v["clean_after"] >= v["clean_before"] and v["mean_degraded_after"] >= v["mean_degraded_before"])
    table = (out / "results.md").read_text()
    assert "| phone |" in table and "musicnn probe (bundled recipe) + phone aug." in table

    # A rerun fits nothing and computes no view: everything comes from results.json and the cache.
    def refuse(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(run, "run_family", refuse)
    monkeypatch.setattr(run, "score_external", refuse)
    monkeypatch.setattr(views, "views_of", refuse)
    experiment.main([*argv, "--workers", "1"])
    assert json.loads((out / "results.json").read_text())["models"] == study["models"]

    studies = robustness_studies([out / "results.json"])
    report = render([], [str(out / "results.json")], tmp_path / "docs" / "results.md", "test", studies=studies)
    text = report.read_text()
    assert "## Robustness" in text and "figures/report/robustness.png" in text
    assert (tmp_path / "docs" / "figures" / "report" / "robustness.png").stat().st_size > 10_000


def test_a_condition_without_usable_audio_is_recorded_not_fatal(mini_clips, tmp_path, monkeypatch):
    """A degradation that leaves no audio (an empty clip: silence is now answered, flagged uncertain) leaves no views:
    listed per clip, shown as missing, the rest scored; an undecodable file is listed and left out."""
    from musicgenre.audio import degradations
    from musicgenre.study.robustness.catalogue import Recipes, StudySettings
    from musicgenre.study.robustness.run import run_family
    from musicgenre.study.robustness.views import ViewStore, prepare

    silent = degradations.Degradation("silence", "nothing left", lambda y, sr, rng: y[:0], pedalboard=False)
    monkeypatch.setitem(degradations.DEGRADATIONS, "silence", silent)
    data_dir = excerpt_folder(mini_clips, tmp_path / "clips", per_genre=3, seconds=4.0)
    (data_dir / "blues" / "blues.00099.wav").write_bytes(b"RIFF" + bytes(100))
    settings = StudySettings(folds=2, degradations=["clean", "silence"], augment=["none"], workers=1)
    recipes = Recipes.bundled()
    data = prepare(data_dir, settings, recipes, tmp_path / "cache", progress=lambda m: None)
    assert list(data.unreadable) == [str(data_dir / "blues" / "blues.00099.wav")] and len(data.paths) == 30
    assert len(data.failed) == 30 and all("empty" in why["silence"] for why in data.failed.values())
    result = run_family("features", data, ViewStore(data), settings, recipes, [], progress=lambda m: None)
    assert set(result["conditions"]) == {"clean"} and result["conditions"]["clean"]["n"] == 30
    assert result["predictions"]["silence"] == [None] * 30


@pytest.mark.parametrize(
    "change, message",
    [
        ({"augment": ["reverb"], "degradations": ["clean", "phone"]}, "not among the degradations"),
        ({"families": ["svm"]}, "unknown famil"),
    ],
)
def test_bad_settings_are_clear_errors(mini_clips, tmp_path, change, message):
    from musicgenre.study.robustness.catalogue import StudySettings
    from musicgenre.study.robustness.run import run_study

    data_dir = excerpt_folder(mini_clips, tmp_path / "clips", per_genre=2, seconds=3.0)
    settings = StudySettings(**{"folds": 2, "degradations": ["clean"], "augment": ["none"], "workers": 1, **change})
    with pytest.raises(DataError, match=message):
        run_study(data_dir, settings, tmp_path / "out", tmp_path / "cache", progress=lambda m: None)


def test_no_held_out_clip_reaches_the_training_of_its_fold(mini_clips, tmp_path, monkeypatch):
    """Every set of clips a family trains on (clean and augmented copies) is disjoint from the fold it scores."""
    from musicgenre.data.splits import kfold
    from musicgenre.study.robustness.catalogue import Recipes, StudySettings
    from musicgenre.study.robustness.run import run_family
    from musicgenre.study.robustness.views import ViewStore, prepare

    data_dir = excerpt_folder(mini_clips, tmp_path / "clips", per_genre=3, seconds=4.0)
    settings = StudySettings(folds=3, degradations=["clean", "phone"], augment=["phone"], workers=1)
    recipes = Recipes.bundled()
    data = prepare(data_dir, settings, recipes, tmp_path / "cache", progress=lambda m: None)
    trained = []
    items = ViewStore.items

    def spy(self, train, conditions):
        trained.append((set(train.tolist()), tuple(conditions)))
        return items(self, train, conditions)

    monkeypatch.setattr(ViewStore, "items", spy)
    run_family("features", data, ViewStore(data), settings, recipes, ["phone"], progress=lambda m: None)
    folds = list(kfold("grouped", data.labels, data.tracks, settings.folds, settings.seed))
    assert len(trained) == len(folds) == 3
    for (train, conditions), (_, test) in zip(trained, folds, strict=True):
        assert conditions == ("clean", "phone") and not train & set(test.tolist()) and len(train) == 30 - len(test)


def test_a_rerun_with_another_feature_table_recomputes(shared_data, mini_clips, tmp_path, monkeypatch):
    """Stored results are reused only when everything they depend on is the same: here the table's content."""
    import shutil

    from musicgenre.study.robustness import run
    from musicgenre.study.robustness.catalogue import StudySettings

    data_dir = excerpt_folder(mini_clips, tmp_path / "clips", per_genre=3, seconds=3.0)
    table = tmp_path / "table.csv"
    shutil.copy(shared_data / "features_30_sec.csv", table)
    settings = StudySettings(
        folds=2, degradations=["clean"], families=["features_table"], augment=["none"], workers=1, feature_table=str(table)
    )
    calls = []
    real = run.run_family
    monkeypatch.setattr(run, "run_family", lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(2):
        run.run_study(data_dir, settings, tmp_path / "out", tmp_path / "cache", progress=lambda m: None)
    assert len(calls) == 1  # the same table: reused
    *rows, last = table.read_text().splitlines()
    head, genre = last.rsplit(",", 1)
    table.write_text("\n".join([*rows, f"{head},{'rock' if genre == 'blues' else 'blues'}"]) + "\n")  # one label changed
    run.run_study(data_dir, settings, tmp_path / "out", tmp_path / "cache", progress=lambda m: None)
    assert len(calls) == 2  # another table: refitted


def test_the_single_modules_names_still_import_from_the_package():
    """``musicgenre.study.robustness`` was one module: every public name of it stays importable from the package
    (deprecated), as the very object the submodule that now holds it has."""
    import musicgenre.study.robustness as package
    from musicgenre.study.robustness import catalogue, fit, report, run, views

    assert len(package.__all__) == 32
    for name in package.__all__:
        assert any(getattr(m, name, None) is getattr(package, name) for m in (catalogue, views, fit, run, report)), name
