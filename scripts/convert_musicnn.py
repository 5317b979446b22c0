"""Convert musicnn's pretrained TF-1 checkpoints (PyPI wheel musicnn 0.1.0) into musicgenre/models/pretrained/.

    python scripts/convert_musicnn.py [--models MSD_musicnn MTT_musicnn] [--wheel_dir .cache/musicnn]

The wheel is fetched with `pip download musicnn==0.1.0 --no-deps` (it is never installed: it pins
numpy<1.17) and read as a zip. Needs the dev extra (TensorFlow) for the checkpoint reader. Writes,
per model, model.safetensors, model.onnx, config.json and README.md (licence and citation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicgenre.arguments import parse_dataclasses
from musicgenre.models.musicnn import DEFAULT_BACKBONE
from musicgenre.models.musicnn_convert import convert, fetch_wheel


@dataclass
class Arguments:
    models: list[str] = field(default_factory=lambda: [DEFAULT_BACKBONE], metadata={"help": "checkpoints to convert"})
    wheel_dir: str = field(default=".cache/musicnn", metadata={"help": "where the wheel is (downloaded if missing)"})
    out_dir: str = field(default="musicgenre/models/pretrained", metadata={"help": "one folder per model is written here"})


def main(argv: list[str] | None = None) -> None:
    (args,) = parse_dataclasses(Arguments, argv=argv, description=__doc__)
    wheel = fetch_wheel(args.wheel_dir)
    for name in args.models:
        print(convert(wheel, name, args.out_dir), flush=True)


if __name__ == "__main__":
    main()
