"""The robust probe: heads for the ways music is captured, calibrated, routed by the measured channel, and an
out-of-fold "unsure" threshold (issue 33).

The frozen musicnn probe trained on clean clips is right on clean audio and sure of itself on a phone
line. Each training set here fits, by design (``DESIGNS``):

- ``clean``: today's head, on the clips' clean embeddings only (``calibrate=False``: as shipped before);
- ``wide``: one head on the clean embeddings plus ``wide`` random copies (``audio.augment``: a room, a
  loudspeaker's and a microphone's band limits, coloured noise, level);
- ``pooled``: one head on clean, ``wide`` and ``narrow`` (telephone-like) copies;
- ``selector``: the ``wide`` head plus a ``narrow`` head on the narrow copies, for windows whose measured band
  ends below ``narrow_below_hz``;
- ``routed``: ``selector`` plus the ``clean`` head, for windows with no band or noise issue, averaged
  with ``wide`` there (``families.probe.model.route``).

Every head's C and temperature (Guo et al. 2017) are chosen by an inner CV over the training clips
(grouped by track, so a clip's copies never straddle inner folds), and the ``uncertain_below`` threshold
on the calibrated top probability from the same inner out-of-fold answers. A fit becomes the served
``ProbeModel``, so what is scored is what ships. ``cross_validate`` scores held-out clips under
evaluation conditions that other generators make with other seeds (``families.probe.robust_views``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from musicgenre.audio.quality import NARROW_HZ
from musicgenre.data.gtzan import GENRES
from musicgenre.data.splits import kfold
from musicgenre.models.musicnn import LAYERS

DESIGNS = ("clean", "wide", "pooled", "selector", "routed")


@dataclass
class RobustSettings:
    design: str = field(default="routed", metadata={"help": f"one of {', '.join(DESIGNS)}"})
    layer: str = field(default="mean_max", metadata={"help": "musicnn embedding layer (musicnn.LAYERS; the bundled head's)"})
    wide_copies: int = field(default=4, metadata={"help": "wide random copies per training clip"})
    narrow_copies: int = field(default=4, metadata={"help": "narrow (telephone-like) random copies per training clip"})
    c_grid: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0], metadata={"help": "logistic C values"})
    inner_folds: int = field(default=4, metadata={"help": "inner folds: C, temperatures and threshold"})
    narrow_below_hz: float = field(default=NARROW_HZ, metadata={"help": "band edge below which the narrow head answers"})
    clean_weight: float = field(default=4.0, metadata={"help": "weight of a clean row against one random copy"})
    calibrate: bool = field(default=True, metadata={"help": "fit temperatures (False: T = 1, as shipped before)"})
    max_flag_right: float = field(default=0.2, metadata={"help": "most right answers (inner OOF) the threshold may flag"})
    select_by: str = field(default="log_loss", metadata={"help": "inner-CV score that picks C: log_loss or accuracy"})
    route_rows: bool = field(default=False, metadata={"help": "a copy trains the head its measured channel routes to"})


def head_views(settings: RobustSettings) -> dict[str, list[str]]:
    """Head name -> the views (``families.probe.robust_views``) its rows may come from. With ``route_rows`` (the
    ``selector`` and ``routed`` designs), a copy's row then goes only to the head that its own measured channel
    routes to, so each head learns from the audio it will be asked about (a gently filtered "narrow" copy that
    the band measurement reads as wide trains the wide head)."""
    copies = [f"wide{j}" for j in range(settings.wide_copies)], [f"narrow{j}" for j in range(settings.narrow_copies)]
    wide, narrow = ["clean", *copies[0]], copies[1]
    if settings.route_rows and settings.design in ("selector", "routed"):  # every copy is a candidate for both heads
        wide, narrow = ["clean", *copies[0], *copies[1]], [*copies[0], *copies[1]]
    return {
        "clean": {"wide": ["clean"]},
        "wide": {"wide": wide},
        "pooled": {"wide": wide + narrow},
        "selector": {"wide": wide, "narrow": narrow},
        "routed": {"wide": wide, "clean": ["clean"], "narrow": narrow},
    }[settings.design]


def routed_to(name: str, channels: np.ndarray, settings: RobustSettings, heads: tuple[str, ...]) -> np.ndarray:
    """Which of ``channels``' rows (clips, 3) the served routing would send to head ``name``; every row when rows are
    not routed. The clean head keeps its clean rows and the wide head its clean rows whatever they measure."""
    from musicgenre.families.probe.model import route

    if not (settings.route_rows and settings.design in ("selector", "routed")):
        return np.ones(len(channels), bool)
    to = np.array([route(heads, *row, settings.narrow_below_hz) if not np.isnan(row[0]) else "" for row in channels])
    return to == name if name == "narrow" else to != "narrow"


# ---- calibration and the threshold ----


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the log loss of softmax(logits / T), searched on log T."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[np.arange(len(labels)), labels].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 4.0), method="bounded").x))


def choose_threshold(top: np.ndarray, right: np.ndarray, max_flag_right: float) -> float:
    """The top-probability threshold that flags the most wrong answers minus right ones (Youden's J), among those
    that flag at most ``max_flag_right`` of the right answers."""
    best, best_j = 0.0, -1.0
    for t in np.unique(np.round(top, 3)):
        flagged = top < t
        flag_right = float(flagged[right].mean()) if right.any() else 0.0
        flag_wrong = float(flagged[~right].mean()) if (~right).any() else 0.0
        if flag_right <= max_flag_right and flag_wrong - flag_right > best_j:
            best, best_j = float(t), flag_wrong - flag_right
    return best


# ---- heads ----


@dataclass
class Rows:
    """Training rows: embeddings, genre labels, the clip each row comes from (copies share their clip), weights."""

    X: np.ndarray
    y: np.ndarray
    clip: np.ndarray
    weight: np.ndarray


def rows(views: dict[str, np.ndarray], labels: np.ndarray, clips: np.ndarray, names: list[str], clean_weight: float,
         keep=None) -> Rows:  # fmt: skip
    """The rows of ``clips`` under each view in ``names`` (views: name -> (clips, dim); a NaN row is a failed view),
    those where ``keep(view)`` (a mask over all clips) is true when given; clean rows are always kept."""
    X, y, c, w = [], [], [], []
    for name in names:
        block = views[name][clips]
        ok = ~np.isnan(block[:, 0])
        if keep is not None and name != "clean":
            ok &= keep(name)[clips]
        X.append(block[ok]), y.append(labels[clips][ok]), c.append(clips[ok])
        w.append(np.full(int(ok.sum()), clean_weight if name == "clean" else 1.0))
    return Rows(np.vstack(X), np.concatenate(y), np.concatenate(c), np.concatenate(w))


def _logits(head, X: np.ndarray) -> np.ndarray:
    """Logits over all ten genres; a genre missing from an inner training fold gets a very low one."""
    out = np.full((len(X), len(GENRES)), -30.0)
    out[:, head.classes_] = head.decision_function(X)
    return out


def fit_head(data: Rows, tracks: np.ndarray, settings: RobustSettings, seed: int) -> tuple[object, float, np.ndarray]:
    """C and temperature by inner CV grouped by track, then the head on all of ``data``.

    Returns the fitted pipeline, its temperature and the inner out-of-fold calibrated probabilities of ``data``.
    """
    from musicgenre.families.probe.train import make_head

    clips = np.unique(data.clip)
    first_label = dict(zip(data.clip[::-1], data.y[::-1], strict=True))
    folds = list(kfold("grouped", np.array([first_label[c] for c in clips]), tracks[clips], settings.inner_folds, seed))
    best = None
    for c in settings.c_grid:
        oof = np.full((len(data.y), len(GENRES)), np.nan)
        for a, b in folds:
            train, test = np.isin(data.clip, clips[a]), np.isin(data.clip, clips[b])
            head = make_head(c, seed).fit(data.X[train], data.y[train], model__sample_weight=data.weight[train])
            oof[test] = _logits(head, data.X[test])
        t = fit_temperature(oof, data.y) if settings.calibrate else 1.0
        loss = float(-log_softmax(oof / t)[np.arange(len(data.y)), data.y].mean())
        if settings.select_by == "accuracy":  # as the frozen probe chose (training.probe.choose): ties to the earlier C
            loss = -float(np.mean(oof.argmax(axis=1) == data.y))
        if best is None or loss < best[0]:
            best = (loss, c, t, oof)
    _, c, t, oof = best
    head = make_head(c, seed).fit(data.X, data.y, model__sample_weight=data.weight)
    return head, t, np.exp(log_softmax(oof / t))


@dataclass
class RobustFit:
    """A training set's heads as the served probe (``families.probe.model.ProbeModel``), and how they were chosen."""

    model: object
    chosen: dict = field(default_factory=dict)


def fit_robust(views: dict[str, np.ndarray], channels: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray,
               train: np.ndarray, settings: RobustSettings, seed: int) -> RobustFit:  # fmt: skip
    """Every head of ``settings.design`` on the clips ``train``; the threshold from their pooled inner OOF answers.

    ``channels[view]``: (clips, 3) measured low_hz, high_hz, snr_db of each clip's view (what rows are routed by).
    """
    from musicgenre.families.probe.model import ProbeModel, head_from_pipeline
    from musicgenre.models.musicnn import load_backbone

    heads, temperature, chosen, tops, rights = {}, {}, {}, [], []
    names_of = head_views(settings)
    for name, names in names_of.items():
        keep = lambda view, name=name: routed_to(name, channels[view], settings, tuple(names_of))  # noqa: E731
        data = rows(views, labels, train, names, settings.clean_weight, keep)
        pipeline, temperature[name], oof = fit_head(data, tracks, settings, seed)
        heads[name] = head_from_pipeline(pipeline)
        chosen[name] = {"C": float(pipeline.steps[-1][1].C), "temperature": temperature[name], "rows": len(data.y)}
        tops.append(oof.max(axis=1)), rights.append(oof.argmax(axis=1) == data.y)
    top, right = np.concatenate(tops), np.concatenate(rights)
    threshold = choose_threshold(top, right, settings.max_flag_right)
    chosen["uncertain_below"] = threshold
    chosen["inner_flagged"] = {"right": float(np.mean(top[right] < threshold)), "wrong": float(np.mean(top[~right] < threshold))}
    model = ProbeModel(
        load_backbone(), settings.layer, heads.pop("wide"), meta={"uncertain_below": threshold}, more_heads=heads,
        temperature=temperature if settings.calibrate else {}, narrow_below_hz=settings.narrow_below_hz,
    )  # fmt: skip
    return RobustFit(model, chosen)


# ---- out-of-fold scores ----


def out_of_fold(fit_fold, views: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray, conditions: list[str],
                seeds: list[int], folds: int = 5, progress=print, name: str = "") -> dict:  # fmt: skip
    """Grouped ``folds``-fold CV by track, per seed, of any model: every clip's out-of-fold probabilities under every
    condition (NaN where the condition failed on it), the threshold that applied to it, each fold's choices.

    ``fit_fold(train, seed)`` fits on the clips ``train`` and returns ``predict(condition, clips)`` (their
    probabilities) and its choices, ``uncertain_below`` among them.
    """
    out = {"probabilities": {}, "thresholds": {}, "folds": []}
    for seed in seeds:
        probs = {c: np.full((len(labels), len(GENRES)), np.nan) for c in conditions}
        threshold = np.full(len(labels), np.nan)
        for k, (train, test) in enumerate(kfold("grouped", labels, tracks, folds, seed)):
            predict, chosen = fit_fold(train, seed + 1 + k)
            threshold[test] = chosen["uncertain_below"]
            for c in conditions:
                ok = test[~np.isnan(views[c][test, 0])]
                probs[c][ok] = predict(c, ok)
            out["folds"].append({"seed": seed, "fold": k, **chosen})
            progress(f"{name}: seed {seed} fold {k}, threshold {chosen['uncertain_below']:.3f}")
        out["probabilities"][seed], out["thresholds"][seed] = probs, threshold
    return out


def cross_validate(views: dict[str, np.ndarray], channels: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray,
                   conditions: list[str], settings: RobustSettings, seeds: list[int], folds: int = 5,
                   progress=print) -> dict:  # fmt: skip
    """``out_of_fold`` of the heads of ``settings.design``. ``channels[condition]``: (clips, 3) low_hz, high_hz,
    snr_db of each clip's view, what the probe routes by."""

    def fit_fold(train: np.ndarray, seed: int):
        fit = fit_robust(views, channels, labels, tracks, train, settings, seed)
        return (lambda c, rows: fit.model.probabilities(views[c][rows], [tuple(r) for r in channels[c][rows]])), fit.chosen

    return out_of_fold(fit_fold, views, labels, tracks, conditions, seeds, folds, progress, settings.design)


# ---- the shipped model ----


def save_shipped(views: dict[str, np.ndarray], channels: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray,
                 settings: RobustSettings,
                 result: dict, folder, command: str, seed: int = 0):  # fmt: skip
    """The ``settings.design`` probe fitted on every clip (C, temperatures and threshold by CV over them), saved to
    ``folder`` with a model card quoting ``result``'s out-of-fold scores of the same design."""
    from musicgenre.families.probe.model import save_probe

    fit = fit_robust(views, channels, labels, tracks, np.arange(len(labels)), settings, seed)
    scored = next(d for d in result["designs"].values() if d["settings"] == asdict(settings))
    fit.model.meta.update(
        {"trained_on": f"{len(labels)} clips of GTZAN and their random copies", "design": settings.design,
         "chosen": fit.chosen, "seed": seed, "settings": asdict(settings)}
    )  # fmt: skip
    return save_probe(fit.model, folder, model_card(fit, scored["summary"], result, command))


def model_card(fit: RobustFit, summary: dict, result: dict, command: str) -> str:
    s = fit.model.meta["settings"]
    copies = f"{s['wide_copies']} wide and {s['narrow_copies']} narrow random copies of each clip"
    trained_on = {
        "wide": f"clean clips (weight {s['clean_weight']:g}) + the {copies} whose measured band is not telephone-like",
        "clean": "clean clips",
        "narrow": f"the {copies} whose measured band is telephone-like",
    }
    if not s["route_rows"]:
        trained_on["wide"] = f"clean clips (weight {s['clean_weight']:g}) + {s['wide_copies']} wide random copies each"
        trained_on["narrow"] = f"{s['narrow_copies']} narrow (telephone-like) random copies each"
    heads = "\n".join(
        f"| {name} | {trained_on[name]} | {c['rows']} | {c['C']:g} | {c['temperature']:.3f} |"
        for name, c in fit.chosen.items()
        if name in trained_on
    )
    rows = "\n".join(
        f"| {c} | {'seen' if r['seen'] else 'unseen'} | {r['accuracy']:.3f} | {r['log_loss']:.2f} | {r['ece']:.3f} |"
        for c, r in summary["conditions"].items()
    )
    t = summary["targets"]
    layers = " + ".join(f"`{name}`" for name in LAYERS[fit.model.layer])
    return f"""---
license: isc
library_name: musicgenre
tags: [audio-classification, music-genre, gtzan, musicnn, transfer-learning, calibration]
metrics: [accuracy, log_loss, brier, ece]
---
# musicgenre bundled model: a routed, calibrated genre probe on musicnn (MSD_musicnn)

The pretrained musicnn tagger (Pons & Serra 2019; ISC licence, Music Technology Group, Universitat
Pompeu Fabra), frozen, with three linear heads on the clip mean of its `{fit.model.layer}` embedding ({layers}). Each
30-second window's channel is measured (`musicgenre.audio.quality`: its effective band and noise) and
routed: a band ending below {fit.model.narrow_below_hz:g} Hz to the `narrow` head; a window with no band
or noise issue to the mean of the `clean` and `wide` heads; anything else to the `wide` head. Each head's
logits are divided by its temperature, chosen out of fold, so the scores are calibrated probabilities.
An answer whose top probability is below {fit.chosen["uncertain_below"]:.3f} (chosen out of fold to flag
the most wrong answers while flagging at most a fifth of right ones) is marked `uncertain`.

| head | trained on | rows | C | temperature |
|---|---|---|---|---|
{heads}

## Data
{result["clips"]} clips of GTZAN (Tzanetakis & Cook 2002; the shared `gtzan_mini`), and random copies of them
made by audiomentations (pyroomacoustics rooms, band limits, coloured noise, level). Nothing else: no
GTZAN-trained model as a teacher. Some GTZAN songs may also be in the Million Song Dataset that trained the
backbone.

## Validation (grouped 5-fold CV by track, seeds {", ".join(map(str, result["seeds"]))}, means over seeds)
Heads, temperatures and the threshold were fitted inside each training fold; held-out clips were degraded by
other generators with other seeds. "unseen": a kind of damage no training copy imitates. Neighbouring clip
numbers often share an artist and folds are by track, so expect lower accuracy on unseen artists.

| condition | family | accuracy | log loss | ECE (10 bins) |
|---|---|---|---|---|
{rows}

Over the six target conditions: mean log loss {t["mean_log_loss"]:.3f}; mean top probability of wrong answers
{t["wrong_top_probability"]:.2f}; `uncertain` flags {t["flagged_wrong"]:.0%} of wrong and {t["flagged_right"]:.0%}
of right answers.

## Reproduce
```
{command}
```
"""
