"""One report over every experiment: gather the result files they wrote and render Markdown.

Each experiment keeps its own result format (the shallow study's results.json, the CNN's
results.json, a fine-tuning run's musicgenre_run.json, the inference benchmark's JSON); readers
here turn them into common ``Row``s. Nothing is re-measured: a number in the report is a number
in a file, with the protocol, data size and seed that file names. The robustness studies have no
rows: each renders its own section (``study.robustness.report``, ``study.real_recordings``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.errors import DataError
from musicgenre.families import FAMILIES as REGISTRY
from musicgenre.study.real_recordings import section as real_recordings_section
from musicgenre.study.robustness.report import section as robustness_section
from musicgenre.training.metrics import fmt, plot_confusion

FAMILIES = {
    "svm": "SVM",
    "logreg": "logistic regression",
    "rf": "random forest",
    "tree": "decision tree",
    "xgb": "XGBoost",
    "knn": "k-NN",
    "lda": "LDA",
    "cnn": REGISTRY["cnn"].title,  # the families' own names for their rows
    "musicnn-probe": REGISTRY["probe"].title,
    "musicnn-top": "musicnn, top fine-tuned (pretrained)",
    "musicnn-zero-shot": "musicnn tags, zero-shot",
    "distilhubert": REGISTRY["transformer"].title,
}

INPUTS = {"30 s": 0, "3 s": 1, "waveform": 2}

# Context only: other people's numbers, never mixed with ours in a table of measurements.
ANCHORS = [
    ("DistilHuBERT fine-tuned (Hugging Face audio course)", "waveform", "random 90/10 split", 0.83),
    ("Jukebox representations, linear probe (Castellon et al. 2021)", "waveform", "filtered", 0.797),
    ("CLMR, linear probe (Spijkervet & Burgoyne 2021)", "waveform", "filtered", 0.686),
    ("Tzanetakis & Cook 2002, handcrafted features + GMM", "30 s", "random CV", 0.61),
]


@dataclass
class Row:
    """One measured result: a model family on one input, under one protocol, on named data."""

    family: str
    variant: str
    input: str  # "30 s", "3 s" or "waveform"
    protocol: str  # "random", "grouped" or "filtered"
    data: str  # what was scored, with its size
    dataset: str  # where the inputs came from ("public table", "audio"): drops compare rows of one dataset
    seed: int | None
    accuracy: float  # per track (3-second inputs: segment probabilities averaged per track)
    macro_f1: float | None
    source: str
    segment_accuracy: float | None = None
    selection_score: float | None = None  # inner-CV score that picks among variants; None: always shown
    rank: tuple = ()  # experiment.selection_key: inner CV, then the same tie-breaks as the study's own picks
    confusion: list[list[int]] | None = None
    labels: list[str] | None = None
    size_bytes: int | None = None
    cpu_seconds: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def cell(self) -> tuple[str, str, str, str, str]:
        return self.family, self.input, self.protocol, self.dataset, self.data


def _shallow(rows: list[dict], source: str) -> list[Row]:
    out = []
    for r in rows:
        three = r["input"] == "3s"
        data = r["eval_description"] if r["protocol"] == "filtered" else r["train_description"]
        origin = "public table" if r["dataset"].endswith("table") else "audio"
        out.append(
            Row(
                family=r["model"],
                variant=f"{r['feature_set']} features, {r['search']} search",
                input="3 s" if three else "30 s",
                protocol=r["protocol"],
                data=data,
                dataset=origin,
                seed=r["seed"],
                accuracy=r["track_accuracy"] if three else r["accuracy"],
                macro_f1=r["track_macro_f1"] if three else r["macro_f1"],
                segment_accuracy=r["accuracy"] if three else None,
                selection_score=r["inner_cv_accuracy"],
                rank=REGISTRY["shallow"].trainer().selection_key(r),
                confusion=r["track_confusion_matrix"] if three else r["confusion_matrix"],
                labels=r["labels"],
                source=source,
                note=r.get("note", ""),
                extra={
                    "dataset": r["dataset"],
                    "protocol": r["protocol"],
                    "feature_set": r["feature_set"],
                    "search": r["search"],
                },
            )
        )
    return out


def _cnn(rows: list[dict], source: str) -> list[Row]:
    out = []
    for r in rows:
        s, track = r["settings"], r["out_of_fold"]["track"]
        three = s["seconds"] < 30
        folds = r["track_accuracy"]
        out.append(
            Row(
                family="cnn",
                variant=f"width {s['width']}, {s['blocks']} blocks, mixup {s['mixup']}, batch {s['batch_size']}",
                input=f"{s['seconds']:g} s",
                protocol="grouped",
                data=f"{s['folds']}-fold grouped CV over {r['tracks']} tracks",
                dataset="audio",
                seed=s["seed"],
                accuracy=track["accuracy"],
                macro_f1=track["macro_f1"],
                segment_accuracy=r["out_of_fold"]["segment"]["accuracy"] if three else None,
                confusion=track["confusion_matrix"],
                labels=track["labels"],
                size_bytes=r["size_bytes"],
                source=source,
                note=f"folds {folds['mean']:.3f} ± {folds['std']:.3f}; {r['parameters']:,} parameters",
            )
        )
    return out


def _probe(rows: list[dict], source: str) -> list[Row]:
    """The pretrained-probe study (experiments/pretrained_probe.py): nested-CV rows (frozen probe, fine-tuned top)
    and zero-shot rows."""
    out = []
    for r in rows:
        s = r["settings"]
        variant = f"{s['backbone']}, {'level-normalised' if s['normalise'] else 'as recorded'}"
        if r["protocol"] == "zero-shot":
            out.append(
                Row(
                    family="musicnn-zero-shot",
                    variant=variant,
                    input="30 s",
                    protocol="zero-shot",
                    data=f"{r['n']} clips of the {len(r['genres'])} genres with a tag",
                    dataset="audio",
                    seed=None,
                    accuracy=r["accuracy"],
                    macro_f1=r["macro_f1"],
                    confusion=r["confusion_matrix"],
                    labels=r["labels"],
                    source=source,
                    note="the most probable genre tag; no GTZAN label used",
                )
            )
            continue
        oof, folds = r["out_of_fold"], r["fold_accuracy"]
        if r["family"] == "musicnn-top":  # the pretrained layers' learning rate (0: frozen) and the epochs
            chosen = ", ".join(f"lr={f['backbone_lr']:g}/{f['epochs']} epochs" for f in r["folds"])
        else:
            chosen = ", ".join(f"{f['layer']}/C={f['C']:g}" for f in r["folds"])
        data = (
            f"{s['folds']}-fold {r['protocol']} CV over {r['tracks']} tracks"
            if r["protocol"] != "filtered"
            else f"filtered valid list: {oof['n']} tracks"
        )
        out.append(
            Row(
                family=r["family"],
                variant=variant,
                input="30 s",
                protocol=r["protocol"],
                data=data,
                dataset="audio",
                seed=s["seed"],
                accuracy=oof["accuracy"],
                macro_f1=oof["macro_f1"],
                confusion=oof["confusion_matrix"],
                labels=oof["labels"],
                source=source,
                note=f"folds {folds['mean']:.3f} ± {folds['std']:.3f}; inner CV chose {chosen}",
                extra={"backbone": s["backbone"], "normalise": s["normalise"]},
            )
        )
    return out


def _finetune(run: dict, source: str) -> list[Row]:
    m, settings = run["metrics"], run.get("settings", {})
    return [
        Row(
            family="distilhubert",
            variant=f"from {run['model']['model_name_or_path']}",
            input="waveform",
            protocol=run["data"]["protocol"],
            data=f"{settings.get('protocol', run['data']['protocol'])}: {m.get('eval_clips', '?')} clips scored",
            dataset="audio",
            seed=settings.get("seed"),
            accuracy=m["eval_accuracy"],
            macro_f1=m.get("eval_macro_f1"),
            source=source,
        )
    ]


def read(path: str | os.PathLike) -> tuple[list[Row], list[dict]]:
    """Rows from one result file, or inference measurements from a benchmark file."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON result file ({exc})") from None
    source = str(path)
    if isinstance(obj, list) and obj and all("inner_cv_accuracy" in r for r in obj):
        return _shallow(obj, source), []
    if isinstance(obj, list) and obj and all(r.get("family") in ("musicnn-probe", "musicnn-top") for r in obj):
        return _probe(obj, source), []
    if isinstance(obj, list) and obj and all("out_of_fold" in r for r in obj):
        return _cnn(obj, source), []
    if isinstance(obj, dict) and {"metrics", "data", "model"} <= obj.keys():
        return _finetune(obj, source), []
    if isinstance(obj, dict) and obj.get("kind") in ("robustness", "real_recordings"):
        return [], []  # no accuracy rows: their own sections (see ``robustness_studies``)
    if isinstance(obj, dict) and all("family" in r for r in obj.get("results", [{}])):
        return [], obj["results"]
    raise DataError(
        f"{path}: not a result file this report knows (shallow, CNN, probe, fine-tuning run, robustness or inference benchmark)"
    )


def robustness_studies(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """The robustness studies (experiments/robustness.py, experiments/real_recordings.py) among result files."""
    found = []
    for path in paths:
        try:
            obj = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError):
            continue  # ``read`` reports it
        if isinstance(obj, dict) and obj.get("kind") in ("robustness", "real_recordings"):
            found.append({**obj, "source": str(path)})
    return found


def _measures(row: Row, timing: dict) -> bool:
    """Whether a benchmark entry measured this row's model: networks by family and input (training data does
    not change their cost), shallow pipelines only for the exact study cell and variant that was fitted."""
    if row.family != timing["family"] or row.input != timing["input"]:
        return False
    wanted = timing.get("measures")
    return wanted is None if row.selection_score is None else wanted == {k: row.extra.get(k) for k in wanted or {}}


def gather(paths: Iterable[str | os.PathLike]) -> tuple[list[Row], list[str], list[dict]]:
    """Every row of every file, with size and CPU time filled in from inference benchmarks, and those benchmarks."""
    rows, timings, sources = [], [], []
    for path in paths:
        found, measured = read(path)
        rows += found
        timings += measured
        sources.append(str(path))
    if not sources:
        raise DataError("no result files: run the experiments first, or name their files with --files")
    for row in rows:
        match = next((t for t in timings if _measures(row, t)), None)
        if match:
            row.size_bytes = row.size_bytes or match.get("size_bytes")
            row.cpu_seconds = match.get("seconds_per_30s_clip")
    return rows, sources, timings


def headline(rows: list[Row]) -> list[Row]:
    """One row per family x input x protocol x data: among variants, the best *inner-CV* score (never the reported one)."""
    chosen: dict[tuple, Row] = {}
    shown = []
    for row in rows:
        if row.selection_score is None:
            shown.append(row)
            continue
        best = chosen.get(row.cell)
        if best is None or row.rank > best.rank:
            chosen[row.cell] = row
    return sorted([*chosen.values(), *shown], key=_order)


def summary(rows: list[Row]) -> list[Row]:
    """Per input x dataset x protocol: the shallow model with the best inner-CV score, and every network row."""
    best: dict[tuple, Row] = {}
    for row in headline(rows):
        key = row.cell[1:] if row.selection_score is not None else (*row.cell, row.variant)
        if key not in best or row.rank > best[key].rank:
            best[key] = row
    return sorted(best.values(), key=lambda r: (INPUTS.get(r.input, 9), r.dataset, _order(r)[3], _order(r)))


def _order(row: Row) -> tuple:
    protocols = {"random": 0, "grouped": 1, "filtered": 2, "zero-shot": 3}
    family = list(FAMILIES).index(row.family) if row.family in FAMILIES else 99
    return family, INPUTS.get(row.input, 9), row.dataset, protocols.get(row.protocol, 9), row.data


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def _seconds(s: float | None) -> str:
    return "–" if s is None else f"{s:.2f}"


def table(rows: list[Row], with_variant: bool = False) -> str:
    head = ["model", *(["variant"] if with_variant else []), "input", "data", "protocol", "scored on", "accuracy", "macro-F1"]
    head += ["segment acc.", "size", "CPU s / 30 s clip", "seed", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [FAMILIES.get(r.family, r.family), *([r.variant] if with_variant else []), r.input, r.dataset, r.protocol, r.data]
        cells += [fmt(r.accuracy), fmt(r.macro_f1), fmt(r.segment_accuracy), _size(r.size_bytes), _seconds(r.cpu_seconds)]
        cells += ["–" if r.seed is None else str(r.seed), r.note or ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _label(row: Row) -> str:
    """Family name; a network's variant too, since several network settings can share a cell."""
    name = FAMILIES.get(row.family, row.family)
    return name if row.selection_score is not None else f"{name} ({row.variant})"


def generalisation(rows: list[Row]) -> str:
    """Accuracy of each family as the protocol gets stricter (random -> grouped -> filtered), per input and dataset."""
    strict = {"random": 0, "grouped": 1, "filtered": 2}
    rows = [r for r in rows if r.protocol in strict]  # zero-shot rows use no split: not a step in strictness
    scored_on: dict[tuple, str] = {}
    for r in sorted(rows, key=_order):
        scored_on.setdefault((r.input, r.dataset, r.protocol), r.data)
    cells = sorted(scored_on, key=lambda c: (INPUTS.get(c[0], 9), c[1], strict.get(c[2], 3)))
    labels = list(dict.fromkeys(_label(r) for r in sorted(rows, key=_order)))
    head = ["model", *(f"{i} {d}, {p} ({scored_on[(i, d, p)]})" for i, d, p in cells), "change from random"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in labels:
        acc = {(r.input, r.dataset, r.protocol): r.accuracy for r in rows if _label(r) == label}
        drops = [
            f"{i} {d} → {p}: {a - acc[(i, d, 'random')]:+.3f}"
            for (i, d, p), a in acc.items()
            if p != "random" and (i, d, "random") in acc
        ]
        line = [label, *(fmt(acc.get(c)) for c in cells), "; ".join(drops) or "–"]
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines) + "\n"


def _slug(row: Row) -> str:
    text = f"{row.family}-{row.input}-{row.dataset}-{row.protocol}"
    if row.selection_score is None and row.family.startswith("musicnn"):  # several variants share a cell
        text += f"-{row.variant}"
    return "".join(c if c.isalnum() or c == "-" else "_" for c in text.replace(" ", ""))


PROTOCOLS_TEXT = (
    "Protocols: **random** (stratified folds; for 3-second rows leaky, segments of one track on both sides), "
    "**grouped** (folds by track), **filtered** (the artist-conscious fault-filtered split of Kereliuk, Sturm & "
    "Larsen 2015: trained on its train list, scored on its validation list; its test list is held back), "
    "**zero-shot** (no GTZAN label: the pretrained tagger's most probable genre tag). "
    "Accuracy and macro-F1 are per track: 3-second models average their segment probabilities over a track."
)


def served_table(timings: list[dict]) -> str:
    """Every model the inference benchmark measured, including those no accuracy row stands for."""
    lines = ["| family | input | model | size | CPU s / 30 s clip | peak RSS (process) |", "|---|---|---|---|---|---|"]
    for t in timings:
        rss = f"{t['peak_rss_mb']} MB" if "peak_rss_mb" in t else "–"
        cells = [FAMILIES.get(t["family"], t["family"]), t["input"], t["model"], _size(t.get("size_bytes"))]
        lines.append("| " + " | ".join([*cells, _seconds(t.get("seconds_per_30s_clip")), rss]) + " |")
    return "\n".join(lines) + "\n"


def render(
    rows: list[Row],
    sources: list[str],
    out: str | os.PathLike,
    command: str,
    timings: list[dict] = (),
    studies: list[dict] = (),
) -> Path:
    """Write the report (Markdown) to ``out`` and its confusion-matrix figures beside it; return its path."""
    from musicgenre.util.atomic import atomic_open

    out = Path(out)
    figures = out.parent / "figures" / "report"
    figures.mkdir(parents=True, exist_ok=True)
    for stale in [
        *figures.glob("confusion_*.png"),
        *figures.glob("robustness*.png"),
        *figures.glob("reliability*.png"),
    ]:  # figures no longer reported
        stale.unlink()
    top, best = headline(rows), summary(rows)
    parts = [
        "# Results: every model under the same protocols\n\n",
        f"Generated by `{command}` from {len(sources)} result files ({', '.join(f'`{s}`' for s in sources)}); "
        f"nothing here is typed in by hand. {PROTOCOLS_TEXT} Size and CPU time come from the inference benchmark "
        "(one 30-second clip end to end, decoded audio to probabilities, median after warm-up): for networks, the "
        "same architecture; for a shallow family, the pipeline that the filtered cell (30 s) or the grouped cell "
        "(3 s) chose, refitted on the public table's rows, so only those rows show them.\n",
        "\n## Summary\n\nPer input, data and protocol: the shallow model with the best inner-CV score on training "
        "data (not the best reported score), and every network.\n\n" + table(best, with_variant=True),
        "\n## Every family\n\nOne row per model family, input and protocol, again the variant (feature set, search) "
        "with the best inner-CV score.\n\n" + table(top, with_variant=True),
        "\n## Generalisation: how much each family drops as the protocol gets stricter\n\n"
        "Columns are different data (named in the header; networks score the same tracks, as whole tracks), so "
        "compare within a row. For 30-second inputs a random split is already a split by track.\n\n" + generalisation(top),
        "\n## Confusion matrices\n\nRows are true genres, columns predictions; one per row of the summary.\n\n",
    ]
    for r in best:
        if r.confusion is None:
            continue
        name = f"confusion_{_slug(r)}.png"
        title = f"{FAMILIES.get(r.family, r.family)}, {r.input} {r.dataset}, {r.protocol}: acc {r.accuracy:.3f}, seed {r.seed}"
        plot_confusion(r.confusion, r.labels, f"{title}\n{r.data}", figures / name)
        parts.append(f"![{title}](figures/report/{name})\n")
    if timings:
        parts.append("\n## Every served model: size, CPU time and memory\n\n" + served_table(timings))
    parts.append(robustness_section([s for s in studies if s["kind"] == "robustness"], figures))
    parts.append(real_recordings_section([s for s in studies if s["kind"] == "real_recordings"], figures))
    parts.append(
        "\n## Published anchors (published, not measured here)\n\n| model | input | protocol | accuracy |\n|---|---|---|---|\n"
        + "\n".join(f"| {m} | {i} | {p} | {a:.3f} (published, not measured here) |" for m, i, p, a in ANCHORS)
        + "\n"
    )
    missing = [FAMILIES[f] for f in ("cnn", "distilhubert") if f not in {r.family for r in rows}]
    if missing:
        parts.append(f"\nNo result files for: {', '.join(missing)} (not run on this data yet).\n")
    parts.append(f"\n## Every result ({len(rows)} rows)\n\n" + table(sorted(rows, key=_order), with_variant=True))
    with atomic_open(out) as fh:
        fh.write("".join(parts))
    return out


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(readme: str | os.PathLike, rows: list[Row], report_link: str) -> bool:
    """Replace the README's summary table (between the results markers) with the current one; False if no markers."""
    from musicgenre.util.atomic import atomic_open

    text = Path(readme).read_text()
    if README_START not in text or README_END not in text:
        return False
    report_link = os.path.relpath(report_link, Path(readme).resolve().parent)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = (
        f"{README_START}\n<!-- generated by experiments/report.py; edit the result files, not this table -->\n\n"
        f"{PROTOCOLS_TEXT} Full report, with every family, confusion matrices and the generalisation study: "
        f"[{report_link}]({report_link}).\n\n{table(summary(rows), with_variant=True)}\n{README_END}"
    )
    with atomic_open(readme) as fh:
        fh.write(head + block + tail)
    return True
