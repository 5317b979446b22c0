"""Real recordings: which probe design holds up on microphone, phone and noisy audio, with trustworthy probabilities.

    python experiments/real_recordings.py --data_dir ../shared/data/gtzan_mini --out_dir results/real_recordings \
        [--seeds 0 1 2 3 4] [--model_dir musicgenre/models/bundled/musicnn]

Per clip, its clean musicnn embedding, random training copies (audio.augment: audiomentations chains with
pyroomacoustics rooms) and evaluation conditions (audio.degradations: other generators, other seeds) are
computed once and cached in --cache_dir (musicgenre/families/probe/robust_views.py). Then each design
(musicgenre/families/probe/robust.py: the clean head as shipped before, calibrated, one head on copies, a
narrow head beside it, the routed three-head probe on each musicnn embedding; robust_backend.py: musicnn's
back-end fine-tuned on the copies) is scored by grouped 5-fold CV by track per seed ("before" has no
threshold of its own, so its uncertain columns are what an out-of-fold threshold would have flagged):
heads, temperatures and the "uncertain" threshold are fitted inside the training folds only. Writes
results.json (per design: per-condition accuracy, log loss, Brier, ECE, flag shares; seen- and
unseen-family means; a reliability diagram's bins); experiments/report.py renders it. With --model_dir,
the shipped design is fitted on every clip and saved there as the bundled probe. About 35 minutes on 2
cores with the views cached (the back-end's inner CV is most of it), 20 more from an empty cache.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import GENRES, default_shared_data, label_from_path, labelled_files, track_id
from musicgenre.errors import MusicGenreError
from musicgenre.families.probe.robust import RobustSettings, cross_validate, head_views, save_shipped
from musicgenre.families.probe.robust_backend import BACKEND, cross_validate_backend
from musicgenre.families.probe.robust_backend import LAYER as BACKEND_LAYER
from musicgenre.families.probe.robust_views import compute_views
from musicgenre.study.real_recordings import CONDITIONS, TARGETS, matrices, reliability, summarise
from musicgenre.util.atomic import write_json_atomic

# (key, label, settings changed): the designs compared; the last is what ships. "before" is the recipe of the head
# shipped before (clean clips, C from 0.01-10 by inner-CV accuracy, no temperature) on its layer, mean_pool. The
# routed_<layer> rows are the shipped design on each other embedding (routed_mean_pool: as shipped until the layer
# comparison; the layer was then chosen from these out-of-fold rows, not inside the folds).
BEFORE = {"design": "clean", "calibrate": False, "c_grid": [0.01, 0.1, 1.0, 10.0], "select_by": "accuracy", "inner_folds": 3,
          "layer": "mean_pool"}  # fmt: skip
# BACKEND is not linear heads: families.probe.robust_backend, trained on the pooled design's rows
DESIGNS = [
    ("before", "clean head as shipped before (C by accuracy, uncalibrated)", BEFORE),
    ("routed_mean_pool", "routed on mean_pool (shipped before)", {"design": "routed", "layer": "mean_pool"}),
    ("routed_max_pool", "routed on max_pool", {"design": "routed", "layer": "max_pool"}),
    ("routed_penultimate", "routed on penultimate", {"design": "routed", "layer": "penultimate"}),
    ("routed_joined", "routed on joined (penultimate + mean_pool + max_pool)", {"design": "routed", "layer": "joined"}),
    ("clean_uncalibrated", "clean head, C by log loss, uncalibrated", {"design": "clean", "calibrate": False}),
    ("clean", "clean head, calibrated", {"design": "clean"}),
    ("wide", "one head, clean + wide copies", {"design": "wide"}),
    ("pooled", "one head, clean + wide + narrow copies", {"design": "pooled"}),
    ("selector", "wide head + narrow head by band", {"design": "selector"}),
    ("routed_by_channel", "routed, each copy training the head its channel routes to", {"design": "routed", "route_rows": True}),
    (BACKEND, "musicnn's back-end fine-tuned on clean + wide + narrow copies", {"design": "pooled", "layer": BACKEND_LAYER}),
    ("routed", "routed on mean_max: clean, wide, narrow heads (shipped)", {"design": "routed"}),
]
SHIPPED = "routed"


@dataclass
class Arguments:
    data_dir: str = field(default=str(default_shared_data() / "gtzan_mini"), metadata={"help": "a GTZAN folder (any layout)"})
    out_dir: str = field(default="results/real_recordings", metadata={"help": "where results.json goes"})
    cache_dir: str = field(default=".cache/real_recordings", metadata={"help": "per clip and view: embeddings and quality"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4], metadata={"help": "CV seeds"})
    workers: int = field(default=2, metadata={"help": "clips whose views are computed at once"})
    model_dir: str | None = field(default=None, metadata={"help": "fit the shipped design on every clip and save it here"})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args, base = parse_dataclasses(Arguments, RobustSettings, argv=argv, description=__doc__)
    command = "python experiments/real_recordings.py " + shlex.join(argv)
    files = labelled_files(args.data_dir)
    paths, tracks = [str(f) for f in files], np.array([track_id(f.name) for f in files])
    labels = np.array([GENRES.index(label_from_path(f)) for f in files])
    training = sorted({v for d in ("routed", "pooled") for names in head_views(replace(base, design=d)).values() for v in names})
    conditions = list(CONDITIONS)
    failed = compute_views(paths, list(tracks), training + [c for c in conditions if c not in training], args.cache_dir,
                           args.workers, progress=lambda m: print(m, flush=True))  # fmt: skip
    for path, why in failed.items():
        print(f"failed views of {path}: {why}", flush=True)
    layers = sorted({replace(base, **changed).layer for _, _, changed in DESIGNS})
    by_layer = matrices(paths, sorted(set(training) | set(conditions)), layers, args.cache_dir)  # layer -> (views, channels)
    result = {"kind": "real_recordings", "command": command, "clips": len(paths), "seeds": args.seeds,
              "settings": asdict(base), "failed_views": failed, "shipped": SHIPPED, "designs": {}}  # fmt: skip
    for key, label, changed in DESIGNS:
        settings = replace(base, **changed)
        views, channels = by_layer[settings.layer]
        if key == BACKEND:
            cv = cross_validate_backend(views, labels, tracks, conditions, settings, args.seeds, progress=lambda m: None)
        else:
            cv = cross_validate(views, channels, labels, tracks, conditions, settings, args.seeds, progress=lambda m: None)
        summary = summarise(cv, labels, conditions)
        result["designs"][key] = {
            "label": label, "design": BACKEND if key == BACKEND else settings.design, "calibrated": settings.calibrate,
            "settings": asdict(settings),
            "summary": summary,
            "reliability": reliability(cv, labels, list(TARGETS)), "folds": cv["folds"],
        }  # fmt: skip
        t = summary["targets"]
        counts = ", ".join(f"{c} {summary['conditions'][c]['of_24']:.1f}" for c in TARGETS)
        print(f"{label}: {counts} (of 24); log loss {t['mean_log_loss']:.3f}; flags wrong {t['flagged_wrong']:.2f} "
              f"right {t['flagged_right']:.2f}", flush=True)  # fmt: skip
        write_json_atomic(Path(args.out_dir) / "results.json", result)
    if args.model_dir:
        print(
            save_shipped(*by_layer[base.layer], labels, tracks, replace(base, design=SHIPPED), result, args.model_dir, command),
            flush=True,
        )


if __name__ == "__main__":
    try:
        main()
    except MusicGenreError as exc:
        sys.exit(f"error: {exc}")
