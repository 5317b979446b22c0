"""A VGG-like Keras CNN on log-mel spectrograms, cross-validated by track, for 3-second and 30-second inputs.

    python experiments/cnn_keras.py --data_dir ../shared/data/gtzan_mini --out_dir results/cnn [--model_dir models/cnn]

For each input length: grouped K-fold cross-validation (segments of one track never straddle train
and test; early stopping on a fold carved from the training folds), per-fold and mean ± std
accuracy per segment and per track, the parameter count and the saved size. With --model_dir, the
final model of each length is trained on every track and saved there (`.keras` + model card), ready
for `musicgenre predict --model`, the app and scripts/push_to_hub.py. Keras runs on the torch
backend unless KERAS_BACKEND says otherwise. Results already in results.json are not recomputed, and a final
model already saved from the same settings, data and cross-validation is not trained again.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.arguments import parse_dataclasses
from musicgenre.data.gtzan import default_shared_data, load_clips
from musicgenre.families.cnn.model import build_cnn, save_cnn
from musicgenre.families.cnn.train import CnnSettings, cross_validate, model_card, train_final
from musicgenre.models.folder import saved_with
from musicgenre.util.atomic import write_json_atomic


@dataclass
class Arguments:
    data_dir: str = field(default=str(default_shared_data() / "gtzan_mini"), metadata={"help": "a GTZAN folder (any layout)"})
    out_dir: str = field(default="results/cnn", metadata={"help": "where results.json goes"})
    model_dir: str | None = field(default=None, metadata={"help": "save the final models here (one folder per length)"})
    input_seconds: list[float] = field(default_factory=lambda: [3.0, 30.0], metadata={"help": "input lengths to compare"})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args, base = parse_dataclasses(Arguments, CnnSettings, argv=argv, description=__doc__)
    clips, failed = load_clips(args.data_dir, 22050)
    for path, error in failed.items():
        print(f"unreadable, left out: {path}: {error}", flush=True)
    results_path = Path(args.out_dir) / "results.json"
    data = Path(args.data_dir).name  # recorded with each result: runs on other folders are kept apart
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    for seconds in args.input_seconds:
        settings = CnnSettings(**{**asdict(base), "seconds": seconds})

        def same_run(r: dict, settings=settings) -> bool:  # files from before data_dir was recorded: gtzan_mini
            return r["settings"] == asdict(settings) and r["tracks"] == len(clips) and r.get("data_dir", data) == data

        done = next((r for r in results if same_run(r)), None)
        if done is None:
            cv = cross_validate(clips, settings)
            # Size and parameters depend on the architecture only (no optimizer state is saved): measured on a fresh one.
            network = build_cnn(seconds, settings.width, settings.blocks, settings.dropout)
            with tempfile.TemporaryDirectory() as tmp:
                network.save(Path(tmp) / "m.keras")
                size = (Path(tmp) / "m.keras").stat().st_size
            done = {
                "settings": asdict(settings),
                "tracks": len(clips),
                "data_dir": data,
                "protocol": f"grouped {settings.folds}-fold by track, seed {settings.seed}",
                "parameters": network.count_params(),
                "size_bytes": size,
                **cv,
                "final_epochs": max(1, int(np.median(cv["epochs"]))),
            }
            results = json.loads(results_path.read_text()) if results_path.exists() else []  # another length may have finished
            results = [r for r in results if not same_run(r)] + [done]
            write_json_atomic(results_path, results)
        seg, trk = done["segment_accuracy"], done["track_accuracy"]
        print(
            f"{seconds:g} s inputs, {done['tracks']} tracks, {done['protocol']}: segment {seg['mean']:.3f} ± {seg['std']:.3f}, "
            f"track {trk['mean']:.3f} ± {trk['std']:.3f} (out of fold: macro-F1 {done['out_of_fold']['track']['macro_f1']:.3f}); "
            f"{done['parameters']:,} parameters, {done['size_bytes'] / 1e6:.2f} MB",
            flush=True,
        )
        if args.model_dir:
            folder = Path(args.model_dir) / f"cnn-{seconds:g}s"
            meta = {
                "trained_on": f"{len(clips)} tracks of {data}",
                "settings": asdict(settings),
                "final_epochs": done["final_epochs"],
                "cross_validation": {
                    "protocol": done["protocol"],
                    "tracks": len(clips),
                    "track_accuracy": done["track_accuracy"],
                },
            }
            if saved_with(folder, meta):  # a rerun: this very model is already saved
                print(f"{folder} (already saved)", flush=True)
                continue
            model = train_final(clips, settings, done["final_epochs"])
            model.meta.update(meta)
            command = "python experiments/cnn_keras.py " + shlex.join(argv)
            card = model_card(settings, done, len(clips), done["parameters"], done["size_bytes"], command)
            print(save_cnn(model, folder, card=card), flush=True)


if __name__ == "__main__":
    main()
