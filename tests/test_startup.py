"""Start-up imports only what the command uses (timings live in benchmarks/startup.py, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, write_audio

HEAVY = ("torch", "keras", "transformers", "gradio", "tensorflow", "onnxruntime")


def _imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_cli_imports_no_model_framework():
    assert _imported_after("import musicgenre.cli; musicgenre.cli.build_parser()") == []


def _predicting(spec: str, clip) -> str:
    imports = "from musicgenre.families import resolve_model; from musicgenre.models.predict import predict_file"
    return f"{imports}\npredict_file(resolve_model({spec!r}), {str(clip)!r})"


# Neither librosa's code (or numba) nor scikit-learn nor scipy's slow-to-import parts: every bundled model
# computes its features or spectrogram in NumPy and runs its head in NumPy or ONNX Runtime.
SLOW = {"numba", "librosa.core", "sklearn", "skops", "scipy.signal", "scipy.stats", "pandas"}


def _without_slow_imports(code: str) -> str:
    return code + f"\nimport sys\nassert not {SLOW!r} & set(sys.modules), {SLOW!r} & set(sys.modules)"


def test_the_bundled_feature_model_predicts_with_numpy_alone(tmp_path):
    """Its features are NumPy (``musicgenre.audio.spectral``) and its LDA pipeline a NumPy head (``musicgenre.models.linear``)."""
    code = _without_slow_imports(_predicting("bundled:shallow", write_audio(tmp_path / "clip.wav", seconds=6.0)))
    assert _imported_after(code) == []


def test_the_default_model_needs_only_onnxruntime_and_no_librosa_sklearn_or_torch(tmp_path):
    """The pretrained probe: NumPy mel, ONNX backbone, NumPy head."""
    code = _without_slow_imports(_predicting("bundled", write_audio(tmp_path / "clip.wav", seconds=6.0)))
    assert _imported_after(code) == ["onnxruntime"]


def test_skops_loads_without_discovering_every_estimator():
    """The trust list is ours alone: skops' scikit-learn-wide default list (and its imports) never forms."""
    code = (
        "from musicgenre.families import resolve_model\n"
        "model = resolve_model('bundled:shallow', runtime='sklearn')  # the skops pipeline, not the NumPy head\n"
        "assert type(model.pipeline).__name__ == 'Pipeline', type(model.pipeline)\n"
        "from skops.io import _trusted_types as t\n"
        "assert t.SKLEARN_ESTIMATOR_TYPE_NAMES == [], t.SKLEARN_ESTIMATOR_TYPE_NAMES[:3]"
    )
    assert _imported_after(code) == []


def test_the_bundled_cnn_needs_no_keras_or_torch_to_predict(tmp_path):
    code = _without_slow_imports(_predicting("bundled:cnn", write_audio(tmp_path / "clip.wav", seconds=6.0)))
    assert _imported_after(code) == ["onnxruntime"]
