"""CPU inference per 30-second clip for every model the project serves: median time, size and peak memory.

    python benchmarks/inference.py --out benchmarks/inference.json

Served models (bundled, Keras CNN on 3 s and 30 s windows, a DistilHuBERT-sized transformers model
with random weights) each run in a fresh process; with the public table, every shallow family is
fitted with the hyper-parameters its study cell chose and timed too. Prints a table and writes the
JSON that experiments/report.py reads (size and CPU time columns). Numbers are recorded, never asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.arguments import parse_dataclasses
from musicgenre.audio.example import example_clip
from musicgenre.audio.io import load_audio
from musicgenre.data.gtzan import default_shared_data, find_audio_files
from musicgenre.features.handcrafted import SAMPLE_RATE
from musicgenre.util.atomic import write_json_atomic

from harness.inference_benchmark import SERVED, inference_benchmark

SHARED = default_shared_data()


@dataclass
class Arguments:
    audio: str = field(default=str(SHARED / "gtzan_mini"), metadata={"help": "a clip, or a folder whose first clip is used"})
    table: str | None = field(
        default=str(SHARED / "features_30_sec.csv"), metadata={"help": "public table ('none': skip shallow families)"}
    )
    results: str = field(default="results/shallow/results.json", metadata={"help": "shallow study results (chosen parameters)"})
    served: list[str] = field(default_factory=lambda: list(SERVED), metadata={"help": f"any of {SERVED}"})
    runs: int = 5
    out: str = "benchmarks/inference.json"


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    files = find_audio_files([args.audio]) if Path(args.audio).exists() else []
    clip = load_audio(files[0], sr=SAMPLE_RATE).samples[: 30 * SAMPLE_RATE] if files else example_clip(30.0)
    table = args.table if args.table and args.table.lower() != "none" and Path(args.table).exists() else None
    result = inference_benchmark(clip, table, args.results, args.runs, args.served)
    gflops = " -> ".join(map(str, result["matmul_gflops_before_after"]))
    print(f"{result['clip_seconds']:g} s clip, {result['statistic']}; {result['machine']}, matmul {gflops} GFLOP/s")
    print(f"{'family':<13} {'input':<9} {'seconds':>8} {'size MB':>8} {'peak RSS MB':>12}  model")
    for r in result["results"]:
        print(
            f"{r['family']:<13} {r['input']:<9} {r['seconds_per_30s_clip']:>8} {r['size_bytes'] / 1e6:>8.2f} "
            f"{r.get('peak_rss_mb', '–')!s:>12}  {r['model']}"
        )
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
