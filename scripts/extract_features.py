"""Extract a feature table in the public GTZAN schema (the same as `musicgenre features`).

python scripts/extract_features.py --inputs /data/gtzan --out work/features_3_sec.csv --segment_seconds 3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicgenre.args import parse_dataclasses
from musicgenre.data import find_audio_files
from musicgenre.table import extract_table


@dataclass
class Arguments:
    inputs: list[str] = field(metadata={"help": "audio files or a GTZAN folder"})
    out: str = field(metadata={"help": "CSV to create or extend (resumable)"})
    segment_seconds: float | None = field(default=None, metadata={"help": "3 for the 3-second table"})
    workers: int | None = None


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    report = extract_table(find_audio_files(args.inputs), args.out, args.segment_seconds, args.workers)
    print(f"{report.written} added, {report.skipped} already present, {len(report.failed)} unreadable")
    for path, error in report.failed.items():
        print(f"  unreadable: {path}: {error}")


if __name__ == "__main__":
    main()
