"""Tables built one input file at a time that survive interruption: what the feature table and the embedding
table share.

The caller reads the rows already on disk and works out which files are left; ``fill_table`` takes each
left file's rows (or its error) as they come, saves the whole table atomically every ``save_every`` seconds
and at the end, and lists the files that could not be read. A killed run therefore loses at most that
much work, and a rerun picks up where it stopped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExtractionReport:
    written: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self, out: str | os.PathLike) -> str:
        lines = [f"{out}: {self.written} files added, {self.skipped} already present, {len(self.failed)} unreadable"]
        for path, error in self.failed.items():  # errors usually start with the file's name already
            error = error.removeprefix(f"{Path(path).name}: ")
            lines.append(f"  unreadable: {path}: {error}")
        return "\n".join(lines)


def fill_table(
    results: Iterable[tuple[object, list | None, str | None]],
    rows: list,
    save: Callable[[list], None],
    out: Path,
    report: ExtractionReport,
    total: int,
    save_every: float = 10.0,
    progress: bool = True,
    desc: str = "files",
) -> ExtractionReport:
    """Add each ``(file, new_rows, error)`` of ``results`` to ``rows``, calling ``save(rows)`` (an atomic write of
    the whole table) at most every ``save_every`` seconds, and at the end if anything is unsaved.

    A save never takes more than a fifth of the time: with a large table, saves are spaced further apart
    (five times the last one's duration), so rewriting it does not come to dominate the run.
    """
    from tqdm import tqdm

    last_save, interval, pending = time.monotonic(), save_every, 0
    bar = tqdm(total=total, unit="file", disable=not progress, desc=desc)
    try:
        for path, new_rows, error in results:
            bar.update(1)
            if error is not None:
                report.failed[str(path)] = error
                bar.write(f"skipped {error}", file=sys.stderr)
                continue
            rows.extend(new_rows)
            report.written += 1
            pending += 1
            if time.monotonic() - last_save >= interval:
                started = time.monotonic()
                save(rows)
                last_save, pending = time.monotonic(), 0
                interval = max(save_every, 5 * (last_save - started))
    finally:
        bar.close()
        if pending or not out.exists():
            save(rows)
    return report
