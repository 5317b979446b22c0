"""Sound in memory: decoding and validating audio files (``io``), the NumPy STFT / mel / resampling code
the features and the CNN share (``spectral``), real-world recording conditions to degrade clips with
(``degradations``), and a synthetic music-like clip for demos and tests (``example``).

May import: ``util``, ``errors``."""
