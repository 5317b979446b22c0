"""musicgenre: music-genre classification on GTZAN's ten genres, from features to a served model.

Importing it (or any of its modules) changes no environment variable and starts no thread: what the
process needs (librosa's numba cache, Keras' backend) is set by the entry points or right before use."""

from musicgenre.errors import AudioError, DataError, ModelError, MusicGenreError

__version__ = "0.1.0"
__all__ = ["AudioError", "DataError", "ModelError", "MusicGenreError", "__version__"]
