"""Seven tuned shallow models (the study's six plus LDA) on 30-second and 3-second features, under every protocol.

    python experiments/shallow_baselines.py --out_dir results/shallow

Reads the public 30-second table, extracts 3-second features from a GTZAN audio folder
(resumable, cached in --work_dir), then for each model x search x input x protocol tunes
and scores honestly (see musicgenre/training/shallow_study.py). Writes results.json, results.md and
a confusion-matrix PNG per best model; re-running skips results already in results.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data
from musicgenre.families.shallow.model import MODELS
from musicgenre.families.shallow.train import run_all

SHARED = default_shared_data()


@dataclass
class Arguments:
    table_30s: str = field(default=str(SHARED / "features_30_sec.csv"), metadata={"help": "public-schema 30-second table"})
    audio_dir: str = field(default=str(SHARED / "gtzan_mini"), metadata={"help": "GTZAN audio folder for 3-second features"})
    work_dir: str = field(default="work", metadata={"help": "cache for extracted feature tables"})
    out_dir: str = field(default="results/shallow", metadata={"help": "where results.json/.md and figures go"})
    models: list[str] = field(default_factory=lambda: list(MODELS), metadata={"help": f"any of {MODELS}"})
    searches: list[str] = field(default_factory=lambda: ["bayes", "grid"])
    feature_sets: list[str] = field(
        default_factory=lambda: ["invariant", "raw"], metadata={"help": "gain-invariant columns and/or the raw table"}
    )
    n_trials: int = field(default=15, metadata={"help": "Optuna trials per tuning"})
    outer_folds: int = 5
    inner_folds: int = 3
    seed: int = 0
    workers: int | None = field(default=None, metadata={"help": "processes for feature extraction"})


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    run_all(**vars(args))


if __name__ == "__main__":
    main()
