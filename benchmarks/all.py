"""Every benchmark, one after another, each writing its JSON next to this file and printing its table.

    python benchmarks/all.py                 # features, inference, transformer inference, load, start-up, scale
    python benchmarks/all.py --only load features

Each runs in its own process (as when run alone), so one's imports and memory do not colour
another's numbers. Run it on an otherwise idle machine; numbers are recorded, never asserted.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.arguments import parse_dataclasses

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("features", "inference", "transformer_inference", "load", "startup", "scale")


@dataclass
class Arguments:
    only: list[str] = field(default_factory=lambda: list(BENCHMARKS), metadata={"help": f"any of {BENCHMARKS}"})


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"unknown benchmarks {unknown}; choose from {BENCHMARKS}")
    failed = []
    for name in (b for b in BENCHMARKS if b in args.only):
        print(f"\n== {name} ==", flush=True)
        if subprocess.run([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent).returncode:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
