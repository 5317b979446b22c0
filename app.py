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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from musicgenre.arguments import parse_dataclasses
from musicgenre.audio.io import DEFAULT_MAX_SECONDS
from musicgenre.errors import MusicGenreError
from musicgenre.models.runtime import RUNTIME_VARIABLE, RUNTIMES, check_runtime
from musicgenre.serving.gradio_import import import_gradio
from musicgenre.serving.gradio_queue import POLL_SECONDS, quiet_idle_queue
from musicgenre.serving.malloc import limit_malloc_arenas
from musicgenre.serving.service import (
    DEFAULT_MODEL_ID,
    LIVE_MIN_SECONDS,
    LIVE_SECONDS,
    Analysis,
    LiveAnswer,
    LiveBuffer,
    ModelSet,
    analyse,
    live_answer,
    load_models,
    mel_axis_ticks,
    mel_spectrogram_db,
    ordered_scores,
)
from musicgenre.util.cache import CACHE_VARIABLE, cache_root_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

gr = import_gradio()  # `import gradio` without its ~3 s of rewriting its own type stubs

log = logging.getLogger("musicgenre.app")
COMPARE = "all models, side by side"
LIVE_EVERY = 3.0  # seconds of microphone audio per live chunk: a new answer about this often
LIVE_TIME_LIMIT = 120  # seconds one live session may run; a stream holds a worker while it lasts
LIVE_SESSIONS = 4  # live streams at once (each classifies ~12 s every 3 s: a fraction of a core)


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
    runtime: str | None = field(
        default_factory=lambda: os.environ.get(RUNTIME_VARIABLE) or None,
        metadata={
            "help": f"how the models run, one of {', '.join(RUNTIMES)} (env {RUNTIME_VARIABLE}; default: ONNX Runtime and "
            "NumPy heads; torch, keras, sklearn: the reference implementations, musicgenre.models.runtime)"
        },
    )
    cache_dir: str = field(
        default_factory=lambda: str(cache_root_of(os.environ)),
        metadata={"help": f"where librosa's compiled code and ONNX exports are kept (env {CACHE_VARIABLE})"},
    )


def run_analysis(path: str | None, choice: str | None, models: ModelSet, max_seconds: float, recorded: bool = False) -> Analysis:
    """``analyse`` with every failure turned into a message for the page; the server keeps running.

    ``recorded``: a microphone recording, whose silent start and end (the room before and after the
    music) are trimmed; uploads are analysed as they are."""
    if not path:
        raise gr.Error("Upload an audio file or record something first.", print_exception=False)
    try:
        return analyse(path, models.select(None if choice in (None, COMPARE) else choice), max_seconds, trim=recorded)
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
    """What was analysed, what the recording is like, and each model's answer, uncertain ones marked (never withheld)."""
    lines = [f"Analysed **{analysis.duration:.1f} s** of audio{trim_note(analysis.trimmed)}."]
    if analysis.truncated:
        lines.append(f"⚠️ {analysis.truncation_notice()}")
    lines += quality_lines(analysis.quality)
    for r in analysis.results:
        d = r.to_dict()
        line = f"- **{r.name}**: {d['genre']} ({d['scores'][d['genre']]:.0%}), {d['windows']} window(s), {r.seconds:.2f} s"
        lines.append(line + uncertain_mark(analysis, r))
    return "\n".join(lines)


def uncertain_mark(analysis: Analysis, result) -> str:
    """An uncertain answer's mark: a poor recording is described once above, a model's own doubt on its line."""
    if not result.uncertain:
        return ""
    severe = analysis.quality is not None and analysis.quality.severe
    return f" — ⚠️ uncertain: {'the recording (see above)' if severe else analysis.uncertainty_note(result)}"


def trim_note(trimmed: tuple[float, float] | None) -> str:
    """Say what was cut from a microphone recording, so a shorter duration than recorded is not a surprise."""
    if not trimmed or not any(trimmed):
        return ""
    return f" (silence trimmed: {trimmed[0]:.1f} s at the start, {trimmed[1]:.1f} s at the end)"


def quality_lines(quality, severe: bool = True) -> list[str]:
    """The recording's quality notes on one line (a poor recording explains a doubtful answer); none for a clean one.

    ``severe=False`` leaves out the severe ones, for a panel whose uncertainty note already gives them."""
    notes = [i.note for i in (quality.issues if quality is not None else []) if severe or not i.severe]
    return [f"🎙️ Recording: {'; '.join(notes)}."] if notes else []


def live_markdown(answer: LiveAnswer | None, buffer: LiveBuffer) -> str:
    """The live panel: the top genre and its probability, marked when uncertain, with the recording's notes."""
    if answer is None:
        return f"Listening… ({buffer.seconds:.0f} s of the {LIVE_MIN_SECONDS:g} s needed for a first answer)"
    text = f"**{answer.genre}** {answer.probability:.0%} · last {answer.seconds:.0f} s · {answer.model}"
    note = answer.uncertainty_note()
    lines = [text, *([f"⚠️ uncertain: {note}"] if note else []), *quality_lines(answer.quality, severe=False)]
    return "\n\n".join(lines)


def header(models: ModelSet, max_seconds: float, max_upload: str) -> str:
    names = "\n".join(f"- `{name}`" for name in models.models)
    text = (
        "# 🎵 Music genre classifier\n"
        "Upload a recording or use the microphone; choose a model or compare them all (or record with the live "
        "microphone for a genre every few seconds). The ten genres are "
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
                recorded = gr.State(False)  # whether the audio above came from the microphone (then trimmed)
                live_audio = gr.Audio(
                    sources=["microphone"], type="numpy", streaming=True, elem_id="live-audio",
                    label=f"Live: the genre while you record (every {LIVE_EVERY:g} s, of the last {LIVE_SECONDS:g} s)",
                )  # fmt: skip
                live = gr.Markdown(elem_id="live")
                live_state = gr.State(LiveBuffer())
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

        def classify(path: str | None, model: str | None, from_microphone: bool = False):
            try:
                analysis = run_analysis(path, model, models, max_seconds, from_microphone)
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
            [audio, choice, recorded],
            [info, *columns, *labels, *plots, tags, mel],
            api_visibility="private",
            concurrency_id="analysis",
        )
        audio.stop_recording(lambda: True, None, recorded, api_visibility="private", queue=False)
        audio.upload(lambda: False, None, recorded, api_visibility="private", queue=False)
        audio.clear(lambda: False, None, recorded, api_visibility="private", queue=False)
        add_live_mode(live_audio, live_state, live, models)

        def predict(audio: gr.FileData, model: str = "all", recorded: bool = False) -> dict:
            """Genre probabilities of one audio file.

            model: "all" or one name from /models. recorded: true for a microphone recording, whose
            leading and trailing silence is trimmed first (trimmed_seconds says how much). Returns
            duration_seconds, truncated, quality (the recording's levels, band, noise and plain-language
            notes) and, per model, the top genre, all genre scores (probabilities summing to 1),
            uncertain (a severe quality issue or a low top score), windows and seconds; with the
            pretrained probe among them, also "tags": the tagger's top tags and probabilities.
            """
            path = audio["path"] if isinstance(audio, dict) else getattr(audio, "path", None)
            return run_analysis(path, model, models, max_seconds, recorded).to_dict()

        def list_models() -> dict:
            """The models this app serves, and notices about models it could not load."""
            return {"models": models.describe(), "notices": models.notices}

        gr.api(predict, api_name="predict", concurrency_id="analysis")
        gr.api(list_models, api_name="models")
    return demo


def add_live_mode(live_audio: gr.Audio, state: gr.State, panel: gr.Markdown, models: ModelSet) -> None:
    """While the microphone records, classify its last ``LIVE_SECONDS`` every ``LIVE_EVERY`` s with the first model.

    The stream is also the API endpoint ``/live`` (a streaming event: gradio_client cannot drive it, the
    queue's /stream/{event_id} route can). It holds a worker for its duration, hence its own concurrency
    group: live sessions never take the slots of full analyses.
    """
    name = next(iter(models.models))

    def listen(chunk: tuple[int, np.ndarray] | None, buffer: LiveBuffer):
        if chunk is None:
            return gr.skip(), buffer
        buffer = buffer.add(*chunk)
        try:
            return live_markdown(live_answer(name, models.models[name], buffer), buffer), buffer
        except MusicGenreError as exc:
            return f"⚠️ {exc}", buffer
        except Exception as exc:  # a bug or a library surprise: say so, keep listening
            log.exception("live classification failed")
            return f"⚠️ Unexpected error ({type(exc).__name__})", buffer

    live_audio.stream(
        listen, [live_audio, state], [panel, state], stream_every=LIVE_EVERY, time_limit=LIVE_TIME_LIMIT,
        concurrency_id="live", concurrency_limit=LIVE_SESSIONS, api_name="live",
    )  # fmt: skip
    live_audio.start_recording(lambda: LiveBuffer(), None, state, api_visibility="private", queue=False)


def main(argv: list[str] | None = None) -> None:
    from musicgenre.features import jitcache

    (args,) = parse_dataclasses(AppArguments, argv=argv, description=__doc__)
    cache_root = Path(args.cache_dir)
    jitcache.configure(cache_root)  # as the CLI does: librosa's compiled code (the shallow model's reference path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_malloc_arenas()  # before the server's worker threads exist: memory levels off under load
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal HTTP request otherwise
    runtime = check_runtime(args.runtime, f"--runtime (env {RUNTIME_VARIABLE})")
    models = load_models(args.model_id or None, args.models, runtime=runtime, cache_root=cache_root)
    models.warm_up()
    log.info("serving %s", list(models.models))
    for notice in models.notices:
        log.warning("%s", notice)
    demo = build_demo(models, args.max_seconds, args.max_upload)
    # Gradio imports matplotlib in its first event (utils.MatplotlibBackendMananger, ~0.6 s): start
    # that import now, while the server starts (mostly waiting), instead of in the first request.
    threading.Thread(target=importlib.import_module, args=("matplotlib.figure",), daemon=True).start()
    demo.queue(default_concurrency_limit=args.concurrency_limit)
    if quiet_idle_queue(demo):
        log.info("the idle queue looks for requests every %g s", POLL_SECONDS)
    else:
        log.warning("this Gradio's queue cannot be told to sleep while idle: it keeps ~5%% of a core busy")
    demo.launch(max_file_size=args.max_upload)


if __name__ == "__main__":
    main()
