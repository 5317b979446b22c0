"""Train the model shipped in musicgenre/bundled/shallow from the shallow study's results.

python experiments/train_bundled.py --results results/shallow/results.json --out musicgenre/bundled/shallow
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicgenre.args import parse_dataclasses
from musicgenre.bundle import train_bundled
from musicgenre.data import default_shared_data

SHARED = default_shared_data()


@dataclass
class Arguments:
    results: str = field(default="results/shallow/results.json", metadata={"help": "results of shallow_baselines.py"})
    table_30s: str = field(default=str(SHARED / "features_30_sec.csv"), metadata={"help": "public-schema 30-second table"})
    out: str = field(default="musicgenre/bundled/shallow", metadata={"help": "model folder to write"})


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    print(train_bundled(args.table_30s, args.results, args.out))


if __name__ == "__main__":
    main()
