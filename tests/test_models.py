"""Shallow models: tuning, honest protocols, safe saving/loading, and the whole study end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import soundfile as sf
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from musicgenre.data.gtzan import GENRES
from musicgenre.data.splits import filtered_part, filtered_split, kfold
from musicgenre.errors import ModelError
from musicgenre.families import load_model_folder
from musicgenre.families.shallow.folder import ShallowModel, save_model
from musicgenre.families.shallow.model import MODELS, make_pipeline, tune
from musicgenre.families.shallow.train import FeatureSet, run_all, run_protocol
from musicgenre.features.handcrafted import FEATURE_COLUMNS
from musicgenre.features.table import load_feature_table
from musicgenre.study.bundle import train_bundled
from musicgenre.study.robustness.views import degraded_feature_rows


@pytest.fixture(scope="module")
def table(shared_data) -> pd.DataFrame:
    return load_feature_table(shared_data / "features_30_sec.csv")


@pytest.fixture(scope="module")
def data(table) -> FeatureSet:
    return FeatureSet.from_table(table, "30s")


def blobs(n_tracks: int = 6, segments: int = 4, seed: int = 0) -> FeatureSet:
    """Separable synthetic segment features: each genre a shifted Gaussian cloud."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(GENRES)), n_tracks * segments)
    tracks = np.array(
        [f"{GENRES[c]}.{i // segments:05d}" for c, i in zip(y, np.tile(np.arange(n_tracks * segments), len(GENRES)), strict=True)]
    )
    X = rng.normal(size=(len(y), len(FEATURE_COLUMNS))) + y[:, None] * 0.8
    X[:, [i for i, c in enumerate(FEATURE_COLUMNS) if c.endswith("_var")]] = np.exp(X[:, :1])  # positive variances
    return FeatureSet(X, y, tracks, "3s")


@pytest.mark.parametrize("name", MODELS)
def test_every_model_fits_and_gives_probabilities(name, data):
    pipe = make_pipeline(name, seed=0).fit(data.X[::3], data.y[::3])
    probs = pipe.predict_proba(data.X[1::3])
    assert probs.shape == (len(data.X[1::3]), 10)
    assert np.allclose(probs.sum(axis=1), 1)
    assert (pipe.predict(data.X[1::3]) == data.y[1::3]).mean() > 0.2  # well above chance (0.1)


def test_svm_probabilities_keep_the_svms_decisions(data):
    """Calibration must not reorder classes: one-vs-rest sigmoids on SVC's vote scores cost 7 points."""
    fit, held = np.arange(len(data.y)) % 5 != 0, np.arange(len(data.y)) % 5 == 0
    pipe = make_pipeline("svm", {"C": 3, "gamma": 0.01}, feature_set="raw").fit(data.X[fit], data.y[fit])
    svc = pipe[-1].calibrated_classifiers_[0].estimator
    scores = svc.decision_function(pipe[:-1].transform(data.X[held]))
    assert np.array_equal(pipe.predict_proba(data.X[held]).argmax(axis=1), scores.argmax(axis=1))


@pytest.mark.parametrize("search", ["grid", "bayes"])
def test_tuning_returns_params_from_its_space(search, data):
    folds = list(kfold("random", data.y, data.tracks, 3, seed=0))
    params, score = tune("knn", data.X, data.y, folds, search=search, n_trials=4, seed=0)
    assert 1 <= params["n_neighbors"] <= 40 and params["weights"] in ("uniform", "distance")
    assert 0.3 < score <= 1


def test_filtered_protocol_trains_on_train_and_scores_valid(data):
    result = run_protocol("logreg", data, "filtered", "grid", seed=0)
    assert result["eval_description"] == "filtered valid: 188 tracks"
    assert result["train_description"] == "filtered train: 434 tracks"
    assert result["n"] == 188 and result["inner_groups"] == "artist-proxy runs"
    assert 0.25 < result["accuracy"] < 0.9  # learned something; not the 0.7+ of leaky random splits
    assert np.array(result["confusion_matrix"]).sum() == 188


def test_filtered_ceiling_fits_on_train_tracks_and_scores_the_valid_list(data):
    from musicgenre.data.splits import filtered_part
    from musicgenre.study.ceiling import filtered_ceiling

    ceiling = filtered_ceiling(
        data, {"lda": make_pipeline("lda", {"shrinkage": 0.3}), "tree": make_pipeline("tree", {"max_depth": 2})}
    )
    assert ceiling["eval_description"] == "filtered valid: 188 tracks" and ceiling["n_pipelines"] == 2
    by_name = {r["pipeline"]: r["accuracy"] for r in ceiling["scores"]}
    part = filtered_part(data.tracks)
    train, valid = part == "train", part == "valid"
    manual = make_pipeline("lda", {"shrinkage": 0.3}).fit(data.X[train], data.y[train]).predict(data.X[valid])
    assert by_name["lda"] == np.mean(manual == data.y[valid])
    assert ceiling["max"] == max(by_name.values()) == ceiling["scores"][0]["accuracy"]
    assert ceiling["at_least"]["0.60"] == sum(a >= 0.6 for a in by_name.values())
    with pytest.raises(ValueError, match="unknown feature set"):
        make_pipeline("lda", feature_set="loud")


def test_nested_random_cv_scores_every_row_once(data):
    result = run_protocol("logreg", data, "random", "grid", outer_folds=3, seed=1)
    assert result["n"] == len(data.y) and result["outer_folds"] == 3
    assert len(result["fold_accuracy"]) == 3 and len(result["best_params"]) == 3
    assert result["accuracy"] > 0.5 and result["seed"] == 1


def test_segment_models_report_track_level_accuracy():
    segments = blobs()
    grouped = run_protocol("logreg", segments, "grouped", "grid", outer_folds=3, seed=0)
    assert grouped["n"] == len(segments.y) and grouped["n_tracks_scored"] == 60
    assert grouped["track_accuracy"] >= 0.5
    assert "note" not in grouped
    assert "leaky" in run_protocol("knn", segments, "random", "grid", outer_folds=3, seed=0)["note"]


class Untrusted(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):  # noqa: N803
        return self

    def transform(self, X):  # noqa: N803
        return X


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_round_trip(name, data, tmp_path):
    model = ShallowModel(make_pipeline(name, {"n_estimators": 20} if name == "xgb" else {}, seed=0).fit(data.X, data.y))
    folder = save_model(model, tmp_path / name, card="# card\n")
    files = sorted(p.name for p in folder.iterdir())
    extra = {"xgb": ["xgboost.json"], "lda": ["linear.safetensors"], "logreg": ["linear.safetensors"]}.get(name, [])
    assert files == sorted(["README.md", "musicgenre.json", "pipeline.skops", *extra])
    loaded = load_model_folder(folder)
    assert np.allclose(loaded.predict_proba(data.X[:20]), model.predict_proba(data.X[:20]), atol=1e-6)


@pytest.mark.parametrize("feature_set", ["invariant", "raw"])
@pytest.mark.parametrize("name", ["lda", "logreg"])
def test_linear_pipelines_load_as_numpy_heads_with_the_same_probabilities(name, feature_set, data, tmp_path):
    """On the 627 public rows: the head the folder loads by default is not scikit-learn, and agrees with it to 1e-9."""
    from musicgenre.models.linear import LinearHead

    pipe = make_pipeline(name, feature_set=feature_set).fit(data.X, data.y)
    folder = save_model(ShallowModel(pipe), tmp_path / name)
    check = json.loads((folder / "musicgenre.json").read_text())["linear_head"]
    assert check["max_probability_change_on_probe"] <= 1e-9
    head = load_model_folder(folder)
    assert isinstance(head.pipeline, LinearHead) and head.pipeline.feature_set == feature_set
    assert np.abs(head.predict_proba(data.X) - pipe.predict_proba(data.X)).max() <= 1e-9
    pipeline = load_model_folder(folder, runtime="sklearn")
    assert isinstance(pipeline.pipeline, Pipeline) and (head.meta["runtime"], pipeline.meta["runtime"]) == ("numpy", "sklearn")
    assert "runtime" not in json.loads((save_model(pipeline, tmp_path / "again") / "musicgenre.json").read_text())


def test_other_pipelines_get_no_head(data, tmp_path):
    from musicgenre.models.linear import from_pipeline

    for name in ("svm", "rf", "knn"):
        assert from_pipeline(make_pipeline(name).fit(data.X, data.y)) is None, name


def test_the_bundled_feature_model_gives_the_same_answers_without_scikit_learn(data):
    from musicgenre.families import resolve_model

    head = resolve_model("bundled:shallow")
    pipeline = resolve_model("bundled:shallow", runtime="sklearn")
    assert type(head.pipeline).__name__ == "LinearHead" and isinstance(pipeline.pipeline, Pipeline)
    assert np.abs(head.predict_proba(data.X) - pipeline.predict_proba(data.X)).max() <= 1e-9


def test_untrusted_types_are_refused(data, tmp_path):
    folder = save_model(ShallowModel(make_pipeline("logreg").fit(data.X, data.y)), tmp_path / "m")
    evil = Pipeline([("x", Untrusted()), *make_pipeline("logreg").steps]).fit(data.X, data.y)
    sio.dump(evil, folder / "pipeline.skops")
    with pytest.raises(ModelError, match="not trusted"):
        load_model_folder(folder, runtime="sklearn")  # the skops file, not the NumPy head beside it
    with pytest.raises(ModelError, match="not a musicgenre model folder"):
        load_model_folder(tmp_path)


def test_scikit_learn_estimators_outside_the_list_are_refused_too(data, tmp_path):
    """skops trusts every scikit-learn estimator by default; here only TRUSTED_TYPES load (skops was imported first)."""
    from sklearn.naive_bayes import GaussianNB

    folder = save_model(ShallowModel(make_pipeline("lda").fit(data.X, data.y)), tmp_path / "m")
    sio.dump(Pipeline([*make_pipeline("lda").steps[:-1], ("model", GaussianNB())]).fit(data.X, data.y), folder / "pipeline.skops")
    with pytest.raises(ModelError, match="GaussianNB"):
        load_model_folder(folder, runtime="sklearn")


@pytest.mark.slow
def test_study_end_to_end_and_bundled_training(table, mini_clips, three_per_genre, three_second_table, tmp_path):
    audio = three_per_genre  # three real clips per genre keep the extraction short
    (tmp_path / "work").mkdir()  # the 3-second table resumes the session's (the EDA test reads it too)
    shutil.copy(three_second_table, tmp_path / "work" / "features_3_sec.csv")
    small = tmp_path / "table.csv"
    table.drop(columns="track").to_csv(small, index=False)
    out = tmp_path / "results"
    kwargs = dict(
        table_30s=str(small),
        audio_dir=str(audio),
        work_dir=str(tmp_path / "work"),
        out_dir=str(out),
        models=["logreg"],
        searches=["grid"],
        n_trials=2,
        outer_folds=3,
        inner_folds=2,
        seed=0,
        workers=2,
    )
    results = run_all(**kwargs)
    cells = {(r["dataset"], r["protocol"]) for r in results}
    assert cells == {
        ("30s table", "random"),
        ("30s table", "filtered"),
        ("30s audio", "random"),
        ("3s audio", "random"),
        ("3s audio", "grouped"),
    }
    assert json.loads((out / "results.json").read_text()) == results
    markdown = (out / "results.md").read_text()
    assert markdown.count("| logreg | invariant | grid | 3") == len(results)  # one detail row per result
    assert "- 3s audio, filtered: the filtered split's train tracks here miss genres" in markdown  # and why
    assert len(list(out.glob("confusion_*.png"))) == len(results)
    seg = next(r for r in results if r["dataset"] == "3s audio" and r["protocol"] == "grouped")
    assert seg["n"] == 300 and seg["n_tracks_scored"] == 30
    assert run_all(**kwargs) == results  # resumes: nothing recomputed

    folder = train_bundled(str(small), str(out / "results.json"), str(tmp_path / "bundled"))
    model = load_model_folder(folder)
    assert model.meta["trained_on"] == "filtered train + valid: 622 tracks"
    assert "filtered valid" in (folder / "README.md").read_text()

    # with GSM-call copies of real clips (10 s of each, written to disk): two on the train list, two on the valid
    # list; a file named as a test-list track is never read (it is not audio: reading it would fail)
    copies = tmp_path / "copies"
    chosen = {part: [c for c in mini_clips if filtered_part([c.stem])[0] == part][:2] for part in ("train", "valid")}
    for clip in chosen["train"] + chosen["valid"]:
        (copies / clip.parent.name).mkdir(parents=True, exist_ok=True)
        y, sr = sf.read(clip)
        sf.write(copies / clip.parent.name / clip.name, y[: 10 * sr], sr)
    held_out = sorted(filtered_split()["test"])[0]
    (copies / held_out.split(".")[0]).mkdir(exist_ok=True)
    (copies / held_out.split(".")[0] / f"{held_out}.wav").write_bytes(b"not audio")
    augmented = train_bundled(
        str(small), str(out / "results.json"), str(tmp_path / "augmented"), augment=["phone"], audio_dir=copies
    )
    model = load_model_folder(augmented)
    aug = model.meta["augmentation"]
    assert model.meta["trained_on"] == "filtered train + valid: 622 tracks + 4 phone copies of their clips"
    assert aug["clips"] == {"train": 2, "valid": 2} and aug["rows"] == 4
    assert aug["with"]["train_rows"] == aug["without"]["train_rows"] + 2  # the check fits only the train list's copies
    assert aug["with"]["valid_clips_degraded"]["n"] == aug["with"]["valid_clips_clean"]["n"] == 2
    card = (augmented / "README.md").read_text()
    assert "## Degraded copies" in card and "No robustness study result was given" in card
    rows = degraded_feature_rows(copies / chosen["valid"][0].parent.name / chosen["valid"][0].name, ["phone"], 30.0)
    plain = load_model_folder(folder)
    assert not np.allclose(model.predict_proba(rows), plain.predict_proba(rows))  # the copies changed the model


def filtered_like_segments() -> FeatureSet:
    """Segment rows whose track ids are real filtered-split tracks (train and valid), 3 per track."""
    from musicgenre.data.splits import filtered_split

    split = filtered_split()
    tracks = sorted(split["train"])[::4] + sorted(split["valid"])[::4]
    rows = np.repeat(tracks, 3)
    y = np.array([GENRES.index(t.split(".")[0]) for t in rows])
    X = np.random.default_rng(0).normal(size=(len(rows), len(FEATURE_COLUMNS)))
    return FeatureSet(X, y, rows, "3s")


@pytest.mark.parametrize("protocol", ["random", "grouped", "filtered"])
def test_no_split_leaks(protocol):
    from musicgenre.data.splits import filtered_part
    from musicgenre.families.shallow.train import plan_folds

    data = filtered_like_segments()
    folds = plan_folds(data, protocol, outer_folds=4, inner_folds=3, seed=0)
    for fold in folds:
        assert not set(fold.train) & set(fold.test)
        for inner_train, inner_test in fold.inner:
            assert set(inner_train) <= set(fold.train) and set(inner_test) <= set(fold.train)  # tuning never sees test rows
            assert not set(inner_train) & set(inner_test)
            if protocol != "random":
                assert not set(data.tracks[inner_train]) & set(data.tracks[inner_test])
        if protocol != "random":
            assert not set(data.tracks[fold.train]) & set(data.tracks[fold.test])
    if protocol == "filtered":
        part = filtered_part(data.tracks)
        assert set(part[folds[0].train]) == {"train"} and set(part[folds[0].test]) == {"valid"}
        assert folds[0].inner_groups == "artist-proxy runs"
    else:
        assert sorted(np.concatenate([f.test for f in folds])) == list(range(len(data.y)))


def test_damaged_model_folders_give_model_errors(data, tmp_path):
    good = save_model(ShallowModel(make_pipeline("xgb", {"n_estimators": 5}).fit(data.X, data.y)), tmp_path / "m")
    (good / "xgboost.json").unlink()
    with pytest.raises(ModelError, match="damaged or incomplete"):
        load_model_folder(good)
    (good / "pipeline.skops").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="damaged or incomplete"):
        load_model_folder(good)
    (good / "musicgenre.json").write_text("{broken")
    with pytest.raises(ModelError, match="damaged or incomplete"):
        load_model_folder(good)
    linear = save_model(ShallowModel(make_pipeline("lda").fit(data.X, data.y)), tmp_path / "lda")
    (linear / "linear.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ModelError, match="damaged or incomplete"):
        load_model_folder(linear)
    from musicgenre.families import resolve_model

    with pytest.raises(ModelError, match="not a valid Hub model id"):
        resolve_model("a b/c")


def test_gain_invariant_columns_ignore_the_recording_level():
    from conftest import SR, synth

    from musicgenre.families.shallow.model import INVARIANT_COLUMNS, GainInvariant
    from musicgenre.features.handcrafted import extract_features

    y = synth(6.0, seed=5)
    gains = (1.0, 2.0, 0.2, 0.02)  # +6 dB to -34 dB
    rows = [extract_features(y * g, SR) for g in gains]
    raw = np.array([[row[c] for c in FEATURE_COLUMNS] for row in rows])
    inv = GainInvariant().fit(raw).transform(raw)
    assert inv.shape == (len(gains), len(INVARIANT_COLUMNS))
    assert not np.allclose(raw[0], raw[2], rtol=0.01)  # the table's own columns do move with gain
    for row in inv[1:]:
        assert np.allclose(row, inv[0], rtol=0.01, atol=1e-6)
    with pytest.raises(ValueError, match="57 table feature columns"):
        GainInvariant().fit(raw).transform(raw[:, :50])


def test_feature_sets(data):
    raw = make_pipeline("logreg", feature_set="raw").fit(data.X, data.y)
    invariant = make_pipeline("logreg").fit(data.X, data.y)
    assert [name for name, _ in raw.steps] == ["logvar", "scale", "model"]
    assert [name for name, _ in invariant.steps] == ["gain", "logvar", "scale", "model"]
    assert raw.named_steps["scale"].n_features_in_ == 57 and invariant.named_steps["scale"].n_features_in_ == 53
    with pytest.raises(ValueError, match="unknown feature set"):
        make_pipeline("logreg", feature_set="mel")
