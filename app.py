"""musicgenre's Gradio app (the Hugging Face Space): upload or record music, get its genre.

    python app.py [--model_id HUB_ID_OR_FOLDER] [--models MORE ...]

Serves on 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say otherwise. The
models (a fine-tuned DistilHuBERT from the Hub, named by MODEL_ID; the bundled pretrained musicnn
probe, handcrafted-feature model and CNN; any folders given) are loaded once at start; a model that cannot be loaded,
e.g. offline, is reported on the page and the others are served. The work happens in
``musicgenre.serving.service``; this file only lays it out.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import importlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from musicgenre.audio.io import DEFAULT_MAX_SECONDS
from musicgenre.errors import MusicGenreError
from musicgenre.serving.gradio_import import import_gradio
from musicgenre.serving.malloc import limit_malloc_arenas
from musicgenre.serving.service import (
    DEFAULT_MODEL_ID,
    Analysis,
    ModelSet,
    analyse,
    load_models,
    mel_axis_ticks,
    mel_spectrogram_db,
    ordered_scores,
)
from musicgenre.util.args import parse_dataclasses

if TYPE_CHECKING:
    from matplotlib.figure import Figure

gr = import_gradio()  # `import gradio` without its ~3 s of rewriting its own type stubs

log = logging.getLogger("musicgenre.app")
COMPARE = "all models, side by side"


@dataclass
class AppArguments:
    model_id: str = field(
        default_factory=lambda: os.environ.get("MODEL_ID", DEFAULT_MODEL_ID),
        metadata={"help": "Hub id or folder of a transformers audio classifier (env MODEL_ID; '' for none)"},
    )
    models: list[str] = field(default_factory=list, metadata={"help": "more model folders or Hub ids to serve"})
    max_seconds: float = field(default=DEFAULT_MAX_SECONDS, metadata={"help": "analyse at most this much of a recording"})
    max_upload: str = field(default="100mb", metadata={"help": "largest accepted upload"})
    concurrency_limit: int = field(
        default_factory=lambda: int(os.environ.get("CONCURRENCY_LIMIT", "2")),
        metadata={"help": "requests processed at once (env CONCURRENCY_LIMIT); the rest wait in the queue"},
    )


def run_analysis(path: str | None, choice: str | None, models: ModelSet, max_seconds: float) -> Analysis:
    """``analyse`` with every failure turned into a message for the page; the server keeps running."""
    if not path:
        raise gr.Error("Upload an audio file or record something first.", print_exception=False)
    try:
        return analyse(path, models.select(None if choice in (None, COMPARE) else choice), max_seconds)
    except MusicGenreError as exc:
        raise gr.Error(str(exc), title="Cannot classify this recording", print_exception=False) from None
    except Exception as exc:  # a bug or a library surprise: log it, tell the user, keep serving
        log.exception("unexpected failure on %s", path)
        raise gr.Error(f"Unexpected error ({type(exc).__name__}); please try another recording.") from None


def timeline(result) -> pd.DataFrame:
    """Long format for gr.LinePlot: one row per window and genre."""
    rows = [
        {"window start (s)": float(start), "genre": label, "probability": float(p)}
        for start, probs in zip(result.window_starts, result.window_probs, strict=True)
        for label, p in zip(result.labels, probs, strict=True)
    ]
    return pd.DataFrame(rows)


def mel_figure(analysis: Analysis) -> Figure:
    from matplotlib.figure import Figure  # here: the API never draws, and the import costs ~0.6 s of start-up

    db, sr, hop = mel_spectrogram_db(analysis.samples, analysis.sample_rate)
    fig = Figure(figsize=(10, 3.2), layout="constrained")  # not pyplot: nothing global to leak per request
    ax = fig.add_subplot()
    seconds = db.shape[1] * hop / sr
    image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, len(db)), interpolation="nearest")
    ax.set_yticks(*mel_axis_ticks(len(db), sr))
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Hz (mel scale)")
    fig.colorbar(image, ax=ax, format="%+.0f dB")
    ax.set_title("Mel-spectrogram")
    return fig


def summary(analysis: Analysis) -> str:
    lines = [f"Analysed **{analysis.duration:.1f} s** of audio."]
    if analysis.truncated:
        lines.append(f"⚠️ {analysis.truncation_notice()}")
    for r in analysis.results:
        d = r.to_dict()
        lines.append(f"- **{r.name}**: {d['genre']} ({d['scores'][d['genre']]:.0%}), {d['windows']} window(s), {r.seconds:.2f} s")
    return "\n".join(lines)


def header(models: ModelSet, max_seconds: float, max_upload: str) -> str:
    names = "\n".join(f"- `{name}`" for name in models.models)
    text = (
        "# 🎵 Music genre classifier\n"
        "Upload a recording or use the microphone; choose a model or compare them all. The ten genres are "
        "GTZAN's (blues, classical, country, disco, hip-hop, jazz, metal, pop, reggae, rock). Recordings are "
        f"analysed window by window (up to {max_seconds / 60:g} minutes; uploads up to {max_upload.upper()}).\n\n"
        f"**Models served:**\n{names}\n"
    )
    for notice in models.notices:
        text += f"\n> ⚠️ {notice}\n"
    return text


def build_demo(models: ModelSet, max_seconds: float = DEFAULT_MAX_SECONDS, max_upload: str = "100mb") -> gr.Blocks:
    names = list(models.models)
    with gr.Blocks(title="Music genre classifier") as demo:
        gr.Markdown(header(models, max_seconds, max_upload), elem_id="header")
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Music", elem_id="audio")
                choice = gr.Dropdown(
                    [COMPARE, *names], value=COMPARE if len(names) > 1 else names[0], label="Model", elem_id="model"
                )
                button = gr.Button("Classify", variant="primary", elem_id="classify")
                info = gr.Markdown(elem_id="summary")
            with gr.Column(scale=2):
                columns, labels, plots = [], [], []
                with gr.Row():
                    for name in names:
                        with gr.Column(visible=False, min_width=240) as column:
                            labels.append(gr.Label(num_top_classes=10, label=name, elem_classes="genre-label"))
                            plots.append(
                                gr.LinePlot(
                                    x="window start (s)", y="probability", color="genre", y_lim=[0, 1],
                                    label=f"{name}: genre probabilities over time", visible=False,
                                )
                            )  # fmt: skip
                        columns.append(column)
                tags = gr.Label(
                    num_top_classes=10, label="What the pretrained tagger hears (musicnn's Last.fm tags, not genres)",
                    visible=False, elem_id="tags",
                )  # fmt: skip
                mel = gr.Plot(label="Mel-spectrogram", elem_id="mel")

        def classify(path: str | None, model: str | None):
            try:
                analysis = run_analysis(path, model, models, max_seconds)
            except gr.Error as exc:  # shown where the results go (and as a toast); old results are cleared
                gr.Warning(exc.message)
                hidden = [gr.update(visible=False)] * len(names)
                message = f"⚠️ **Cannot classify this recording.** {exc.message}"
                return [message, *hidden, *[None] * len(names), *hidden, gr.update(value=None, visible=False), None]
            done = {r.name: r for r in analysis.results}
            updates: list = [summary(analysis)]
            updates += [gr.update(visible=n in done) for n in names]
            updates += [ordered_scores(done[n]) if n in done else None for n in names]
            updates += [
                gr.update(value=timeline(done[n]), visible=True)
                if n in done and len(done[n].window_probs) > 1
                else gr.update(visible=False)
                for n in names
            ]
            tag_scores = {t["tag"]: t["probability"] for t in analysis.tags} if analysis.tags else None
            return [*updates, gr.update(value=tag_scores, visible=tag_scores is not None), mel_figure(analysis)]

        # The page and the API share one queue group, so --concurrency_limit bounds all analyses together.
        button.click(
            classify,
            [audio, choice],
            [info, *columns, *labels, *plots, tags, mel],
            api_visibility="private",
            concurrency_id="analysis",
        )

        def predict(audio: gr.FileData, model: str = "all") -> dict:
            """Genre probabilities of one audio file.

            model: "all" or one name from /models. Returns duration_seconds, truncated and, per
            model, the top genre, all genre scores (probabilities summing to 1), windows and seconds;
            with the pretrained probe among them, also "tags": the tagger's top tags and probabilities.
            """
            path = audio["path"] if isinstance(audio, dict) else getattr(audio, "path", None)
            return run_analysis(path, model, models, max_seconds).to_dict()

        def list_models() -> dict:
            """The models this app serves, and notices about models it could not load."""
            return {"models": models.describe(), "notices": models.notices}

        gr.api(predict, api_name="predict", concurrency_id="analysis")
        gr.api(list_models, api_name="models")
    return demo


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_dataclasses(AppArguments, argv=argv, description=__doc__)
    limit_malloc_arenas()  # before the server's worker threads exist: memory levels off under load
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal HTTP request otherwise
    models = load_models(args.model_id or None, args.models)
    models.warm_up()
    log.info("serving %s", list(models.models))
    for notice in models.notices:
        log.warning("%s", notice)
    demo = build_demo(models, args.max_seconds, args.max_upload)
    # Gradio imports matplotlib in its first event (utils.MatplotlibBackendMananger, ~0.6 s): start
    # that import now, while the server starts (mostly waiting), instead of in the first request.
    threading.Thread(target=importlib.import_module, args=("matplotlib.figure",), daemon=True).start()
    demo.queue(default_concurrency_limit=args.concurrency_limit).launch(max_file_size=args.max_upload)


if __name__ == "__main__":
    main()
