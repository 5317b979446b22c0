"""The project's exception types: one family, so callers catch a single base class."""


class MusicGenreError(Exception):
    """Base class for every error the project raises on purpose."""


class AudioError(MusicGenreError):
    """Input audio that cannot be decoded or is not usable (empty, silent, corrupt, NaN...)."""


class DataError(MusicGenreError):
    """A dataset folder, feature table or split list that does not have the expected shape."""


class ModelError(MusicGenreError):
    """A model that cannot be found, loaded safely, or applied to the given features."""


class TagError(MusicGenreError):
    """A file whose tags cannot be read or written safely (corrupt tags, unsupported container, no write permission)."""


def describe_failure(exc: BaseException) -> str:
    """The message for one failed file in a batch: ours as written, anything else labelled unexpected."""
    if isinstance(exc, MusicGenreError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
