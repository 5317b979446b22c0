"""Prediction stability: how often a model's top genre survives each degradation of the same recording.

It needs no labels, so it runs on any folder of music (``musicgenre robustness FOLDER``). Each file
is decoded once at 22,050 Hz, GTZAN's rate: every degradation's filters sit well below its Nyquist
frequency, which they would not at a 16 kHz model's. It is classified clean, then degraded
(``musicgenre.audio.degradations``) and classified again, resampled to the model's rate as any upload is.
The share of files whose top genre is unchanged is the model's stability under that condition.

Each answer's top probability and ``uncertain`` flag are kept too, so every condition (clean included) also
reports how sure the model is, which needs no label. Where a path names its genre (GTZAN's
``<genre>/<genre>.NNNNN.wav``), the same answers give calibration per condition: accuracy, log loss, Brier score,
ECE and how often right and wrong answers are flagged; nothing is classified twice for it.
The labelled study (accuracy under each condition, out of fold) is ``musicgenre.study.robustness``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from musicgenre.audio.degradations import Degradation, DegradationError
from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio
from musicgenre.data.gtzan import GENRES, label_from_path
from musicgenre.errors import describe_failure
from musicgenre.models.predict import GenreModel, predict_array
from musicgenre.training.metrics import calibration_metrics

log = logging.getLogger(__name__)
DEGRADE_RATE = 22050
CLEAN = "clean"
NO_LABELS = (
    "calibration needs labels from the paths (<genre>/<genre>.NNNNN.wav or a file named <genre>.*): none of these files has one"
)


@dataclass
class StabilityReport:
    """Per file: the clean top genre and the top genre under each degradation (or why there is none)."""

    model: str
    degradations: list[str]
    files: list[dict] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file -> why it could not be classified clean
    notices: list[str] = field(default_factory=list)
    calibration_note: str = ""  # why there is no calibration although files are labelled (the model's genres)

    def conditions(self) -> list[str]:
        """The clean reference first, then each degradation."""
        return [CLEAN, *self.degradations]

    def labelled(self) -> int:
        """How many classified files have a genre from their path."""
        return sum(bool(row.get("label")) for row in self.files)

    def _answers(self, name: str, labelled: bool = False) -> list[tuple[str, dict]]:
        """(label, answer) of every file classified under ``name``; only the labelled ones if asked."""
        rows = [row for row in self.files if name in row["answers"] and (row.get("label") or not labelled)]
        return [(row.get("label") or "", row["answers"][name]) for row in rows]

    def confidence(self) -> dict[str, dict]:
        """Per condition: the mean top probability and the share flagged ``uncertain``; no label needed."""
        out = {}
        for name in self.conditions():
            got = [answer for _, answer in self._answers(name)]
            tops, flags = [a["top"] for a in got], [a["uncertain"] for a in got]
            out[name] = {"n": len(got), "mean_top": _mean(tops), "uncertain": _mean(flags)}
        return out

    def calibration(self) -> dict[str, dict | None] | None:
        """Per condition, on the labelled files: ``calibration_metrics`` plus the flagged share of right and wrong
        answers; None without labelled files."""
        if not self.labelled():
            return None
        return {name: _calibrate(self._answers(name, labelled=True)) for name in self.conditions()}

    def calibration_line(self) -> str:
        """The line under the table: how many files were labelled, or why there is no calibration."""
        if self.calibration_note:
            return self.calibration_note
        if not self.labelled():
            return NO_LABELS
        return f"calibration on the {self.labelled()} of {len(self.files)} files whose path names their genre"

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
            "labelled": self.labelled(),
            "stability": self.unchanged(),
            "confidence": self.confidence(),
            "calibration": self.calibration(),
            "calibration_note": self.calibration_line(),
            "per_file": self.files,
            "failed": self.failed,
            "notices": self.notices,
        }

    def table(self) -> str:
        """Per condition, as a Markdown table: stability, confidence, and calibration where files are labelled."""
        shares, sure, calibrated = self.unchanged(), self.confidence(), self.calibration()
        head = ["degradation", "top genre unchanged", "files", "mean top p", "uncertain"]
        if calibrated:
            head += ["accuracy", "log loss", "Brier", "ECE", "wrong top p", "uncertain if right", "uncertain if wrong"]
        lines = [_row(head), _row(["---"] * len(head))]
        for name in self.conditions():
            unchanged = shares[name]["unchanged"] if name in shares else None
            cells = [name, _cell(unchanged, "{:.0%}"), str(sure[name]["n"]), _cell(sure[name]["mean_top"], "{:.2f}")]
            cells.append(_cell(sure[name]["uncertain"], "{:.0%}"))
            if calibrated:
                cells += _calibration_cells(calibrated[name])
            lines.append(_row(cells))
        return "\n".join(lines)


def _mean(values: list) -> float | None:
    """The mean, rounded for the report, or None for no values (a share of nothing is not 0)."""
    return round(float(np.mean(values)), 4) if len(values) else None


def _calibrate(pairs: list[tuple[str, dict]]) -> dict | None:
    """Calibration of labelled answers (scores in ``GENRES`` order), and the flagged share of right and wrong ones."""
    if not pairs:
        return None
    probs = np.array([answer["probs"] for _, answer in pairs])
    labels = np.array([GENRES.index(label) for label, _ in pairs])
    out = calibration_metrics(probs, labels)
    right = probs.argmax(axis=1) == labels
    flagged = np.array([answer["uncertain"] for _, answer in pairs])
    out["uncertain_right"], out["uncertain_wrong"] = _mean(flagged[right]), _mean(flagged[~right])
    return out


def _calibration_cells(row: dict | None) -> list[str]:
    """The calibration columns of one condition; dashes where no labelled file could be classified."""
    row = row or {}
    keys = [("accuracy", "{:.0%}"), ("log_loss", "{:.3f}"), ("brier", "{:.3f}"), ("ece", "{:.3f}")]
    keys += [("wrong_top_probability", "{:.2f}"), ("uncertain_right", "{:.0%}"), ("uncertain_wrong", "{:.0%}")]
    return [_cell(row.get(key), fmt) for key, fmt in keys]


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _answer(out: dict) -> dict:
    """What the report keeps of one prediction: top probability, the ``uncertain`` flag, and the scores in ``GENRES``
    order (full precision: rounding a tiny probability of the true genre would change the log loss)."""
    probs = [out["scores"].get(genre, 0.0) for genre in GENRES]
    return {"top": max(out["scores"].values()), "uncertain": out["uncertain"], "probs": probs}


def stability(
    model: GenreModel,
    model_name: str,
    files: list[str | os.PathLike],
    degradations: list[Degradation],
    seed: int = 0,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> StabilityReport:
    """Classify each file clean and under each degradation; a file or condition that fails is recorded, not fatal."""
    report = StabilityReport(model_name, [d.name for d in degradations if d.name != CLEAN])
    knows_genres = set(model.labels) == set(GENRES)
    if not knows_genres:
        report.calibration_note = f"no calibration: it needs a model of the ten GTZAN genres, and {model_name} predicts others"
    for path in files:
        try:
            audio = load_audio(path, sr=DEGRADE_RATE, max_seconds=max_seconds)
            clean = predict_array(model, audio.samples, DEGRADE_RATE, max_seconds)
        except Exception as exc:  # reported per file; the others are still measured
            report.failed[str(path)] = describe_failure(exc)
            continue
        label = label_from_path(path) if knows_genres else ""
        row: dict = {"file": str(path), "label": label or None, "clean": clean["genre"], "degraded": {}, "errors": {}}
        row["answers"] = {CLEAN: _answer(clean)}
        _degrade_all(model, audio.samples, degradations, seed, max_seconds, row)
        if not row["errors"]:
            del row["errors"]
        report.files.append(row)
        log.info("%s: %s", path, clean["genre"])
    return report


def _degrade_all(
    model: GenreModel, samples: np.ndarray, degradations: list[Degradation], seed: int, max_seconds: float, row: dict
) -> None:
    """Classify each degraded view of one file into ``row``: its top genre, its answer, or why there is none."""
    for d in degradations:
        if d.name == CLEAN:
            continue
        try:
            out = predict_array(model, d(samples, DEGRADE_RATE, seed), DEGRADE_RATE, max_seconds)
        except DegradationError:
            raise  # the set-up, not this file: stop with the reason
        except Exception as exc:  # e.g. a clip the phone line turns to silence: the model cannot answer
            row["errors"][d.name] = describe_failure(exc)
            continue
        row["degraded"][d.name] = out["genre"]
        row["answers"][d.name] = _answer(out)
