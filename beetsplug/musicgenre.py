"""beets plugin ``musicgenre``: the genre of each track from its audio, with musicgenre's offline model.

``beet musicgenre [QUERY]`` (and, with ``auto: yes``, ``beet import``) analyses the matching tracks and sets
their genre field: the list field ``genres`` on beets >= 2.7, the string field ``genre`` before (several
values joined with "; ", which 2.7's migration splits again). The options mirror lastgenre's, because beets
users know them: a genre someone else set is kept unless ``force``; with ``force`` and ``keep_existing`` it
stays first and ours are added up to ``count``.

Besides the genre, each analysed item gets flexible attributes (declared in ``item_types`` so that range
queries such as ``musicgenre_prob:0.8..`` compare numbers, not text):

- ``musicgenre_prob`` (float): the top genre's probability;
- ``musicgenre_uncertain`` (bool): the model's own doubt (low probability or a severe recording problem);
- ``musicgenre_model`` (text): which model answered;
- ``musicgenre_tags`` (text): the pretrained tagger's top tags, "; "-joined (only with ``tags`` > 0);
- ``musicgenre_scores`` (text): the ``MUSICGENRE_SCORES`` record that ``musicgenre tag`` writes into files.

The record is registered as a media field, so ``beet write`` / ``-w`` store it in the files and ``beet import``
/ ``beet update`` read it back. That is how both tools tell their own genre from the user's: a genre equal to
the recorded one is ours (redone only with ``force`` or when the model changed); any other genre is the
user's. It also keeps every track's scores in the library, which the album genre (the mean over the tracks)
needs even for tracks analysed in an earlier run.

Importing this module stays cheap (beets imports every enabled plugin on every command): the model and
musicgenre's audio code are imported, and the model loaded, only when a track is first analysed.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mediafile
from beets import config, ui
from beets.dbcore import types
from beets.library import Album, Item
from beets.plugins import BeetsPlugin
from beets.util import displayable_path

if TYPE_CHECKING:
    from musicgenre.tagging.names import Record

SCORES_ATTR = "musicgenre_scores"
# The ``MUSICGENRE_SCORES`` field as ``musicgenre tag`` writes it (tagging/names.py: ID3 TXXX, Vorbis comment,
# MP4 freeform atom); spelled out here so that loading the plugin imports nothing of musicgenre.
_SCORES_TAG = "MUSICGENRE_SCORES"
# beets 2.7 made the genre a list (``genres``); before, ``genre`` is one string.
GENRE_FIELD = "genres" if "genres" in Item._fields else "genre"
_LEGACY_SEPARATORS = ("; ", ", ", " / ")  # those beets' own migration to ``genres`` splits on

_ATTR_TYPES = {
    "musicgenre_prob": types.Float(3),  # three digits: "0.385", not beets' default "0.4"
    "musicgenre_uncertain": types.BOOLEAN,
    "musicgenre_model": types.STRING,
    "musicgenre_tags": types.STRING,
    SCORES_ATTR: types.STRING,
}


def _stored(obj: Item | Album, key: str) -> Any:
    """An attribute of the object itself: an item's missing attribute must not fall back to its album's."""
    return obj.get(key, with_album=False) if isinstance(obj, Item) else obj.get(key)


def current_genres(obj: Item | Album) -> list[str]:
    """The object's genre values as a list, whichever beets."""
    value = _stored(obj, GENRE_FIELD)
    if isinstance(value, list):
        return [g for g in value if g and g.strip()]
    text = value or ""
    for sep in _LEGACY_SEPARATORS:
        if sep in text:
            return [g.strip() for g in text.split(sep) if g.strip()]
    return [text.strip()] if text.strip() else []


def set_genres(obj: Item | Album, genres: list[str]) -> None:
    obj[GENRE_FIELD] = list(genres) if GENRE_FIELD == "genres" else "; ".join(genres)


def _unique(values: list[str]) -> list[str]:
    """Without repeats, compared case-blind (a kept "rock" and our "Rock" are one genre), first spelling kept."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return list(seen.values())


class _Analyser:
    """The model and the settings of one run, built on first use (the expensive imports happen here)."""

    def __init__(self, spec: str, genre_map: str | None, cache_root: Path | None = None):
        from musicgenre.errors import MusicGenreError
        from musicgenre.families import resolve_model
        from musicgenre.models.predict import DEFAULT_UNCERTAIN_BELOW
        from musicgenre.tagging.names import load_genre_map
        from musicgenre.tagging.run import model_id

        try:
            self.names = load_genre_map(genre_map)
            self.model = resolve_model(spec, cache_root=cache_root)
        except MusicGenreError as exc:
            raise ui.UserError(f"musicgenre: {exc}") from exc
        self.model_id = model_id(spec)  # the same name ``musicgenre tag`` records, so the two agree on "done"
        self.uncertain_below = float(self.model.meta.get("uncertain_below", DEFAULT_UNCERTAIN_BELOW))

    def predict(self, path: str, tags: int) -> dict:
        from musicgenre.models.predict import predict_file

        return predict_file(self.model, path, tags=tags)


class MusicGenrePlugin(BeetsPlugin):
    item_types = _ATTR_TYPES
    album_types = _ATTR_TYPES

    def __init__(self) -> None:
        super().__init__()
        self.config.add(
            {
                "model": "bundled",
                "auto": False,
                "force": False,
                "keep_existing": False,
                "count": 1,
                "min_prob": 0.25,
                "album": False,
                "tags": 0,
                "genre_map": None,
                "pretend": False,
                "cache_dir": None,  # where a checkpoint's ONNX export is kept: $MUSICGENRE_CACHE, else ~/.cache/musicgenre
            }
        )
        self._add_record_field()
        self._write_after_import: set[int] = set()
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.import_task_files)

    def _add_record_field(self) -> None:
        """``musicgenre_scores`` <-> the files' ``MUSICGENRE_SCORES`` (once per process: MediaFile is global)."""
        if SCORES_ATTR in mediafile.MediaFile.__dict__:
            Item._media_fields.add(SCORES_ATTR)
            return
        field = mediafile.MediaField(
            mediafile.MP3DescStorageStyle(_SCORES_TAG),
            mediafile.MP4StorageStyle(f"----:com.apple.iTunes:{_SCORES_TAG}"),
            mediafile.StorageStyle(_SCORES_TAG),
            mediafile.ASFStorageStyle(_SCORES_TAG),
        )
        self.add_media_field(SCORES_ATTR, field)

    @cached_property
    def analyser(self) -> _Analyser:
        genre_map = self.config["genre_map"]
        # as_filename: "~" expanded, a relative path taken from the config file's folder (as beets does for its paths)
        from musicgenre.util.cache import cache_root_of

        cache = self.config["cache_dir"]
        cache_root = Path(cache.as_filename()) if cache.get() else cache_root_of(os.environ)
        return _Analyser(self.config["model"].as_str(), genre_map.as_filename() if genre_map.get() else None, cache_root)

    # Options, read when used so that command-line flags (``set_args``) count.

    def _count(self) -> int:
        return max(1, self.config["count"].get(int))

    def _proposal(self, scores: dict[str, float]) -> list[str]:
        """Display names: the top genre always, then those at least ``min_prob`` probable, ``count`` at most."""
        from musicgenre.tagging.names import chosen_genres

        labels = chosen_genres(scores, self.config["min_prob"].as_number())
        return [self.analyser.names[label] for label in labels][: self._count()]

    def _state(self, obj: Item | Album) -> tuple[str, list[str]]:
        """``empty``, ``user`` (a genre we did not write), ``done`` (this model's genre) or ``stale`` (our genre
        from another model), and the current genres."""
        from musicgenre.tagging.names import Record

        genres = current_genres(obj)
        if not genres:
            return "empty", genres
        record = Record.decode(_stored(obj, SCORES_ATTR))
        if record is None or not record.matches(genres):
            return "user", genres
        return ("done" if record.model == self.analyser.model_id else "stale"), genres

    def _apply(self, obj: Item | Album, scores: dict[str, float], kept: list[str]) -> Record:
        """Set the genre (``kept`` first, then ours, ``count`` at most) and the attributes on ``obj`` (not stored)."""
        from musicgenre.tagging.names import Record

        genres = _unique(kept + self._proposal(scores))[: self._count()]
        record = Record(self.analyser.model_id, genres, scores)
        set_genres(obj, genres)
        obj["musicgenre_prob"] = round(max(scores.values()), 4)
        obj["musicgenre_model"] = self.analyser.model_id
        obj[SCORES_ATTR] = record.encode()
        return record

    def _skip(self, obj: Item | Album, what: str) -> str | None:
        """Why ``obj`` is left alone without analysis (``None``: analyse it), logged for the user."""
        state, genres = self._state(obj)
        if self.config["force"].get(bool):
            return None
        if state == "user":
            self._log.info("{}: keeps its genre {} (not ours; -f replaces it)", what, "; ".join(genres))
            return "kept"
        if state == "done":
            self._log.debug("{}: already has this model's genre (-f analyses it again)", what)
            return "done"
        return None

    def _kept(self, obj: Item | Album) -> list[str]:
        """The genres that stay in front of ours: the user's, with ``force`` and ``keep_existing``."""
        state, genres = self._state(obj)
        return genres if state == "user" and self.config["keep_existing"].get(bool) else []

    # The work.

    def tag_item(self, item: Item, write: bool, pretend: bool) -> str:
        """Analyse one track and set its genre; returns the outcome for the summary."""
        path = displayable_path(item.path)
        if skipped := self._skip(item, path):
            return skipped
        tags = self.config["tags"].get(int)
        try:
            out = self.analyser.predict(os.fsdecode(item.path), tags)
        except Exception as exc:  # one unreadable file must not end a run over a whole library
            from musicgenre.errors import describe_failure

            self._log.error("cannot analyse {}: {}", path, describe_failure(exc))
            return "failed"
        self._apply(item, out["scores"], self._kept(item))
        item["musicgenre_uncertain"] = bool(out["uncertain"])
        if tags:
            item["musicgenre_tags"] = "; ".join(t["tag"] for t in out.get("tags", []))
        ui.show_model_changes(item, fields=[GENRE_FIELD, "musicgenre_prob", "musicgenre_uncertain"])
        if not pretend:
            item.try_sync(write=write, move=False)
        return "tagged"

    def tag_album(self, album: Album, pretend: bool, pending: dict[int, Item]) -> str:
        """The album's genre from the mean scores of its tracks (those this model analysed, now or before).

        ``pending`` holds this run's items by id (in a dry run they are not in the database). The tracks keep
        their own genres: the album is stored without passing its genre down to them.
        """
        from musicgenre.tagging.names import Record

        what = f"album {album}"
        if skipped := self._skip(album, what):
            return skipped
        records = [Record.decode(_stored(pending.get(item.id, item), SCORES_ATTR)) for item in album.items()]
        scores = [r.scores for r in records if r is not None and r.model == self.analyser.model_id and r.scores]
        if not scores:
            self._log.info("{}: no track has this model's scores; its genre is left as it is", what)
            return "without scores"
        mean = {label: sum(s.get(label, 0.0) for s in scores) / len(scores) for label in scores[0]}
        self._apply(album, mean, self._kept(album))
        album["musicgenre_uncertain"] = max(mean.values()) < self.analyser.uncertain_below
        ui.show_model_changes(album, fields=[GENRE_FIELD, "musicgenre_prob", "musicgenre_uncertain"])
        if not pretend:
            album.store(inherit=False)
        return "tagged"

    def run(self, lib, items: list[Item], albums: list[Album], write: bool, pretend: bool) -> Counter:
        """Tag ``items``, then ``albums`` (or, with the ``album`` option, the albums the items belong to)."""
        counts: Counter = Counter()
        pending = {}
        for item in items:
            counts[self.tag_item(item, write, pretend)] += 1
            pending[item.id] = item
        if not albums and self.config["album"].get(bool):
            albums = [a for a in map(lib.get_album, sorted({i.album_id for i in items if i.album_id})) if a]
        for album in albums:
            counts[f"album {self.tag_album(album, pretend, pending)}"] += 1
        return counts

    # beets hooks.

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("musicgenre", help="set genres from the audio with musicgenre's model")
        add = cmd.parser.add_option
        add("-p", "--pretend", action="store_true", default=None, help="show the genres without changing anything")
        add("-f", "--force", dest="force", action="store_true", default=None, help="also replace genres set before")
        add("-F", "--no-force", dest="force", action="store_false", help="leave genres set before (default)")
        add(
            "-k",
            "--keep-existing",
            dest="keep_existing",
            action="store_true",
            default=None,
            help="with -f: keep set genres, ours after them",
        )
        add("-K", "--no-keep-existing", dest="keep_existing", action="store_false", help="with -f: replace set genres")
        add("-a", "--album", action="store_true", help="QUERY matches albums; set their genre from their tracks too")
        add("-w", "--write", dest="write", action="store_true", default=None, help="write tags to the files")
        add("-W", "--nowrite", dest="write", action="store_false", help="don't write tags to the files")

        def func(lib, opts, args):
            self.config.set_args({k: v for k, v in vars(opts).items() if k in ("pretend", "force", "keep_existing")})
            pretend = self.config["pretend"].get(bool)
            if opts.album:
                albums = list(lib.albums(args))
                items = [item for album in albums for item in album.items()]
            else:
                albums, items = [], list(lib.items(args))
            counts = self.run(lib, items, albums, write=ui.should_write(opts.write) and not pretend, pretend=pretend)
            summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing matched"
            self._log.info("{}{}", "(pretend) " if pretend else "", summary)

        cmd.func = func
        return [cmd]

    def imported(self, session, task) -> None:
        """Import stage (``auto: yes``): tag the new tracks (and album) in the database.

        Files are written after this stage: by beets itself when it applied a match (``import.write``), or by
        ``import_task_files`` below for an as-is import, which beets does not write.
        """
        items = list(task.imported_items())
        albums = [task.album] if task.is_album and getattr(task, "album", None) and self.config["album"].get(bool) else []
        for item in items:
            if self.tag_item(item, write=False, pretend=False) == "tagged" and not task.apply:
                self._write_after_import.add(item.id)
        for album in albums:
            self.tag_album(album, pretend=False, pending={})

    def import_task_files(self, session, task) -> None:
        """After beets placed the files: write our genre into as-is imported ones when ``import.write`` is on."""
        if not config["import"]["write"].get(bool):
            self._write_after_import.clear()
            return
        for item in task.imported_items():
            if item.id in self._write_after_import:
                self._write_after_import.discard(item.id)
                item.try_sync(write=True, move=False)
