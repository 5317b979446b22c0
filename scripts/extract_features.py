"""Extract a feature table in the public GTZAN schema (the same as `musicgenre features`).

python scripts/extract_features.py --inputs /data/gtzan --out work/features_3_sec.csv --segment_seconds 3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import find_audio_files
from musicgenre.features.table import extract_table


@dataclass
class Arguments:
    inputs: list[str] = field(metadata={"help": "audio files or a GTZAN folder"})
    out: str = field(metadata={"help": "CSV to create or extend (resumable)"})
    segment_seconds: float | None = field(default=None, metadata={"help": "3 for the 3-second table"})
    workers: int | None = None
    save_every: float = field(default=10.0, metadata={"help": "seconds between saves of finished rows"})


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    files = find_audio_files(args.inputs)
    report = extract_table(files, args.out, args.segment_seconds, args.workers, save_every=args.save_every)
    print(f"{report.written} added, {report.skipped} already present, {len(report.failed)} unreadable")
    for path, error in report.failed.items():
        print(f"  unreadable: {path}: {error}")


if __name__ == "__main__":
    main()
