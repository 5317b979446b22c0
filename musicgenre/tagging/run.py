"""``musicgenre tag``: a library's files analysed and their genre written, or (the default) only proposed.

Each file goes through the same steps:

1. read its tags (``formats.read_tags``); a file that cannot be read is reported and the run goes on;
2. decide whether it needs analysing: a file that already carries this model's answer (its genre still equals
   the one our ``MUSICGENRE_SCORES`` record says we wrote) is done, unless ``--force``; a file whose genre the
   user set (no record, or a genre that differs from the record's) keeps it unless ``--overwrite``, and in a
   dry run is still analysed so the table can show the proposal;
3. analyse (``models.pool``, or ``models.cluster`` with ``--ray``: the same ``predict`` lines);
4. with ``--write``, rewrite the file through ``safety.rewrite``: its previous tags go into the journal just
   before the new file takes its place, and the audio payload is checked unchanged first.

A rerun therefore resumes: what is done is neither analysed nor written again, and a second ``--write``
changes no byte.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.audio.io import AUDIO_EXTENSIONS, DEFAULT_MAX_SECONDS
from musicgenre.errors import MusicGenreError, TagError, describe_failure
from musicgenre.models.runtime import Runtime
from musicgenre.tagging.names import Record, chosen_genres, load_genre_map
from musicgenre.util.cluster import Engine


@dataclass(frozen=True)
class TagSettings:
    """What ``musicgenre tag`` was asked to do (read once from the command line, passed down)."""

    write: bool = False
    model: str = "bundled"
    revision: str | None = None
    runtime: Runtime | None = None  # how the model runs (musicgenre.models.runtime); None: ONNX Runtime, NumPy heads
    cache_root: Path | None = None  # where a checkpoint's ONNX export is kept (None: ~/.cache/musicgenre)
    multi: float | None = None  # write every genre at least this probable (the top one always)
    tags: int = 0  # the tagger's top tags written to MUSICGENRE_TAGS; 0: that field is left alone
    genre_map: str | None = None
    overwrite: bool = False  # replace a genre the user set
    min_prob: float | None = None  # files whose top probability is lower are reported and skipped
    journal: Path | None = None
    force: bool = False  # analyse and write files that already carry this model's answer
    workers: int | None = None  # local processes (None: one), or Ray actors (None: one per CPU of the cluster)
    ray: str | None = None  # a Ray address ("" for $RAY_ADDRESS or a local instance); None: local processes
    ray_engine: Engine = "core"  # how the cluster maps (util.cluster.run_per_path's engine): "core", or "data"
    max_seconds: float = DEFAULT_MAX_SECONDS
    progress: bool = True


def model_id(spec: str, revision: str | None = None) -> str:
    """The model's name as the record stores it (``families.parse_spec``'s reading of ``spec``): ``bundled`` spelled
    out, a folder as its absolute path, a Hub id with its revision."""
    from musicgenre.families import parse_spec

    parsed = parse_spec(spec, revision)
    if parsed.kind == "folder":
        return str(Path(parsed.name).resolve())
    if parsed.kind == "hub" and revision:
        return f"{parsed}@{revision}"
    return str(parsed)


@dataclass
class Outcome:
    """One file's line of the table."""

    file: str
    current: list[str] = field(default_factory=list)
    proposed: list[str] = field(default_factory=list)
    probability: float | None = None
    action: str = ""  # tag, tagged, kept, done, below, failed
    detail: str = ""
    seen: object = field(default=None, repr=False)  # the tags read at the start (formats.FileTags)

    @property
    def reason(self) -> str:
        """``detail`` without the file's path, which errors start with and the row already shows."""
        return self.detail.removeprefix(f"{self.file}: ")

    def row(self) -> str:
        p = "" if self.probability is None else f"{self.probability:.3f}"
        cells = [self.file, "; ".join(self.current) or "-", "; ".join(self.proposed) or "-", p or "-", self.action]
        return "\t".join(cells + ([self.reason] if self.detail else []))


HEADER = "file\tcurrent genre\tproposed genre\tprobability\taction"


@dataclass
class TagReport:
    outcomes: list[Outcome] = field(default_factory=list)
    journal: Path | None = None
    interrupted: bool = False  # Ctrl-C: the files done so far are whole and journaled; a rerun does the rest

    def count(self, action: str) -> int:
        return sum(o.action == action for o in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def summary(self, write: bool) -> str:
        tagged = f"{self.count('tagged')} tagged" if write else f"{self.count('tag')} would be tagged (dry run: add --write)"
        parts = [tagged, f"{self.count('done')} already tagged by this model", f"{self.count('kept')} kept the user's genre"]
        parts += [f"{self.count('below')} below --min-prob", f"{self.failed} failed"]
        lines = [f"musicgenre tag: {len(self.outcomes)} files: " + ", ".join(parts)]
        lines += [f"  failed: {o.file}: {o.reason}" for o in self.outcomes if o.action == "failed"]
        if self.interrupted:
            lines.append("interrupted: every file is either untouched or fully tagged; rerun the command to do the rest")
        if self.journal is not None:
            lines.append(f"journal: {self.journal} (undo with: musicgenre tag --undo {self.journal})")
        elif write:
            lines.append("nothing was written, so no journal was kept")
        return "\n".join(lines)


def collect(paths: list[str]) -> tuple[list[Path], list[Outcome]]:
    """Audio files under ``paths`` (files, folders walked recursively, ``.txt`` lists of paths), each once, and a
    failed outcome for each path that is missing or a folder with no audio in it."""
    from musicgenre.data.gtzan import expand_lists

    files: dict[tuple[int, int], Path] = {}  # one name per file: a symlink or hard link to a file already listed is left out
    failures = []
    for item in expand_lists(paths):
        path = Path(item).absolute()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                failures.append(Outcome(str(path), action="failed", detail="no audio files in this folder"))
        elif path.exists():
            found = [path]
        else:
            failures.append(Outcome(str(path), action="failed", detail="no such file or folder"))
            continue
        for p in found:
            try:
                st = p.stat()
            except OSError:  # vanished since the walk: read_tags reports it
                st = None
            files.setdefault((st.st_dev, st.st_ino) if st else (-1, len(files)), p)
    return list(files.values()), failures


def _needs_analysis(outcome: Outcome, tags, model: str, settings: TagSettings) -> bool:
    """Sets ``outcome.action`` to done or kept for a file that is not to be written; True if it is to be analysed."""
    record = Record.decode(tags.record)
    ours = record is not None and record.matches(tags.genres)
    if ours and record.model == model and not settings.force:
        outcome.action, outcome.proposed = "done", list(record.genres)
        outcome.probability = max(record.scores.values(), default=None)
        return False
    if tags.genres and not ours and not settings.overwrite:
        outcome.action, outcome.detail = "kept", "genre set by the user (--overwrite replaces it)"
        return not settings.write  # a dry run still shows what it would propose
    return True


def _analyse(files: list[str], settings: TagSettings) -> Iterator[dict]:
    from functools import partial

    from musicgenre.families import resolve_model

    load = partial(resolve_model, runtime=settings.runtime, cache_root=settings.cache_root)  # none reads the environment
    if settings.ray is not None:
        from musicgenre.models.cluster import predict_lines

        yield from predict_lines(
            files, settings.model, settings.revision, settings.max_seconds, settings.tags, settings.ray or None, settings.workers,
            load=load, ray_engine=settings.ray_engine,
        )  # fmt: skip
        return
    from musicgenre.models.pool import predict_lines_local

    yield from predict_lines_local(
        files, settings.model, settings.revision, settings.max_seconds, settings.tags, settings.workers or 1, load=load
    )


class ChangedMeanwhileError(TagError):
    """The file's tags changed between the run reading them and writing: someone else's edit wins."""


def _write(path: Path, genres: list[str], record: Record, tags: list[str] | None, journal, seen=None) -> None:
    """Rewrite one file with its new tags; its previous tags are journaled just before the new file replaces it.

    ``seen``: the tags the run decided on. The analysis may take long on a large library; if the genre or the
    record changed since (a tag editor, ``beet write``), the file is left alone (``ChangedMeanwhileError``). A change
    after the copy is made is caught by ``safety.rewrite`` itself.
    """
    from musicgenre.tagging.formats import read_tags, snapshot, write_tags
    from musicgenre.tagging.safety import rewrite

    def edit(tmp: Path) -> None:
        if seen is not None:
            now = read_tags(tmp)
            if (now.genres, now.record) != (seen.genres, seen.record):
                raise ChangedMeanwhileError(
                    f"{path}: its genre changed while the run was analysing it; left alone (rerun to decide)"
                )
        write_tags(tmp, genres, record.encode(), tags)

    before = snapshot(path)
    rewrite(
        path,
        edit,
        before_commit=lambda: journal().record(str(path), before, genres=genres),
        verify=_same_audio,
    )


def _same_audio(original: Path, edited: Path) -> None:
    from musicgenre.tagging.formats import audio_digest

    if audio_digest(original) != audio_digest(edited):
        raise TagError(f"{original}: writing the tags would have changed the audio data; the file was left untouched")


def tag_paths(paths: list[str], settings: TagSettings, out=None) -> TagReport:
    """Run ``musicgenre tag`` over ``paths``: print the table to ``out`` as files are decided; the report comes back."""
    out = out or sys.stdout
    from tqdm import tqdm

    from musicgenre.tagging.formats import read_tags
    from musicgenre.tagging.journal import Journal, default_journal_path
    from musicgenre.tagging.safety import check_writable

    names = load_genre_map(settings.genre_map)
    model = model_id(settings.model, settings.revision)
    files, failures = collect(paths)
    report = TagReport(outcomes=list(failures))
    journal_path = settings.journal or default_journal_path()
    opened: list = []

    def journal():
        if not opened:
            opened.append(Journal(journal_path))
            report.journal = journal_path
        return opened[0]

    if settings.write:
        from musicgenre.tagging.safety import recover

        recover(files)  # an interrupted run's leftovers beside these files, before anything is read
    print(HEADER, file=out, flush=True)
    for outcome in failures:
        print(outcome.row(), file=out, flush=True)
    pending: dict[str, Outcome] = {}
    for path in files:
        outcome = Outcome(str(path))
        try:
            current = read_tags(path)
            check_writable(path)  # a dry run too: it shows what --write would do
        except MusicGenreError as exc:
            outcome.action, outcome.detail = "failed", describe_failure(exc)
            report.outcomes.append(outcome)
            print(outcome.row(), file=out, flush=True)
            continue
        outcome.current, outcome.seen = current.genres, current
        report.outcomes.append(outcome)
        if _needs_analysis(outcome, current, model, settings):
            pending[str(path)] = outcome
        else:
            print(outcome.row(), file=out, flush=True)
    bar = tqdm(total=len(pending), unit="file", desc="tag", disable=not settings.progress, file=sys.stderr)
    try:
        for line in _analyse(list(pending), settings):
            bar.update(1)
            outcome = pending[line["file"]]
            _decide(outcome, line, names, model, settings, journal)
            bar.write(outcome.row(), file=out)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        bar.close()
    return report


def _decide(outcome: Outcome, line: dict, names: dict[str, str], model: str, settings: TagSettings, journal) -> None:
    """One analysed file: its proposal, and with ``--write`` the file rewritten (any failure is this file's alone)."""
    if "error" in line:
        outcome.action, outcome.detail = "failed", line["error"]
        return
    scores = line["scores"]
    outcome.proposed = [names[label] for label in chosen_genres(scores, settings.multi)]
    outcome.probability = max(scores.values())
    if outcome.action == "kept":  # analysed only for the dry run's table
        return
    if settings.min_prob is not None and outcome.probability < settings.min_prob:
        outcome.action, outcome.detail = "below", f"top probability under --min-prob {settings.min_prob}"
        return
    if not settings.write:
        outcome.action = "tag"
        return
    tags = [t["tag"] for t in line.get("tags", [])] if settings.tags else None
    try:
        _write(Path(outcome.file), outcome.proposed, Record(model, outcome.proposed, scores), tags, journal, outcome.seen)
        outcome.action = "tagged"
    except ChangedMeanwhileError as exc:
        outcome.action, outcome.detail = "kept", str(exc)
    except MusicGenreError as exc:
        outcome.action, outcome.detail = "failed", describe_failure(exc)
    except OSError as exc:
        outcome.action, outcome.detail = "failed", f"{outcome.file}: {exc.strerror or exc}"
