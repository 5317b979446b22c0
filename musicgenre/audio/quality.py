"""How good the recording is, so a prediction can say when it is unsure and why (issue 33).

A genre model trained on clean CD audio degrades on a phone call, a laptop microphone, hiss, a
whisper-quiet file or someone talking, and says nothing about it. :func:`assess` measures what a
user's recording really is (duration, level, clipping, silence, the band its channel passed, the
noise floor, how much of it is speech) and turns that into :class:`Issue` records with a sentence
for the app; severe ones force the answer to be flagged uncertain. :func:`effective_band` is the
channel's pass band on its own, which the caller uses to pick a model matched to narrow-band audio.

Everything is measured, not guessed: the thresholds below were chosen on the 76 real GTZAN clips,
clean and degraded (telephone band, 7 kHz low-pass, pink noise, -30 dB, synthetic speech). Only
NumPy runs: this is called for every ``musicgenre predict``, whose process must start fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgenre.errors import AudioError

FLOOR_DBFS = -120.0  # what "no signal" reads as: below 20-bit dither, and JSON-safe unlike -inf
SILENT_PEAK_DBFS = -90.0  # every sample below 16-bit's smallest step (~-96 dBFS) but a little dither: digital silence
NEAR_SILENT_DBFS = -60.0  # RMS: 25 dB below the quietest clean GTZAN clip, where a phone's own noise starts
NEAR_SILENT_SNR_DB = 2.0  # quiet and barely above its floor: only noise (pure pink reads ~1; loud dense metal ~3 too)
QUIET_DBFS = -35.0  # RMS: well under every clean GTZAN clip (quietest ~-30) but audible; features lose detail
SILENCE_DBFS = -60.0  # a 50 ms frame quieter than this is silence (same line as near-silent)
MIN_SECONDS = 3.0  # the pretrained backbone's patch: anything shorter is padded with nothing
CLIP_RUN = 3  # a sample at the peak with neighbours at the peak: a flat top, not a lucky maximum
CLIPPED_SEVERE = 0.01  # 1% of samples in flat tops: distortion is audible everywhere and skews the spectrum
# Peak over RMS below this: clipped (or crushed) so hard it is nearly a square wave. Flat tops do not survive a
# resampler (its ringing rounds them off), this does: the 76 GTZAN clips read 9.6-21 dB at 16 kHz, the same clipped
# after a 26 dB boost 3.8-7.5, after a 12 dB boost 5.4-19.
CREST_SEVERE_DB = 6.0
CLIPPED_LIGHT = 0.001  # 0.1%: occasional flat tops on the loudest beats, audible, harmless to the genre
NARROW_HZ = 4500.0  # a channel that stops below this is telephone-like (300-3,400 Hz, or 8 kHz sampling)
LIMITED_HIGH_HZ = 7000.0  # below this, but not telephone: wide-band speech codecs, laptop and phone microphones
LIMITED_LOW_HZ = 250.0  # no bass below this: a small loudspeaker or a phone's high-pass
NOISY_SNR_DB = 11.5  # estimated SNR below this: pink noise at 10 dB reads 1.7-11.0 on all 76 clips, clean ones median 16
SPEECH_SEVERE = 0.65  # most of it sounds like talking: espeak reads 0.8-0.87; GTZAN clips <= 0.36 clean, <= 0.6 phone-band
SPEECH_LOW_ENERGY = 0.55  # a second of talk: over half its 20 ms frames below half its mean power (syllables, pauses)
SPEECH_DIPS = 0.05  # ... and 5% of them 20 dB under its loud frames (closures, gaps); music fills those in
NOISE_FRAME_S = 0.046  # frames for the noise floor: short enough to catch the gaps between notes
NOISE_SMOOTH = 5  # frames averaged (~0.1 s) before taking the minimum, so a noise bin's own flicker is not it
NOISE_PERCENTILE = 10.0  # each bin's floor: its quietest 10% of the time (minimum statistics)...
NOISE_BLOCK_S = 3.0  # ... in its quietest 3 s stretch (a quiet passage shows the floor that loud ones hide)
NOISE_BIAS = 10 ** (4.9 / 10)  # what that statistic reads under the mean on pure noise (white, 30 s), put back
NOISE_MAX_BLOCKS = 40  # stretches looked at in a long recording, evenly spread: ten minutes cost what two do
BAND_FRAME_S = 0.18  # long frames for the long-term spectrum: 5 Hz bins at 22 kHz, so a 300 Hz edge is sharp
BANDS_PER_OCTAVE = 12  # the spectrum on a 1/12-octave grid (then smoothed over 1/4 octave)
BAND_MIN_HZ = 20.0  # the grid's bottom, and low_hz when no low edge is found
ACTIVE_DB = 50.0  # frames within this of the loudest make the long-term spectrum (fades and gaps do not)
CLIFF_DB = 30.0  # a channel edge: the spectrum falls this much within half an octave (60 dB/octave) and stays down
WIDE_CLIFF_DB = 40.0  # or this within an octave, looked for only below NARROW_HZ: a 4th-order telephone filter
CLIFF_TOP_DB = 75.0  # an edge starts within this of the loudest band; a lower "cliff" is in a band already gone
EDGE_DB = 6.0  # the edge is where the cliff has fallen this far from its top
HIGH_SEARCH_HZ = 1000.0  # high edges are looked for above this, low edges below LOW_SEARCH_HZ
LOW_SEARCH_HZ = 1000.0


@dataclass(frozen=True)
class Issue:
    """One problem with the recording: a stable code, a sentence for the user, and whether it voids the answer."""

    code: str
    note: str
    severe: bool


@dataclass(frozen=True)
class Quality:
    """What the recording is, measured (levels in dB re full scale, a full-scale square wave reading 0)."""

    duration_s: float
    level_dbfs: float  # RMS over the whole recording
    peak_dbfs: float
    clipped_fraction: float  # share of samples in flat tops at the peak
    silence_fraction: float  # share of 50 ms frames below SILENCE_DBFS
    low_hz: float  # the channel's pass band (effective_band)
    high_hz: float
    snr_db: float  # loud content against the noise floor
    noise_floor_dbfs: float
    speech_fraction: float  # share of one-second stretches that sound like talking, not music
    crest_db: float = 99.0  # peak over RMS, dB (99: silence, where it has no meaning)

    @property
    def issues(self) -> list[Issue]:
        """The problems found, most serious first (an answer about silence needs no note about its band)."""
        if self.peak_dbfs <= SILENT_PEAK_DBFS:
            return [Issue("silent", "the recording is silent: there is nothing to classify", True)]
        found = []
        if self.level_dbfs < NEAR_SILENT_DBFS or (self.snr_db < NEAR_SILENT_SNR_DB and self.level_dbfs < QUIET_DBFS):
            found.append(Issue("near_silent", "almost nothing but background noise: the answer is a guess", True))
        if self.duration_s < MIN_SECONDS:
            found.append(Issue("too_short", f"shorter than {MIN_SECONDS:g} s: too little music to judge", True))
        if self.speech_fraction >= SPEECH_SEVERE:
            found.append(Issue("speech", "this sounds mostly like speech, not music: the answer is a guess", True))
        if self.clipped_fraction > CLIPPED_SEVERE or self.crest_db < CREST_SEVERE_DB:
            found.append(Issue("clipped", "heavily clipped (distorted): the answer is less reliable", True))
        if self.high_hz < NARROW_HZ:
            found.append(Issue("narrow_band", "narrow telephone-like band: the answer is less reliable", False))
        elif self.high_hz < LIMITED_HIGH_HZ or self.low_hz > LIMITED_LOW_HZ:
            found.append(
                Issue("limited_band", "limited band (small speaker or microphone): the answer may be less reliable", False)
            )
        if self.snr_db < NOISY_SNR_DB and not any(i.code == "near_silent" for i in found):
            found.append(Issue("noisy", "noisy recording: the answer may be less reliable", False))
        if CLIPPED_LIGHT < self.clipped_fraction <= CLIPPED_SEVERE:
            found.append(Issue("clipped", "slightly clipped: some distortion on the loudest parts", False))
        if NEAR_SILENT_DBFS <= self.level_dbfs < QUIET_DBFS:
            found.append(Issue("quiet", "a very quiet recording: the answer may be less reliable", False))
        return found

    @property
    def severe(self) -> bool:
        return any(i.severe for i in self.issues)

    def to_dict(self) -> dict:
        """JSON-safe (every number finite, rounded), with the issues' codes and notes for the app."""
        issues = self.issues
        out = {
            "duration_s": round(self.duration_s, 3),
            "level_dbfs": round(self.level_dbfs, 1),
            "peak_dbfs": round(self.peak_dbfs, 1),
            "clipped_fraction": round(self.clipped_fraction, 5),
            "crest_db": round(self.crest_db, 1),
            "silence_fraction": round(self.silence_fraction, 3),
            "low_hz": round(self.low_hz),
            "high_hz": round(self.high_hz),
            "snr_db": round(self.snr_db, 1),
            "noise_floor_dbfs": round(self.noise_floor_dbfs, 1),
            "speech_fraction": round(self.speech_fraction, 3),
        }
        return {**out, "issues": [i.code for i in issues], "notes": [i.note for i in issues], "severe": self.severe}


def _db(power: float | np.ndarray) -> float | np.ndarray:
    """Power to dB, never below FLOOR_DBFS (so no -inf reaches JSON)."""
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), FLOOR_DBFS)


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim > 1:  # (samples, channels), as the rest of the package holds multichannel audio
        y = y.mean(axis=-1) if y.shape[-1] <= y.shape[0] else y.mean(axis=0)
    y = y.reshape(-1)
    return y if np.isfinite(y).all() else np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)  # never written to


def _pow2(seconds: float, sr: int) -> int:
    return 1 << max(4, int(np.ceil(np.log2(seconds * sr))))


def _frames(y: np.ndarray, n: int, hop: int) -> np.ndarray:
    """Frames of ``y`` as rows (zero-padded to one whole frame when shorter)."""
    if len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    return np.lib.stride_tricks.sliding_window_view(y, n)[::hop]


def _band_powers(y: np.ndarray, sr: int, n: int, edges: np.ndarray, max_frames: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean power per FFT bin in bands with the given edges (Hz), (frames, bands), and each band's bin count.

    Frames are taken evenly over a long recording (at most ``max_frames``), so ten minutes at
    48 kHz costs about what a minute does.
    """
    frames = _frames(y, n, n // 2)
    index = np.arange(len(frames))
    if len(frames) > max_frames:
        index = np.linspace(0, len(frames) - 1, max_frames).astype(int)
    window = np.hanning(n)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    lo = np.searchsorted(freqs, edges[:-1])
    hi = np.minimum(np.maximum(np.searchsorted(freqs, edges[1:]), lo + 1), len(freqs))
    lo = np.minimum(lo, hi - 1)
    out = np.empty((len(index), len(lo)))
    todo = list(range(len(index)))
    top = int(hi.max())  # bins above the last band's edge are never read
    step = max(1, (1 << 16) // n)  # spectra at a time: ~0.5 MB of frames, which stay in cache (larger batches are slower)
    for start in range(0, len(todo), step):
        rows = todo[start : start + step]
        power = np.abs(np.fft.rfft(frames[index[rows]] * window, axis=1)[:, :top]) ** 2
        cum = np.cumsum(power, axis=1)  # cum[:, k - 1]: the power of bins 0..k-1 (0 for k = 0)
        below_lo = np.where(lo > 0, cum[:, np.maximum(lo - 1, 0)], 0.0)
        out[rows] = (cum[:, hi - 1] - below_lo) / (hi - lo)
    return out, hi - lo


def _cliff(level: np.ndarray, k: int, step: int, short: int, wide: int, wide_ok: bool) -> bool:
    """Whether the spectrum falls off a channel's cliff going from band ``k`` in direction ``step``.

    Short scale: CLIFF_DB down within half an octave and never back up (up to the spectrum's end,
    which is also how a cliff just below the Nyquist shows). Wide scale, only where telephone
    channels put their edges: WIDE_CLIFF_DB within an octave, a 4th-order filter plus music's roll-off.
    """
    n = len(level)
    beyond = level[min(k + short, n - 2) :] if step > 0 else level[: max(k - short, 1) + 1]
    if len(beyond) and level[k] - beyond.max() >= CLIFF_DB:
        return True
    far = k + step * wide
    if not wide_ok or not 0 <= far < n:
        return False
    return level[k] - (level[far:] if step > 0 else level[: far + 1]).max() >= WIDE_CLIFF_DB


def effective_band(y: np.ndarray, sr: int) -> tuple[float, float]:
    """The recording channel's pass band (low_hz, high_hz): where its long-term spectrum falls off a cliff.

    Music rolls off gradually (classical loses 40 dB by 8 kHz and is still full-band), so a level
    threshold would call dull music narrow. A channel instead makes a cliff: a telephone line's
    filter or an 8 kHz codec drops tens of dB within half an octave to an octave. The edge is the
    cliff's top, moved along it while within EDGE_DB of the top. A recording with several channels
    in a row (a band-limited MP3 played down a phone) reports the narrowest one. Without a cliff the
    band is the whole spectrum: (BAND_MIN_HZ, Nyquist).
    """
    return _effective_band(_mono(y), sr)


def _effective_band(y: np.ndarray, sr: int) -> tuple[float, float]:
    nyquist = sr / 2
    n = _pow2(BAND_FRAME_S, sr)
    if len(y) < n // 4 or not np.any(y):
        return BAND_MIN_HZ, nyquist
    centres = BAND_MIN_HZ * 2 ** (np.arange(int(np.log2(nyquist / BAND_MIN_HZ) * BANDS_PER_OCTAVE)) / BANDS_PER_OCTAVE)
    edges = centres[0] * 2 ** ((np.arange(len(centres) + 1) - 0.5) / BANDS_PER_OCTAVE)
    density, _ = _band_powers(y, sr, n, edges)
    total = density.sum(axis=1)
    density = density[total >= total.max() * 10 ** (-ACTIVE_DB / 10)]  # the music, not its silences
    level = np.convolve(np.pad(_db(density.mean(axis=0)), 1, mode="edge"), np.ones(3) / 3, mode="valid")
    top = level[(centres > 150) & (centres < 4000)].max(initial=level.max()) - CLIFF_TOP_DB
    short, wide = BANDS_PER_OCTAVE // 2, BANDS_PER_OCTAVE

    def edge(k: int, step: int) -> float:
        j = k
        while 0 <= j + step < len(level) and level[j + step] >= level[k] - EDGE_DB:
            j += step
        return float(centres[j])

    high = next(
        (
            edge(k, 1)
            for k in range(np.searchsorted(centres, HIGH_SEARCH_HZ), len(level) - 1)
            if level[k] >= top and _cliff(level, k, 1, short, wide, centres[k] <= NARROW_HZ)
        ),
        nyquist,
    )
    low = next(
        (
            edge(k, -1)
            for k in range(np.searchsorted(centres, LOW_SEARCH_HZ), 0, -1)
            if level[k] >= top and _cliff(level, k, -1, short, wide, True)
        ),
        BAND_MIN_HZ,
    )
    return low, min(high, nyquist)


def _snr(y: np.ndarray, sr: int) -> tuple[float, float]:
    """(SNR in dB, noise floor in dBFS) by minimum statistics, per FFT bin and per stretch of NOISE_BLOCK_S.

    Music leaves each bin quiet some of the time (between notes and partials, in some passage);
    steady noise never does. So a bin's noise is its quietest NOISE_PERCENTILE of (briefly smoothed)
    frames in the quietest stretch, scaled by what that statistic reads on pure noise, and the floor
    is their sum. Dense music without gaps (metal, loud pop) lifts the floor: such clean clips read
    5-12 dB, the noise they cannot be told from by level statistics alone.
    """
    n = _pow2(NOISE_FRAME_S, sr)
    block = max(int(NOISE_BLOCK_S * sr), n * NOISE_SMOOTH)
    starts = range(0, max(len(y) - block, 0) + 1, block // 2)
    starts = [starts[i] for i in sorted(set(np.linspace(0, len(starts) - 1, NOISE_MAX_BLOCKS).astype(int).tolist()))]
    window = np.hanning(n)
    if len(y) >= block:  # every stretch whole: their frames as one (frames, stretches, n) array, a few stretches at a time
        hop, count = n // 2, (block - n) // (n // 2) + 1
        found: dict[int, tuple[float, np.ndarray]] = {}
        todo = list(starts)
        frames = np.lib.stride_tricks.sliding_window_view(y, n)
        per_call = max(1, (1 << 16) // (count * n))  # stretches at a time: one, unless they are short
        for i in range(0, len(todo), per_call):
            chunk = frames[np.add.outer(np.arange(count) * hop, np.asarray(todo[i : i + per_call]))]
            chunk *= window
            power = np.abs(np.fft.rfft(chunk, axis=-1)) ** 2
            totals = np.ascontiguousarray(power.sum(axis=-1).T).mean(axis=1)
            found.update(zip(todo[i : i + per_call], zip(totals, _quiet_bins(power), strict=True), strict=True))
        total = [found[start][0] for start in starts]
        floor = np.min([found[start][1] for start in starts], axis=0)
    else:  # one stretch, shorter than a block
        power = np.abs(np.fft.rfft(_frames(y, n, n // 2) * window, axis=1)) ** 2
        total = [power.sum(axis=1).mean()]
        floor = _quiet_bins(power[:, None])[0]
    scale = 2 / (n * np.sum(window**2))  # Parseval: bins add up to the mean square
    noise, signal = float(floor.sum()) * NOISE_BIAS * scale, float(np.mean(total)) * scale
    return float(np.clip(_db(max(signal - noise, 1e-30)) - _db(noise), -20.0, 100.0)), float(_db(noise))


def _quiet_bins(power: np.ndarray) -> np.ndarray:
    """Per stretch and bin, the NOISE_PERCENTILE of its frames' power after a NOISE_SMOOTH-frame moving mean:
    ``power`` is (frames, stretches, bins), the answer (stretches, bins)."""
    if len(power) > NOISE_SMOOTH:
        cum = np.concatenate([np.zeros((1, *power.shape[1:])), np.cumsum(power, axis=0)])
        power = (cum[NOISE_SMOOTH:] - cum[:-NOISE_SMOOTH]) / NOISE_SMOOTH
    return np.percentile(power, NOISE_PERCENTILE, axis=0)


def _speech_fraction(y: np.ndarray, sr: int, square: np.ndarray | None = None) -> float:
    """The share of one-second stretches (half overlapping, silent ones left out) that sound like talking.

    Speech comes in syllables with quiet closures and pauses between them, so most of its 20 ms
    frames sit well under the stretch's mean power and some fall 20 dB under its peaks; music,
    rap over a beat included, is sustained. Measured on 76 GTZAN clips and espeak-ng sentences.
    """
    hop = max(1, int(0.01 * sr))
    square = np.square(y, dtype=np.float64) if square is None else square  # ``y ** 2``, if the caller has it
    power = _frames(square, 2 * hop, hop).mean(axis=1) + 1e-12
    level = 10 * np.log10(power)
    if len(power) < 100:  # one stretch, shorter than a second
        p, db = power[None], level[None]
    else:  # every second, half overlapping, as rows
        p = np.lib.stride_tricks.sliding_window_view(power, 100)[::50]
        db = np.lib.stride_tricks.sliding_window_view(level, 100)[::50]
    heard = db.max(axis=1) >= SILENCE_DBFS
    if not heard.any():
        return 0.0
    p, db = p[heard], db[heard]
    low = np.mean(p < 0.5 * p.mean(axis=1, keepdims=True), axis=1)
    dips = np.mean(db < np.percentile(db, 90, axis=1)[:, None] - 20, axis=1)
    return float(np.mean((low >= SPEECH_LOW_ENERGY) & (dips >= SPEECH_DIPS)))


def _clipped_fraction(y: np.ndarray, magnitude: np.ndarray | None = None) -> float:
    """The share of samples in flat tops: runs of CLIP_RUN or more at the recording's peak (either sign).

    Found at the peak, not at 1.0: a clipped recording is often normalised afterwards.
    """
    magnitude = np.abs(y) if magnitude is None else magnitude  # ``np.abs(y)``, if the caller has it
    peak = magnitude.max(initial=0.0)
    if peak == 0:
        return 0.0
    at_peak = np.flatnonzero(magnitude >= peak * (1 - 1e-4))  # few samples, unless it is clipped
    if len(at_peak) < CLIP_RUN:
        return 0.0
    breaks = np.flatnonzero(np.diff(at_peak) != 1)
    runs = np.diff(np.concatenate([[-1], breaks, [len(at_peak) - 1]]))  # lengths of the runs of consecutive samples
    return float(runs[runs >= CLIP_RUN].sum() / len(y))


def assess(y: np.ndarray, sr: int) -> Quality:
    """Measure a recording (mono float audio at any rate); empty, silent or tiny input gives a Quality, never an error."""
    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got {sr}")
    y = _mono(y)
    duration = len(y) / sr
    magnitude = np.abs(y)
    peak = float(magnitude.max(initial=0.0))
    if peak**2 <= 10 ** (SILENT_PEAK_DBFS / 10):
        return Quality(
            duration,
            float(_db(np.mean(y**2) if len(y) else 0.0)),
            float(_db(peak**2)),
            0.0,
            1.0,
            BAND_MIN_HZ,
            sr / 2,
            0.0,
            float(_db(np.mean(y**2) if len(y) else 0.0)),
            0.0,
        )
    square = np.square(y)
    frame = max(1, int(0.05 * sr))
    silence = float(np.mean(_db(_frames(square, frame, frame).mean(axis=1)) < SILENCE_DBFS))
    low, high = _effective_band(y, sr)
    snr, floor = _snr(y, sr)
    return Quality(
        duration_s=duration,
        level_dbfs=float(_db(np.mean(square))),
        peak_dbfs=float(_db(peak**2)),
        clipped_fraction=_clipped_fraction(y, magnitude),
        silence_fraction=silence,
        low_hz=low,
        high_hz=high,
        snr_db=snr,
        noise_floor_dbfs=floor,
        speech_fraction=_speech_fraction(y, sr, square),
        crest_db=float(_db(peak**2) - _db(np.mean(square))),
    )
