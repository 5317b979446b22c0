"""The study's exploratory data analysis, as figures and one page: docs/eda.md.

    python experiments/eda.py

From the shared data (or your own GTZAN): one clip per genre as waveform and mel spectrogram,
every feature's distribution by genre, their correlations, PCA and t-SNE of the 30 s and 3 s
features, class balance of the table, the audio and the filtered split, and tempo by genre.
3-second features are extracted from the audio folder once and cached in --work_dir.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import GENRES, default_shared_data, find_audio_files, load_clips, track_id
from musicgenre.data.splits import filtered_split
from musicgenre.features.handcrafted import SAMPLE_RATE
from musicgenre.features.table import extract_table, load_feature_table
from musicgenre.study.eda import write_eda

SHARED = default_shared_data()


@dataclass
class Arguments:
    table_30s: str = field(default=str(SHARED / "features_30_sec.csv"), metadata={"help": "public-schema 30-second table"})
    audio_dir: str = field(default=str(SHARED / "gtzan_mini"), metadata={"help": "GTZAN audio folder (any layout)"})
    work_dir: str = field(default="work", metadata={"help": "cache for the extracted 3-second table"})
    out_dir: str = field(default="docs", metadata={"help": "eda.md goes here, figures under figures/eda/"})
    seed: int = field(default=0, metadata={"help": "seed of PCA and t-SNE"})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    (args,) = parse_dataclasses(Arguments, argv=argv, description=__doc__)
    table = load_feature_table(args.table_30s)
    clips, failed = load_clips(args.audio_dir, SAMPLE_RATE)
    for path, error in failed.items():
        print(f"unreadable, left out: {path}: {error}", flush=True)
    files = find_audio_files([args.audio_dir])
    wanted = {track_id(f.name) for f in files}
    cache = Path(args.work_dir) / "features_3_sec.csv"
    extract_table(files, cache, 3.0)
    table_3s = load_feature_table(cache)
    table_3s = table_3s[table_3s["track"].isin(wanted) & table_3s["label"].isin(GENRES)]  # the cache may hold other folders
    splits = {part: sorted(ids) for part, ids in filtered_split().items()}
    sources = {"30 s table": os.path.relpath(args.table_30s), "audio": os.path.relpath(args.audio_dir)}
    command = " ".join(["python experiments/eda.py", *map(shlex.quote, argv)])
    print(write_eda(table, clips, table_3s, splits, args.out_dir, sources, command, seed=args.seed))


if __name__ == "__main__":
    main()
