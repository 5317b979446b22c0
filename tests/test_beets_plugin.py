"""The beets plugin in a real beets: its own config and database in a temporary folder, ``beet import -A`` of
generated files, then ``beet musicgenre`` the way a user runs it.

Every ``beet`` runs as a subprocess started in the temporary folder, without ``pluginpath``: beets must find
``beetsplug.musicgenre`` through the installed package (our portion of the ``beetsplug`` namespace), which is
what the ``[beets]`` extra promises. The scenario runs once (beets starts in about a second, and each step
builds on the previous one); the tests check what each step left, so they hold in any order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("beets", reason="the [beets] extra is not installed")
mutagen = pytest.importorskip("mutagen")
pytestmark = pytest.mark.slow  # the module's one scenario runs ~19 beets subprocesses (~7 s): not for the quick loop

from beetsplug.musicgenre import GENRE_FIELD  # noqa: E402
from musicgenre.audio.example import example_clip  # noqa: E402
from musicgenre.families import resolve_model  # noqa: E402
from musicgenre.models.predict import predict_file  # noqa: E402
from musicgenre.tagging.names import DISPLAY_NAMES, Record, chosen_genres  # noqa: E402

SR = 22050
COUNT, MIN_PROB = 2, 0.25  # two genres at most, the second only if at least 25 % probable
FIELDS = f"${GENRE_FIELD}|$musicgenre_prob|$musicgenre_uncertain|$musicgenre_model"


def _clip(kind: str) -> np.ndarray:
    """Three seconds of audio the model tells apart (GTZAN-style, not silence, so its answers are stable)."""
    t = np.arange(3 * SR) / SR
    if kind == "tone":
        return (0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32)
    if kind == "reversed":
        return example_clip(3, seed=1)[::-1].copy()
    return example_clip(3, seed=int(kind))


def _make(path: Path, kind: str, title: str, album: str, genre: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _clip(kind), SR)  # soundfile picks FLAC or MP3 from the suffix
    tags = mutagen.File(path, easy=True)
    if tags.tags is None:
        tags.add_tags()
    tags.update({"title": title, "album": album, "artist": f"Artist {album}"})
    if genre:
        tags["genre"] = genre
    tags.save()


def _file_genre(path: Path) -> tuple[list[str], Record | None]:
    """The genre values and the ``MUSICGENRE_SCORES`` record in the file, as mutagen reads them."""
    audio = mutagen.File(path)
    if path.suffix == ".mp3":
        genres = [g for frame in audio.tags.getall("TCON") for g in frame.text]
        records = [t for frame in audio.tags.getall("TXXX:MUSICGENRE_SCORES") for t in frame.text]
    else:
        genres, records = audio.get("genre", []), audio.get("musicgenre_scores", [])
    return list(genres), Record.decode(records[0] if records else None)


class Library:
    """A beets library in a folder, driven through ``python -m beets``."""

    def __init__(self, root: Path):
        self.root = root
        (root / "beetsdir").mkdir()
        (root / "beetsdir" / "config.yaml").write_text(
            f"directory: {root / 'music'}\n"
            f"library: {root / 'library.db'}\n"
            "plugins: [musicgenre]\n"
            "ui: {color: no}\n"
            "import: {write: no, copy: no, move: no, quiet: yes}\n"
            f"musicgenre: {{count: {COUNT}, min_prob: {MIN_PROB}}}\n"
        )
        self.env = {**os.environ, "BEETSDIR": str(root / "beetsdir"), "HF_HUB_OFFLINE": "1"}

    def beet(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "beets", *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, f"beet {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def ls(self, *query: str, album: bool = False) -> dict[str, dict]:
        """``beet ls`` by title (``-a``: by album): genres, probability, uncertain flag and model as shown."""
        key = "$album" if album else "$title"
        out = self.beet("ls", *(["-a"] if album else []), "-f", f"{key}|{FIELDS}", *query).stdout
        rows = {}
        for line in out.splitlines():
            name, genres, prob, uncertain, model = line.split("|")
            missing = prob.startswith("$")  # beets prints an unset flexible attribute's name
            rows[name] = {
                "genres": genres.split("; ") if genres else [],
                "prob": None if missing else float(prob),
                "uncertain": None if missing else uncertain == "True",
                "model": None if missing else model,
            }
        return rows


def _expected(scores: dict[str, float]) -> list[str]:
    return [DISPLAY_NAMES[label] for label in chosen_genres(scores, MIN_PROB)][:COUNT]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """The whole scenario, every step's output kept for the tests."""
    lib = Library(tmp_path_factory.mktemp("beets"))
    src = lib.root / "src"
    files = {
        "t1": src / "alpha" / "t1.flac",
        "t2": src / "alpha" / "t2.mp3",
        "t3": src / "beta" / "t3.flac",
        "t4": src / "beta" / "t4.flac",
    }
    _make(files["t1"], "0", "t1", "Alpha")
    _make(files["t2"], "reversed", "t2", "Alpha", genre="Polka")  # a genre the user set
    _make(files["t3"], "tone", "t3", "Beta")
    _make(files["t4"], "2", "t4", "Beta")
    model = resolve_model("bundled")
    scores = {name: predict_file(model, path)["scores"] for name, path in files.items() if name != "t4"}
    r: dict = {"lib": lib, "files": files, "scores": scores}

    lib.beet("import", "-A", str(src))
    files["t4"].write_bytes(os.urandom(4096))  # damaged after the import: its audio cannot be read any more
    r["imported"] = lib.ls()
    r["pretend"] = lib.beet("musicgenre", "-p")
    r["after_pretend"] = lib.ls()
    r["tag"] = lib.beet("musicgenre")
    r["tagged"] = lib.ls()
    r["t1_file_after_tag"] = _file_genre(files["t1"])
    r["range_all"] = set(lib.ls("musicgenre_prob:0.0..1.0"))
    r["range_high"] = set(lib.ls("musicgenre_prob:0.9.."))
    r["rerun"] = lib.beet("musicgenre")
    lib.beet("musicgenre", "-f", "-k", "title:t2")
    r["kept"] = lib.ls("title:t2")["t2"]
    lib.beet("musicgenre", "-f", "-w", "title:t2")
    r["forced"] = lib.ls("title:t2")["t2"]
    r["t2_file"] = _file_genre(files["t2"])
    r["album_run"] = lib.beet("musicgenre", "-a", "-f", "album:Alpha")
    r["albums"] = lib.ls(album=True)
    r["after_album"] = lib.ls()

    # `auto: yes` (in a second config file, as `beet -c` adds it): `beet import` tags the new files itself.
    _make(lib.root / "gamma" / "t5.flac", "tone", "t5", "Gamma")
    scores["t5"] = predict_file(model, lib.root / "gamma" / "t5.flac")["scores"]
    (lib.root / "auto.yaml").write_text("musicgenre: {auto: yes, album: yes}\n")
    lib.beet("-c", str(lib.root / "auto.yaml"), "import", "-A", "-w", str(lib.root / "gamma"))
    r["auto"] = lib.ls("album:Gamma")["t5"]
    r["auto_album"] = lib.ls("album:Gamma", album=True)["Gamma"]
    r["t5_file"] = _file_genre(lib.root / "gamma" / "t5.flac")
    return r


def test_the_plugin_tags_each_track_with_the_models_genres(run):
    for name in ("t1", "t3"):
        row, scores = run["tagged"][name], run["scores"][name]
        assert row["genres"] == _expected(scores), name
        assert row["prob"] == pytest.approx(max(scores.values()), abs=2e-3)
        assert row["model"] == "bundled:musicnn"
        assert isinstance(row["uncertain"], bool)
    assert run["t1_file_after_tag"][0] == []  # import.write is off and no -w: the files are left alone


def test_pretend_shows_the_genres_and_changes_nothing(run):
    assert run["after_pretend"] == run["imported"]
    assert all(row["prob"] is None for row in run["imported"].values())
    assert "; ".join(_expected(run["scores"]["t3"])) in run["pretend"].stdout
    assert "(pretend)" in run["pretend"].stderr


def test_a_genre_the_user_set_is_kept_and_an_unreadable_file_is_reported(run):
    assert run["tagged"]["t2"]["genres"] == ["Polka"] and run["tagged"]["t2"]["prob"] is None
    assert "keeps its genre Polka" in run["tag"].stderr
    # The damaged file: one line naming its full path; the others were still tagged.
    assert f"cannot analyse {run['files']['t4']}" in run["tag"].stderr
    assert run["tagged"]["t4"]["genres"] == [] and run["tagged"]["t4"]["prob"] is None
    assert "1 failed, 1 kept, 2 tagged" in run["tag"].stderr


def test_range_queries_compare_the_probability_as_a_number(run):
    assert run["range_all"] == {"t1", "t3"}
    assert run["range_high"] == {"t3"}  # the tone: jazz at 0.99; t1's 0.38 is below


def test_a_second_run_redoes_nothing(run):
    assert "2 done" in run["rerun"].stderr and "tagged" not in run["rerun"].stderr


def test_keep_existing_keeps_the_users_genre_and_force_replaces_it(run):
    top = _expected(run["scores"]["t2"])[0]
    assert run["kept"]["genres"] == ["Polka", top]  # count 2: the user's first, then ours
    assert run["forced"]["genres"] == _expected(run["scores"]["t2"])


def test_write_puts_the_genre_and_the_record_into_the_file(run):
    genres, record = run["t2_file"]
    assert genres == _expected(run["scores"]["t2"])
    assert record is not None and record.matches(genres) and record.model == "bundled:musicnn"


def test_the_album_genre_comes_from_the_mean_of_its_tracks(run):
    t1, t2 = run["scores"]["t1"], run["scores"]["t2"]
    mean = {label: (t1[label] + t2[label]) / 2 for label in t1}
    alpha = run["albums"]["Alpha"]
    assert alpha["genres"] == _expected(mean)
    assert alpha["prob"] == pytest.approx(max(mean.values()), abs=2e-3)
    assert run["albums"]["Beta"]["prob"] is None  # not asked for
    # The tracks keep their own genres: the album's is not passed down to them.
    assert run["after_album"]["t1"]["genres"] == _expected(t1)


def test_auto_tags_on_import_and_honours_import_write(run):
    expected = _expected(run["scores"]["t5"])
    assert run["auto"]["genres"] == expected and run["auto"]["prob"] is not None
    assert run["auto_album"]["genres"] == expected  # `album: yes`: one track, so the same genre
    genres, record = run["t5_file"]
    assert genres == expected and record is not None and record.matches(genres)


def test_loading_the_plugin_is_cheap_and_found_without_pluginpath(tmp_path):
    """beets imports every enabled plugin for every command: the model code must wait until it is needed."""
    code = (
        "import sys, beetsplug, beetsplug.musicgenre, beetsplug.the; "
        "print(sorted(m for m in sys.modules if m.startswith('musicgenre.models'))); "
        "print(len(list(beetsplug.__path__)) > 1)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"]  # nothing of the model code; beets' own plugins and ours, side by side
