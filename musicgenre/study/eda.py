"""The study's exploratory data analysis as figures: what the clips, the features and the splits look like.

Each function draws one figure from data it is given (a feature table in the public schema,
decoded clips, the split lists) and writes a PNG; ``write_eda`` draws them all and a Markdown
page that shows them. Projections use the same preprocessing as the shallow models (log of the
variance columns, standard scaling), so they show what those models see.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from musicgenre.data.gtzan import GENRES, Clip
from musicgenre.families import FAMILIES
from musicgenre.features.handcrafted import FEATURE_COLUMNS, SAMPLE_RATE

COLOURS = {g: c for g, c in zip(GENRES, [f"C{i}" for i in range(len(GENRES))], strict=True)}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, dpi: int = 90) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)
    return Path(path)


def genre_examples(clips: list[Clip], path: str | os.PathLike) -> Path:
    """Waveform and mel-spectrogram of the first clip of each genre present."""
    from musicgenre.audio import spectral

    first = {}
    for clip in clips:
        first.setdefault(GENRES[clip.label], clip)
    plt = _plt()
    fig, axes = plt.subplots(len(first), 2, figsize=(11, 1.6 * len(first)), squeeze=False)
    for row, genre in enumerate(g for g in GENRES if g in first):
        y = first[genre].samples
        t = np.arange(len(y)) / SAMPLE_RATE
        axes[row, 0].plot(t[::50], y[::50], lw=0.4, color=COLOURS[genre])
        axes[row, 0].set_ylabel(genre)
        axes[row, 0].set_xlim(0, t[-1] if len(t) else 1)
        mel = spectral.power_to_db(spectral.melspectrogram(y, SAMPLE_RATE, hop=2048, n_mels=64), ref=None)
        axes[row, 1].imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, t[-1] if len(t) else 1, 0, 64))
        axes[row, 1].set_ylabel("mel band")
        axes[row, 0].set_title(f"{first[genre].track}: waveform" if row == 0 else first[genre].track, fontsize=8, loc="left")
        axes[row, 1].set_title("mel spectrogram (dB re max)" if row == 0 else "", fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    return _save(fig, path, dpi=72)  # coarse on purpose: spectrogram images compress badly


def _display(table: pd.DataFrame, column: str) -> tuple[np.ndarray, str]:
    values = table[column].to_numpy(np.float64)
    logged = FAMILIES["shallow"].module().VAR_COLUMNS  # the columns the models log too (base 10 here, to read)
    if FEATURE_COLUMNS.index(column) in logged:
        return np.log10(np.maximum(values, 1e-12)), f"log10 {column}"
    return values, column


def feature_distributions(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Every table feature as box plots by genre (variances on a log scale)."""
    plt = _plt()
    cols = 8
    rows = -(-len(FEATURE_COLUMNS) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.9 * rows))
    genres = [g for g in GENRES if g in set(table["label"])]
    for ax, column in zip(axes.flat, FEATURE_COLUMNS, strict=False):
        values, name = _display(table, column)
        groups = [values[(table["label"] == g).to_numpy()] for g in genres]
        parts = ax.boxplot(groups, patch_artist=True, showfliers=False, widths=0.7)
        for patch, g in zip(parts["boxes"], genres, strict=True):
            patch.set_facecolor(COLOURS[g])
        ax.set_title(name, fontsize=7)
        ax.set_xticks(range(1, len(genres) + 1), [g[:3] for g in genres], fontsize=5, rotation=90)
        ax.tick_params(axis="y", labelsize=5)
    for ax in list(axes.flat)[len(FEATURE_COLUMNS) :]:
        ax.axis("off")
    return _save(fig, path)


def correlation_heatmap(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Pearson correlation between the table's features (variances logged, as the models use them)."""
    plt = _plt()
    frame = pd.DataFrame({_display(table, c)[1]: _display(table, c)[0] for c in FEATURE_COLUMNS})
    corr = frame.corr().to_numpy()
    fig, ax = plt.subplots(figsize=(11, 10))
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(frame.columns)), frame.columns, rotation=90, fontsize=5)
    ax.set_yticks(range(len(frame.columns)), frame.columns, fontsize=5)
    fig.colorbar(im, ax=ax, shrink=0.7, label="Pearson r")
    ax.set_title(f"feature correlation, {len(table)} clips", fontsize=9)
    return _save(fig, path)


def projections(table: pd.DataFrame, title: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """PCA and t-SNE of the (log-variance, standardised) features, coloured by genre."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    LogVariance = FAMILIES["shallow"].module().LogVariance  # noqa: N806 - the class

    X = StandardScaler().fit_transform(LogVariance().fit_transform(table[FEATURE_COLUMNS].to_numpy(np.float64)))
    pca = PCA(n_components=2, random_state=seed).fit(X)
    embeddings = {
        f"PCA ({pca.explained_variance_ratio_.sum():.0%} of variance)": pca.transform(X),
        "t-SNE (perplexity 30)": TSNE(2, perplexity=min(30.0, (len(X) - 1) / 3), random_state=seed, init="pca").fit_transform(X),
    }
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    labels = table["label"].to_numpy()
    for ax, (name, points) in zip(axes, embeddings.items(), strict=True):
        for g in GENRES:
            mask = labels == g
            if mask.any():
                ax.scatter(points[mask, 0], points[mask, 1], s=6, color=COLOURS[g], label=g, alpha=0.8)
        ax.set_title(f"{title}: {name}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def class_balance(counts: dict[str, Counter], path: str | os.PathLike) -> Path:
    """Tracks per genre in each named collection (tables, audio folders, split lists)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(1, len(counts))
    x = np.arange(len(GENRES))
    for i, (name, counter) in enumerate(counts.items()):
        ax.bar(x + i * width, [counter.get(g, 0) for g in GENRES], width, label=f"{name} ({sum(counter.values())})")
    ax.set_xticks(x + width * (len(counts) - 1) / 2, GENRES, rotation=30)
    ax.set_ylabel("tracks")
    ax.legend(fontsize=8)
    return _save(fig, path)


def tempo_by_genre(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """The beat tracker's tempo per genre (the table's ``tempo`` column)."""
    plt = _plt()
    genres = [g for g in GENRES if g in set(table["label"])]
    fig, ax = plt.subplots(figsize=(10, 4))
    parts = ax.boxplot([table.loc[table["label"] == g, "tempo"] for g in genres], patch_artist=True)
    for patch, g in zip(parts["boxes"], genres, strict=True):
        patch.set_facecolor(COLOURS[g])
    ax.set_xticks(range(1, len(genres) + 1), genres, rotation=30)
    ax.set_ylabel("tempo (BPM)")
    ax.set_title(f"tempo by genre, {len(table)} clips", fontsize=9)
    return _save(fig, path)


def write_eda(
    table_30s: pd.DataFrame,
    clips: list[Clip],
    table_3s: pd.DataFrame | None,
    splits: dict[str, list[str]],
    out_dir: str | os.PathLike,
    sources: dict[str, str],
    command: str,
    seed: int = 0,
) -> Path:
    """Every figure into ``out_dir/figures/eda`` and ``out_dir/eda.md`` showing them; returns the page."""
    from musicgenre.util.atomic import atomic_open

    out = Path(out_dir)
    figures = out / "figures" / "eda"
    figures.mkdir(parents=True, exist_ok=True)
    counts = {"30 s table": Counter(table_30s["label"])}
    counts["audio clips"] = Counter(GENRES[c.label] for c in clips)
    for part, tracks in splits.items():
        counts[f"filtered {part} list"] = Counter(t.split(".")[0] for t in tracks)
    project = partial(projections, seed=seed)
    shown = [
        ("genre_examples.png", genre_examples, (clips,), "The first clip of each genre: waveform and mel spectrogram."),
        ("class_balance.png", class_balance, (counts,), "Tracks per genre in each collection; the legend gives totals."),
        ("tempo_by_genre.png", tempo_by_genre, (table_30s,), f"Tempo by genre in the 30 s table ({len(table_30s)} clips)."),
        (
            "feature_distributions.png",
            feature_distributions,
            (table_30s,),
            f"Every feature of the 30 s table by genre ({len(table_30s)} clips; boxes: quartiles, whiskers: 1.5 IQR).",
        ),
        (
            "correlation.png",
            correlation_heatmap,
            (table_30s,),
            f"Correlation between the {len(FEATURE_COLUMNS)} features.",
        ),
        (
            "projection_30s.png",
            project,
            (table_30s, f"30 s features, {len(table_30s)} clips"),
            "PCA and t-SNE of the 30 s features, coloured by genre.",
        ),
    ]
    if table_3s is not None and len(table_3s) > 3:
        text = f"3 s features, {len(table_3s)} segments of {table_3s['track'].nunique()} clips"
        shown.append(("projection_3s.png", project, (table_3s, text), f"PCA and t-SNE of the {text}, coloured by genre."))
    lines = [
        "# Exploratory data analysis\n\n",
        f"Generated by `{command}` from {', '.join(f'{k}: `{v}`' for k, v in sources.items())}.\n",
    ]
    for name, draw, args, caption in shown:
        draw(*args, figures / name)
        heading = name.removesuffix(".png").replace("_", " ").capitalize()
        lines.append(f"\n## {heading}\n\n{caption}\n\n![{caption}](figures/eda/{name})\n")
    page = out / "eda.md"
    with atomic_open(page) as fh:
        fh.write("".join(lines))
    return page
