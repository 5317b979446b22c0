"""The CNN family: a small VGG-like Keras 3 network on log-mel spectrograms, served through its ONNX copy.
``model`` builds, loads, saves and runs it; ``train`` is its cross-validation, final fit and fold fit."""

from __future__ import annotations

from musicgenre.families.family import Family, lazy

FORMAT = "musicgenre-cnn"

FAMILY = Family(
    name="cnn",
    title="CNN (Keras, log-mel)",
    format=FORMAT,
    load=lazy(f"{__name__}.model", "load_cnn"),
    save=lazy(f"{__name__}.model", "save_cnn"),
    bundled=("cnn",),
    hub_kind="keras",
    hub_library="keras",
    served_as="CNN on mel spectrograms",
)
