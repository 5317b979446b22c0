"""Loading a model named by a spec, through the registry: a bundled model, a folder or a Hub id, in whichever
family's format it was saved. A folder's ``musicgenre.json`` says its format; the family that owns that
format loads it. A folder without one is a checkpoint of the family that recognises it (transformers)."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from musicgenre.errors import ModelError
from musicgenre.families.family import Family
from musicgenre.families.registry import FAMILIES
from musicgenre.families.spec import DEFAULT_BUNDLED, ModelSpec, parse_spec
from musicgenre.models.folder import CONFIG_NAME
from musicgenre.models.hub import download_model, hub_file, hub_reachable, not_cached
from musicgenre.models.runtime import Runtime, check_runtime

if TYPE_CHECKING:
    from musicgenre.models.predict import GenreModel

BUNDLED_KINDS = tuple(name for family in FAMILIES.values() for name in family.bundled)


def family_of_format(fmt: str | None) -> Family | None:
    """The family whose folders carry ``format`` ``fmt`` in their musicgenre.json, or None."""
    return next((f for f in FAMILIES.values() if f.format is not None and f.format == fmt), None)


def family_of_model(model: GenreModel) -> Family | None:
    """The family of a model loaded from a musicgenre folder (its ``meta`` keeps the folder's format), or None."""
    return family_of_format(getattr(model, "meta", {}).get("format"))


def family_of_spec(spec: str | ModelSpec) -> Family | None:
    """The family of a bundled model or a local folder, from its files alone (nothing is loaded, so a command can refuse
    a model that cannot do what it asks at once); None for a Hub id, or a folder no family claims or that cannot be read
    (loading it says why)."""
    spec = parse_spec(spec)
    if spec.kind == "bundled":
        return next((f for f in FAMILIES.values() if spec.name in f.bundled), None)
    if spec.kind == "hub":
        return None
    if not (Path(spec.name) / CONFIG_NAME).is_file():
        return _checkpoint_family(spec.name)
    try:
        return family_of_format(_folder_format(Path(spec.name)))
    except ModelError:
        return None


def _folder_format(folder: Path) -> str | None:
    """The ``format`` in ``folder``'s musicgenre.json (None in folders from before the field)."""
    try:
        return json.loads((folder / CONFIG_NAME).read_text()).get("format")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: musicgenre.json is unreadable ({exc})") from None


def _checkpoint_family(folder: str | os.PathLike) -> Family | None:
    """The family that recognises ``folder`` (a checkpoint without musicgenre.json), or None."""
    return next((f for f in FAMILIES.values() if f.recognise is not None and f.recognise(Path(folder))), None)


def _checkpoint_loader() -> Family:
    return next(f for f in FAMILIES.values() if f.load_checkpoint is not None)


def bundled_model_path(kind: str = DEFAULT_BUNDLED) -> Path:
    """Folder of a model shipped in the package: ``musicnn`` (pretrained probe), ``shallow`` (handcrafted features), ``cnn``."""
    return Path(str(resources.files("musicgenre.models") / "bundled" / kind))


def load_model_folder(folder: str | os.PathLike, runtime: Runtime | None = None) -> GenreModel:
    """Load a musicgenre model folder of any family, refusing any type not explicitly trusted; ``runtime``
    (``musicgenre.models.runtime``; None: the family's fast default) says how it runs."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelError(f"{folder}: not a musicgenre model folder (no {CONFIG_NAME})")
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
        family = family_of_format(config.get("format"))
        if family is None:
            raise ModelError(f"{folder}: unknown model format {config.get('format')!r}")
        return family.load(folder, config, runtime)
    except ModelError:
        raise
    except Exception as exc:  # a damaged download or hand-edited folder: say which, not where it broke
        raise ModelError(f"{folder}: the model files are damaged or incomplete ({type(exc).__name__}: {exc})") from None


def resolve_model(
    spec: str | ModelSpec = "bundled",
    revision: str | None = None,
    online: bool | None = None,
    runtime: Runtime | None = None,
    cache_root: Path | None = None,
) -> GenreModel:
    """``bundled`` (= ``bundled:musicnn``; ``bundled:shallow``, ``bundled:cnn``), a local folder or a Hub id (a string,
    parsed once by ``parse_spec``, or a ModelSpec): any family's folder, or a transformers checkpoint.

    ``online`` (default: probe the Hub) decides whether Hub ids are fetched or only read from
    the local cache, so an unreachable Hub costs seconds, not a minute of retries. ``runtime``
    (``musicgenre.models.runtime``, chosen by the entry point; None: each family's fast default) says how it runs;
    ``cache_root`` (the entry point's cache folder; None: ``~/.cache/musicgenre``) where a checkpoint's ONNX export is kept.
    """
    spec, runtime = parse_spec(spec, revision), check_runtime(runtime)
    revision = spec.revision
    if spec.kind == "bundled":
        if spec.name not in BUNDLED_KINDS:
            raise ModelError(f"no bundled model {spec.name!r}; choose from {', '.join('bundled:' + k for k in BUNDLED_KINDS)}")
        path = bundled_model_path(spec.name)
        if not (path / CONFIG_NAME).is_file():
            raise ModelError(f"the bundled {spec.name} model is missing from this installation")
        return load_model_folder(path, runtime)
    if spec.kind == "folder":
        if (Path(spec.name) / CONFIG_NAME).is_file() or (family := _checkpoint_family(spec.name)) is None:
            return load_model_folder(spec.name, runtime)
        return family.load_checkpoint(spec.name, revision, local_files_only=True, runtime=runtime, cache_root=cache_root)
    online = hub_reachable() if online is None else online
    if hub_file(spec.name, CONFIG_NAME, revision, online):
        return load_model_folder(download_model(spec.name, revision, local_files_only=not online), runtime)
    if not online and not hub_file(spec.name, "config.json", revision, online):  # decided without importing transformers
        raise not_cached(spec.name)
    return _checkpoint_loader().load_checkpoint(
        spec.name, revision, local_files_only=not online, runtime=runtime, cache_root=cache_root
    )


def checkpoint_kind(folder: str | os.PathLike) -> str:
    """``shallow`` or ``probe`` (ours), ``transformers`` or ``keras``: what kind of checkpoint ``folder`` holds
    (the ``hub_kind`` of its family)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a folder")
    if (folder / CONFIG_NAME).is_file():
        # folders from before the format field: shallow
        return (family_of_format(_folder_format(folder)) or FAMILIES["shallow"]).hub_kind
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return "transformers"
    if any(folder.glob("*.keras")):
        return "keras"
    raise ModelError(
        f"{folder}: not a checkpoint folder (expected musicgenre.json, config.json with *.safetensors weights, or a .keras file)"
    )


def plan_upload(folder: str | os.PathLike, repo_id: str, revision: str | None = None, private: bool = False):
    """The files of checkpoint ``folder`` to upload to model repo ``repo_id`` (and those left out, with why)."""
    from musicgenre.models.hub import plan_checkpoint_upload

    kind = checkpoint_kind(folder)
    library = next(f.hub_library for f in FAMILIES.values() if f.hub_kind == kind)
    return plan_checkpoint_upload(folder, repo_id, kind, library, revision, private)
