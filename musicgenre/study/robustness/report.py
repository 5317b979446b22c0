"""What a robustness study's results say: its tables, heat map, augmentation verdicts and report section.

Everything here reads the ``results.json`` that ``run.run_study`` writes (a dict), never the audio or
the models, so the report (``study.report``) can render a study run elsewhere or long ago.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from musicgenre.study.robustness.catalogue import FAMILY_NAMES


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


def section(studies: list[dict], figures: Path) -> str:
    """The report's robustness section (``study.report.render``): each study's heat map, tables and verdicts,
    its figures written under ``figures``; empty without studies."""
    parts = []
    for n, study in enumerate(studies):
        name = f"robustness{n or ''}.png"
        plot_heatmap(study, figures / name)
        augment = "".join(f"- {verdict_line(v)}.\n" for v in study.get("augmentation", []))
        parts.append(
            f"From `{study['source']}` (`{study['command']}`). Each family is refitted inside each fold on clean clips "
            "with the recipe of the model the package ships, and only the held-out clips are degraded, so every clip is "
            "scored by a model that never saw it (musicgenre/audio/degradations.py says what each condition does). With "
            f"{study['clips']} clips one clip is {100 / max(1, study['clips']):.1f} points, and clips with neighbouring "
            "numbers often share an artist, so these folds put an artist's other songs in training: expect lower "
            "accuracy on unseen artists.\n\n"
            f"![accuracy change under each degradation](figures/report/{name})\n\n{markdown(study)}\n"
            + (f"\nTraining-time augmentation, before -> after (kept only if {KEPT_RULE}):\n\n{augment}" if augment else "")
        )
    return "\n## Robustness: accuracy under real-world recording conditions\n\n" + "\n".join(parts) if parts else ""
