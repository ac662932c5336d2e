"""Synthesis of one demo clip: a short piece of music whose cues follow a known (valence, arousal).

Each clip has a chord progression (additive wavetable voices), an FM melody, a bass line and drums
(kick, snare, hi-hat). The emotion is carried by well-studied musical cues, each a monotone
function of the true value so that a model can learn it from a mel spectrogram:

- arousal: tempo, note density (melody onsets, chord re-strikes, hi-hats), loudness, brightness
  (spectral tilt of the voices, FM index) and drum level;
- valence: register (the whole piece moves up with valence), mode (from Locrian to Lydian) and
  consonance (detuned, beating voices and added minor-second / tritone cluster tones when low).

Nuisances that carry no label: key, progression, melody, timbre, panning and a little jitter of
tempo and loudness. Everything is vectorised numpy at an internal rate, then resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

SYNTH_SR = 22050  # internal rate: content below 11 kHz, like the low-bitrate MP3s of DEAM
TABLE_SIZE = 4096
MASK = TABLE_SIZE - 1
SINE = np.sin(2 * np.pi * np.arange(TABLE_SIZE) / TABLE_SIZE).astype(np.float32)

# Diatonic modes ordered from darkest to brightest (a classic valence ladder).
MODES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("locrian", (0, 1, 3, 5, 6, 8, 10)),
    ("phrygian", (0, 1, 3, 5, 7, 8, 10)),
    ("aeolian", (0, 2, 3, 5, 7, 8, 10)),
    ("dorian", (0, 2, 3, 5, 7, 9, 10)),
    ("mixolydian", (0, 2, 4, 5, 7, 9, 10)),
    ("ionian", (0, 2, 4, 5, 7, 9, 11)),
    ("lydian", (0, 2, 4, 6, 7, 9, 11)),
)
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4), (0, 5, 1, 4), (0, 2, 3, 4))


@dataclass(frozen=True)
class ClipSpec:
    """What a worker needs to render one clip; everything else derives from (seed, song_id)."""

    song_id: int
    seed: int
    valence: float  # true latent value, 1..9
    arousal: float
    sample_rate: int
    channels: int
    duration: float  # seconds
    path: str


def clip_cues(valence: float, arousal: float, rng: np.random.Generator) -> dict:
    """The musical parameters of a clip: monotone in the true values, plus label-free nuisances."""
    uv = float(np.clip((valence - 1.5) / 7.0, 0.0, 1.0))
    ua = float(np.clip((arousal - 1.5) / 7.0, 0.0, 1.0))
    return {
        "tempo_bpm": (62.0 + 104.0 * ua) * rng.uniform(0.97, 1.03),
        "note_density": 0.12 + 0.72 * ua,  # probability of a melody onset per 16th note
        "restrikes": int(2 ** round(3 * ua)),  # chord attacks per bar: 1, 2, 4 or 8
        "tilt": 2.4 - 1.7 * ua,  # harmonic k has amplitude k**-tilt: low tilt = bright
        "fm_index": 0.4 + 3.6 * ua,
        "drum_level": 0.2 + 0.8 * ua,
        "loudness_dbfs": -26.0 + 16.0 * ua + rng.uniform(-1.0, 1.0),
        "mode_index": int(round(6 * uv)),
        "register": -9.0 + 22.0 * uv,  # semitones, the whole piece
        "dissonance": (1.0 - uv) ** 1.5,  # 0 = consonant, 1 = rough and clustered
        "key": rng.uniform(-2.5, 2.5),  # nuisance transposition, small next to the register range
        "progression": int(rng.integers(len(PROGRESSIONS))),
        "fm_ratio": int(rng.choice([1, 2])),
        "odd_harmonics": bool(rng.random() < 0.5),
    }


def _table(tilt: float, odd: bool, harmonics: int = 10) -> np.ndarray:
    """One period of an additive waveform, k**-tilt amplitudes (odd harmonics favoured if `odd`)."""
    k = np.arange(1, harmonics + 1)
    amp = k ** -tilt * np.where(odd & (k % 2 == 0), 0.3, 1.0)
    ph = np.arange(TABLE_SIZE) / TABLE_SIZE
    wave = (amp[:, None] * np.sin(2 * np.pi * k[:, None] * ph[None, :])).sum(0)
    return (wave / np.abs(wave).max()).astype(np.float32)


def _osc(table: np.ndarray, freq: np.ndarray, phase0: float = 0.0) -> np.ndarray:
    """Wavetable oscillator for a per-sample frequency (continuous phase, so no clicks)."""
    phase = np.cumsum(freq, dtype=np.float64)
    phase *= TABLE_SIZE / SYNTH_SR
    phase += phase0 * TABLE_SIZE
    return table[phase.astype(np.int64) & MASK]  # TABLE_SIZE is a power of two


def _since(t: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Time since the latest onset at each sample (inf before the first one)."""
    i = np.searchsorted(onsets, t, side="right") - 1
    return np.where(i >= 0, t - onsets[np.maximum(i, 0)], np.inf).astype(np.float32)


def _add_hits(out: np.ndarray, sample: np.ndarray, starts: np.ndarray, gains: np.ndarray) -> None:
    for s, g in zip(starts, gains):
        seg = out[s : s + len(sample)]
        seg += g * sample[: len(seg)]


def _drum_samples(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(int(0.3 * SYNTH_SR)) / SYNTH_SR
    kick_f = 48 + 100 * np.exp(-t / 0.035)  # pitch sweep gives the thump
    kick = np.sin(2 * np.pi * np.cumsum(kick_f) / SYNTH_SR) * np.exp(-t / 0.11)
    noise = rng.standard_normal(len(t))
    snare = (np.diff(noise, prepend=0) * 0.5 + np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.07)
    hat = np.diff(noise, n=2, prepend=[0, 0]) * 0.35 * np.exp(-t / 0.025)
    return kick.astype(np.float32), snare.astype(np.float32), hat.astype(np.float32)


def render(duration: float, valence: float, arousal: float, rng: np.random.Generator, channels: int):
    """Render a clip at SYNTH_SR: returns (audio (frames, channels) float32, cues dict)."""
    c = clip_cues(valence, arousal, rng)
    ua = float(np.clip((arousal - 1.5) / 7.0, 0.0, 1.0))
    n = int(round(duration * SYNTH_SR))
    beat = 60.0 / c["tempo_bpm"]
    bar = 4 * beat
    t = (np.arange(n) / SYNTH_SR + rng.uniform(0, bar)).astype(np.float32)  # random start in bar
    t0, t1 = float(t[0]), float(t[-1])
    scale = MODES[c["mode_index"]][1]

    def semis(step: np.ndarray) -> np.ndarray:  # scale step -> semitones above the tonic
        step = np.asarray(step)
        return 12 * (step // 7) + np.asarray(scale)[step % 7]

    tonic = 220.0 * 2 ** ((c["register"] + c["key"]) / 12)  # A3 moved by register and key
    bar_idx = (t // bar).astype(np.int64)
    b0 = int(bar_idx[0])
    bar_idx -= b0
    degree = np.asarray(PROGRESSIONS[c["progression"]])[np.arange(b0, b0 + bar_idx[-1] + 1) % 4]

    # Chords: triads in the mode, each tone doubled by a detuned copy (beating grows with
    # dissonance), plus minor-second and tritone cluster tones for low valence.
    period = bar / c["restrikes"]
    tso = t % period
    sustain = 0.65 - 0.45 * ua
    env_c = np.minimum(tso / (0.06 - 0.05 * ua), 1.0) * (sustain + (1 - sustain) * np.exp(-tso / 0.25))
    table = _table(c["tilt"], c["odd_harmonics"])
    cents = 3.0 + 35.0 * c["dissonance"]
    left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
    root = (tonic * 2 ** (semis(degree) / 12))[bar_idx]  # per bar, then per sample
    for j, step in enumerate((0, 2, 4)):
        f = (tonic * 2 ** (semis(degree + step) / 12))[bar_idx]
        for sgn in (-1, 1):
            v = _osc(table, f * 2 ** (sgn * cents / 2400), rng.random()) * env_c
            (left if (j + (sgn > 0)) % 2 else right)[:] += 0.16 * v
    for interval, pan in ((1, 0), (6, 1)):  # cluster tones an octave above the root
        v = 0.22 * c["dissonance"] * _osc(table, root * 2 ** ((12 + interval) / 12), rng.random()) * env_c
        (left if pan else right)[:] += v
    # Bass: the chord root two octaves down, struck on each beat (a fixed octave keeps the
    # register cue monotone; its harmonics keep the lowest ones audible).
    bass = 0.3 * _osc(_table(2.0, False, 6), root / 4, 0.0) * np.exp(-(t % beat) / 0.35)

    # Melody: a random walk on the scale; onset density and FM brightness follow arousal.
    sixteenth = beat / 4
    slots = np.arange(int(t0 // sixteenth), int(t1 // sixteenth) + 1)
    on = rng.random(len(slots)) < c["note_density"] + 0.2 * (slots % 4 == 0)
    walk = np.cumsum(rng.choice([-2, -1, -1, 0, 1, 1, 2], len(slots))) % 22
    steps = 7 + np.where(walk > 11, 22 - walk, walk)  # reflected into 7..18 scale steps
    on_t = slots[on] * sixteenth
    note = np.searchsorted(on_t, t, side="right") - 1
    mel_f = (tonic * 2 ** (semis(steps[on]) / 12)).astype(np.float32)[np.maximum(note, 0)]
    env_m = np.exp(-_since(t, on_t) / (0.09 + 0.35 * (1 - ua))) * (note >= 0)
    # FM through a sine table: phase (in table units) = carrier + index * sin(ratio * carrier).
    pc = np.cumsum(mel_f, dtype=np.float64) * (TABLE_SIZE / SYNTH_SR)
    mod = SINE[(pc * c["fm_ratio"]).astype(np.int64) & MASK] * (c["fm_index"] * TABLE_SIZE / (2 * np.pi) * env_m)
    mel = 0.28 * env_m * SINE[(pc + mod).astype(np.int64) & MASK]

    # Drums on an 8th-note grid: kick on 1 and 3 (+ syncopations), snare on 2 and 4, hi-hats.
    kick, snare, hat = _drum_samples(rng)
    eighth = beat / 2
    grid = np.arange(int(np.ceil(t0 / eighth)), int(t1 // eighth) + 1)
    pos = grid % 8
    start = np.round((grid * eighth - t0) * SYNTH_SR).astype(np.int64)
    drums = np.zeros(n, np.float32)
    lvl = c["drum_level"]
    kick_on = (pos % 4 == 0) | ((pos == 3) | (pos == 6)) & (rng.random(len(grid)) < 0.8 * ua)
    _add_hits(drums, kick, start[kick_on], np.full(kick_on.sum(), 0.55 * lvl))
    snare_on = pos % 4 == 2
    _add_hits(drums, snare, start[snare_on], np.full(snare_on.sum(), 0.35 * lvl * ua))
    hat_on = rng.random(len(grid)) < 0.15 + 0.85 * ua
    _add_hits(drums, hat, start[hat_on], 0.25 * lvl * rng.uniform(0.6, 1.0, hat_on.sum()))
    if ua > 0.5:  # 16th hi-hats in between for the most energetic clips
        mid = start + int(eighth / 2 * SYNTH_SR)
        extra = rng.random(len(grid)) < 2 * (ua - 0.5)
        _add_hits(drums, hat, mid[extra], np.full(extra.sum(), 0.15 * lvl))

    p = rng.uniform(-0.4, 0.4)  # melody pan: nuisance
    left = left + bass + drums + (1 - p) * mel
    right = right + bass + drums + (1 + p) * mel
    audio = np.stack([left, right], 1) if channels == 2 else ((left + right) / 2)[:, None]

    # Loudness is a cue, so set the RMS level rather than normalising it away; a soft knee
    # above 0.7 keeps peaks below 0.9 without touching the bulk of the signal.
    audio *= 10 ** (c["loudness_dbfs"] / 20) / max(float(np.sqrt(np.mean(audio**2))), 1e-9)
    hot = np.abs(audio) > 0.7
    audio[hot] = np.sign(audio[hot]) * (0.7 + 0.2 * np.tanh((np.abs(audio[hot]) - 0.7) / 0.2))
    ramp = np.linspace(0.0, 1.0, int(0.02 * SYNTH_SR), dtype=np.float32)[:, None]  # no clicks
    audio[: len(ramp)] *= ramp
    audio[len(audio) - len(ramp) :] *= ramp[::-1]
    c["mode"] = MODES[c["mode_index"]][0]
    return audio, c


def write_clip(spec: ClipSpec) -> dict:
    """Render one clip, write it as MP3 at its own rate and channel count, and return its cues."""
    rng = np.random.default_rng([spec.seed, spec.song_id])  # per clip: workers agree on it
    audio, cues = render(spec.duration, spec.valence, spec.arousal, rng, spec.channels)
    if spec.sample_rate != SYNTH_SR:
        audio = soxr.resample(audio, SYNTH_SR, spec.sample_rate, quality="HQ").astype(np.float32)
        audio = np.clip(audio, -0.95, 0.95)  # resampling may overshoot the soft-knee limit a bit
    data = audio if spec.channels == 2 else audio[:, 0]
    try:  # ~64 kbps VBR like DEAM's files, and ~15% faster to encode than the default
        sf.write(spec.path, data, spec.sample_rate, format="MP3", compression_level=0.99)
    except TypeError:  # soundfile < 0.13 has no compression_level
        sf.write(spec.path, data, spec.sample_rate, format="MP3")
    cues.update(song_id=spec.song_id, sample_rate=spec.sample_rate, channels=spec.channels,
                duration=len(audio) / spec.sample_rate)
    return cues
