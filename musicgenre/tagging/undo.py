"""``musicgenre tag --undo JOURNAL``: every file the journal names gets back the tags it had before.

The journal keeps, per file, what it held before each write; undo restores the earliest, so a journal that
several runs appended to goes back to before the first. A file whose genre is no longer the one the journal
says was written has been changed since (by the user, or another tool): it is left alone and reported,
unless ``force``. Restoring goes through the same ``safety.rewrite`` as tagging, with the audio checked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from musicgenre.errors import MusicGenreError, describe_failure
from musicgenre.tagging.run import Outcome, TagReport, _same_audio


def undo(journal_path: str | os.PathLike, force: bool = False, out=None) -> TagReport:
    """Restore each journaled file's earliest recorded tags; one table row per file, as ``tag`` prints them."""
    out = out or sys.stdout
    from musicgenre.tagging.formats import read_tags, restore
    from musicgenre.tagging.journal import Journal, first_states
    from musicgenre.tagging.safety import check_writable, recover, rewrite

    befores = first_states(journal_path)
    written: dict[str, list[str]] = {}
    for entry in Journal.entries(journal_path):
        written[entry["file"]] = entry.get("genres", [])  # the last write's genres: what the file should hold now
    recover([f for f in befores if Path(f).exists()])
    report = TagReport()
    print("file\tcurrent genre\trestored genre\t\taction", file=out, flush=True)
    for file, before in befores.items():
        outcome = Outcome(file)
        report.outcomes.append(outcome)
        try:
            current = read_tags(file)
            outcome.current = current.genres
            if not force and [g.strip() for g in current.genres] != written[file]:
                outcome.action = "kept"
                outcome.detail = "its genre changed after it was tagged: left alone (--force restores it anyway)"
            else:
                check_writable(Path(file))
                rewrite(Path(file), lambda tmp, before=before: restore(tmp, before), verify=_same_audio)
                outcome.proposed, outcome.action = read_tags(file).genres, "restored"
        except MusicGenreError as exc:
            outcome.action, outcome.detail = "failed", describe_failure(exc)
        except OSError as exc:
            outcome.action, outcome.detail = "failed", f"{file}: {exc.strerror or exc}"
        print(outcome.row(), file=out, flush=True)
    return report


def undo_summary(report: TagReport) -> str:
    counts = {a: report.count(a) for a in ("restored", "kept", "failed")}
    lines = [
        f"musicgenre tag --undo: {len(report.outcomes)} files: {counts['restored']} restored, "
        f"{counts['kept']} changed since and left alone, {counts['failed']} failed"
    ]
    lines += [f"  {o.action}: {o.file}: {o.reason}" for o in report.outcomes if o.action in ("kept", "failed")]
    return "\n".join(lines)
