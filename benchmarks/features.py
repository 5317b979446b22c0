"""Feature-extraction speed: the project's extractor against the naive per-feature librosa code.

    python benchmarks/features.py --audio_dir ../shared/data/gtzan_mini --n_clips 8 --out benchmarks/features.json

Prints a table and writes JSON: seconds per clip on one core for both implementations
(measured in the same run), their ratio (``speedup_vs_naive``), the largest relative
difference in values, and the table's clips per second with one worker and with all cores
(``speedup_all_cores_vs_one``).
"""

from __future__ import annotations

from dataclasses import dataclass

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data
from musicgenre.util.atomic import write_json_atomic

from harness.benchmark import feature_benchmark, print_table


@dataclass
class Arguments:
    audio_dir: str = str(default_shared_data() / "gtzan_mini")
    n_clips: int = 8
    n_parallel_clips: int = 24
    out: str = "benchmarks/features.json"


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    result = feature_benchmark(args.audio_dir, args.n_clips, args.n_parallel_clips)
    print_table(result)
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
