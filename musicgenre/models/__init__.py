"""Every model the project serves and how it is stored. ``predict`` is the ``GenreModel`` protocol and window-
by-window prediction; ``shallow`` and ``linear`` the feature pipelines (``linear`` their NumPy heads);
``cnn`` the Keras CNN; ``musicnn`` / ``musicnn_torch`` / ``musicnn_convert`` the pretrained backbone (its
converted weights in ``pretrained/``) and ``probe`` the head on it; ``transformer`` the fine-tuned
transformers classifiers and ``onnx_runtime`` their faster runtime; ``io`` safe saving and loading and
``resolve_model``; ``hub`` the Hugging Face Hub; ``cluster`` prediction on a Ray cluster (``embeddings``, the
embedding table, holds its own Ray actors). ``bundled/`` holds the models that ship with the package.

May import: ``features``, ``data``, ``audio``, ``util``, ``errors``. Never training code: serving a model
must not pull in what trained it."""
