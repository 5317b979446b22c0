"""The probe family: a linear head (robust: up to three routed heads) on the pretrained musicnn backbone's
embeddings, the default model. ``model`` loads, saves and runs it; ``train`` embeds GTZAN and cross-validates
the head (nested: layer and C), ``top`` fine-tunes musicnn's top on the same folds, ``robust`` and
``robust_views`` fit the shipped robust heads."""

from __future__ import annotations

from musicgenre.families.family import Family, lazy

FORMAT = "musicgenre-probe"

FAMILY = Family(
    name="probe",
    title="musicnn probe (pretrained, frozen)",
    format=FORMAT,
    load=lazy(f"{__name__}.model", "load_probe"),
    save=lazy(f"{__name__}.model", "save_probe"),
    bundled=("musicnn",),
    hub_kind="probe",
    hub_library="musicgenre",
    served_as="pretrained musicnn + linear probe",
)
