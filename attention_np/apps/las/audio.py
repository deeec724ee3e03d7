"""Audio features in NumPy: short-time Fourier transform, mel filterbank, log-mel spectrogram.

    X[t, k] = Σ_n x[t·hop + n − n_fft/2] w[n] e^{−2πi k n / n_fft}      (centred frames)
    mel(f) = 2595 log₁₀(1 + f / 700)                                   (HTK)
    mel(f) = 3f / 200 for f < 1 kHz,  15 + 27 ln(f / 1000) / ln 6.4 above  (Slaney)
    S[t, m] = log(Σ_k |X[t, k]|² M[k, m] + ε)                          (log-mel)

Shapes put time first — (frames, bins) — the batch-first layout the recurrent layers read.
The STFT matches ``torch.stft(center=True, pad_mode="reflect", window=hann_window(n_fft))``
transposed.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array


def hann_window(n: int, dtype=np.float64) -> np.ndarray:
    """Periodic Hann window w[n] = ½ (1 − cos(2πn / N)), n = 0 … N−1 (torch's default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(dtype)


def stft(x, n_fft: int = 400, hop: int = 160, window=None, center: bool = True) -> np.ndarray:
    """Short-time Fourier transform of a 1-D signal.   x (N,) → X (frames, n_fft // 2 + 1) complex.

    ``center=True`` reflect-pads n_fft // 2 samples on both sides, so frame t is centred on
    sample t·hop and there are 1 + N // hop frames. ``window`` defaults to the periodic Hann.
    """
    x = as_float_array(x, "x", ndim=1)
    if n_fft < 2 or hop < 1:
        raise ValueError(f"need n_fft ≥ 2 and hop ≥ 1, got n_fft={n_fft}, hop={hop}")
    w = hann_window(n_fft, x.dtype) if window is None else as_float_array(window, "window", ndim=1)
    if w.shape != (n_fft,):
        raise ValueError(f"window must have shape ({n_fft},), got {w.shape}")
    if center:
        if len(x) <= n_fft // 2:
            raise ValueError(f"x must be longer than n_fft // 2 = {n_fft // 2} samples for "
                             f"reflect padding, got {len(x)}")
        x = np.pad(x, n_fft // 2, mode="reflect")
    if len(x) < n_fft:
        raise ValueError(f"x has {len(x)} samples, fewer than n_fft = {n_fft}")
    n_frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]   # (frames, n_fft)
    return np.fft.rfft(x[idx] * w, axis=-1)


def hz_to_mel(f, htk: bool = False):
    """Hz → mel (HTK: 2595 log₁₀(1 + f/700); Slaney: linear below 1 kHz, logarithmic above)."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    logstep = np.log(6.4) / 27.0
    return np.where(f < 1000.0, 3.0 * f / 200.0,
                    15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep)


def mel_to_hz(m, htk: bool = False):
    """The inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    logstep = np.log(6.4) / 27.0
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp(logstep * (m - 15.0)))


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None, htk: bool = False, norm: str | None = "slaney"):
    """Triangular filters M (n_fft // 2 + 1, n_mels): filter m rises linearly from the centre
    frequency of filter m−1 to its own centre (where it is 1) and falls to the centre of m+1.
    Centres are equally spaced in mel between ``f_min`` and ``f_max`` (default: Nyquist).
    ``norm="slaney"`` divides filter m by half its width in Hz (equal area), ``None`` keeps peak 1.
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 ≤ f_min < f_max ≤ sample_rate / 2, got {f_min}, {f_max}")
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)                  # (K,)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, htk), hz_to_mel(f_max, htk), n_mels + 2), htk)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]                        # (n_mels,) each
    rising = (freqs[:, None] - lo) / (mid - lo)                             # (K, n_mels)
    falling = (hi - freqs[:, None]) / (hi - mid)
    M = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        M = M * (2.0 / (hi - lo))
    return M


def log_mel_spectrogram(x, sample_rate: int = 16000, n_mels: int = 40, n_fft: int = 400,
                        hop: int = 160, eps: float = 1e-6, **mel_kwargs) -> np.ndarray:
    """S[t, m] = log(Σ_k |X[t, k]|² M[k, m] + ε).   x (N,) → S (1 + N // hop, n_mels).

    Defaults: 25 ms windows every 10 ms at 16 kHz, 40 mel bins (Slaney scale and norm).
    """
    X = stft(x, n_fft, hop)
    M = mel_filterbank(n_mels, n_fft, sample_rate, **mel_kwargs)
    power = X.real ** 2 + X.imag ** 2                                       # (frames, K)
    return np.log(power @ M + eps).astype(np.asarray(x).dtype, copy=False)
