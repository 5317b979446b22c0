"""The shallow family: scikit-learn pipelines on the handcrafted features (SVM, logistic regression, random forest,
tree, XGBoost, k-NN, LDA). ``model`` holds the pipelines, their search spaces and tuning; ``folder`` the saved
form (skops with trusted types, XGBoost JSON, a NumPy head for linear ones) and ``ShallowModel``; ``train`` the
nested cross-validation study under the three protocols."""

from __future__ import annotations

from musicgenre.families.family import Family, lazy

FORMAT = "musicgenre-shallow"

FAMILY = Family(
    name="shallow",
    title="handcrafted features",
    format=FORMAT,
    load=lazy(f"{__name__}.folder", "load_shallow"),
    save=lazy(f"{__name__}.folder", "save_model"),
    bundled=("shallow",),
    hub_kind="shallow",
    hub_library="sklearn",
    reads="features",
    served_as="handcrafted features",
)
