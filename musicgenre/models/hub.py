"""The Hugging Face Hub: is it reachable, download a model (offline-aware), push a checkpoint folder.

Every failure becomes a ModelError that says what to do (log in, go online, fix the folder);
a token is never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.errors import ModelError


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers, decided in seconds (its loaders retry for ~45 s)."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        urllib.request.urlopen(constants.ENDPOINT, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # it answered, if only with an error status
    except (OSError, ValueError):
        return False
    return True


def hub_file(repo_id: str, filename: str, revision: str | None, online: bool) -> bool:
    """Whether Hub repo ``repo_id`` has ``filename`` (online), or has it in the local cache (offline)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    try:
        if not online:
            return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str)
        hf_hub_download(repo_id, filename, revision=revision)
    except HFValidationError as exc:
        raise ModelError(f"{repo_id!r} is not a valid Hub model id ({exc})") from None
    except (EntryNotFoundError, RepositoryNotFoundError):
        return False  # not one of ours; transformers gives the precise error if it is nothing at all
    except (HfHubHTTPError, OSError) as exc:
        raise ModelError(f"{repo_id}: download failed ({exc})") from None
    return True


def not_cached(repo_id: str) -> ModelError:
    """The error for a Hub model needed offline that the local cache does not have."""
    return ModelError(f"{repo_id}: not in the local cache and the Hugging Face Hub cannot be reached (offline?)")


def download_model(
    repo_id: str, revision: str | None = None, local_dir: str | None = None, local_files_only: bool = False
) -> Path:
    """snapshot_download with errors that say what to do (offline, missing repo)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            HfHubHTTPError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise ModelError("loading Hub models needs huggingface_hub: pip install huggingface_hub") from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_dir=local_dir, local_files_only=local_files_only))
    except LocalEntryNotFoundError:
        raise not_cached(repo_id) from None
    except HFValidationError as exc:
        raise ModelError(f"{repo_id!r} is not a valid Hub model id ({exc})") from None
    except RepositoryNotFoundError:
        raise ModelError(f"{repo_id}: no such model repository on the Hugging Face Hub (or it is private)") from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelError(f"{repo_id}: download failed ({exc})") from None


# Files never uploaded: pickles (unsafe to load; the Trainer's training_args.bin, optimizer and RNG
# states) and training leftovers. Our formats (safetensors, skops, XGBoost JSON, .keras) are enough.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".ckpt")
SKIPPED_DIRS = ("runs", ".git", "__pycache__", ".cache", ".ipynb_checkpoints")
SPACE_FILES = ("app.py", "requirements.txt", "packages.txt", "README.md", "LICENSE", "pyproject.toml")


@dataclass
class UploadPlan:
    """Exactly what a push would send, and where; built without the network."""

    folder: Path
    repo_id: str
    repo_type: str
    kind: str
    files: list[str]
    skipped: list[str] = field(default_factory=list)
    card: str | None = None  # a generated README.md when the folder has none
    private: bool = False
    revision: str | None = None

    @property
    def url(self) -> str:
        prefix = "spaces/" if self.repo_type == "space" else ""
        return f"https://huggingface.co/{prefix}{self.repo_id}" + (f"/tree/{self.revision}" if self.revision else "")

    def describe(self) -> str:
        lines = [
            f"{self.kind} checkpoint {self.folder} -> {self.url} ({'private' if self.private else 'public'} {self.repo_type})",
            *(f"  upload {name}" for name in self.files),
        ]
        if self.card is not None:
            lines.append("  upload README.md (model card generated: the folder has none)")
        lines += [f"  skip   {name} ({reason})" for name, reason in (s.split("\t") for s in self.skipped)]
        return "\n".join(lines)


def _refusal(root: Path, path: Path) -> str | None:
    """Why ``path`` must not be uploaded (hidden, a link, pickle-based), or None if it may."""
    rel = path.relative_to(root)
    if any(part.startswith(".") for part in rel.parts):
        return "hidden"
    if any(p.is_symlink() for p in [path, *path.parents] if p != root and root in p.parents):
        return "a symbolic link (it may point outside the folder)"
    if any(suffix.lower() in UNSAFE_SUFFIXES for suffix in path.suffixes):
        return "pickle-based, unsafe to load"
    return None


def _validate_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ModelError(f"{repo_id!r} is not a valid repository id ({exc})") from None
    if repo_id.count("/") != 1:
        raise ModelError(f"{repo_id!r}: give the repository as OWNER/NAME")


def _generated_card(kind: str, library: str, repo_id: str) -> str:
    return (
        f"---\nlicense: mit\nlibrary_name: {library}\ntags: [audio-classification, music-genre, gtzan, musicgenre]\n---\n"
        f"# {repo_id.split('/')[1]}\n\nA musicgenre {kind} checkpoint for GTZAN's ten genres. "
        f"Use it with `musicgenre predict --model {repo_id} song.mp3`.\n"
    )


def plan_checkpoint_upload(
    folder: str | os.PathLike, repo_id: str, kind: str, library: str, revision: str | None = None, private: bool = False
) -> UploadPlan:
    """The files of checkpoint ``folder`` of ``kind`` to upload to model repo ``repo_id`` (and those left out, with
    why); ``library`` names the library of a generated card. ``musicgenre.families.plan_upload`` finds kind and library."""
    folder = Path(folder)
    _validate_repo_id(repo_id)
    files, skipped = [], []
    leftovers = {
        p.name for p in folder.iterdir() if p.is_dir() and (p.name.startswith(("checkpoint-", ".")) or p.name in SKIPPED_DIRS)
    }
    for name in sorted(leftovers):
        skipped.append(f"{name}/\ttraining leftover, {sum(1 for p in (folder / name).rglob('*') if p.is_file())} files")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.split("/", 1)[0] in leftovers:
            continue  # inside a skipped folder, listed once above
        reason = _refusal(folder, path)
        if reason:
            skipped.append(f"{rel}\t{reason}")
        else:
            files.append(rel)
    card = None if "README.md" in files else _generated_card(kind, library, repo_id)
    return UploadPlan(folder, repo_id, "model", kind, files, skipped, card, private, revision)


SPACE_LEAVES_OUT = ("musicgenre/testing/",)


def plan_space_upload(root: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None) -> UploadPlan:
    """The app's files (what requirements.txt serves: app.py, the musicgenre package, README...) for a Space.

    ``musicgenre/testing`` (test support) stays behind, as does everything outside the package (``benchmarks/``,
    ``tests/``...): the Space never runs it."""
    root = Path(root)
    if not (root / "app.py").is_file():
        raise ModelError(f"{root}: no app.py here; run from the repository root")
    _validate_repo_id(repo_id)
    files = [name for name in SPACE_FILES if (root / name).is_file()]
    skipped = []
    for path in sorted(p for p in (root / "musicgenre").rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in path.parts or path.suffix == ".pyc" or rel.startswith(SPACE_LEAVES_OUT):
            continue
        reason = _refusal(root, path)
        if reason:
            skipped.append(f"{rel}\t{reason}")
        else:
            files.append(rel)
    return UploadPlan(root, repo_id, "space", "app", files, skipped, private=private, revision=revision)


def resolve_token(token: str | None = None) -> str:
    """HF_TOKEN, else the stored login (`hf auth login`); a ModelError if there is neither."""
    from huggingface_hub import get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise ModelError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return token


def push(plan: UploadPlan, token: str | None = None, commit_message: str | None = None) -> str:
    """Create the repository if needed and upload ``plan`` in one commit; returns the repository's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=resolve_token(token))
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(plan.folder / name)) for name in plan.files]
    if plan.card is not None:
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=plan.card.encode()))
    try:
        extra = {"space_sdk": "gradio"} if plan.repo_type == "space" else {}
        api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=plan.private, exist_ok=True, **extra)
        if plan.revision:
            api.create_branch(plan.repo_id, branch=plan.revision, repo_type=plan.repo_type, exist_ok=True)
        api.create_commit(
            plan.repo_id,
            operations,
            commit_message=commit_message or f"Upload {plan.kind} checkpoint with musicgenre",
            repo_type=plan.repo_type,
            revision=plan.revision,
        )
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            raise ModelError(f"{plan.repo_id}: the Hub refused the token (HTTP {status}); it needs write access") from None
        raise ModelError(f"{plan.repo_id}: upload failed ({exc})") from None
    except (OSError, ConnectionError) as exc:  # no network, or HF_HUB_OFFLINE=1
        raise ModelError(
            f"{plan.repo_id}: the Hugging Face Hub cannot be reached ({type(exc).__name__}); nothing was uploaded"
        ) from None
    return plan.url


def __getattr__(name: str):
    """Deprecated: ``checkpoint_kind`` and ``plan_upload`` moved to ``musicgenre.families`` (they ask the registry);
    these names stay for one release."""
    if name in ("checkpoint_kind", "plan_upload"):
        from musicgenre.families import resolve

        return getattr(resolve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
