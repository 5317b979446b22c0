"""Train the model shipped in musicgenre/models/bundled/shallow from the shallow study's results.

python experiments/train_bundled.py --results results/shallow/results.json --out musicgenre/models/bundled/shallow

The winner of the filtered protocol is refitted on the public table's filtered train + validation rows
and on degraded copies (--augment, by default GSM-call "phone" copies; 'none' for none) of the labelled
clips in --audio_dir on those lists: the robustness study (experiments/robustness.py) keeps that
augmentation for this recipe. The card reports the validation list with and without the copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data
from musicgenre.study.bundle import train_bundled

SHARED = default_shared_data()


@dataclass
class Arguments:
    results: str = field(default="results/shallow/results.json", metadata={"help": "results of shallow_baselines.py"})
    table_30s: str = field(default=str(SHARED / "features_30_sec.csv"), metadata={"help": "public-schema 30-second table"})
    out: str = field(default="musicgenre/models/bundled/shallow", metadata={"help": "model folder to write"})
    augment: list[str] = field(default_factory=lambda: ["phone"], metadata={"help": "degradations to add copies of ('none')"})
    audio_dir: str = field(default=str(SHARED / "gtzan_mini"), metadata={"help": "labelled clips to copy"})
    seed: int = field(default=0, metadata={"help": "the degradations' randomness (as the robustness study's)"})
    robustness: str = field(
        default="results/robustness/results.json",
        metadata={"help": "the robustness study's results: its verdict goes on the card"},
    )


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    augment = [a for a in args.augment if a.lower() != "none"]
    print(
        train_bundled(
            args.table_30s,
            args.results,
            args.out,
            augment=augment,
            audio_dir=args.audio_dir,
            seed=args.seed,
            robustness_json=args.robustness,
        )
    )


if __name__ == "__main__":
    main()
