"""What the robustness study compares: the families, how each is fitted, and the settings of a run.

A family is fitted with the recipe of the model the package ships (``Recipes.bundled`` reads it from
the bundled models), so the study measures those models' recipes, not look-alikes. Every clip gets
its own reproducible randomness (``clip_seed``), so a degraded copy is the same audio whether a
view, a training copy or an external model's scoring makes it. The other modules of the study read
these; this one reads none of them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from musicgenre.audio.io import DEFAULT_MAX_SECONDS

STUDY_VERSION = 2  # bump when what a view holds changes: older cache entries are then ignored
DEGRADE_RATE = 22050  # as in ``study.stability``: the rate degradations run at (GTZAN's, the feature/CNN rate)
FAMILY_NAMES = {
    "features": "feature model (LDA, bundled recipe)",
    "features_table": "feature model (LDA, bundled recipe, + public table)",
    "probe": "musicnn probe (bundled recipe)",
    "cnn": "CNN (bundled recipe)",
}


@dataclass
class StudySettings:
    folds: int = field(default=5, metadata={"help": "grouped folds by track (the CNN's and probe's)"})
    seed: int = field(default=0, metadata={"help": "folds, fitting and every degradation's randomness"})
    degradations: list[str] | None = field(
        default=None, metadata={"help": "names from musicgenre.audio.degradations (default: all)"}
    )
    families: list[str] = field(default_factory=lambda: list(FAMILY_NAMES), metadata={"help": ", ".join(FAMILY_NAMES)})
    augment: list[str] = field(
        default_factory=lambda: ["phone"],
        metadata={"help": "degradations whose copies of the training clips make the '+aug' variants ('none': no variants)"},
    )
    augment_families: list[str] = field(default_factory=lambda: list(FAMILY_NAMES), metadata={"help": "families to augment"})
    models: list[str] = field(default_factory=list, metadata={"help": "also score these model folders / Hub ids as they are"})
    feature_table: str | None = field(
        default_factory=lambda: _shared_table(),
        metadata={"help": "public-schema 30 s table: features_table trains on its rows of every track outside the held-out fold"},
    )
    cnn_epochs: int = field(default=30, metadata={"help": "the CNN recipe's most epochs (early stopping decides)"})
    workers: int = field(default=2, metadata={"help": "processes computing the views"})
    max_seconds: float = DEFAULT_MAX_SECONDS

    def augmentations(self) -> list[str]:
        """The degradations the '+aug' variants train on: ``augment`` without 'none'."""
        return [a for a in self.augment if a.lower() != "none"]


@dataclass
class Recipes:
    """How each family is fitted and applied: read from the models the package ships, so the study tests those."""

    shallow_pipeline: object  # unfitted clone of the bundled pipeline
    shallow_window: float
    probe_normalise: bool
    probe_window: float
    cnn_window: float

    @classmethod
    def bundled(cls) -> Recipes:
        from sklearn.base import clone

        from musicgenre.families import FAMILIES, bundled_model_path, resolve_model

        load_pipeline = FAMILIES["shallow"].module("folder").load_pipeline

        shallow, probe, cnn = (resolve_model(f"bundled:{n}") for n in ("shallow", "musicnn", "cnn"))
        pipeline = clone(load_pipeline(bundled_model_path("shallow")))
        return cls(pipeline, shallow.window_seconds, probe.normalise, probe.window_seconds, cnn.window_seconds)


def _shared_table() -> str | None:
    """The shared data's public 30-second rows, when present: the default table of the features_table family."""
    from musicgenre.data.gtzan import default_shared_data

    table = default_shared_data() / "features_30_sec.csv"
    return str(table) if table.is_file() else None


def clip_seed(seed: int, track: str) -> int:
    """Each clip gets its own noise, reverb tail and babble, reproducibly."""
    return zlib.crc32(f"{seed}:{track}".encode())
