"""Prediction stability: how often a model's top genre survives each degradation of the same recording.

It needs no labels, so it runs on any folder of music (``musicgenre robustness FOLDER``). Each file
is decoded once at 22,050 Hz, GTZAN's rate: every degradation's filters sit well below its Nyquist
frequency, which they would not at a 16 kHz model's. It is classified clean, then degraded
(``musicgenre.audio.degradations``) and classified again, resampled to the model's rate as any upload is.
The share of files whose top genre is unchanged is the model's stability under that condition.
The labelled study (accuracy under each condition, out of fold) is ``robustness_study``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from musicgenre.audio.degradations import Degradation, DegradationError
from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio
from musicgenre.errors import describe_failure
from musicgenre.models.predict import GenreModel, predict_array

log = logging.getLogger(__name__)
DEGRADE_RATE = 22050


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

    def errors(self) -> list[str]:
        """One line per file and degradation the model could not classify."""
        return [f"{row['file']}: {name}: {why}" for row in self.files for name, why in row.get("errors", {}).items()]

    def to_dict(self) -> dict:
        """What ``--out`` writes: the shares, every file's genres, and what failed."""
        return {
            "model": self.model,
            "files": len(self.files),
            "stability": self.unchanged(),
            "per_file": self.files,
            "failed": self.failed,
            "notices": self.notices,
        }

    def table(self) -> str:
        """The shares as a Markdown table."""
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
            audio = load_audio(path, sr=DEGRADE_RATE, max_seconds=max_seconds)
            clean = predict_array(model, audio.samples, DEGRADE_RATE, max_seconds)["genre"]
        except Exception as exc:  # reported per file; the others are still measured
            report.failed[str(path)] = describe_failure(exc)
            continue
        row: dict = {"file": str(path), "clean": clean, "degraded": {}, "errors": {}}
        for d in degradations:
            if d.name == "clean":
                continue
            try:
                degraded = d(audio.samples, DEGRADE_RATE, seed)
                row["degraded"][d.name] = predict_array(model, degraded, DEGRADE_RATE, max_seconds)["genre"]
            except DegradationError:
                raise  # the set-up, not this file: stop with the reason
            except Exception as exc:  # e.g. a clip the phone line turns to silence: the model cannot answer
                row["errors"][d.name] = describe_failure(exc)
        if not row["errors"]:
            del row["errors"]
        report.files.append(row)
        log.info("%s: %s", path, clean)
    return report
