"""Each family fitted inside one fold, and its clip probabilities from the views.

``fit_<family>`` fits the family's shipped recipe on the fold's training clips (clean, plus the
degraded copies of them that ``augment`` names) and returns a function from a held-out clip's views
to its probabilities, with what the fit chose; ``<family>_probabilities`` is that function, the
served model's answer on that audio (as ``predict_array`` averages windows). Nothing here sees a
held-out clip except through the function it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from musicgenre.data.gtzan import Clip
from musicgenre.study.robustness.catalogue import DEGRADE_RATE, Recipes, clip_seed
from musicgenre.study.robustness.views import ViewStore


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

    from musicgenre.families import FAMILIES

    ShallowModel = FAMILIES["shallow"].module("folder").ShallowModel  # noqa: N806 - the class

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
    from musicgenre.families import FAMILIES
    from musicgenre.models.musicnn import load_backbone

    model_code, train_code = FAMILIES["probe"].module(), FAMILIES["probe"].trainer()
    ProbeModel, head_from_pipeline = model_code.ProbeModel, model_code.head_from_pipeline  # noqa: N806 - the class
    Embedded, ProbeSettings, choose, make_head = (  # noqa: N806 - the classes
        train_code.Embedded,
        train_code.ProbeSettings,
        train_code.choose,
        train_code.make_head,
    )

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
    from musicgenre.families import FAMILIES

    fit_fold = FAMILIES["cnn"].trainer().fit_fold

    train_clips = [clips[i] for i in train]
    for name in augment:  # the very audio the views of these clips were computed from
        train_clips += [
            Clip(DEGRADATIONS[name](c.samples, DEGRADE_RATE, clip_seed(seed, c.track)), c.label, c.track)
            for c in (clips[i] for i in train)
        ]
    network, epochs = fit_fold(train_clips, settings, k)
    return (lambda v: cnn_probabilities(network, v)), {"fold": k, "epochs": epochs}


@dataclass
class FoldJob:
    """One fold of one of the study's families: what any ``FOLD_FITS`` entry may need."""

    store: ViewStore
    train: np.ndarray
    test: np.ndarray
    augment: list[str]
    recipes: Recipes
    k: int
    seed: int
    clips: list[Clip] | None = None  # the cnn's: it is fitted on audio, not on views
    cnn_settings: object = None
    table: object = None  # features_table's public rows

    @property
    def conditions(self) -> list[str]:
        return ["clean", *self.augment]


# The study's families (``catalogue.FAMILY_NAMES``), each to its fold fit: (views -> probabilities, what it chose).
FOLD_FITS: dict[str, Callable[[FoldJob], tuple]] = {
    "features": lambda j: fit_features(j.store, j.train, j.conditions, j.recipes, j.k),
    "features_table": lambda j: fit_features_table(j.store, j.table, j.train, j.test, j.augment, j.recipes, j.k),
    "probe": lambda j: fit_probe(j.store, j.train, j.conditions, j.recipes, j.k, j.seed),
    "cnn": lambda j: fit_cnn(j.clips, j.train, j.augment, j.cnn_settings, j.k, j.seed),
}
