"""Feature-table throughput: the local process pool against Ray (musicgenre[scale]) on the same clips, in one run.

    python benchmarks/scale.py --audio_dir ../shared/data/gtzan_mini --n_clips 152 --names 2 --out benchmarks/scale.json

Each number is one whole `musicgenre features` process (what a user waits for): the local pool with
2 workers; Ray with 2 workers on an instance the command starts itself; Ray with 1 and 2 workers on a running
single-node cluster (`ray start --head`), the engine's own overhead; and the same 2 workers through
Ray Data's map_batches (before: what ran until Ray core tasks replaced it). Then `musicgenre embed` in
one process and in 2 Ray actors. The two cluster runs
give a per-clip cost and a fixed overhead, and from them a projection for more workers and clips
(assuming the workers scale linearly and the driver keeps up). Writes JSON and prints a table.
"""

from __future__ import annotations

from dataclasses import dataclass

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data
from musicgenre.util.atomic import write_json_atomic

from harness.benchmark import print_table, scale_benchmark


@dataclass
class Arguments:
    audio_dir: str = str(default_shared_data() / "gtzan_mini")
    n_clips: int = 152
    names: int = 2  # each clip under this many names: 76 shared clips measure as 152
    out: str = "benchmarks/scale.json"


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    result = scale_benchmark(args.audio_dir, args.n_clips, args.names)
    print_table(result)
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
