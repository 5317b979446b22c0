"""Render one report over every experiment's result files: docs/results.md and its figures.

    python experiments/report.py

Reads the result files the experiments wrote (results/shallow/results.json, results/cnn/results.json,
results/probe/results.json, results/robustness/results.json,
results/real_recordings/results.json, any fine-tuning run's musicgenre_run.json
given with --files) and the inference benchmark (model size and CPU time per 30-second clip), and writes
the Markdown report with confusion-matrix figures and the robustness heat map.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.arguments import parse_dataclasses
from musicgenre.errors import MusicGenreError
from musicgenre.study.report import gather, render, robustness_studies, update_readme


@dataclass
class Arguments:
    files: list[str] = field(
        default_factory=lambda: [
            "results/shallow/results.json",
            "results/cnn/results.json",
            "results/probe/results.json",
            "results/robustness/results.json",
            "results/real_recordings/results.json",
            "benchmarks/inference.json",
        ],
        metadata={"help": "result files (missing ones are reported and skipped)"},
    )
    out: str = field(default="docs/results.md", metadata={"help": "the Markdown report; figures go beside it"})
    readme: str | None = field(default="README.md", metadata={"help": "README whose summary table to refresh ('none': leave it)"})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    (args,) = parse_dataclasses(Arguments, argv=argv, description=__doc__)
    present = [f for f in args.files if Path(f).exists()]
    for f in sorted(set(args.files) - set(present)):
        print(f"not found, left out: {f}", flush=True)
    rows, sources, timings = gather(present)
    command = " ".join(["python experiments/report.py", *map(shlex.quote, argv)])
    path = render(rows, sources, args.out, command, timings, robustness_studies(present))
    print(f"{path}: {len(rows)} results from {len(sources)} files")
    if args.readme and args.readme.lower() != "none" and update_readme(args.readme, rows, str(Path(args.out).resolve())):
        print(f"{args.readme}: summary table updated")


if __name__ == "__main__":
    try:
        main()
    except MusicGenreError as exc:  # e.g. no result files: say so, and leave the report and README as they were
        sys.exit(f"error: {exc}")
