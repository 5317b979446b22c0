"""The ``musicgenre`` command: features, predict, embed, evaluate, robustness, tag, demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from musicgenre.audio.io import DEFAULT_MAX_SECONDS
from musicgenre.errors import MusicGenreError


def _ray_address(args: argparse.Namespace, inputs: str = "inputs") -> None:
    """``--ray a.wav b.wav``: argparse takes the first input for the optional address; give it back."""
    import re

    if args.ray and not re.fullmatch(r"auto|ray://\S+|[\w.-]+:\d+", args.ray):
        getattr(args, inputs).insert(0, args.ray)
        args.ray = ""


RAY_ENGINE_VARIABLE = "MUSICGENRE_RAY_ENGINE"  # the default of --ray-engine


def _from_environment(args: argparse.Namespace) -> None:
    """The defaults read from the environment, here, once, and passed down (nothing in the library reads them):
    ``--runtime`` ($MUSICGENRE_RUNTIME), ``--ray-engine`` ($MUSICGENRE_RAY_ENGINE, else core), both checked."""
    from musicgenre.models.runtime import RUNTIME_VARIABLE, check_runtime
    from musicgenre.util.cluster import check_engine

    if "runtime" in vars(args) and args.runtime is None:
        args.runtime = check_runtime(os.environ.get(RUNTIME_VARIABLE), f"${RUNTIME_VARIABLE}")
    if "ray_engine" in vars(args) and args.ray_engine is None:
        args.ray_engine = check_engine(os.environ.get(RAY_ENGINE_VARIABLE) or "core", f"${RAY_ENGINE_VARIABLE}")


def _loader(args: argparse.Namespace):
    """``resolve_model`` with the command's ``--runtime`` and cache folder: the loader handed down (to worker processes
    and Ray actors too, which never read the environment for them)."""
    from functools import partial

    from musicgenre.families import resolve_model

    return partial(resolve_model, runtime=args.runtime, cache_root=args.cache_root)


def _features(args: argparse.Namespace) -> int:
    from musicgenre.features.table import extract_inputs

    _ray_address(args)

    report = extract_inputs(
        args.inputs,
        args.out,
        args.segment_seconds,
        args.workers,
        progress=not args.no_progress,
        save_every=args.save_every,
        librosa=args.librosa,
        cluster=args.ray,
        ray_engine=args.ray_engine,
    )
    print(report.summary(args.out), file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from musicgenre.data.gtzan import expand_lists
    from musicgenre.models.predict import predict_line

    load = _loader(args)
    tags = args.num_tags if args.tags else 0
    _ray_address(args, "files")
    args.files = expand_lists(args.files)
    if args.out is not None:
        from musicgenre.models.prediction_table import predict_to_table

        report = predict_to_table(
            args.files, args.out, args.model, args.revision, args.max_seconds, tags, args.ray, args.workers, not args.no_progress,
            load=load, ray_engine=args.ray_engine,
        )  # fmt: skip
        print(report.summary(args.out), file=sys.stderr)
        return 1 if report.failed else 0
    if args.ray is not None:
        from musicgenre.models.cluster import predict_lines

        lines = predict_lines(
            args.files, args.model, args.revision, args.max_seconds, tags, args.ray or None, args.workers,
            load=load, ray_engine=args.ray_engine,
        )  # fmt: skip
    else:
        model = load(args.model, args.revision)
        lines = (predict_line(model, path, args.max_seconds, tags) for path in args.files)
    failed = 0
    for line in lines:
        failed += "error" in line
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


def _embed(args: argparse.Namespace) -> int:
    from musicgenre.models.embeddings import EmbeddingSettings, embed_inputs

    _ray_address(args)
    settings = EmbeddingSettings(args.backbone, args.layer, not args.no_normalise, args.max_seconds)
    report = embed_inputs(
        args.inputs, args.out, settings, not args.no_progress, args.save_every, args.ray, args.workers, args.ray_engine
    )
    print(report.summary(args.out), file=sys.stderr)
    return 0


def _evaluate_audio(args: argparse.Namespace) -> int:
    """Score any model on a labelled audio folder (genre from each file's folder or name); unreadable files are listed."""
    from musicgenre.training.metrics import audio_folder_metrics

    model = _loader(args)(args.model or "bundled", args.revision)
    print(json.dumps({"model": args.model or "bundled", "audio": str(args.audio), **audio_folder_metrics(model, args.audio)}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from musicgenre.families import family_of_model, family_of_spec
    from musicgenre.training.metrics import feature_table_metrics

    if (args.audio is None) == (args.features is None):
        raise MusicGenreError("evaluate needs exactly one of --features TABLE or --audio FOLDER")
    if args.audio is not None:
        return _evaluate_audio(args)
    args.model = args.model or "bundled:shallow"
    family = family_of_spec(args.model)  # from its files: an audio model is refused before seconds of loading
    if family is None or family.reads == "features":  # a Hub id's family is known once it is loaded
        model = _loader(args)(args.model, args.revision)
        family = family_of_model(model)
    if family is None or family.reads != "features":
        raise MusicGenreError(f"{args.model}: evaluate scores feature tables, and this model reads audio, not features")
    print(json.dumps({"model": args.model, "features": str(args.features), **feature_table_metrics(model, args.features)}))
    return 0


def _robustness(args: argparse.Namespace) -> int:
    """How often the model's top genre survives each degradation of each file and how sure it is (no labels needed);
    calibration per degradation where the paths name the genres."""
    from musicgenre.audio.degradations import select
    from musicgenre.data.gtzan import find_audio_files
    from musicgenre.study.stability import stability
    from musicgenre.util.atomic import atomic_open

    files = find_audio_files(args.inputs)
    if not files:
        raise MusicGenreError(f"no audio files in {' '.join(args.inputs)}")
    degradations, notices = select(args.degradations)
    for notice in notices:
        print(f"musicgenre: {notice}", file=sys.stderr)
    model = _loader(args)(args.model, args.revision)
    report = stability(model, args.model, files, degradations, args.seed, args.max_seconds)
    report.notices = notices
    if args.out:
        with atomic_open(args.out) as f:
            f.write(json.dumps(report.to_dict(), indent=2) + "\n")
    print(report.table())
    print(report.calibration_line())
    for path, why in report.failed.items():
        print(f"musicgenre: {path}: {why}", file=sys.stderr)
    for line in report.errors():
        print(f"musicgenre: {line}", file=sys.stderr)
    return 1 if report.failed or report.errors() else 0


def _tag(args: argparse.Namespace) -> int:
    """Propose (or with --write, write) each file's genre; --undo JOURNAL puts the previous tags back."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 (old Latin-1 libraries) print escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if args.undo is not None:
        from musicgenre.tagging.undo import undo, undo_summary

        if args.paths:
            raise MusicGenreError("--undo takes only the journal: musicgenre tag --undo JOURNAL")
        report = undo(args.undo, force=args.force)
        print(undo_summary(report), file=sys.stderr)
        return 1 if report.failed else 0
    if not args.paths:
        raise MusicGenreError("tag needs files, folders or lists of paths (or --undo JOURNAL)")
    from musicgenre.tagging.run import TagSettings, tag_paths

    _ray_address(args, "paths")
    settings = TagSettings(
        write=args.write,
        model=args.model,
        revision=args.revision,
        runtime=args.runtime,
        cache_root=args.cache_root,
        multi=args.multi,
        tags=args.num_tags if args.tags else 0,
        genre_map=args.genre_map,
        overwrite=args.overwrite,
        min_prob=args.min_prob,
        journal=Path(args.journal) if args.journal else None,
        force=args.force,
        workers=args.workers,
        ray=args.ray,
        ray_engine=args.ray_engine,
        max_seconds=args.max_seconds,
        progress=not args.no_progress,
    )
    report = tag_paths(args.paths, settings)
    print(report.summary(args.write), file=sys.stderr)
    return 130 if report.interrupted else 1 if report.failed else 0


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, got {value}")
    return value


def _demo(args: argparse.Namespace) -> int:
    """Write a synthetic clip and classify it with the bundled model: a smoke test of the whole chain."""
    import tempfile

    import soundfile as sf

    from musicgenre.audio.example import example_clip
    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_file

    path = Path(args.out or Path(tempfile.gettempdir()) / "musicgenre-demo.wav")
    sf.write(path, example_clip(10.0), 22050)
    print(f"wrote a 10-second synthetic clip to {path}; classifying it with the bundled model:", file=sys.stderr)
    print(json.dumps(predict_file(resolve_model("bundled"), path)))
    print("classify your own music with: musicgenre predict FILE...", file=sys.stderr)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _ray_options(p: argparse.ArgumentParser, workers_help: str) -> None:
    from musicgenre.util.cluster import ENGINES

    p.add_argument("--workers", type=int, default=None, help=workers_help)
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="compute on a Ray cluster: at ADDRESS (host:port, auto, ray://...), else at $RAY_ADDRESS, else on a local "
        "Ray instance (pip install 'musicgenre[scale]')",
    )
    p.add_argument(
        "--ray-engine",
        choices=ENGINES,
        default=None,
        help=f"how --ray maps the files: core, Ray's tasks and actors (default: ${RAY_ENGINE_VARIABLE}, else core), or "
        "data, Ray Data's map_batches, kept only as the scale benchmark's 'before' row",
    )


def _runtime_option(p: argparse.ArgumentParser) -> None:
    from musicgenre.models.runtime import RUNTIME_VARIABLE, RUNTIMES

    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help=f"how the model runs: torch, keras or sklearn for the reference implementation (default: ${RUNTIME_VARIABLE}, "
        "else ONNX Runtime and NumPy heads)",
    )


def build_parser() -> argparse.ArgumentParser:
    from musicgenre import __version__

    parser = argparse.ArgumentParser(prog="musicgenre", description="Music-genre classification (GTZAN's 10 genres).")
    parser.add_argument("--version", action="version", version=f"musicgenre {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "features",
        help="write a feature table in the public GTZAN schema",
        description="Extract the public GTZAN table's features from audio files or dataset folders. "
        "Resumable: clips already in --out are skipped; unreadable files are reported and skipped.",
    )
    input_help = "audio files, GTZAN-like dataset folders, or lists of paths (.txt, .parquet); paths or URIs (file://, s3://...)"
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=input_help)
    p.add_argument("--out", required=True, help="CSV file to create or extend (.parquet: a Parquet table)")
    p.add_argument(
        "--segment-seconds", type=float, default=None, help="one row per segment of this length (the 3-second table: 3)"
    )
    _ray_options(p, "processes, or Ray tasks at a time with --ray (default: all cores, or every CPU of the cluster)")
    p.add_argument(
        "--save-every", type=float, default=10.0, help="seconds between saves of finished rows (what an interruption can lose)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--librosa",
        action="store_true",
        help="compute each feature with librosa's own calls, as the public notebooks did (slower; same values within 1e-5)",
    )
    p.set_defaults(func=_features)

    p = sub.add_parser(
        "predict",
        help="classify audio files, one JSON line each",
        description='Prints {"file", "genre", "scores"} per file. Longer input is classified window by window '
        "and the probabilities averaged. Exit status 1 if any file could not be classified.",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="audio files, or lists of them (.txt: one path per line; .parquet: a path column); paths or URIs",
    )
    p.add_argument(
        "--model",
        default="bundled",
        help="'bundled' (the pretrained musicnn probe; or 'bundled:shallow', 'bundled:cnn'), a model folder (ours or a "
        "transformers audio-classification checkpoint), a Hub id (default: bundled)",
    )
    p.add_argument(
        "--tags",
        action="store_true",
        help="add the pretrained tagger's top tags and their probabilities, e.g. 'female vocalists', '80s', 'dance'",
    )
    p.add_argument("--num-tags", type=_positive_int, default=5, metavar="N", help="how many tags --tags adds (default 5)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for a Hub id")
    _runtime_option(p)
    p.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="analyse at most this much of each file (default 600)"
    )
    p.add_argument(
        "--out",
        default=None,
        help="write a Parquet table (*.parquet: typed columns, resumable) instead of printing JSON lines",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (with --out)")
    _ray_options(p, "Ray actors, each holding the model once (default: one per CPU of the cluster)")
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "embed",
        help="write the pretrained backbone's clip embeddings as a Parquet table",
        description="One row per file: path, label (from the path), track, seconds, patches and the embedding (the mean "
        "over 3 s patches of one musicnn layer, float32). Loads with datasets.load_dataset('parquet', ...). "
        "Resumable: files already in --out are skipped; unreadable files are reported and skipped.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=input_help)
    p.add_argument("--out", required=True, help="Parquet file to create or extend (*.parquet)")
    p.add_argument(
        "--layer",
        default="mean_pool",
        choices=["penultimate", "mean_pool", "max_pool", "mean_max", "joined"],
        help="which layer's patch mean (default mean_pool, 753 values; the bundled probe reads mean_max, 1506)",
    )
    p.add_argument(
        "--backbone",
        default="MSD_musicnn",
        help="MSD_musicnn (default; shipped) or MTT_musicnn (after scripts/convert_musicnn.py --models MTT_musicnn)",
    )
    p.add_argument("--no-normalise", action="store_true", help="skip the -20 dBFS level normalisation before the backbone")
    p.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="embed at most this much of each file (default 600)"
    )
    _ray_options(p, "Ray actors, each holding the backbone once (default: one per CPU of the cluster)")
    p.add_argument("--save-every", type=float, default=10.0, help="seconds between saves of finished rows")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_embed)

    p = sub.add_parser(
        "evaluate",
        help="score a model on a labelled feature table or audio folder",
        description="Prints JSON with accuracy, macro_f1, n and the confusion matrix.",
    )
    p.add_argument("--model", default=None, help="default: bundled:shallow for --features, bundled for --audio")
    p.add_argument("--revision", default=None)
    _runtime_option(p)
    p.add_argument("--features", default=None, help="CSV in the public GTZAN schema; its label column is the truth")
    p.add_argument("--audio", default=None, help="a GTZAN-like folder: the genre comes from each file's folder or name")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "robustness",
        help="how often the top genre survives MP3, a phone line, noise, pitch... (no labels needed)",
        description="Classifies each file clean and under each degradation and prints, per degradation, the share "
        "of files whose top genre did not change, the mean top probability and the share flagged uncertain. Where a "
        "path names its genre (GTZAN's <genre>/<genre>.NNNNN.wav), it adds accuracy, log loss, Brier score, ECE and "
        "the share flagged among right and wrong answers. Needs the robustness extra (pedalboard); AAC and Opus need ffmpeg. "
        "Exit status 1 if any file, clean or degraded, could not be classified.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    p.add_argument("--model", default="bundled", help="as for predict (default: bundled)")
    p.add_argument("--revision", default=None, help="Hub revision for a Hub id")
    _runtime_option(p)
    p.add_argument("--degradations", nargs="+", default=None, metavar="NAME", help="default: all of them")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--out", default=None, help="also write the per-file results as JSON here")
    p.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="analyse at most this much of each file (default 600)"
    )
    p.set_defaults(func=_robustness)

    p = sub.add_parser(
        "tag",
        help="write each file's genre into its tags (a dry run unless --write); --undo restores them",
        description="Analyses audio files (folders are walked, .txt lists read) and proposes a genre for each: a table "
        "of file, current genre, proposed genre, probability and action on stdout, a summary on stderr. Nothing is "
        "changed without --write. With --write the genre goes into the file's own genre field (ID3 TCON, Vorbis "
        "GENRE, MP4 \u00a9gen) and the model and scores into MUSICGENRE_SCORES; the audio data is never changed, each "
        "file is replaced whole or not at all, and its previous tags are kept in a journal for --undo. A genre the user "
        "set is kept unless --overwrite; files this model already tagged are skipped unless --force. "
        "Exit status 1 if any file failed.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="audio files, folders (walked recursively) or .txt lists of paths")
    p.add_argument("--write", action="store_true", help="write the tags (default: a dry run that changes nothing)")
    p.add_argument("--model", default="bundled", help="as for predict (default: bundled)")
    p.add_argument("--revision", default=None, help="Hub revision for a Hub id")
    _runtime_option(p)
    p.add_argument(
        "--multi",
        type=_probability,
        default=None,
        metavar="P",
        help="write every genre at least this probable as separate values (the top genre always)",
    )
    p.add_argument("--tags", action="store_true", help="also write the pretrained tagger's top tags to MUSICGENRE_TAGS")
    p.add_argument("--num-tags", type=_positive_int, default=5, metavar="N", help="how many tags --tags writes (default 5)")
    p.add_argument(
        "--genre-map",
        default=None,
        metavar="FILE",
        help="other spellings of the genres: JSON or 'label = name' lines, e.g. 'hiphop = hip hop' (default: ID3v1's "
        "names, Blues ... Hip-Hop ... Rock)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace genres the user set (default: keep them)")
    p.add_argument(
        "--min-prob",
        type=_probability,
        default=None,
        metavar="P",
        help="skip (and report) files whose top genre is less probable than P (default: tag every readable file)",
    )
    p.add_argument(
        "--journal", default=None, metavar="PATH", help="where to keep the previous tags (default: printed at the end)"
    )
    p.add_argument(
        "--undo", default=None, metavar="JOURNAL", help="restore the tags every file had before the runs that wrote JOURNAL"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="analyse and write files this model already tagged; with --undo, restore files changed since",
    )
    p.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="analyse at most this much of each file (default 600)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _ray_options(p, "worker processes (default 1), or with --ray the Ray actors, each holding the model once")
    p.set_defaults(func=_tag)

    p = sub.add_parser("demo", help="classify a synthetic clip with the bundled model (a smoke test)")
    p.add_argument("--out", default=None, help="where to write the synthetic WAV")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from musicgenre.features import jitcache
    from musicgenre.util.cache import cache_root_of

    # The cache folder (librosa's compiled code, ONNX exports): read here, passed down; numba's before it is imported.
    cache_root = cache_root_of(os.environ)
    jitcache.configure(cache_root)
    args = build_parser().parse_args(argv)
    args.cache_root = cache_root
    try:
        _from_environment(args)
        return args.func(args)
    except MusicGenreError as exc:
        print(f"musicgenre: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
