"""Prediction stability: how often a model's top genre survives each degradation of the same recording.

It needs no labels, so it runs on any folder of music (``musicgenre robustness FOLDER``): each file
is decoded once at the model's rate, classified clean, then degraded (``musicgenre.degradations``)
and classified again. The share of files whose top genre is unchanged is the model's stability
under that condition. The labelled study (accuracy under each condition, out of fold) is
``experiments/robustness.py``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.audio import DEFAULT_MAX_SECONDS, load_audio, prepare_audio
from musicgenre.degradations import Degradation
from musicgenre.errors import describe_failure
from musicgenre.predict import GenreModel, summarise, window_outputs

log = logging.getLogger(__name__)


def top_genre(model: GenreModel, y: np.ndarray, name: str = "audio") -> str:
    """The model's top genre for mono audio at ``model.sample_rate`` (validated as any upload is)."""
    samples = prepare_audio(y, model.sample_rate, model.sample_rate, name, None).samples
    probs, _ = window_outputs(model, samples)
    return summarise(list(model.labels), probs)["genre"]


@dataclass
class StabilityReport:
    """Per file: the clean top genre and the top genre under each degradation (or why there is none)."""

    model: str
    degradations: list[str]
    files: list[dict] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file -> why it could not be classified clean
    notices: list[str] = field(default_factory=list)

    def unchanged(self) -> dict[str, dict]:
        """Per degradation: the share of files whose top genre did not change, over the files it could classify."""
        out = {}
        for name in self.degradations:
            same = [row["degraded"][name] == row["clean"] for row in self.files if name in row["degraded"]]
            out[name] = {"unchanged": round(float(np.mean(same)), 4) if same else None, "n": len(same)}
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "files": len(self.files),
            "stability": self.unchanged(),
            "per_file": self.files,
            "failed": self.failed,
            "notices": self.notices,
        }

    def table(self) -> str:
        lines = ["| degradation | top genre unchanged | files |", "|---|---|---|"]
        for name, row in self.unchanged().items():
            share = "—" if row["unchanged"] is None else f"{row['unchanged']:.0%}"
            lines.append(f"| {name} | {share} | {row['n']} |")
        return "\n".join(lines)


def stability(
    model: GenreModel,
    model_name: str,
    files: list[str | os.PathLike],
    degradations: list[Degradation],
    seed: int = 0,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> StabilityReport:
    """Classify each file clean and under each degradation; a file or condition that fails is recorded, not fatal."""
    report = StabilityReport(model_name, [d.name for d in degradations if d.name != "clean"])
    for path in files:
        try:
            audio = load_audio(path, sr=model.sample_rate, max_seconds=max_seconds)
            clean = top_genre(model, audio.samples, Path(path).name)
        except Exception as exc:  # reported per file; the others are still measured
            report.failed[str(path)] = describe_failure(exc)
            continue
        row: dict = {"file": str(path), "clean": clean, "degraded": {}, "errors": {}}
        for d in degradations:
            if d.name == "clean":
                continue
            try:
                row["degraded"][d.name] = top_genre(model, d(audio.samples, model.sample_rate, seed), Path(path).name)
            except Exception as exc:  # e.g. a clip the phone line turns to silence: the model cannot answer
                row["errors"][d.name] = describe_failure(exc)
        if not row["errors"]:
            del row["errors"]
        report.files.append(row)
        log.info("%s: %s", path, clean)
    return report
