"""The app under load: cold start, then bursts of concurrent clients mixing good and bad files.

    python benchmarks/load.py --out benchmarks/load.json

Launches ``app.py`` offline on 127.0.0.1 (it serves the bundled models), times the first answered
``/predict`` request from launch, then sends ``bursts`` bursts of ``clients`` concurrent
gradio_client sessions × ``per_client`` requests: half a real 30 s clip, half the generated
bad-input corpus. Every answer is checked against the same file sent alone; latency p50/p95 and
the server's memory after each burst are recorded. Numbers are recorded, never asserted.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from musicgenre.arguments import parse_dataclasses
from musicgenre.audio.example import example_clip
from musicgenre.audio.io import load_audio
from musicgenre.data.gtzan import default_shared_data, find_audio_files
from musicgenre.features.handcrafted import SAMPLE_RATE
from musicgenre.util.atomic import write_json_atomic

from harness.load_benchmark import run_load_benchmark

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Arguments:
    audio: str = field(
        default=str(default_shared_data() / "gtzan_mini"), metadata={"help": "a clip, or a folder whose first clip is used"}
    )
    clients: int = 8
    per_client: int = 10
    bursts: int = 10
    model: str = field(default="all", metadata={"help": "'all' or one served model's name"})
    concurrency_limit: int = field(default=2, metadata={"help": "the app's --concurrency_limit"})
    malloc_arena_max: int | None = field(
        default=None, metadata={"help": "MALLOC_ARENA_MAX for the app (default: the app's own cap of 2; 8 x cores is glibc's)"}
    )
    out: str = "benchmarks/load.json"


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    files = find_audio_files([args.audio]) if Path(args.audio).exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / (files[0].name if files else "example.wav")
        samples = load_audio(files[0], sr=SAMPLE_RATE).samples[: 30 * SAMPLE_RATE] if files else example_clip(30.0)
        sf.write(clip, samples, SAMPLE_RATE, subtype="PCM_16")
        result = run_load_benchmark(
            ROOT / "app.py",
            Path(tmp),
            clip,
            args.clients,
            args.per_client,
            args.bursts,
            args.model,
            app_args=("--concurrency_limit", str(args.concurrency_limit)),
            app_env={"MALLOC_ARENA_MAX": str(args.malloc_arena_max)} if args.malloc_arena_max else None,
        )
    print(f"cold start (launch -> first answer): {result['cold_start_seconds']} s; models: {result['served_models']}")
    print(f"{args.clients} clients x {args.per_client} requests, {result['machine']}")
    print(
        f"{'burst':>5} {'req/s':>6} {'p50 s':>7} {'p95 s':>7} {'clip p50':>9} {'clip p95':>9} "
        f"{'refused':>8} {'problems':>9} {'RSS MB':>8}"
    )
    for b in result["bursts"]:
        print(
            f"{b['burst']:>5} {b['requests_per_second']:>6} {b['latency_p50_seconds']:>7} {b['latency_p95_seconds']:>7} "
            f"{b['focus_p50_seconds']:>9} {b['focus_p95_seconds']:>9} {b['refused_as_expected']:>8} "
            f"{len(b['problems']):>9} {b['server_rss_mb']!s:>8}"
        )
    for b in result["bursts"]:
        for problem in b["problems"]:
            print(f"burst {b['burst']}: {problem}")
    write_json_atomic(args.out, result)
    print(json.dumps({k: result[k] for k in ("cold_start_seconds", "server_rss_mb_before_bursts")}))


if __name__ == "__main__":
    main()
