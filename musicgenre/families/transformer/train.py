"""Fine-tuning a transformers audio classifier (DistilHuBERT) on GTZAN with the Hugging Face Trainer.

The pieces ``experiments/finetune_distilhubert.py`` puts together: clips from a local folder (or a
Hub dataset written to one), the ``random`` (audio course) and ``filtered`` splits, training on
fixed-length (optionally random) crops, evaluation over whole clips window by window, metrics
that need no network, and a checkpoint folder with a model card.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.special import softmax

from musicgenre.audio.io import windows
from musicgenre.data.gtzan import GENRES, Clip, load_clips
from musicgenre.data.splits import course_split, filtered_part
from musicgenre.errors import DataError
from musicgenre.training.metrics import classification_metrics, track_level
from musicgenre.util.atomic import atomic_open, write_json_atomic

FINETUNE_PROTOCOLS = ("random", "filtered")


def export_hub_dataset(
    name: str, out_dir: str | os.PathLike, config: str | None = None, audio_column: str = "audio", label_column: str = "genre"
) -> Path:
    """Write a Hub (or local ``datasets``) audio dataset to ``out_dir/<genre>/<file>`` once, resumably.

    Audio is taken undecoded (``Audio(decode=False)``) and decoded later with soundfile, so neither
    torchcodec nor ffmpeg is needed. A file already on disk is not written again.
    """
    try:
        from datasets import Audio, load_dataset
    except ImportError:
        raise DataError("--dataset_name needs the datasets package: pip install 'musicgenre[experiments]'") from None
    out = Path(out_dir)
    dataset = load_dataset(name, config)
    written: set[Path] = set()
    unnamed: dict[str, int] = {}
    for split in dataset.values():
        if audio_column not in split.column_names or label_column not in split.column_names:
            raise DataError(f"{name}: expected columns {audio_column!r} and {label_column!r}, found {split.column_names}")
        names = getattr(split.features[label_column], "names", None)
        split = split.cast_column(audio_column, Audio(decode=False))
        for row in split:
            label = names[row[label_column]] if names else str(row[label_column])
            if label not in GENRES:
                raise DataError(f"{name}: label {label!r} is not one of the 10 GTZAN genres")
            audio = row[audio_column]
            filename = os.path.basename(audio.get("path") or "")
            if not filename:  # no GTZAN file name: numbered per genre (such clips match no filtered-split list)
                unnamed[label] = unnamed.get(label, -1) + 1
                filename = f"{label}.unnamed{unnamed[label]:05d}.wav"
            target = out / label / filename
            if target in written:
                raise DataError(f"{name}: two clips are both named {label}/{filename}")
            written.add(target)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = audio.get("bytes")
            if data is None:
                data = Path(audio["path"]).read_bytes()
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    return out


def subset(clips: list[Clip], n: int | None, seed: int) -> list[Clip]:
    """At most ``n`` clips drawn at random (in their original order): the first n would be one genre."""
    if n is None or n >= len(clips):
        return clips
    keep = np.sort(np.random.default_rng(seed).permutation(len(clips))[:n])
    return [clips[i] for i in keep]


def split_clips(clips: list[Clip], protocol: str, test_size: float = 0.1, seed: int = 42) -> tuple[list[Clip], list[Clip], str]:
    """(train, eval, description) under ``random`` (the audio course's split) or ``filtered`` (train / valid)."""
    if protocol == "random":
        clips = sorted(clips, key=lambda c: c.track)  # file-name order, as the course's dataset lists GTZAN
        train, test = course_split(len(clips), test_size, seed)
        return [clips[i] for i in train], [clips[i] for i in test], f"random (test_size {test_size}, seed {seed})"
    if protocol == "filtered":
        part = filtered_part([c.track for c in clips])
        train = [c for c, p in zip(clips, part, strict=True) if p == "train"]
        valid = [c for c, p in zip(clips, part, strict=True) if p == "valid"]
        if not train or not valid:
            raise DataError(f"the filtered split needs train and valid tracks; found {len(train)} and {len(valid)}")
        return train, valid, "filtered (train -> valid; the test list is held back)"
    raise DataError(f"unknown protocol {protocol!r}; choose from {FINETUNE_PROTOCOLS}")


class TrainCrops:
    """Training examples: one crop per clip and epoch, at a random offset if ``random_crop``.

    Offsets come from torch's global generator, which the Trainer seeds, so runs repeat.
    """

    def __init__(self, clips: list[Clip], sample_rate: int, seconds: float, random_crop: bool):
        self.clips, self.size, self.random_crop = clips, int(round(seconds * sample_rate)), random_crop

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        import torch

        clip = self.clips[i]
        start = 0
        if self.random_crop and len(clip.samples) > self.size:
            start = int(torch.randint(0, len(clip.samples) - self.size + 1, ()))
        return {"audio": clip.samples[start : start + self.size], "label": clip.label}


class EvalWindows:
    """Evaluation examples: every window of every clip (or only each clip's first window), and which clip it is."""

    def __init__(self, clips: list[Clip], sample_rate: int, seconds: float, whole_clips: bool):
        self.items: list[tuple[np.ndarray, int]] = []
        self.clip_of: list[int] = []
        for c, clip in enumerate(clips):
            parts = windows(clip.samples, sample_rate, seconds)
            for part in parts if whole_clips else parts[:1]:
                self.items.append((part, clip.label))
                self.clip_of.append(c)
        self.labels = np.array([clip.label for clip in clips])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        samples, label = self.items[i]
        return {"audio": samples, "label": label}


class Collator:
    """Feature-extract a batch (normalised, padded, with attention masks where the model takes them)."""

    def __init__(self, feature_extractor, attention_mask: bool = True):
        self.feature_extractor, self.attention_mask = feature_extractor, attention_mask

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        inputs = self.feature_extractor(
            [b["audio"] for b in batch],
            sampling_rate=self.feature_extractor.sampling_rate,
            padding=True,
            return_attention_mask=self.attention_mask,
            return_tensors="pt",
        )
        inputs["labels"] = torch.tensor([b["label"] for b in batch], dtype=torch.long)
        return inputs


class ClipMetrics:
    """``compute_metrics`` for the Trainer: window probabilities averaged per clip, then accuracy and macro-F1.

    Computed with scikit-learn, so evaluation works offline (``evaluate.load`` fetches from the Hub).
    """

    def __init__(self, eval_set: EvalWindows):
        self.clip_of, self.labels = np.asarray(eval_set.clip_of), eval_set.labels

    def __call__(self, eval_pred) -> dict:
        logits = np.asarray(eval_pred.predictions if hasattr(eval_pred, "predictions") else eval_pred[0], dtype=np.float64)
        truth, pred = track_level(softmax(logits, axis=1), self.clip_of, self.labels[self.clip_of])
        metrics = classification_metrics([GENRES[i] for i in truth], [GENRES[i] for i in pred], list(GENRES))
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "clips": metrics["n"]}


def model_card(output_dir: str | os.PathLike, base_model: str, protocol: str, metrics: dict, settings: dict, command: str) -> str:
    """A Hub model card with a ``model-index`` block (what the Hub shows as evaluation results)."""
    acc, f1 = metrics.get("eval_accuracy"), metrics.get("eval_macro_f1")
    results = [{"type": "accuracy", "value": round(float(acc), 4), "name": "Accuracy"}] if acc is not None else []
    if f1 is not None:
        results.append({"type": "f1", "value": round(float(f1), 4), "name": "Macro F1", "args": {"average": "macro"}})
    index = {
        "model-index": [
            {
                "name": Path(output_dir).name,
                "results": [
                    {
                        "task": {"type": "audio-classification", "name": "Audio Classification"},
                        "dataset": {"type": "gtzan", "name": f"GTZAN ({protocol})"},
                        "metrics": results,
                    }
                ],
            }
        ]
    }
    import yaml

    front = yaml.safe_dump(
        {
            "license": "mit",
            "library_name": "transformers",
            "base_model": base_model,
            "pipeline_tag": "audio-classification",
            "tags": ["audio-classification", "music-genre", "gtzan", "musicgenre"],
            "metrics": ["accuracy", "f1"],
            **index,
        },
        sort_keys=False,
    )
    rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
    selection = (
        "The best epoch was chosen on these same evaluation clips (`load_best_model_at_end`, as the audio course "
        "does), so the score below is somewhat optimistic; train with `--load_best_model_at_end False` for an "
        "unselected score."
        if settings.get("best epoch chosen on the evaluation clips")
        else "The score below is of the last epoch; the evaluation clips chose nothing."
    )
    scores = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    return f"""---
{front}---
# {Path(output_dir).name}

`{base_model}` fine-tuned on GTZAN's ten genres with `experiments/finetune_distilhubert.py` of
the musicgenre project. Evaluation protocol: **{protocol}**. A *random* split puts
tracks of one artist on both sides (it is the Hugging Face audio course's split, for
comparison); *filtered* is the artist-conscious split of Kereliuk, Sturm & Larsen (2015).
{selection}

## Evaluation

| metric | value |
|---|---|
{scores}

## Training settings

| setting | value |
|---|---|
{rows}

## Use

```python
from transformers import pipeline
classify = pipeline("audio-classification", model="PATH_OR_ID", top_k=None)  # all ten genres
classify(samples_16khz_mono)                                                    # a numpy array at 16 kHz
```

or `musicgenre predict --model PATH_OR_ID song.mp3`, or the musicgenre app (`--models PATH_OR_ID`).

## Reproduce

```
{command}
```
"""


def finetune(model_args, data_args, training_args, command: str) -> dict:
    """Fine-tune and evaluate; write the checkpoint, metrics, model card and run record to ``output_dir``.

    ``model_args`` / ``data_args`` are the script's argument dataclasses (model_name_or_path,
    model_revision, cache_dir, freeze_feature_encoder, attention_mask, ignore_mismatched_sizes;
    data_dir or dataset_name, protocol, split and duration options), ``training_args`` transformers'
    TrainingArguments. Returns the final evaluation metrics.
    """
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, Trainer, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    if bool(data_args.data_dir) == bool(data_args.dataset_name):
        raise DataError("give exactly one of --data_dir and --dataset_name")
    set_seed(training_args.seed)
    hub = {"revision": model_args.model_revision, "cache_dir": model_args.cache_dir}

    extractor = AutoFeatureExtractor.from_pretrained(
        model_args.model_name_or_path, do_normalize=True, return_attention_mask=model_args.attention_mask, **hub
    )
    rate = extractor.sampling_rate
    data_dir = data_args.data_dir
    if not data_dir:
        with training_args.main_process_first(desc="writing the Hub dataset to disk"):  # one process writes, the rest wait
            data_dir = export_hub_dataset(
                data_args.dataset_name,
                data_args.dataset_export_dir,
                data_args.dataset_config_name,
                data_args.audio_column_name,
                data_args.label_column_name,
            )
    clips, failed = load_clips(data_dir, rate)
    for path, error in failed.items():
        print(f"unreadable, left out: {path}: {error}", flush=True)
    train, evaluation, protocol = split_clips(clips, data_args.protocol, data_args.test_size, data_args.split_seed)
    train = subset(train, data_args.max_train_samples, training_args.seed)
    evaluation = subset(evaluation, data_args.max_eval_samples, training_args.seed)
    crop = data_args.train_crop_seconds or data_args.max_duration_seconds
    train_set = TrainCrops(train, rate, crop, random_crop=data_args.train_crop_seconds is not None)
    eval_set = EvalWindows(evaluation, rate, crop, whole_clips=data_args.eval_whole_clips)
    print(f"{protocol}: {len(train)} training clips, {len(evaluation)} evaluation clips ({len(eval_set)} windows)", flush=True)

    config = AutoConfig.from_pretrained(
        model_args.model_name_or_path,
        num_labels=len(GENRES),
        id2label=dict(enumerate(GENRES)),
        label2id={g: i for i, g in enumerate(GENRES)},
        finetuning_task="audio-classification",
        **hub,
    )
    config.window_seconds = crop  # musicgenre's loader classifies long audio in windows of this length
    model = AutoModelForAudioClassification.from_pretrained(
        model_args.model_name_or_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub
    )
    if model_args.freeze_feature_encoder:
        model.freeze_feature_encoder()

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=Collator(extractor, model_args.attention_mask),
        compute_metrics=ClipMetrics(eval_set),
        processing_class=extractor,
    )
    last = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
    if last and not training_args.resume_from_checkpoint:
        print(f"resuming from {last}", flush=True)
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or last)
    trainer.save_model()  # the best epoch's weights (load_best_model_at_end), as safetensors
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    trainer.save_state()

    if trainer.is_world_process_zero():
        settings = {
            "protocol": protocol,
            "training clips": len(train),
            "evaluation clips": len(evaluation),
            "training crop (s)": f"{crop:g}" + (" (random)" if data_args.train_crop_seconds else " (first)"),
            "evaluation": "all windows, averaged" if data_args.eval_whole_clips else f"first {crop:g} s",
            **{
                k: getattr(training_args, k)
                for k in ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_steps")
            },
            "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
            "frozen feature encoder": model_args.freeze_feature_encoder,
            "best epoch chosen on the evaluation clips": training_args.load_best_model_at_end,
            "seed": training_args.seed,
        }
        card = model_card(training_args.output_dir, model_args.model_name_or_path, protocol, metrics, settings, command)
        with atomic_open(os.path.join(training_args.output_dir, "README.md")) as fh:
            fh.write(card)
        run = {
            "model": asdict(model_args),
            "data": asdict(data_args),
            "settings": settings,
            "metrics": metrics,
            "command": command,
        }
        write_json_atomic(os.path.join(training_args.output_dir, "musicgenre_run.json"), run)
    return metrics
