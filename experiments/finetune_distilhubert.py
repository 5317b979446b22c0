"""Fine-tune DistilHuBERT (or any audio model) on GTZAN's ten genres with the Hugging Face Trainer.

    python experiments/finetune_distilhubert.py --model_name_or_path ntu-spml/distilhubert \\
        --data_dir /data/gtzan --output_dir runs/distilhubert-gtzan [--protocol random|filtered] [TrainingArguments...]

In the style of transformers' examples/pytorch/audio-classification: three argument dataclasses
(ours for the model and the data, transformers' TrainingArguments), parsed from the command line
or from one .json/.yaml file. The defaults are the Hugging Face audio course's recipe (first 30 s
of each clip, lr 5e-5, batch 8, 10 epochs, warm-up 10%, fp16 on a GPU, best epoch by accuracy);
--train_crop_seconds, --eval_whole_clips, --freeze_feature_encoder and
--gradient_accumulation_steps make it better or cheaper. Runs on CPU, one GPU, or several with
`accelerate launch` / `torchrun`. A run resumes from the newest checkpoint in --output_dir.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments

from musicgenre.errors import MusicGenreError
from musicgenre.families.transformer.train import FINETUNE_PROTOCOLS, finetune


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="ntu-spml/distilhubert", metadata={"help": "Hub id or folder of the model to start from"}
    )
    model_revision: str = field(default="main", metadata={"help": "branch, tag or commit of a Hub model"})
    cache_dir: str | None = field(default=None, metadata={"help": "where Hub downloads go"})
    freeze_feature_encoder: bool = field(
        default=False, metadata={"help": "train only the transformer and head (faster, less memory)"}
    )
    attention_mask: bool = field(default=True, metadata={"help": "pass attention masks (for padded batches)"})
    ignore_mismatched_sizes: bool = field(default=False, metadata={"help": "replace a classification head of another size"})


@dataclass
class DataArguments:
    data_dir: str | None = field(default=None, metadata={"help": "a GTZAN folder in any layout musicgenre reads"})
    dataset_name: str | None = field(default=None, metadata={"help": "a Hub (or local) audio dataset instead of --data_dir"})
    dataset_config_name: str | None = field(default=None, metadata={"help": "configuration of --dataset_name"})
    audio_column_name: str = field(default="audio", metadata={"help": "audio column of --dataset_name"})
    label_column_name: str = field(default="genre", metadata={"help": "genre column of --dataset_name"})
    dataset_export_dir: str = field(
        default="work/hub_dataset", metadata={"help": "where --dataset_name's clips are written once"}
    )
    protocol: str = field(default="random", metadata={"help": f"one of {FINETUNE_PROTOCOLS}"})
    test_size: float = field(default=0.1, metadata={"help": "random protocol: held-out share (the course's 0.1)"})
    split_seed: int = field(default=42, metadata={"help": "random protocol: split seed (the course's 42)"})
    max_duration_seconds: float = field(default=30.0, metadata={"help": "clips are cut to this (the course's 30 s)"})
    train_crop_seconds: float | None = field(default=None, metadata={"help": "train on random crops of this length"})
    eval_whole_clips: bool = field(default=False, metadata={"help": "evaluate every window of a clip, probabilities averaged"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use at most this many training clips"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use at most this many evaluation clips"})


def recipe() -> dict:
    """The audio course's hyper-parameters, as TrainingArguments defaults that any flag overrides."""
    import torch

    return {
        "learning_rate": 5e-5,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8,
        "num_train_epochs": 10,
        "warmup_steps": 0.1,  # a float below 1 is a ratio of the total steps
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "accuracy",
        "logging_steps": 5,
        "fp16": torch.cuda.is_available(),
        "remove_unused_columns": False,  # our examples are {"audio", "label"}, turned into inputs by the collator
        "report_to": "none",
    }


def parse(argv: list[str]) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments), description=__doc__)
    defaults = recipe()
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        import yaml

        with open(argv[0]) as fh:
            values = yaml.safe_load(fh)  # YAML is a superset of JSON
        return parser.parse_dict({**defaults, **values})
    flags = [x for k, v in defaults.items() for x in (f"--{k}", str(v))]
    return parser.parse_args_into_dataclasses(args=flags + argv)  # later flags win: the user's


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    model_args, data_args, training_args = parse(argv)
    command = "python experiments/finetune_distilhubert.py " + shlex.join(argv)
    return finetune(model_args, data_args, training_args, command)


if __name__ == "__main__":
    try:
        main()
    except MusicGenreError as exc:
        sys.exit(f"error: {exc}")
