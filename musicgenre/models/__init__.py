"""What every model family shares to serve a model. ``predict`` is the ``GenreModel`` protocol and window-by-window
prediction; ``linear`` NumPy heads; ``folder`` writes a model folder (weights, config, card: every family's save
and the backbone's conversion); ``musicnn`` / ``musicnn_torch`` / ``musicnn_convert`` the pretrained backbone
(its converted weights in ``pretrained/``); ``onnx_runtime`` the transformers' faster runtime; ``runtime`` how a
model runs (chosen by the entry point, taken by every family's loader); ``hub`` the Hugging Face Hub; ``pool`` and
``cluster`` prediction from worker processes or a Ray cluster and ``prediction_table`` into a Parquet table (each
handed the loader by its entry point); ``embeddings`` the embedding table, with its own Ray
actors. ``bundled/`` holds the models that ship with the package. The families themselves (their models, folders
and ``resolve_model``) live in ``musicgenre.families``; ``io``, ``shallow``, ``cnn``, ``probe`` and ``transformer``
here are deprecated names for them, kept for one release.

May import: ``features``, ``data``, ``audio``, ``util``, ``errors``. Never training code: serving a model
must not pull in what trained it."""
