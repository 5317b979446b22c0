"""The labelled robustness study: each model family's accuracy under each degradation, on clips it never trained on.

Protocol: grouped K-fold by track over a GTZAN-like folder (``splits.kfold``, the same folds and
seed as the CNN's and the probe's cross-validation). Inside each fold every family is fitted on the
clean training clips with the recipe of the model it ships (see ``Recipes``); only the held-out
clips are degraded and scored, so each clip is scored once per condition, by a model that never
saw it. Optionally a family is also fitted on its training clips plus degraded copies of them
(``augment``), to see whether training-time augmentation buys robustness without costing clean accuracy.

What a model computes from audio (the feature rows, the backbone's embeddings, the CNN's log-mel
inputs) is computed for each clip and condition once, by the served models' own window code
(``predict.window_outputs`` gives the same probabilities; a test checks it), and cached on disk
per clip content, condition, seed and preprocessing, so a rerun or another fitting costs seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio, prepare_audio, windows
from musicgenre.data.gtzan import GENRES, Clip, label_from_path, labelled_files, track_id
from musicgenre.data.splits import kfold
from musicgenre.errors import AudioError, DataError, describe_failure
from musicgenre.util.atomic import save_npz_atomic

STUDY_VERSION = 2  # bump when what a view holds changes: older cache entries are then ignored
DEGRADE_RATE = 22050  # as in ``robustness.stability``: the rate degradations run at (GTZAN's, the feature/CNN rate)
FAMILY_NAMES = {
    "features": "feature model (LDA, bundled recipe)",
    "features_table": "feature model (LDA, bundled recipe, + public table)",
    "probe": "musicnn probe (bundled recipe)",
    "cnn": "CNN (bundled recipe)",
}


@dataclass
class StudySettings:
    folds: int = field(default=5, metadata={"help": "grouped folds by track (the CNN's and probe's)"})
    seed: int = field(default=0, metadata={"help": "folds, fitting and every degradation's randomness"})
    degradations: list[str] | None = field(
        default=None, metadata={"help": "names from musicgenre.audio.degradations (default: all)"}
    )
    families: list[str] = field(default_factory=lambda: list(FAMILY_NAMES), metadata={"help": ", ".join(FAMILY_NAMES)})
    augment: list[str] = field(
        default_factory=lambda: ["phone"],
        metadata={"help": "degradations whose copies of the training clips make the '+aug' variants ('none': no variants)"},
    )
    augment_families: list[str] = field(default_factory=lambda: list(FAMILY_NAMES), metadata={"help": "families to augment"})
    models: list[str] = field(default_factory=list, metadata={"help": "also score these model folders / Hub ids as they are"})
    feature_table: str | None = field(
        default_factory=lambda: _shared_table(),
        metadata={"help": "public-schema 30 s table: features_table trains on its rows of every track outside the held-out fold"},
    )
    cnn_epochs: int = field(default=30, metadata={"help": "the CNN recipe's most epochs (early stopping decides)"})
    workers: int = field(default=2, metadata={"help": "processes computing the views"})
    max_seconds: float = DEFAULT_MAX_SECONDS


@dataclass
class Recipes:
    """How each family is fitted and applied: read from the models the package ships, so the study tests those."""

    shallow_pipeline: object  # unfitted clone of the bundled pipeline
    shallow_window: float
    probe_normalise: bool
    probe_window: float
    cnn_window: float

    @classmethod
    def bundled(cls) -> Recipes:
        from sklearn.base import clone

        from musicgenre.models.io import bundled_model_path, load_pipeline, resolve_model

        shallow, probe, cnn = (resolve_model(f"bundled:{n}") for n in ("shallow", "musicnn", "cnn"))
        pipeline = clone(load_pipeline(bundled_model_path("shallow")))
        return cls(pipeline, shallow.window_seconds, probe.normalise, probe.window_seconds, cnn.window_seconds)


def _shared_table() -> str | None:
    """The shared data's public 30-second rows, when present: the default table of the features_table family."""
    from musicgenre.data.gtzan import default_shared_data

    table = default_shared_data() / "features_30_sec.csv"
    return str(table) if table.is_file() else None


def clip_seed(seed: int, track: str) -> int:
    """Each clip gets its own noise, reverb tail and babble, reproducibly."""
    return zlib.crc32(f"{seed}:{track}".encode())


# ---- views: what each family computes from audio, per clip and condition, cached ----


def feature_view(y: np.ndarray, window: float, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """A shallow model's feature rows (one per ``window`` seconds) of mono audio at DEGRADE_RATE, as
    ``predict_array`` computes them for it."""
    from musicgenre.features.handcrafted import SAMPLE_RATE
    from musicgenre.models.io import feature_rows

    audio = prepare_audio(y, DEGRADE_RATE, SAMPLE_RATE, max_seconds=max_seconds).samples
    return feature_rows(windows(audio, SAMPLE_RATE, window), SAMPLE_RATE)


def degraded_feature_rows(
    path: str | os.PathLike, names: list[str], window: float, seed: int = 0, max_seconds: float = DEFAULT_MAX_SECONDS
) -> np.ndarray:
    """The feature rows of each named degraded copy of one file, with the study's per-clip randomness: what a
    feature model trained on degraded copies (the study's augmented variant, the bundled model) learns from."""
    from musicgenre.audio.degradations import DEGRADATIONS

    y = load_audio(path, sr=DEGRADE_RATE, max_seconds=max_seconds).samples
    seed = clip_seed(seed, track_id(Path(path).name))
    return np.vstack([feature_view(DEGRADATIONS[n](y, DEGRADE_RATE, seed), window, max_seconds) for n in names])


def views_of(y: np.ndarray, recipes: Recipes, backbone, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict[str, np.ndarray]:
    """Per family, its per-window representation of mono audio at DEGRADE_RATE, by the served models' code.

    ``features``: one feature row per window; ``cnn``: the network's input batch; ``emb_<output>``:
    the backbone's per-window mean of each output (what ``musicnn.clip_embedding`` joins).
    """
    from musicgenre.models.cnn import SAMPLE_RATE as CNN_RATE
    from musicgenre.models.cnn import window_inputs
    from musicgenre.models.musicnn import OUTPUTS
    from musicgenre.models.musicnn import SAMPLE_RATE as PROBE_RATE
    from musicgenre.training.robust_views import channels_of, embed_audio

    def at(rate: int) -> np.ndarray:  # as predict_array prepares any upload for a model of that rate
        return prepare_audio(y, DEGRADE_RATE, rate, max_seconds=max_seconds).samples

    y_cnn, y_probe = at(CNN_RATE), at(PROBE_RATE)
    out = {
        "features": feature_view(y, recipes.shallow_window, max_seconds),
        "cnn": window_inputs(windows(y_cnn, CNN_RATE, recipes.cnn_window), recipes.cnn_window, CNN_RATE),
    }
    probe = embed_audio(y_probe, backbone, recipes.probe_normalise, recipes.probe_window)
    out.update({f"emb_{name}": probe[name] for name in OUTPUTS})
    out["probe_channel"] = channels_of(probe)  # what a routed probe reads per window
    return out


def cache_folder(cache_dir: str | os.PathLike, recipes: Recipes, seed: int, max_seconds: float = DEFAULT_MAX_SECONDS) -> Path:
    """Entries depend on the study version, the backbone's exact weights and runtime, the probe's preprocessing, the
    windows, the seed and how much of each file is read (runtime and length are named only when not the defaults).

    Within it an entry is keyed by file content; the degradations' seed comes from the track name, so a file with
    the same content as another (GTZAN has a few exact repeats) shares the first one's views.
    """
    from musicgenre.models.musicnn import load_backbone
    from musicgenre.training.probe import PREPROCESS_VERSION

    backbone = load_backbone()
    level = "norm" if recipes.probe_normalise else "raw"
    spans = f"{recipes.shallow_window:g}-{recipes.probe_window:g}-{recipes.cnn_window:g}"
    tag = f"v{STUDY_VERSION}-musicnn{backbone.config['onnx_sha256'][:12]}-p{PREPROCESS_VERSION}-{level}-w{spans}-s{seed}"
    if backbone.runtime != "onnxruntime":
        tag += f"-{backbone.runtime}"
    if max_seconds != DEFAULT_MAX_SECONDS:
        tag += f"-max{max_seconds:g}"
    return Path(cache_dir) / tag


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:24]


def _compute_clip(job: tuple) -> tuple[str, dict[str, str] | str]:
    """Worker: every missing view of one clip; returns its path and the conditions that failed (and why), or
    why the clip itself cannot be decoded."""
    path, track, conditions, folder, recipes, seed, max_seconds = job
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.models.musicnn import load_backbone

    folder = Path(folder) / _digest(Path(path))
    todo = [c for c in conditions if not (folder / f"{c}.npz").is_file()]
    if not todo:
        return path, {}
    try:
        y = load_audio(path, sr=DEGRADE_RATE, max_seconds=max_seconds).samples
    except AudioError as exc:
        return path, describe_failure(exc)
    backbone = load_backbone()
    folder.mkdir(parents=True, exist_ok=True)
    failed = {}
    for name in todo:
        try:
            degraded = DEGRADATIONS[name](y, DEGRADE_RATE, clip_seed(seed, track))
            views = views_of(degraded, recipes, backbone, max_seconds)
        except Exception as exc:  # e.g. no usable audio left, ffmpeg failing on this clip: recorded, the rest go on
            failed[name] = describe_failure(exc)
            continue
        save_npz_atomic(folder / f"{name}.npz", **views)
    return path, failed


@dataclass
class StudyData:
    """The clips of the study (in folder order), their labels and tracks, and where their views are cached."""

    paths: list[str]
    labels: np.ndarray
    tracks: np.ndarray
    conditions: list[str]
    folder: Path
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> condition -> why
    unreadable: dict[str, str] = field(default_factory=dict)

    def view(self, i: int, condition: str) -> dict[str, np.ndarray] | None:
        """Clip ``i``'s views under ``condition``, or None if that condition failed for it."""
        entry = self.folder / _digest(Path(self.paths[i])) / f"{condition}.npz"
        if not entry.is_file():
            return None
        with np.load(entry) as z:
            return {k: z[k] for k in z.files}


def prepare(
    data_dir: str | os.PathLike,
    settings: StudySettings,
    recipes: Recipes,
    cache_dir: str | os.PathLike,
    progress=print,
) -> StudyData:
    """Decode-check every labelled clip and compute its missing views, ``settings.workers`` clips at a time."""
    from musicgenre.audio.degradations import select

    chosen, notices = select(settings.degradations)
    for notice in notices:
        progress(notice)
    conditions = ["clean", *[d.name for d in chosen if d.name != "clean"]]
    augment = _augment(settings)
    missing = [a for a in augment if a not in conditions]
    if missing:
        raise DataError(f"augmentation condition(s) {missing} are not among the degradations run")
    files = labelled_files(data_dir)
    folder = cache_folder(cache_dir, recipes, settings.seed, settings.max_seconds)
    jobs = [(str(f), track_id(f.name), conditions, folder, recipes, settings.seed, settings.max_seconds) for f in files]
    failed, unreadable = {}, {}
    with ProcessPoolExecutor(settings.workers) if settings.workers > 1 else contextlib.nullcontext() as pool:
        try:
            for n, (path, bad) in enumerate((pool.map if pool else map)(_compute_clip, jobs), 1):
                (unreadable if isinstance(bad, str) else failed)[path] = bad
                progress(f"views {n}/{len(jobs)}: {Path(path).name}")
        except BaseException:
            if pool:  # stop now (finished views stay cached), not after every queued clip
                pool.shutdown(wait=False, cancel_futures=True)
            raise
    readable = [f for f in files if str(f) not in unreadable]
    return StudyData(
        [str(f) for f in readable],
        np.array([GENRES.index(label_from_path(f)) for f in readable]),
        np.array([track_id(f.name) for f in readable]),
        conditions,
        folder,
        {p: b for p, b in failed.items() if b},
        unreadable,
    )


# ---- fitting each family inside a fold, and scoring the held-out clips under every condition ----


class ViewStore:
    """The study's views, read from the cache once and kept in memory (all of GTZAN-mini's: ~1 GB)."""

    def __init__(self, data: StudyData):
        self.data, self._memo = data, {}

    def __call__(self, i: int, condition: str) -> dict[str, np.ndarray] | None:
        key = (i, condition)
        if key not in self._memo:
            self._memo[key] = self.data.view(i, condition)
        return self._memo[key]

    def items(self, train: np.ndarray, conditions: list[str]) -> list[tuple[int, dict]]:
        """(clip, views) of the training clips under each condition that has views (clean first)."""
        return [(i, v) for c in conditions for i in train if (v := self(i, c)) is not None]


def _embedding(views: dict[str, np.ndarray], w: int | None = None) -> dict[str, np.ndarray]:
    """The per-output means of window ``w`` (or of every window) as ``musicnn.clip_embedding`` takes them."""
    from musicgenre.models.musicnn import OUTPUTS

    return {n: views[f"emb_{n}"] if w is None else views[f"emb_{n}"][w : w + 1] for n in OUTPUTS}


def fit_features(store: ViewStore, train: np.ndarray, conditions: list[str], recipes: Recipes, k: int) -> tuple:
    """The bundled feature pipeline refitted on the training clips' windows; returns (views -> probabilities, info)."""

    model, rows = _fit_shallow(recipes, store, store.items(train, conditions))
    return (lambda v: features_probabilities(model, v)), {"fold": k, "rows": rows}


def _fit_shallow(recipes: Recipes, store: ViewStore, items: list[tuple[int, dict]], X0=None, y0=None) -> tuple:  # noqa: N803
    """The bundled pipeline refitted on the feature rows of ``items`` (after ``X0``/``y0``, if given)."""
    from sklearn.base import clone

    from musicgenre.models.io import ShallowModel

    X = np.vstack([*([] if X0 is None else [X0]), *[v["features"] for _, v in items]])  # noqa: N806
    y = np.concatenate([*([] if y0 is None else [y0]), *[[store.data.labels[i]] * len(v["features"]) for i, v in items]])
    return ShallowModel(clone(recipes.shallow_pipeline).fit(X, y)), len(X)


def fit_features_table(
    store: ViewStore, table, train: np.ndarray, test: np.ndarray, augment: list[str], recipes: Recipes, k: int
) -> tuple:
    """The bundled recipe on as many rows as the shipped model had: the table's rows of every track but the
    held-out clips' (the served model trained on 622 such rows), plus degraded copies of the training clips."""
    keep = ~np.isin(table.tracks, store.data.tracks[test])
    model, rows = _fit_shallow(recipes, store, store.items(train, augment), table.X[keep], table.y[keep])
    return (lambda v: features_probabilities(model, v)), {"fold": k, "rows": rows, "table_rows": int(keep.sum())}


def features_probabilities(model, views: dict[str, np.ndarray]) -> np.ndarray:
    """A ShallowModel's clip probabilities from the views: what ``predict_array`` gives it on that audio."""
    return model.predict_proba(views["features"]).mean(axis=0)


def probe_probabilities(model, views: dict[str, np.ndarray]) -> np.ndarray:
    """A ProbeModel's clip probabilities from the views (the mean over its windows, as ``predict_array``)."""
    from musicgenre.models.musicnn import clip_embedding

    rows = [clip_embedding(_embedding(views, w), model.layer) for w in range(len(views["emb_tags"]))]
    channels = [tuple(c) for c in views["probe_channel"]] if "probe_channel" in views else None
    return model.probabilities(np.stack(rows), channels).mean(axis=0)


def cnn_probabilities(network, views: dict[str, np.ndarray]) -> np.ndarray:
    """A CNN's clip probabilities from the views: its windows' mean, as ``predict_array``."""
    return np.asarray(network.predict(views["cnn"], verbose=0), dtype=np.float64).mean(axis=0)


def fit_probe(store: ViewStore, train: np.ndarray, conditions: list[str], recipes: Recipes, k: int, seed: int) -> tuple:
    """The probe's nested recipe: layer and C by inner grouped CV on the training clips, then the head on all of them."""
    from musicgenre.models.musicnn import load_backbone
    from musicgenre.models.probe import ProbeModel, head_from_pipeline
    from musicgenre.training.probe import Embedded, ProbeSettings, choose, make_head

    items = store.items(train, conditions)
    labels = np.array([store.data.labels[i] for i, _ in items])
    tracks = np.array([store.data.tracks[i] for i, _ in items])  # a clip's copies share its track: one inner fold
    emb = Embedded([_embedding(v) for _, v in items], labels, tracks, {})
    settings = ProbeSettings(normalise=recipes.probe_normalise, seed=seed)
    chosen = choose(emb, np.arange(len(items)), settings, "grouped", seed + 1 + k)
    head = make_head(chosen["C"], seed).fit(emb.matrix(chosen["layer"]), labels)
    model = ProbeModel(load_backbone(), chosen["layer"], head_from_pipeline(head), normalise=recipes.probe_normalise)
    return (lambda v: probe_probabilities(model, v)), {"fold": k, **chosen}


def fit_cnn(clips: list[Clip], train: np.ndarray, augment: list[str], settings, k: int, seed: int) -> tuple:
    """The CNN's recipe (crops, mixup, early stopping on an inner fold) on the training clips, plus degraded copies."""
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.training.cnn import fit_fold

    train_clips = [clips[i] for i in train]
    for name in augment:  # the very audio the views of these clips were computed from
        train_clips += [
            Clip(DEGRADATIONS[name](c.samples, DEGRADE_RATE, clip_seed(seed, c.track)), c.label, c.track)
            for c in (clips[i] for i in train)
        ]
    network, epochs = fit_fold(train_clips, settings, k)
    return (lambda v: cnn_probabilities(network, v)), {"fold": k, "epochs": epochs}


def condition_scores(probs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict]:
    """Per condition: accuracy and macro-F1 over the clips it could score, the change in accuracy against
    clean audio on those same clips, and how often the top genre stayed what it was on clean audio."""
    from musicgenre.training.metrics import classification_metrics

    names = list(GENRES)
    clean, clean_ok = probs["clean"].argmax(axis=1), ~np.isnan(probs["clean"][:, 0])
    out = {}
    for condition, p in probs.items():
        ok = ~np.isnan(p[:, 0])
        if not ok.any():  # no clip had usable audio under it: shown as missing, not as 0
            continue
        pred, both = p[ok].argmax(axis=1), ok & clean_ok
        metrics = classification_metrics([names[i] for i in labels[ok]], [names[i] for i in pred], names)
        out[condition] = {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "n": metrics["n"],
            "change": float(np.mean(p[both].argmax(axis=1) == labels[both]) - np.mean(clean[both] == labels[both])),
            "unchanged": float(np.mean(p[both].argmax(axis=1) == clean[both])),
            "confusion_matrix": metrics["confusion_matrix"],
        }
    return out


def run_family(
    family: str,
    data: StudyData,
    store: ViewStore,
    settings: StudySettings,
    recipes: Recipes,
    augment: list[str],
    cnn_settings=None,
    clips: list[Clip] | None = None,
    progress=print,
    table=None,
) -> dict:
    """One family (fitted on clean clips, plus ``augment`` copies if any) scored out of fold under every condition."""
    folds = list(kfold("grouped", data.labels, data.tracks, settings.folds, settings.seed))
    probs = {c: np.full((len(data.labels), len(GENRES)), np.nan) for c in data.conditions}
    info = []
    for k, (train, test) in enumerate(folds):
        conditions = ["clean", *augment]
        if family == "features":
            predict, fold = fit_features(store, train, conditions, recipes, k)
        elif family == "features_table":
            predict, fold = fit_features_table(store, table, train, test, augment, recipes, k)
        elif family == "probe":
            predict, fold = fit_probe(store, train, conditions, recipes, k, settings.seed)
        elif family == "cnn":
            predict, fold = fit_cnn(clips, train, augment, cnn_settings, k, settings.seed)
        else:
            raise DataError(f"unknown family {family!r}; choose from {', '.join(FAMILY_NAMES)}")
        for i in test:
            for c in data.conditions:
                v = store(i, c)
                if v is not None:
                    probs[c][i] = predict(v)
        fold["tracks"] = len(test)
        scored = test[~np.isnan(probs["clean"][test, 0])]  # a clip without clean views is not counted as a miss
        fold["clean_accuracy"] = float(np.mean(probs["clean"][scored].argmax(axis=1) == data.labels[scored]))
        info.append(fold)
        progress(f"{family}{' +' + '+'.join(augment) if augment else ''} fold {k}: {fold}")
    return {
        "family": family,
        "name": FAMILY_NAMES[family],
        "augment": augment,
        "folds": info,
        "conditions": condition_scores(probs, data.labels),
        "predictions": _predictions(probs),
    }


def score_external(spec: str, data: StudyData, settings: StudySettings, progress=print) -> dict:
    """A model given by folder or Hub id, as it is (not refitted: it must not have trained on these clips),
    on every clip under every condition, through ``predict_array`` as the app and CLI run it."""
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.models.io import resolve_model
    from musicgenre.models.predict import predict_array

    model = resolve_model(spec)
    probs = {c: np.full((len(data.labels), len(GENRES)), np.nan) for c in data.conditions}
    if set(GENRES) - set(model.labels):
        raise DataError(f"{spec}: its labels {model.labels} are not GTZAN's ten genres")
    for i, path in enumerate(data.paths):
        y = load_audio(path, sr=DEGRADE_RATE, max_seconds=settings.max_seconds).samples
        for c in data.conditions:
            try:
                degraded = DEGRADATIONS[c](y, DEGRADE_RATE, clip_seed(settings.seed, data.tracks[i]))
                scores = predict_array(model, degraded, DEGRADE_RATE, settings.max_seconds)["scores"]
            except Exception as exc:  # as for the views: this clip and condition go unscored, the rest go on
                progress(f"{spec}: {data.tracks[i]}: {c}: {describe_failure(exc)}")
                continue
            probs[c][i] = [scores[g] for g in GENRES]
        progress(f"{spec}: {i + 1}/{len(data.paths)}")
    return {
        "family": "external",
        "name": spec,
        "augment": [],
        "folds": [],
        "conditions": condition_scores(probs, data.labels),
        "predictions": _predictions(probs),
        "note": "not refitted per fold: scored as given, so it is out of sample only if it never trained on these clips",
    }


def _predictions(probs: dict[str, np.ndarray]) -> dict[str, list[str | None]]:
    """Per condition, each clip's top genre (None where the condition left no usable audio)."""
    return {c: [None if np.isnan(row[0]) else GENRES[int(row.argmax())] for row in p] for c, p in probs.items()}


def label(result: dict) -> str:
    """A model's column name: its family, and what it was augmented with."""
    return result["name"] + (f" + {'/'.join(result['augment'])} aug." if result["augment"] else "")


def markdown(study: dict) -> str:
    """The study as Markdown: accuracy and its change per condition, then macro-F1 and top-genre stability."""
    models = study["models"]
    head = "| condition | " + " | ".join(label(m) for m in models) + " |\n|---|" + "---|" * len(models) + "\n"

    def rows(cell) -> str:
        return "".join(
            f"| {c} | " + " | ".join(cell(m["conditions"].get(c)) for m in models) + " |\n" for c in study["conditions"]
        )

    def acc(s: dict | None) -> str:
        if s is None:
            return "–"
        change = "" if s["change"] == 0 and s["unchanged"] == 1 else f" ({100 * s['change']:+.0f})"
        return f"{s['accuracy']:.3f}{change}" + ("" if s["n"] == study["clips"] else f" n={s['n']}")

    def f1_and_stability(s: dict | None) -> str:
        return "–" if s is None else f"{s['macro_f1']:.3f} / {s['unchanged']:.0%}"

    return (
        f"Accuracy out of fold ({study['protocol']}, {study['clips']} clips of {study['data_dir']}), and in brackets "
        "its change in points against clean audio on the same clips:\n\n"
        + head
        + rows(acc)
        + "\nMacro-F1 / share of clips whose top genre is the one it has on clean audio:\n\n"
        + head
        + rows(f1_and_stability)
    )


def plot_heatmap(study: dict, path: str | os.PathLike) -> None:
    """Accuracy change against clean audio, models x conditions, in points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = [c for c in study["conditions"] if c != "clean"]
    models = study["models"]
    change = np.array(
        [[100 * m["conditions"][c]["change"] if c in m["conditions"] else np.nan for c in conditions] for m in models]
    )
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(conditions), 1.2 + 0.5 * len(models)))
    image = ax.imshow(change, cmap="RdBu", vmin=-60, vmax=60, aspect="auto")
    ax.set_xticks(range(len(conditions)), conditions, rotation=60, ha="right", fontsize=8)
    names = [f"{label(m)}, clean {m['conditions']['clean']['accuracy']:.2f}" for m in models]
    ax.set_yticks(range(len(models)), names, fontsize=8)
    for (r, c), v in np.ndenumerate(change):
        if not np.isnan(v):
            ax.text(c, r, f"{v:+.0f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 35 else "black")
    fig.colorbar(image, ax=ax, label="accuracy change (points)", fraction=0.03)
    ax.set_title(f"Accuracy change under each degradation ({study['protocol']}, {study['clips']} clips)", fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def run_study(
    data_dir: str | os.PathLike,
    settings: StudySettings,
    out_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    command: str = "",
    progress=print,
) -> dict:
    """Views, then every family (clean-trained and, with ``augment``, augmented) and every external model;
    writes ``results.json`` (after each model, atomically: a rerun skips what is there) and ``results.md``."""
    import json

    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.models.musicnn import sha256
    from musicgenre.training.cnn import CnnSettings
    from musicgenre.util.atomic import atomic_open, write_json_atomic

    unknown = sorted(set(settings.families + settings.augment_families) - set(FAMILY_NAMES))
    if unknown:
        raise DataError(f"unknown famil(ies) {unknown}; choose from {', '.join(FAMILY_NAMES)}")
    recipes = Recipes.bundled()
    data = prepare(data_dir, settings, recipes, cache_dir, progress)
    for path, why in data.unreadable.items():
        progress(f"unreadable, left out: {path}: {why}")
    for path, bad in data.failed.items():
        progress(f"{Path(path).name}: no views for {', '.join(f'{c} ({w})' for c, w in bad.items())}")
    augment = _augment(settings)
    n_folds = len(list(kfold("grouped", data.labels, data.tracks, settings.folds, settings.seed)))  # may be fewer
    cnn_settings = CnnSettings(seconds=recipes.cnn_window, epochs=settings.cnn_epochs, folds=settings.folds, seed=settings.seed)
    identity = {  # everything a stored result depends on: a rerun reuses results only when all of it is the same
        "protocol": f"grouped {n_folds}-fold by track, seed {settings.seed}",
        "data_dir": Path(data_dir).name,
        "clips": len(data.paths),
        "tracks": data.tracks.tolist(),
        "conditions": data.conditions,
        "study_version": STUDY_VERSION,
        "views": data.folder.name,
        "max_seconds": settings.max_seconds,
        "shallow_recipe_sha256": recipe_sha256(recipes.shallow_pipeline),
        "cnn_settings": asdict(cnn_settings),
        "feature_table_sha256": sha256(settings.feature_table)
        if "features_table" in settings.families and settings.feature_table
        else None,
    }
    out = Path(out_dir)
    path = out / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    same = {k: old.get(k) for k in identity} == identity
    study = {
        "kind": "robustness",
        **identity,
        "seed": settings.seed,
        "command": command,
        "degradations": {c: DEGRADATIONS[c].description for c in data.conditions},
        "failed": data.failed,
        "unreadable": data.unreadable,
        "truth": [GENRES[i] for i in data.labels],
        "models": [],
    }
    done = {(m["family"], m["name"], tuple(m["augment"])): m for m in old.get("models", [])} if same else {}
    store = ViewStore(data)
    clips = table = None
    families = list(settings.families)
    if "features_table" in families and not settings.feature_table:
        progress("skipped features_table: no --feature_table (a public-schema 30-second table) given")
        families.remove("features_table")
    wanted = []
    for family in families:
        wanted.append((family, FAMILY_NAMES[family], ()))
        if augment and family in settings.augment_families:
            wanted.append((family, FAMILY_NAMES[family], tuple(augment)))
    wanted += [("external", spec, ()) for spec in settings.models]
    for key in wanted:
        family, name, aug = key
        if key not in done:
            if family == "external":
                done[key] = score_external(name, data, settings, progress)
            else:
                if family == "cnn" and clips is None:
                    from musicgenre.data.gtzan import load_clips

                    clips, _ = load_clips(data_dir, DEGRADE_RATE, settings.max_seconds)
                    if [c.track for c in clips] != data.tracks.tolist():
                        raise DataError(f"{data_dir}: the clips changed while the study ran")
                if family == "features_table" and table is None:
                    table = _table(settings.feature_table)
                done[key] = run_family(family, data, store, settings, recipes, list(aug), cnn_settings, clips, progress, table)
                if family == "features_table":
                    done[key]["feature_table"] = Path(settings.feature_table).name
            done[key]["command"] = command  # the run that computed it (a later run may only reuse it)
        study["models"] = [done[k] for k in wanted if k in done]
        write_json_atomic(path, study)
    study["augmentation"] = augmentation_verdicts(study)
    write_json_atomic(path, study)
    with atomic_open(out / "results.md") as fh:
        fh.write(f"# Robustness: every model under real-world degradations\n\nGenerated by `{command}`.\n\n{markdown(study)}")
    return study


def _augment(settings: StudySettings) -> list[str]:
    return [a for a in settings.augment if a.lower() != "none"]


def recipe_sha256(pipeline) -> str:
    """What an unfitted scikit-learn pipeline is: its steps' types and every plain parameter, hashed. Not the
    fitted file's bytes: refitting the bundled model on other rows (e.g. with degraded copies) keeps the recipe."""
    import json

    steps = [(name, f"{type(step).__module__}.{type(step).__qualname__}") for name, step in pipeline.steps]
    params = {k: repr(v) for k, v in pipeline.get_params(deep=True).items() if k != "steps" and not hasattr(v, "get_params")}
    return hashlib.sha256(json.dumps({"steps": steps, "params": params}, sort_keys=True).encode()).hexdigest()


def _table(path: str):
    from musicgenre.features.table import load_feature_table
    from musicgenre.training.shallow_study import FeatureSet

    return FeatureSet.from_table(load_feature_table(path), "30s")


KEPT_RULE = "neither clean accuracy nor the mean accuracy over the other degradations (not trained on) drops"


def augmentation_verdicts(study: dict) -> list[dict]:
    """Per augmented family: clean accuracy, the mean accuracy over the degradations it was not trained on and the
    worst over all, before and after; kept only if neither clean nor that mean drops (a fix for one condition must
    not cost the others)."""
    out = []
    plain = {m["family"]: m for m in study["models"] if not m["augment"]}
    for m in study["models"]:
        if not m["augment"] or m["family"] not in plain:
            continue
        before, after = plain[m["family"]]["conditions"], m["conditions"]
        shared = [c for c in after if c in before and c != "clean"]
        others = [c for c in shared if c not in m["augment"]]  # a gain on the trained condition must not hide losses
        v = {"family": m["family"], "augment": m["augment"], "mean_over": others}
        for name, scores in (("before", before), ("after", after)):
            v[f"clean_{name}"] = scores["clean"]["accuracy"]
            v[f"mean_degraded_{name}"] = float(np.mean([scores[c]["accuracy"] for c in others])) if others else None
            v[f"worst_{name}"] = min(((scores[c]["accuracy"], c) for c in shared), default=(None, None))
        mean_ok = not others or v["mean_degraded_after"] >= v["mean_degraded_before"]
        v["kept"] = v["clean_after"] >= v["clean_before"] and mean_ok
        v["change_per_condition"] = {c: after[c]["accuracy"] - before[c]["accuracy"] for c in shared}
        out.append(v)
    return out


def summary_lines(study: dict) -> list[str]:
    """Per model its clean and worst accuracy, then each augmentation verdict: what a run prints at its end."""
    lines = []
    for m in study["models"]:
        scores = m["conditions"]
        worst = min((c for c in scores if c != "clean"), key=lambda c: scores[c]["accuracy"], default=None)
        tail = f", worst {worst} {scores[worst]['accuracy']:.3f}" if worst else ""
        lines.append(f"{label(m)}: clean {scores['clean']['accuracy']:.3f}{tail}")
    return lines + [verdict_line(v) for v in study.get("augmentation", [])]


def verdict_line(v: dict) -> str:
    """One augmentation verdict in words, with its numbers."""
    what = f"{FAMILY_NAMES[v['family']]} + {'/'.join(v['augment'])} copies"
    numbers = f"clean {v['clean_before']:.3f} -> {v['clean_after']:.3f}"
    if v["mean_degraded_before"] is not None:
        (wb, cb), (wa, ca) = v["worst_before"], v["worst_after"]
        numbers += (
            f", mean over the {len(v['mean_over'])} other degradations {v['mean_degraded_before']:.3f} -> "
            f"{v['mean_degraded_after']:.3f}, "
            f"worst {wb:.3f} ({cb}) -> {wa:.3f} ({ca})"
        )
    verdict = "kept" if v["kept"] else "not kept (it costs clean or mean accuracy)"
    return f"{what}: {numbers}; {verdict}"
