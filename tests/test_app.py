"""The app as its users meet it: a real server on 127.0.0.1, called through gradio_client and a real browser.

The server runs offline (HF_HUB_OFFLINE=1) with its default MODEL_ID, which cannot load here, so it
also shows the offline notice; it serves the three bundled models (the pretrained musicnn probe, the
handcrafted-feature model, the CNN) and the tiny random HuBERT checkpoint.
"""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, SHARED, synth, write_audio

from musicgenre.data.gtzan import GENRES
from musicgenre.models.musicnn import load_backbone
from musicgenre.serving.service import BUNDLED_CNN_NAME, BUNDLED_NAME, BUNDLED_PROBE_NAME, DEFAULT_MODEL_ID

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "wav": write_audio(folder / "song.wav", seconds=50.0, channels=2),  # two 30 s windows (30 + 20)
        "mp3": write_audio(folder / "song.mp3", seconds=12.0, seed=1),
    }


def _check(result: dict, names: list[str]) -> None:
    assert [r["model"] for r in result["results"]] == names
    for r in result["results"]:
        assert list(r["scores"]) == list(GENRES)
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-6)
        assert r["genre"] == max(r["scores"], key=r["scores"].get)


@pytest.mark.slow
def test_models_endpoint_reports_the_offline_start(app, client, tiny_hubert):
    assert "the idle queue looks for requests every 0.05 s" in app.log_tail(100_000)  # gradio_queue: not every 1 ms
    info = client.predict(api_name="/models")
    names = [BUNDLED_PROBE_NAME, BUNDLED_NAME, BUNDLED_CNN_NAME, f"hubert: {tiny_hubert.name}"]
    assert [m["name"] for m in info["models"]] == names
    assert info["models"][0]["backbone"] == "MSD_musicnn" and info["models"][0]["runtime"] == "onnxruntime"
    assert any(DEFAULT_MODEL_ID in n and "cannot be reached" in n for n in info["notices"])


def test_wav_mp3_bad_file_then_good_file_again(client, clips, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    names = [m["name"] for m in client.predict(api_name="/models")["models"]]
    wav = client.predict(handle_file(clips["wav"]), "all", api_name="/predict")
    _check(wav, names)
    assert wav["duration_seconds"] == pytest.approx(50.0)
    assert [r["windows"] for r in wav["results"]] == [2, 2, 17, 2]  # 30 s windows, and the CNN's 3 s ones (2 s tail padded)
    assert len(wav["tags"]) == 10 and all(set(t) == {"tag", "probability"} for t in wav["tags"])  # the tagger's panel
    mp3 = client.predict(handle_file(clips["mp3"]), BUNDLED_NAME, api_name="/predict")
    _check(mp3, [BUNDLED_NAME])
    assert "tags" not in mp3  # no probe asked, no tagger run
    probe = client.predict(handle_file(clips["mp3"]), BUNDLED_PROBE_NAME, api_name="/predict")
    _check(probe, [BUNDLED_PROBE_NAME])
    assert probe["tags"][0]["probability"] >= probe["tags"][-1]["probability"]

    bad = tmp_path / "notes.mp3"
    bad.write_text("these are my notes, not music\n" * 40)
    with pytest.raises(AppError, match="not a readable audio file"):
        client.predict(handle_file(bad), "all", api_name="/predict")
    with pytest.raises(AppError, match="choose one of"):
        client.predict(handle_file(clips["mp3"]), "no such model", api_name="/predict")

    _check(client.predict(handle_file(clips["wav"]), "all", api_name="/predict"), names)  # still serving


def test_concurrent_requests_share_the_models(client, clips):
    from gradio_client import handle_file

    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(client.predict, handle_file(clips["mp3"]), "all", api_name="/predict") for _ in range(4)]
        results = [job.result(timeout=300) for job in jobs]
    assert all(_same_scores(r, results[0]) for r in results)  # the same answers as one at a time would give


def _same_scores(a: dict, b: dict) -> bool:
    return all(x["scores"] == pytest.approx(y["scores"], abs=1e-9) for x, y in zip(a["results"], b["results"], strict=True))


def test_uploads_over_the_limit_are_refused(server, client, tmp_path):
    import httpx
    import numpy as np
    import soundfile as sf
    from gradio_client import handle_file

    big = tmp_path / "big.wav"  # 11 MB of noise, over the server's 8 MB limit
    sf.write(big, (np.random.default_rng(0).normal(size=22050 * 250) * 0.1).astype(np.float32), 22050, subtype="PCM_16")
    with open(big, "rb") as fh:
        response = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.wav", fh, "audio/wav")}, timeout=60)
    assert response.status_code == 413
    with pytest.raises(ValueError, match="maximum file size"):  # gradio_client knows the limit, too
        client.predict(handle_file(big), "all", api_name="/predict")


def mic_recording(path: Path, music: float = 6.0, edge: float = 2.0, noise_dbfs: float | None = None, sr: int = 48000) -> Path:
    """What a browser records: 48 kHz, ``edge`` s of silence (or room noise) before and after ``music`` s of music."""
    import numpy as np
    import soundfile as sf

    quiet = np.zeros(int(edge * sr))
    if noise_dbfs is not None:
        quiet = np.random.default_rng(0).normal(size=quiet.size) * 10 ** (noise_dbfs / 20)
    sf.write(path, np.concatenate([quiet, synth(music, sr), quiet]).astype(np.float32), sr, subtype="PCM_16")
    return path


def test_microphone_recordings_trimmed_and_every_answer_judged(client, tmp_path):
    """A 48 kHz recording with silent edges is trimmed; a quiet room is answered, not refused, and marked uncertain."""
    from gradio_client import handle_file

    recording = client.predict(handle_file(mic_recording(tmp_path / "audio.wav")), BUNDLED_NAME, True, api_name="/predict")
    assert 6.0 <= recording["duration_seconds"] <= 6.6 and recording["trimmed_seconds"]["end"] > 1.5
    assert recording["quality"]["duration_s"] == pytest.approx(recording["duration_seconds"], abs=0.01)
    assert isinstance(recording["results"][0]["uncertain"], bool)
    room = mic_recording(tmp_path / "room.wav", music=0.0, edge=3.0, noise_dbfs=-70)
    quiet = client.predict(handle_file(room), "all", True, api_name="/predict")
    assert quiet["duration_seconds"] == pytest.approx(6.0) and quiet["quality"]["notes"]
    assert all(r["uncertain"] for r in quiet["results"])


def stream(server: str, api_name: str, chunks: list[Path]) -> list[str]:
    """Drive a streaming event as the page does (gradio_client cannot): join the queue with the first chunk, send
    each next one to /stream/{event_id} when the previous answer arrives, then close it. Returns the answers."""
    import httpx

    dependency = next(d for d in httpx.get(f"{server}config").json()["dependencies"] if d.get("api_name") == api_name)
    api, session = f"{server}gradio_api", uuid.uuid4().hex

    def body(chunk: Path) -> dict:
        with open(chunk, "rb") as fh:
            (path,) = httpx.post(f"{api}/upload", files={"files": (chunk.name, fh, "audio/wav")}).json()
        data = [{"path": path, "meta": {"_type": "gradio.FileData"}, "is_stream": True}, None]  # None: the State's
        return {"data": data, "fn_index": dependency["id"], "trigger_id": dependency["targets"][0][0], "session_hash": session}

    event = httpx.post(f"{api}/queue/join", json=body(chunks[0])).json()["event_id"]
    answers: list[str] = []
    with httpx.stream("GET", f"{api}/queue/data", params={"session_hash": session}, timeout=120) as sse:
        for line in sse.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_streaming":
                answers.append(message["output"]["data"][0])
                if len(answers) < len(chunks):
                    httpx.post(f"{api}/stream/{event}", json=body(chunks[len(answers)]))
                else:
                    httpx.post(f"{api}/stream/{event}/close")
            elif message.get("msg") == "process_completed":
                assert message["success"], message
                break
    return answers


def test_live_mode_answers_as_chunks_arrive(server, tmp_path):
    """Chunks of 2 s, as the microphone streams them: listening until 3 s are heard, then a genre each time."""
    import numpy as np
    import soundfile as sf

    chunks = []
    for i in range(4):
        chunks.append(tmp_path / f"chunk{i}.wav")
        sf.write(chunks[-1], (synth(2.0, 48000, seed=i) * 32767).astype(np.int16), 48000)
    answers = stream(server, "live", chunks)
    assert len(answers) == 4 and answers[0].startswith("Listening")
    heard = [re.search(rf"\*\*({'|'.join(GENRES)})\*\* \d+% · last (\d+) s", a) for a in answers[1:]]
    assert [int(m.group(2)) for m in heard] == [4, 6, 8]  # the answer follows the growing recording


@contextmanager
def browser_page(*flags: str):
    """A page in headless Chromium (the system's: Playwright's own browser downloads are impossible here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", *flags]
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.grant_permissions(["microphone"])
            yield context.new_page()
        finally:
            browser.close()


@pytest.mark.slow
@needs_chromium
def test_browser_upload_classify_and_bad_file(server, clips, tmp_path):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + bytes(64))
    with browser_page() as page:
        page.goto(server)
        expect(page.locator("#header")).to_contain_text("cannot be reached")  # the offline notice is visible

        page.locator("#audio input[type=file]").set_input_files(str(clips["wav"]))
        page.locator("#classify").click()
        labels = page.locator(".genre-label")
        expect(labels.first).to_be_visible(timeout=120_000)
        expect(page.locator("#summary")).to_contain_text("Analysed 50.0 s", timeout=120_000)
        shown = [labels.nth(i).inner_text() for i in range(labels.count()) if labels.nth(i).is_visible()]
        assert len(shown) == 4  # all models, side by side
        for text in shown:
            top = text.split("\n")[1].strip()  # the label's heading line: the predicted genre
            assert top in GENRES
        expect(page.get_by_text("genre probabilities over time").first).to_be_visible()  # 2 windows: a timeline
        expect(page.locator("#mel img")).to_be_visible()  # the mel-spectrogram
        tags = page.locator("#tags")
        expect(tags).to_contain_text("What the pretrained tagger hears")  # the tagger's panel, with its top tag
        assert tags.inner_text().split("\n")[1].strip() in load_backbone().tag_names
        page.screenshot(path=str(ARTIFACTS / "app-classified.png"), full_page=True)

        page.locator("#audio button[aria-label='Clear']").first.click()
        page.locator("#audio input[type=file]").set_input_files(str(bad))
        page.locator("#classify").click()
        expect(page.locator("#summary")).to_contain_text("not a readable audio file", timeout=60_000)
        assert not any(labels.nth(i).is_visible() for i in range(labels.count()))  # the old results are gone
        page.screenshot(path=str(ARTIFACTS / "app-bad-file.png"), full_page=True)

        page.locator("#audio button[aria-label='Clear']").first.click()  # a quiet room: answered, with why to doubt it
        page.locator("#audio input[type=file]").set_input_files(str(mic_recording(tmp_path / "room.wav", 0.0, 3.0, -70)))
        page.locator("#classify").click()
        expect(page.locator("#summary")).to_contain_text("Recording:", timeout=60_000)
        assert page.locator("#summary").inner_text().count("uncertain: the recording") == 4  # every model's answer


def fake_microphone_file(path: Path) -> Path:
    """What Chromium's fake microphone plays (in a loop): a second of silence, then 12 s of music, at 48 kHz.

    A real GTZAN rock clip when the shared data is here, else the synthetic clip: the page must answer either way."""
    import numpy as np
    import soundfile as sf

    from musicgenre.audio.io import load_audio

    clip = SHARED / "gtzan_mini" / "genres_original" / "rock" / "rock.00000.wav"
    music = load_audio(clip, sr=48000, max_seconds=12.0).samples if clip.is_file() else synth(12.0, 48000)
    sf.write(path, np.concatenate([np.zeros(48000, np.float32), music]), 48000, subtype="PCM_16")
    return path


@pytest.mark.slow
@needs_chromium
def test_browser_microphone_recording_and_live_mode(server, tmp_path):
    """Chromium's fake microphone plays a 48 kHz file: a recording gets an answer, and live mode a genre while recording."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    microphone = fake_microphone_file(tmp_path / "microphone.wav")
    flags = (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    )
    with browser_page(*flags) as page:
        page.goto(server)
        page.locator("#audio button[aria-label='Record audio']").click()
        page.locator("#audio button", has_text="Record").first.click()
        page.wait_for_timeout(4000)
        page.locator("#audio button", has_text="Stop").first.click()
        page.locator("#model input").click()
        page.get_by_role("option", name=BUNDLED_NAME).click()
        page.locator("#classify").click()
        expect(page.locator("#summary")).to_contain_text("Analysed", timeout=60_000)
        summary = page.locator("#summary").inner_text()
        assert "silence trimmed" in summary  # the file's silent first second, recorded: a microphone recording
        assert BUNDLED_NAME in summary and "hubert" not in summary and BUNDLED_CNN_NAME not in summary  # one model: its result
        seconds = float(re.search(r"Analysed ([0-9.]+) s", summary).group(1))
        assert 1.0 < seconds < 10.0

        page.locator("#live-audio button", has_text="Record").first.click()
        genre = re.compile(rf"({'|'.join(GENRES)}) \d+% · last \d+ s")
        expect(page.locator("#live")).to_contain_text(genre, timeout=30_000)  # the first answer, within seconds
        page.screenshot(path=str(ARTIFACTS / "app-microphone.png"), full_page=True)
        page.locator("#live-audio button", has_text="Stop").first.click()


def _names(requirements: list[str]) -> dict[str, str]:
    out = {}
    for line in requirements:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]
            out[name.lower().replace("_", "-")] = line
    return out


def test_space_files_agree_with_the_package():
    """The Space installs requirements.txt, pip installs pyproject.toml: the same packages and pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    space = _names((ROOT / "requirements.txt").read_text().splitlines())
    package = _names(project["dependencies"])
    assert space == package
    readme = (ROOT / "README.md").read_text()
    front = readme.split("---")[1]
    gradio_pin = package["gradio"].split("==")[1]
    assert f"sdk_version: {gradio_pin}" in front and "sdk: gradio" in front and "app_file: app.py" in front
    assert DEFAULT_MODEL_ID in front
    assert (ROOT / "packages.txt").read_text().split() == ["ffmpeg"]
