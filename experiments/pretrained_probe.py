"""The pretrained-probe family: musicnn clip embeddings into a tuned logistic regression, by nested CV.

    python experiments/pretrained_probe.py --data_dir ../shared/data/gtzan_mini --out_dir results/probe \
        [--protocols grouped random] [--variants MSD_musicnn:norm MSD_musicnn:raw] [--model_dir DIR]

Each variant is a backbone and whether clips are level-normalised (norm) or left as recorded (raw).
The package ships MSD_musicnn; `python scripts/convert_musicnn.py --models MTT_musicnn` adds the
MagnaTagATune one (results/probe holds its rows: it scored lower, so it is not shipped).
Per protocol (random, grouped: the CNN's folds by track; filtered: train list -> valid list, for a
full GTZAN), an inner CV inside every training fold picks the layer and C; the held-out fold only
scores. Unless --no-tune_top, the first variant's top is also fine-tuned on the same folds
(musicgenre.families.probe.top: the back-end's dense layer from its pretrained weights and a new genre
layer, learning rate and epochs chosen by inner CV), to see whether it beats the frozen probe.
Zero-shot genre from the backbone's tags (no GTZAN label) is scored too. Embeddings are cached
per clip content under --cache_dir, so reruns are quick; finished results in results.json
are kept. With --model_dir, the first variant is refitted on every clip and saved there
(`musicgenre predict --model DIR`); `--model_dir musicgenre/models/bundled/musicnn` rebuilds the bundled one.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data
from musicgenre.errors import MusicGenreError
from musicgenre.families.probe.top import TopSettings
from musicgenre.families.probe.top import cross_validate as cross_validate_top
from musicgenre.families.probe.train import (
    ProbeSettings,
    cross_validate,
    embed_folder,
    embedded_table,
    result_identity,
    save_final,
    zero_shot,
)
from musicgenre.util.atomic import write_json_atomic


@dataclass
class Arguments:
    data_dir: str = field(default=str(default_shared_data() / "gtzan_mini"), metadata={"help": "a GTZAN folder (any layout)"})
    out_dir: str = field(default="results/probe", metadata={"help": "where results.json goes"})
    cache_dir: str = field(default=".cache/embeddings", metadata={"help": "per-clip embedding cache"})
    protocols: list[str] = field(default_factory=lambda: ["grouped", "random"], metadata={"help": "random, grouped, filtered"})
    variants: list[str] = field(
        default_factory=lambda: ["MSD_musicnn:norm", "MSD_musicnn:raw"],
        metadata={"help": "BACKBONE:norm or BACKBONE:raw (level-normalised or as recorded); MTT_musicnn needs converting first"},
    )
    model_dir: str | None = field(default=None, metadata={"help": "save the first variant, fitted on every clip, here"})
    embeddings: str | None = field(
        default=None,
        metadata={"help": "a table from 'musicgenre embed' to use instead of data_dir (its backbone and layer; C by inner CV)"},
    )
    tune_top: bool = field(
        default=True,
        metadata={"help": "also fine-tune the first variant's top (needs per-patch outputs: not with --embeddings)"},
    )


def main(argv: list[str] | None = None) -> None:
    import json

    argv = sys.argv[1:] if argv is None else argv
    args, base, top = parse_dataclasses(Arguments, ProbeSettings, TopSettings, argv=argv, description=__doc__)
    path = Path(args.out_dir) / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []
    data_name, protocols = Path(args.data_dir).name, ["zero-shot"]
    first = None
    if args.embeddings:  # one variant, made by the table; no tags in it, so no zero-shot row
        data, made = embedded_table(args.embeddings)
        args.variants, data_name, protocols = (
            [f"{made.backbone}:{'rms' if made.normalise else 'raw'}"],
            Path(args.embeddings).name,
            [],
        )
        base = replace(base, layers=made.layers)
    for variant in args.variants:
        backbone, _, level = variant.partition(":")
        settings = replace(base, backbone=backbone, normalise=level != "raw")
        if not args.embeddings:
            data = embed_folder(args.data_dir, settings, args.cache_dir)
        first = first or (settings, data)
        for file, error in data.failed.items():
            print(f"unreadable, left out: {file}: {error}", flush=True)
        tune = args.tune_top and not args.embeddings and variant == args.variants[0]
        for protocol in [*args.protocols, *protocols]:
            jobs = [("musicnn-probe", asdict(settings))]
            if tune and protocol != "zero-shot":
                jobs.append(("musicnn-top", {**asdict(settings), "top": asdict(top)}))
            for family, recorded in jobs:
                run = {"settings": recorded, "protocol": protocol, "data_dir": data_name, "tracks": len(data.labels)}
                key = {**run, **result_identity(settings)}  # reused only if the backbone and preprocessing are the same
                done = next((r for r in results if {k: r.get(k) for k in key} == key), None)
                if done is None:
                    if protocol == "zero-shot":
                        scored = zero_shot(data, backbone)
                    elif family == "musicnn-top":
                        scored = cross_validate_top(data, protocol, settings, top)
                    else:
                        scored = cross_validate(data, protocol, settings)
                    done = {**key, "family": family, **scored}
                    results = [r for r in results if {k: r.get(k) for k in run} != run] + [done]  # supersedes older runs
                    write_json_atomic(path, results)
                acc = done["out_of_fold"]["accuracy"] if "out_of_fold" in done else done["accuracy"]
                n = done["out_of_fold"]["n"] if "out_of_fold" in done else done["n"]
                what = " (top fine-tuned)" if family == "musicnn-top" else ""
                print(f"{variant} {protocol}{what}: accuracy {acc:.3f} over {n} clips", flush=True)
    if args.model_dir and first:
        command = "python experiments/pretrained_probe.py " + shlex.join(argv)
        print(save_final(*first, args.model_dir, results, data_name, command), flush=True)


if __name__ == "__main__":
    try:
        main()
    except MusicGenreError as exc:  # e.g. too few clips per genre for the folds asked: say so, keep finished results
        sys.exit(f"error: {exc}")
