"""The labelled robustness study: each model family's accuracy under each degradation, on clips it never trained on.

Read in this order:

- ``catalogue``: what is compared (the families, the recipes of the shipped models, a run's settings);
- ``views``: what each family computes from audio, per clip and condition, cached on disk;
- ``fit``: each family fitted inside a fold, and its probabilities from the views;
- ``run``: the folds, the scores under every condition, ``run_study`` and its resumable ``results.json``;
- ``report``: the tables, heat map and augmentation verdicts, and the generated report's section.

``experiments/robustness.py`` runs it. The names below are the single module's that this package
replaced. Deprecated: import them from the submodules; they stay here for one release. (Patching them
here changes nothing: the submodules call one another.)
"""

from musicgenre.study.robustness.catalogue import DEGRADE_RATE, FAMILY_NAMES, STUDY_VERSION, Recipes, StudySettings, clip_seed
from musicgenre.study.robustness.fit import (
    cnn_probabilities,
    features_probabilities,
    fit_cnn,
    fit_features,
    fit_features_table,
    fit_probe,
    probe_probabilities,
)
from musicgenre.study.robustness.report import (
    KEPT_RULE,
    augmentation_verdicts,
    label,
    markdown,
    plot_heatmap,
    summary_lines,
    verdict_line,
)
from musicgenre.study.robustness.run import condition_scores, recipe_sha256, run_family, run_study, score_external
from musicgenre.study.robustness.views import (
    StudyData,
    ViewStore,
    cache_folder,
    degraded_feature_rows,
    feature_view,
    prepare,
    views_of,
)

__all__ = [
    "DEGRADE_RATE",
    "FAMILY_NAMES",
    "KEPT_RULE",
    "STUDY_VERSION",
    "Recipes",
    "StudyData",
    "StudySettings",
    "ViewStore",
    "augmentation_verdicts",
    "cache_folder",
    "clip_seed",
    "cnn_probabilities",
    "condition_scores",
    "degraded_feature_rows",
    "feature_view",
    "features_probabilities",
    "fit_cnn",
    "fit_features",
    "fit_features_table",
    "fit_probe",
    "label",
    "markdown",
    "plot_heatmap",
    "prepare",
    "probe_probabilities",
    "recipe_sha256",
    "run_family",
    "run_study",
    "score_external",
    "summary_lines",
    "verdict_line",
    "views_of",
]
