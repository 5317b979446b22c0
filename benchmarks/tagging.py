"""Tagging speed: files per second of ``musicgenre tag --write`` on 30 s MP3 files, whole process, and where the time
goes (decoding, analysis, writing), against ``musicgenre predict`` of the same files in the same run.

    python benchmarks/tagging.py --n_files 24 --out benchmarks/tagging.json

The files are the shared GTZAN clips encoded to MP3 (synthetic 30 s clips without the shared data), copied afresh
for each whole-process run (a second run would find them tagged and skip them). The stage split is measured in one
process on one core: decoding (``audio.io.load_audio``), analysis (quality, the model, the summary) and writing (the
safe rewrite: snapshot, tags written to a copy, audio digests compared, journal entry, rename).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from musicgenre.data.gtzan import default_shared_data
from musicgenre.util.atomic import write_json_atomic


def make_mp3s(folder: Path, n: int, audio_dir: Path) -> list[Path]:
    from musicgenre.audio.example import example_clip
    from musicgenre.audio.io import load_audio

    clips = sorted(audio_dir.rglob("*.wav"))[:n] if audio_dir.is_dir() else []
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        y = load_audio(clips[i], sr=22050).samples if i < len(clips) else example_clip(30.0, 22050, seed=i)
        path = folder / f"clip{i:03d}.mp3"
        sf.write(path, y, 22050, format="MP3", subtype="MPEG_LAYER_III")
        files.append(path)
    return files


def whole_process(command: list[str], files: list[Path], scratch: Path) -> float:
    """Seconds for ``command`` over fresh copies of ``files``, from process start to exit."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    copies = [Path(shutil.copy2(f, scratch / f.name)) for f in files]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([*command, *map(str, copies)], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def stages(files: list[Path], scratch: Path) -> dict:
    """Seconds per file of each stage, one process, one thread."""
    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = "1"
    from musicgenre.audio.io import load_audio
    from musicgenre.families import resolve_model
    from musicgenre.models.predict import _classify
    from musicgenre.tagging.journal import Journal
    from musicgenre.tagging.names import Record
    from musicgenre.tagging.run import _write

    model = resolve_model("bundled")
    copies = [Path(shutil.copy2(f, scratch / f.name)) for f in files]
    journal = Journal(scratch / "journal.jsonl")
    totals = {"decode": 0.0, "analyse": 0.0, "write": 0.0}
    with threadpool_limits(1):
        _classify(model, load_audio(copies[0], sr=model.sample_rate).samples, 0)  # warm-up
        for path in copies:
            t0 = time.perf_counter()
            y = load_audio(path, sr=model.sample_rate).samples
            t1 = time.perf_counter()
            out = _classify(model, y, 0)
            t2 = time.perf_counter()
            _write(path, [out["genre"]], Record("bundled:musicnn", [out["genre"]], out["scores"]), None, lambda: journal)
            t3 = time.perf_counter()
            totals["decode"] += t1 - t0
            totals["analyse"] += t2 - t1
            totals["write"] += t3 - t2
    return {f"{k}_s_per_file": round(v / len(copies), 4) for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n_files", type=int, default=24)
    parser.add_argument("--audio_dir", default=str(default_shared_data() / "gtzan_mini"))
    parser.add_argument("--out", default="benchmarks/tagging.json")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "musicgenre"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = make_mp3s(tmp / "mp3", args.n_files, Path(args.audio_dir))
        runs = {
            "predict, 1 process": [*cli, "predict"],
            "tag --write, 1 worker": [*cli, "tag", "--write", "--no-progress", "--journal", str(tmp / "j1.jsonl")],
            "tag --write, 2 workers": [
                *cli,
                "tag",
                "--write",
                "--no-progress",
                "--workers",
                "2",
                "--journal",
                str(tmp / "j2.jsonl"),
            ],
        }
        seconds = {name: whole_process(command, files, tmp / "run") for name, command in runs.items()}
        (tmp / "stages").mkdir()
        split = stages(files, tmp / "stages")
    result = {
        "n_files": args.n_files,
        "file": "30 s MP3 (22.05 kHz mono, libsndfile's default bitrate)",
        "real_clips": Path(args.audio_dir).is_dir(),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "whole_process_s": {k: round(v, 2) for k, v in seconds.items()},
        "files_per_s": {k: round(args.n_files / v, 2) for k, v in seconds.items()},
        "one_core_stages": split,
    }
    print(f"{'run':28} {'seconds':>8} {'files/s':>8}")
    for name in runs:
        print(f"{name:28} {result['whole_process_s'][name]:8.2f} {result['files_per_s'][name]:8.2f}")
    print("one core, per file: " + ", ".join(f"{k} {v:.3f} s" for k, v in split.items()))
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
