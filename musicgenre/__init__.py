"""musicgenre: music-genre classification on GTZAN's ten genres, from features to a served model."""

from musicgenre.errors import AudioError, DataError, ModelError, MusicGenreError
from musicgenre.features import jitcache

jitcache.configure()  # before anything imports numba: librosa's compiled code goes to our own, checked cache

__version__ = "0.1.0"
__all__ = ["AudioError", "DataError", "ModelError", "MusicGenreError", "__version__"]
