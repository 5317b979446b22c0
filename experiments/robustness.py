"""Does it work on real recordings? Every model family's accuracy under each real-world degradation, out of fold.

    python experiments/robustness.py --data_dir ../shared/data/gtzan_mini --out_dir results/robustness \
        [--degradations phone mp3_64k ...] [--families features features_table probe cnn] [--augment phone] [--models DIR ...]

Grouped 5-fold CV by track (the CNN's and the probe's folds, seed 0): each family is fitted inside each
fold on clean clips with the recipe of the model the package ships (musicgenre/study/robustness/;
features_table also trains on the public table's rows of every other track, --feature_table, by default
the shared data's), and only the held-out clips are degraded (musicgenre/audio/degradations.py) and scored.
Each family is also refitted with degraded copies of its training clips (--augment; 'none' skips it;
--augment_families which), kept only where neither clean accuracy nor the mean accuracy over the
degradations drops. --models scores other models as they are (not refitted: use only
models that never trained on these clips). Writes results/robustness/results.json and results.md;
experiments/report.py puts the table and a heat map in docs/results.md. What each model computes from
audio is cached per clip and condition in --cache_dir, so a rerun only refits; finished models are kept.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data
from musicgenre.errors import MusicGenreError
from musicgenre.study.robustness.catalogue import StudySettings
from musicgenre.study.robustness.report import summary_lines
from musicgenre.study.robustness.run import run_study
from musicgenre.util.cache import CACHE_VARIABLE, cache_root_of


@dataclass
class Arguments:
    data_dir: str = field(default=str(default_shared_data() / "gtzan_mini"), metadata={"help": "a GTZAN folder (any layout)"})
    out_dir: str = field(default="results/robustness", metadata={"help": "where results.json and results.md go"})
    cache_dir: str = field(default=".cache/robustness", metadata={"help": "per clip and condition: what each model computes"})
    model_cache: str = field(
        default_factory=lambda: str(cache_root_of(os.environ)),
        metadata={"help": f"where a --models checkpoint's ONNX export is kept (env {CACHE_VARIABLE})"},
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args, settings = parse_dataclasses(Arguments, StudySettings, argv=argv, description=__doc__)
    command = "python experiments/robustness.py " + shlex.join(argv)
    say = lambda m: print(m, flush=True)  # noqa: E731
    study = run_study(args.data_dir, settings, args.out_dir, args.cache_dir, command.strip(), say, Path(args.model_cache))
    print("\n".join(summary_lines(study)), f"{args.out_dir}/results.json, {args.out_dir}/results.md", sep="\n", flush=True)


if __name__ == "__main__":
    try:
        main()
    except MusicGenreError as exc:  # e.g. too few clips per genre for the folds, an unknown degradation
        sys.exit(f"error: {exc}")
