"""Writing a model folder: one function for every family's ``save`` and the backbone converter.

A saved model is a folder: the family's weight files, a JSON config (``musicgenre.json``, which names the
family's ``format``) and, when given, a ``README.md`` model card. ``write_model_folder`` builds it in a
temporary folder and moves it in atomically (``util.atomic.atomic_folder``), so a reader sees the old
model or the whole new one; the family only writes its weights and says what its config holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from musicgenre.util.atomic import atomic_folder

CONFIG_NAME = "musicgenre.json"
CARD_NAME = "README.md"
LOAD_ONLY_META = ("runtime",)  # how a model was loaded, not what it is: never saved


def write_model_folder(
    folder: str | os.PathLike,
    write_files: Callable[[Path], dict],
    *,
    meta: dict | None = None,
    card: str | Callable[[dict], str] | None = None,
    config_name: str = CONFIG_NAME,
) -> Path:
    """Write a model folder at ``folder`` (replaced atomically if it exists); the folder.

    ``write_files(tmp)`` writes the weights into the temporary folder and returns the config, which is
    saved as ``config_name`` after ``meta`` (the model's other recorded values, less ``LOAD_ONLY_META``;
    the config wins where both have a key). ``card``, text or made from the saved config, is the README.
    """
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        config = write_files(tmp)
        config = {**{k: v for k, v in (meta or {}).items() if k not in LOAD_ONLY_META}, **config}
        (tmp / config_name).write_text(json.dumps(config, indent=2) + "\n")
        card = card(config) if callable(card) else card
        if card:
            (tmp / CARD_NAME).write_text(card)
    return folder


def saved_with(folder: str | os.PathLike, meta: dict) -> bool:
    """Whether ``folder`` holds a model whose config records exactly ``meta`` (compared as saved, through JSON):
    what lets a rerun of a training script leave a model it already saved. False if there is no readable config."""
    try:
        config = json.loads((Path(folder) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return all(config.get(k) == v for k, v in json.loads(json.dumps(meta)).items())
