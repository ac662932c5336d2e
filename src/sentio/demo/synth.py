"""Synthesis of one demo clip: a short piece of music whose cues follow a known emotion path.

Each clip has a chord progression (additive wavetable voices), an FM melody, a bass line and drums
(kick, snare, hi-hat). The emotion is carried by well-studied musical cues, each a monotone
function of the true value so that a model can learn it from a mel spectrogram:

- arousal: tempo, note density (melody onsets, chord re-strikes, hi-hats), loudness, brightness
  (spectral tilt of the voices, FM index) and drum level;
- valence: register (the whole piece moves up with valence), mode (from Locrian to Lydian) and
  consonance (detuned, beating voices and added minor-second / tritone cluster tones when low).

The true (valence, arousal) moves along a path over the clip, and every cue is read from the path
at the time of its event: notes, chord strikes and drum hits sit on a beat grid integrated from
the tempo, mode and register change at bar lines, and a gain envelope sets the loudness of each
short stretch. An abrasive texture (bit-crushed noise bursts on the off-beats) grows with the
song's divisiveness, drawn from its own random stream so that it carries no valence or arousal.

Nuisances that carry no label: key, progression, melody, timbre, panning and a little jitter of
tempo and loudness. Everything is vectorised numpy at an internal rate, then resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

SYNTH_SR = 22050  # internal rate: content below 11 kHz, like the low-bitrate MP3s of DEAM
PATH_RATE = 20  # the emotion path has one value per 50 ms cell; cell k covers [k, k + 1) / PATH_RATE
TABLE_SIZE = 4096
MASK = TABLE_SIZE - 1
SINE = np.sin(2 * np.pi * np.arange(TABLE_SIZE) / TABLE_SIZE).astype(np.float32)
TILT_STEPS = 16  # wavetables per clip along the brightness range, one chosen at each chord strike
LOUDNESS_BLOCK, LOUDNESS_BLOCKS = 0.1, 5  # the gain envelope: RMS over 5 blocks of 0.1 s
# The divisive texture: band-passed noise, sample-held and quantised (grit), in off-beat bursts.
GRIT_BAND, GRIT_HOLD, GRIT_STEP, GRIT_GAIN = (1500.0, 6000.0), 3, 0.6, 0.7

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
SCALES = np.array([scale for _, scale in MODES])
PROGRESSIONS = np.array(((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4), (0, 5, 1, 4), (0, 2, 3, 4)))


@dataclass(frozen=True)
class ClipSpec:
    """What a worker needs to render one clip; everything else derives from (seed, song_id)."""

    song_id: int
    seed: int
    emotion: np.ndarray  # (cells, 2): true valence, arousal on 1..9, one row per 1 / PATH_RATE s
    divisiveness: float  # 0..1: how much listeners disagree, heard as the abrasive texture
    sample_rate: int
    channels: int
    duration: float  # seconds
    path: str
    variant: int = 0  # see VARIANTS


# Domain-shifted versions of the demo music, for cross-dataset benchmarks. Variant 0 is the demo
# corpus as it always was (nothing here touches it: no extra random draws, offsets of 0). Variant 1:
# other timbres (odd-harmonic, darker tables; FM at ratio 3) and a slower tempo range; its raters'
# bias is in demo.RATER_BIAS.
VARIANTS: dict[int, dict] = {0: {}, 1: {"tempo_factor": 0.7, "tilt_offset": 0.8, "odd_harmonics": True, "fm_ratio": 3}}


def _with_variant(nuisances: dict, variant: int) -> dict:
    """A clip's nuisances moved to `variant`'s domain (tempo scaled, timbre fields replaced)."""
    shift = VARIANTS[variant]
    out = dict(nuisances)
    for key, value in shift.items():
        if key == "tempo_factor":
            out[key] = nuisances[key] * value
        elif key != "tilt_offset":
            out[key] = value
    out["tilt_offset"] = shift.get("tilt_offset", 0.0)
    return out


def unit(values: np.ndarray) -> np.ndarray:
    """A true value on 1..9 as the 0..1 position that drives the cues (saturating outside 1.5..8.5)."""
    return np.clip((np.asarray(values, np.float64) - 1.5) / 7.0, 0.0, 1.0)


def arousal_cues(ua: np.ndarray) -> dict[str, np.ndarray]:
    """The arousal cues at positions `ua` (0..1) of the path, before the clip's nuisances."""
    return {
        "tempo_bpm": 62.0 + 104.0 * ua,
        "note_density": 0.12 + 0.72 * ua,  # probability of a melody onset per 16th note
        "restrike_level": np.round(3 * ua).astype(np.int64),  # 2**level chord attacks per bar
        "tilt": 2.4 - 1.7 * ua,  # harmonic k has amplitude k**-tilt: low tilt = bright
        "fm_index": 0.4 + 3.6 * ua,
        "drum_level": 0.2 + 0.8 * ua,
        "loudness_dbfs": -26.0 + 16.0 * ua,
    }


def valence_cues(uv: np.ndarray) -> dict[str, np.ndarray]:
    """The valence cues at positions `uv` (0..1) of the path."""
    return {
        "mode_index": np.round(6 * uv).astype(np.int64),
        "register": -9.0 + 22.0 * uv,  # semitones, the whole piece
        "dissonance": (1.0 - uv) ** 1.5,  # 0 = consonant, 1 = rough and clustered
    }


def clip_nuisances(rng: np.random.Generator) -> dict:
    """The label-free parameters of a clip."""
    return {
        "tempo_factor": rng.uniform(0.97, 1.03),
        "loudness_offset": rng.uniform(-1.0, 1.0),
        "key": rng.uniform(-2.5, 2.5),  # transposition, small next to the register range
        "progression": int(rng.integers(len(PROGRESSIONS))),
        "fm_ratio": int(rng.choice([1, 2])),
        "odd_harmonics": bool(rng.random() < 0.5),
        "start_beat": rng.uniform(0.0, 4.0),  # the clip starts anywhere in a bar
        "pan": rng.uniform(-0.4, 0.4),  # of the melody
    }


def clip_cues(emotion: np.ndarray, nuisances: dict) -> dict:
    """The cues of a whole clip for truth.csv: time-averages over its path (mode: that of the
    time-averaged valence)."""
    uv, ua = unit(emotion[:, 0]), unit(emotion[:, 1])
    a, v = arousal_cues(ua), valence_cues(uv)
    mode_index = int(valence_cues(uv.mean())["mode_index"])
    return {
        "tempo_bpm": float(a["tempo_bpm"].mean() * nuisances["tempo_factor"]),
        "mode": MODES[mode_index][0],
        "mode_index": mode_index,
        "register": float(v["register"].mean()),
        "dissonance": float(v["dissonance"].mean()),
        "note_density": float(a["note_density"].mean()),
        "tilt": float(a["tilt"].mean()),
        "loudness_dbfs": float(a["loudness_dbfs"].mean() + nuisances["loudness_offset"]),
    }


def _table(tilt: float, odd: bool, harmonics: int = 10) -> np.ndarray:
    """One period of an additive waveform, k**-tilt amplitudes (odd harmonics favoured if `odd`)."""
    k = np.arange(1, harmonics + 1)
    amp = k ** -tilt * np.where(odd & (k % 2 == 0), 0.3, 1.0)
    ph = np.arange(TABLE_SIZE) / TABLE_SIZE
    wave = (amp[:, None] * np.sin(2 * np.pi * k[:, None] * ph[None, :])).sum(0)
    return (wave / np.abs(wave).max()).astype(np.float32)


def _osc(table: np.ndarray, freq: np.ndarray, phase0: float = 0.0, offset: np.ndarray | int = 0) -> np.ndarray:
    """Wavetable oscillator for a per-sample frequency (continuous phase, so no clicks); `offset`
    picks a table per sample out of several stacked in `table`."""
    phase = np.cumsum(freq, dtype=np.float64)
    phase *= TABLE_SIZE / SYNTH_SR
    phase += phase0 * TABLE_SIZE
    return table[(phase.astype(np.int64) & MASK) + offset]  # TABLE_SIZE is a power of two


def _latest(t: np.ndarray, onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the latest onset at each sample (-1 before the first) and the time since it (inf)."""
    i = np.searchsorted(onsets, t, side="right") - 1
    since = np.where(i >= 0, t - onsets[np.maximum(i, 0)], np.inf).astype(np.float32)
    return i, since


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


@dataclass
class _Clock:
    """The beat grid of a clip: beat phase per sample, the integral of tempo(t) / 60."""

    t: np.ndarray  # sample times, seconds
    beats: np.ndarray  # beat phase at each sample

    def times(self, at: np.ndarray) -> np.ndarray:
        """Times of beat positions `at`; those before the clip extend the first tempo backwards."""
        rate0 = (self.beats[1] - self.beats[0]) * SYNTH_SR
        return np.interp(at, self.beats, self.t) + np.minimum(at - self.beats[0], 0.0) / rate0

    def grid(self, per_beat: int, first_bar: int | None = None) -> np.ndarray:
        """Grid positions (in 1 / per_beat beats) up to the end, from the start or from `first_bar`."""
        first = int(np.ceil(self.beats[0] * per_beat)) if first_bar is None else 4 * first_bar * per_beat
        return np.arange(first, int(self.beats[-1] * per_beat) + 1)


def _grit(n: int, rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise, sample-held and coarsely quantised: a harsh, bit-crushed hiss (unit RMS)."""
    freq = np.fft.rfftfreq(n, 1 / SYNTH_SR)
    band = np.fft.rfft(rng.standard_normal(n)) * ((freq > GRIT_BAND[0]) & (freq < GRIT_BAND[1]))
    x = np.fft.irfft(band, n)[::GRIT_HOLD].repeat(GRIT_HOLD)[:n]
    x = GRIT_STEP * np.round(x / (GRIT_STEP * x.std()))
    return (x / max(float(x.std()), 1e-9)).astype(np.float32)


def _texture(clock: _Clock, divisiveness: float, rng: np.random.Generator) -> np.ndarray:
    """The divisive texture: grit bursts on the off-beat 8ths, level growing with divisiveness."""
    offbeats = clock.grid(2)
    offbeats = offbeats[offbeats % 2 == 1]
    on = clock.times(offbeats / 2)[rng.random(len(offbeats)) < 0.7]
    _, since = _latest(clock.t, on)
    return GRIT_GAIN * divisiveness * _grit(len(clock.t), rng) * np.exp(-since / 0.08)


def _loudness_gain(audio: np.ndarray, target_dbfs: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Per-sample gain that brings the RMS of each short stretch to its target level in dBFS at
    that time; smooth, so it follows the path without flattening the beat's own dynamics."""
    block = int(LOUDNESS_BLOCK * SYNTH_SR)
    count = int(np.ceil(len(audio) / block))
    power = np.zeros(count * block)
    power[: len(audio)] = (audio.astype(np.float64) ** 2).mean(1)
    power = power.reshape(count, block).sum(1)
    samples = np.full(count, block)
    samples[-1] = len(audio) - (count - 1) * block  # the last block is partly empty
    window = np.ones(LOUDNESS_BLOCKS)
    rms = np.sqrt(np.convolve(power, window, "same") / np.convolve(samples, window, "same"))
    centres = (np.arange(count) + 0.5) * LOUDNESS_BLOCK
    gain = 10 ** (target_dbfs(centres) / 20) / np.maximum(rms, 1e-4)
    return np.interp(np.arange(len(audio)) / SYNTH_SR, centres, gain).astype(np.float32)


@dataclass
class _Score:
    """What every part of a clip reads: its samples' times, the beat clock, the emotion path, and
    the bars' harmony (mode, register, dissonance and the progression's degree, read at each bar line)."""

    c: dict  # the clip's nuisances (clip_nuisances)
    t: np.ndarray  # sample times, seconds
    cell_t: np.ndarray  # times of the path's cells
    uv_cells: np.ndarray  # valence of each cell on [0, 1]
    ua_cells: np.ndarray  # arousal of each cell on [0, 1]
    bpm: np.ndarray  # tempo per sample
    clock: _Clock
    bars: np.ndarray  # bar numbers, from the bar before the start on
    bar_v: dict  # valence cues at each bar line
    tonic: np.ndarray  # Hz, per bar
    degree: np.ndarray  # the progression's degree, per bar
    bar_of: np.ndarray  # per sample: index into `bars`

    def ua_at(self, times: np.ndarray) -> np.ndarray:
        return np.interp(times, self.cell_t, self.ua_cells)

    def uv_at(self, times: np.ndarray) -> np.ndarray:
        return np.interp(times, self.cell_t, self.uv_cells)

    def pitch(self, step: np.ndarray, bar: np.ndarray) -> np.ndarray:
        """Scale step in a bar -> Hz."""
        return self.tonic[bar] * 2 ** ((12 * (step // 7) + SCALES[self.bar_v["mode_index"][bar], step % 7]) / 12)

    def root(self) -> np.ndarray:
        """The chord root per sample."""
        return self.pitch(self.degree, np.arange(len(self.bars)))[self.bar_of]


def _score(duration: float, emotion: np.ndarray, c: dict) -> _Score:
    n = int(round(duration * SYNTH_SR))
    t = np.arange(n) / SYNTH_SR
    cell_t = (np.arange(len(emotion)) + 0.5) / PATH_RATE
    uv_cells, ua_cells = unit(emotion[:, 0]), unit(emotion[:, 1])
    # Tempo is linear in arousal, so interpolating it from the cells is exact; its integral is
    # the beat phase, so the grid speeds up and slows down smoothly with the path.
    bpm = np.interp(t, cell_t, arousal_cues(ua_cells)["tempo_bpm"] * c["tempo_factor"])
    clock = _Clock(t, c["start_beat"] + (np.cumsum(bpm) - bpm[0]) / (60.0 * SYNTH_SR))
    # Events from the bar before the start on, so that notes struck before it already sound.
    # Bars: mode, register, dissonance and the progression's degree are read at each bar line.
    bars = np.arange(int(clock.beats[0] // 4) - 1, int(clock.beats[-1] // 4) + 1)
    bar_v = valence_cues(np.interp(clock.times(4.0 * bars), cell_t, uv_cells))
    tonic = 220.0 * 2 ** ((bar_v["register"] + c["key"]) / 12)  # A3 moved by register and key
    degree = PROGRESSIONS[c["progression"]][bars % 4]
    bar_of = (clock.beats // 4).astype(np.int64) - bars[0]  # per sample
    return _Score(c, t, cell_t, uv_cells, ua_cells, bpm, clock, bars, bar_v, tonic, degree, bar_of)


def _chords(s: _Score, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Chords (left, right): triads in the mode, each tone doubled by a detuned copy (beating grows
    with dissonance), plus minor-second and tritone cluster tones for low valence. Strikes fall on
    the 8th-note grid, 1, 2, 4 or 8 per bar as arousal rises; each strike takes its envelope,
    brightness and cluster level from the path at its time."""
    c, t, n = s.c, s.t, len(s.t)
    ib, root = np.arange(len(s.bars)), s.root()
    eighths = s.clock.grid(2, s.bars[0])
    strike_t = s.clock.times(eighths / 2)
    strikes = eighths % 8 % (2 ** (3 - arousal_cues(s.ua_at(strike_t))["restrike_level"])) == 0
    strike_t = strike_t[strikes]
    s_ua, s_dis = s.ua_at(strike_t), valence_cues(s.uv_at(strike_t))["dissonance"]
    si, since = _latest(t, strike_t)
    attack, sustain = (0.06 - 0.05 * s_ua)[si], (0.65 - 0.45 * s_ua)[si]
    env_c = (np.minimum(since / attack, 1.0) * (sustain + (1 - sustain) * np.exp(-since / 0.25))).astype(np.float32)
    shade = np.round((2.4 - arousal_cues(s_ua)["tilt"]) / 1.7 * (TILT_STEPS - 1)).astype(np.int64)
    used, shade_of = np.unique(shade, return_inverse=True)
    tables = np.concatenate([_table(2.4 - 1.7 * k / (TILT_STEPS - 1) + c["tilt_offset"], c["odd_harmonics"]) for k in used])
    offset = shade_of[si] * TABLE_SIZE  # switches at strikes, where the attack hides it
    cents = (3.0 + 35.0 * s.bar_v["dissonance"])[s.bar_of]
    left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for j, step in enumerate((0, 2, 4)):
        f = s.pitch(s.degree + step, ib)[s.bar_of]
        for sgn in (-1, 1):
            v = _osc(tables, f * 2 ** (sgn * cents / 2400), rng.random(), offset) * env_c
            (left if (j + (sgn > 0)) % 2 else right)[:] += 0.16 * v
    for interval, pan in ((1, 0), (6, 1)):  # cluster tones an octave above the root
        v = 0.22 * s_dis[si] * _osc(tables, root * 2 ** ((12 + interval) / 12), rng.random(), offset) * env_c
        (left if pan else right)[:] += v
    return left, right


def _bass(s: _Score) -> np.ndarray:
    """The chord root two octaves down, struck on each beat (a fixed octave keeps the register cue
    monotone; its harmonics keep the lowest ones audible)."""
    beat_s = (s.clock.beats % 1) * 60.0 / s.bpm
    return 0.3 * _osc(_table(2.0, False, 6), s.root() / 4, 0.0) * np.exp(-beat_s / 0.35)


def _melody(s: _Score, rng: np.random.Generator) -> np.ndarray:
    """A random walk on the scale; onset density and FM brightness follow arousal."""
    slots = s.clock.grid(4, s.bars[0])
    slot_t = s.clock.times(slots / 4)
    on = rng.random(len(slots)) < arousal_cues(s.ua_at(slot_t))["note_density"] + 0.2 * (slots % 4 == 0)
    walk = np.cumsum(rng.choice([-2, -1, -1, 0, 1, 1, 2], len(slots))) % 22
    steps = 7 + np.where(walk > 11, 22 - walk, walk)  # reflected into 7..18 scale steps
    on_t, note_bar = slot_t[on], slots[on] // 16 - s.bars[0]
    m = arousal_cues(s.ua_at(on_t))
    note, since = _latest(s.t, on_t)
    note = np.maximum(note, 0)
    mel_f = s.pitch(steps[on], note_bar).astype(np.float32)[note]
    env_m = np.exp(-since / (0.09 + 0.35 * (1 - s.ua_at(on_t)))[note])
    # FM through a sine table: phase (in table units) = carrier + index * sin(ratio * carrier).
    pc = np.cumsum(mel_f, dtype=np.float64) * (TABLE_SIZE / SYNTH_SR)
    mod = SINE[(pc * s.c["fm_ratio"]).astype(np.int64) & MASK] * (m["fm_index"][note] * TABLE_SIZE / (2 * np.pi) * env_m)
    return (0.28 * env_m * SINE[(pc + mod).astype(np.int64) & MASK]).astype(np.float32)


def _drums(s: _Score, rng: np.random.Generator) -> np.ndarray:
    """Drums on the 8th-note grid: kick on 1 and 3 (+ syncopations), snare on 2 and 4, hi-hats."""
    kick, snare, hat = _drum_samples(rng)
    grid = s.clock.grid(2)
    hit_t = s.clock.times(grid / 2)
    pos = grid % 8
    start = np.round(hit_t * SYNTH_SR).astype(np.int64)
    h_ua = s.ua_at(hit_t)
    lvl = arousal_cues(h_ua)["drum_level"]
    drums = np.zeros(len(s.t), np.float32)
    kick_on = (pos % 4 == 0) | ((pos == 3) | (pos == 6)) & (rng.random(len(grid)) < 0.8 * h_ua)
    _add_hits(drums, kick, start[kick_on], 0.55 * lvl[kick_on])
    snare_on = pos % 4 == 2
    _add_hits(drums, snare, start[snare_on], (0.35 * lvl * h_ua)[snare_on])
    hat_on = rng.random(len(grid)) < 0.15 + 0.85 * h_ua
    _add_hits(drums, hat, start[hat_on], 0.25 * lvl[hat_on] * rng.uniform(0.6, 1.0, hat_on.sum()))
    # 16th hi-hats in between for the most energetic stretches
    extra = rng.random(len(grid)) < 2 * (h_ua - 0.5)
    mid = np.round(s.clock.times(grid[extra] / 2 + 0.25) * SYNTH_SR).astype(np.int64)
    _add_hits(drums, hat, mid, 0.15 * lvl[extra])
    return drums


def _master(audio: np.ndarray, s: _Score) -> np.ndarray:
    """Loudness is a cue, so follow its path rather than normalising it away; a soft knee above
    0.7 keeps peaks below 0.9 without touching the bulk of the signal; 20 ms fades (no clicks)."""
    audio *= _loudness_gain(audio, lambda at: arousal_cues(s.ua_at(at))["loudness_dbfs"] + s.c["loudness_offset"])[:, None]
    hot = np.abs(audio) > 0.7
    audio[hot] = np.sign(audio[hot]) * (0.7 + 0.2 * np.tanh((np.abs(audio[hot]) - 0.7) / 0.2))
    ramp = np.linspace(0.0, 1.0, int(0.02 * SYNTH_SR), dtype=np.float32)[:, None]
    audio[: len(ramp)] *= ramp
    audio[len(audio) - len(ramp) :] *= ramp[::-1]
    return audio


def render(duration: float, emotion: np.ndarray, divisiveness: float, rng: np.random.Generator, channels: int,
           variant: int = 0):
    """Render a clip at SYNTH_SR along its emotion path (cells, 2) on 1..9 (see ClipSpec):
    returns (audio (frames, channels) float32, cues dict as clip_cues). The parts draw from `rng`
    in a fixed order (chords, melody, drums), so a clip is the same for the same seed."""
    texture_rng = rng.spawn(1)[0]  # its own stream: the texture is independent of the music
    c = _with_variant(clip_nuisances(rng), variant)
    score = _score(duration, emotion, c)
    left, right = _chords(score, rng)
    bass = _bass(score)
    mel = _melody(score, rng)
    drums = _drums(score, rng)
    grit = _texture(score.clock, divisiveness, texture_rng)
    p = c["pan"]
    left = left + bass + drums + grit + (1 - p) * mel
    right = right + bass + drums + grit + (1 + p) * mel
    audio = np.stack([left, right], 1) if channels == 2 else ((left + right) / 2)[:, None]
    return _master(audio, score), clip_cues(emotion, c)


def write_clip(spec: ClipSpec) -> dict:
    """Render one clip, write it as MP3 at its own rate and channel count, and return its cues."""
    # per clip: workers agree on it; another variant is other music too
    rng = np.random.default_rng([spec.seed, spec.song_id] + ([spec.variant] if spec.variant else []))
    audio, cues = render(spec.duration, spec.emotion, spec.divisiveness, rng, spec.channels, spec.variant)
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
