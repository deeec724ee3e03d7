"""Spoken digit strings for the speech demo: espeak-ng voices, or a NumPy formant synthesiser.

Each utterance says 2–5 digits ("three seven one"). With ``espeak-ng`` on the PATH (Debian
package; ``.ci/run`` installs it) every utterance is real synthetic speech from a voice =
accent (en-us, en-gb, Scottish, Caribbean, …) + variant (m1…m7, f1…f4, klatt…), at a random
speed (130–200 words per minute) and pitch (30–70). The test set uses variants that never
occur in training, so the score is on held-out voices. Without espeak-ng a formant
synthesiser stands in (harmonics of a random f0 shaped by per-digit formant trajectories).

Audio is resampled to 16 kHz, padded with 50–250 ms of silence on both sides, mixed with white
noise at 15–30 dB SNR, and turned into 40 log-mel bins every 10 ms (:mod:`attention_np.apps.las.audio`).
Generated features are cached as ``.npz`` in a folder the caller chooses (never in git).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from attention_np.apps.las.audio import log_mel_spectrogram

SR = 16000
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOCAB = ("<pad>", "<start>", "<end>") + tuple(str(d) for d in range(10))
PAD, START, END = 0, 1, 2
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "klatt3", "")
TEST_VARIANTS = ("m7", "f4", "klatt2")


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def _wav_to_array(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono PCM WAV bytes → float samples in [−1, 1] and the sample rate.

    espeak-ng writes to a pipe, so the header's length fields are bogus: read up to the end.
    """
    sr = int.from_bytes(data[24:28], "little")
    start = data.index(b"data") + 8
    pcm = np.frombuffer(data[start:start + (len(data) - start) // 2 * 2], dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, sr


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """``espeak-ng -v voice -s speed -p pitch --stdout text`` → samples at 16 kHz."""
    from scipy.signal import resample_poly
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                          "--stdout", text], capture_output=True, check=True).stdout
    x, sr = _wav_to_array(out)
    g = np.gcd(sr, SR)
    return resample_poly(x, SR // g, sr // g) if sr != SR else x


# (F1, F2) targets in Hz through each word, and whether it starts with a fricative
_FORMANTS = {0: ([(300, 2300), (450, 1300), (500, 900)], True), 1: ([(300, 700), (600, 1200),
             (400, 1600)], False), 2: ([(320, 1000), (300, 850)], False),
             3: ([(400, 1400), (300, 2300)], True), 4: ([(500, 850), (450, 1000)], True),
             5: ([(700, 1200), (400, 2000), (350, 1500)], True), 6: ([(400, 2000), (420, 1900)], True),
             7: ([(550, 1800), (500, 1500), (450, 1700)], True), 8: ([(500, 1900), (350, 2250)], False),
             9: ([(350, 1500), (700, 1200), (400, 2000)], False)}


def formant_word(digit: int, f0: float, scale: float, dur: float, rng) -> np.ndarray:
    """Harmonics of f0 under Gaussian formant peaks that glide through the word's targets."""
    targets, fricative = _FORMANTS[digit]
    n = int(dur * SR)
    pos = np.linspace(0, len(targets) - 1, n)
    F = np.array(targets, float) * scale                                  # (segments, 2)
    F1, F2 = np.interp(pos, np.arange(len(F)), F[:, 0]), np.interp(pos, np.arange(len(F)), F[:, 1])
    t = np.arange(n) / SR
    f0_t = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0_t) / SR
    k = np.arange(1, int(4000 / f0) + 1)[:, None]                         # harmonics (K, 1)
    amp = (np.exp(-((k * f0_t - F1) / 120) ** 2) + 0.6 * np.exp(-((k * f0_t - F2) / 180) ** 2))
    x = (amp * np.sin(k * phase)).sum(0) * np.hanning(n) ** 0.3
    if fricative:
        m = int(0.08 * SR)
        x = np.concatenate([0.3 * np.diff(rng.standard_normal(m + 1)), x])
    return x / (np.abs(x).max() + 1e-9)


def formant_utterance(digits, rng) -> np.ndarray:
    f0, scale, rate = rng.uniform(90, 240), rng.uniform(0.85, 1.2), rng.uniform(0.8, 1.25)
    parts = []
    for d in digits:
        parts += [formant_word(d, f0, scale, rng.uniform(0.25, 0.35) / rate, rng),
                  np.zeros(int(rng.uniform(0.02, 0.1) * SR))]
    return np.concatenate(parts)


def _features(audio: np.ndarray, rng) -> np.ndarray:
    """Silence padding, white noise at 15–30 dB SNR, 40 log-mel bins → (frames, 40) float32."""
    pad = [np.zeros(int(rng.uniform(0.05, 0.25) * SR)) for _ in range(2)]
    x = np.concatenate([pad[0], audio, pad[1]])
    snr_db = rng.uniform(15, 30)
    noise_power = np.mean(audio ** 2) / 10 ** (snr_db / 10)
    x = x + rng.standard_normal(len(x)) * np.sqrt(noise_power)
    return log_mel_spectrogram(x, SR, n_mels=40).astype(np.float32)


def _utterance(spec, use_espeak: bool) -> np.ndarray:
    digits, voice, speed, pitch, seed = spec
    rng = np.random.default_rng(seed)
    if use_espeak:
        audio = espeak(" ".join(WORDS[d] for d in digits), voice, speed, pitch)
    else:
        audio = formant_utterance(digits, rng)
    return _features(audio, rng)


def make_specs(n: int, variants, seed: int, min_digits: int = 2, max_digits: int = 5):
    """``n`` (digits, voice, speed, pitch, seed) tuples drawn at random."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        digits = tuple(int(d) for d in rng.integers(0, 10, rng.integers(min_digits, max_digits + 1)))
        variant = variants[rng.integers(len(variants))]
        voice = ACCENTS[rng.integers(len(ACCENTS))] + (f"+{variant}" if variant else "")
        specs.append((digits, voice, int(rng.integers(130, 201)), int(rng.integers(30, 71)),
                      seed * 100003 + i))
    return specs


def load_split(n: int, split: str, seed: int, cache_dir: Path, use_espeak: bool | None = None,
               workers: int = 8):
    """Features and digit lists for ``n`` utterances of ``split`` ("train" or "test").

    Returns (features: list of (T_i, 40) float32, digits: list of tuples, source name).
    """
    use_espeak = have_espeak() if use_espeak is None else use_espeak
    specs = make_specs(n, TRAIN_VARIANTS if split == "train" else TEST_VARIANTS, seed)
    source = "espeak-ng" if use_espeak else "formant"
    key = hashlib.sha1(repr((specs, source, 1)).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{split}_{source}_{n}_{key}.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        feats = np.split(data["feats"], np.cumsum(data["lengths"])[:-1])
        return feats, [s[0] for s in specs], source
    with ThreadPoolExecutor(workers if use_espeak else 1) as pool:
        feats = list(pool.map(lambda s: _utterance(s, use_espeak), specs))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, feats=np.concatenate(feats), lengths=np.array([len(f) for f in feats]))
    return feats, [s[0] for s in specs], source
