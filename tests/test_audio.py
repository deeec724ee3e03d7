"""STFT against torch.stft and a direct DFT; mel scale and filterbank against their formulas."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from attention_np.apps.las.audio import (hann_window, hz_to_mel, log_mel_spectrogram, mel_filterbank,
                                mel_to_hz, stft)
from tests.helpers import record_error
from tests.strategies import examples, seeds


@examples(ci=30, thorough=10_000)
@given(n_fft=st.sampled_from([16, 25, 64, 400]), hop=st.integers(1, 170),
       extra=st.integers(0, 900), seed=seeds)
def test_stft_matches_torch(n_fft, hop, extra, seed):
    x = np.random.default_rng(seed).standard_normal(n_fft // 2 + 1 + extra)
    ours = stft(x, n_fft, hop)
    ref = torch.stft(torch.from_numpy(x), n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                     center=True, pad_mode="reflect", return_complex=True).numpy().T
    padded = len(x) + 2 * (n_fft // 2)
    assert ours.shape == ref.shape == (1 + (padded - n_fft) // hop, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    record_error("stft", np.abs(ours - ref).max())


def test_stft_matches_direct_dft_without_centering():
    rng = np.random.default_rng(0)
    x, n_fft, hop = rng.standard_normal(300), 32, 20
    w = rng.random(n_fft)
    ours = stft(x, n_fft, hop, window=w, center=False)
    n_frames = 1 + (len(x) - n_fft) // hop
    ref = np.zeros((n_frames, n_fft // 2 + 1), complex)
    for t in range(n_frames):
        for k in range(n_fft // 2 + 1):
            ref[t, k] = sum(x[t * hop + n] * w[n] * np.exp(-2j * np.pi * k * n / n_fft)
                            for n in range(n_fft))
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_hann_window_is_torchs_periodic_window():
    np.testing.assert_allclose(hann_window(400), torch.hann_window(400, dtype=torch.float64).numpy(),
                               atol=1e-15)


@pytest.mark.parametrize("htk", [True, False])
def test_mel_scale_formulas_and_inverse(htk):
    f = np.array([0.0, 200.0, 700.0, 999.0, 1000.0, 4000.0, 8000.0])
    if htk:
        expected = 2595.0 * np.log10(1.0 + f / 700.0)
    else:   # Slaney (Auditory Toolbox): 200/3 Hz per mel below 1 kHz, 27 mels per factor 6.4 above
        expected = np.array([v / (200 / 3) if v < 1000 else 15 + 27 * np.log(v / 1000) / np.log(6.4)
                             for v in f])
    np.testing.assert_allclose(hz_to_mel(f, htk), expected, rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk), htk), f, atol=1e-9)
    assert hz_to_mel(1000.0, htk=False) == pytest.approx(15.0)
    assert hz_to_mel(700.0, htk=True) == pytest.approx(2595 * np.log10(2))


def _loop_filterbank(n_mels, n_fft, sr, htk, norm):
    """Filter m by cases: 0 outside (lo, hi), (f − lo)/(mid − lo) rising, (hi − f)/(hi − mid) falling."""
    mels = np.linspace(hz_to_mel(0.0, htk), hz_to_mel(sr / 2, htk), n_mels + 2)
    edges = [float(mel_to_hz(m, htk)) for m in mels]
    M = np.zeros((n_fft // 2 + 1, n_mels))
    for k in range(n_fft // 2 + 1):
        f = k * sr / n_fft
        for m in range(n_mels):
            lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
            if lo < f <= mid:
                M[k, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                M[k, m] = (hi - f) / (hi - mid)
            if norm == "slaney":
                M[k, m] *= 2.0 / (hi - lo)
    return M


@pytest.mark.parametrize("htk,norm", [(True, None), (False, None), (False, "slaney")])
def test_mel_filterbank_matches_the_triangle_formula(htk, norm):
    M = mel_filterbank(40, 512, 16000, htk=htk, norm=norm)
    assert M.shape == (257, 40) and M.min() >= 0
    np.testing.assert_allclose(M, _loop_filterbank(40, 512, 16000, htk, norm), atol=1e-12)
    assert np.all(M.sum(axis=0) > 0), "every filter must cover at least one FFT bin"


def test_log_mel_matches_torch_composition():
    x = np.random.default_rng(3).standard_normal(8000)
    ours = log_mel_spectrogram(x, 16000, n_mels=40, n_fft=400, hop=160)
    X = torch.stft(torch.from_numpy(x), 400, 160, window=torch.hann_window(400, dtype=torch.float64),
                   return_complex=True)
    power = X.abs() ** 2                                             # (K, frames)
    M = torch.from_numpy(mel_filterbank(40, 400, 16000))
    ref = torch.log(power.T @ M + 1e-6).numpy()
    assert ours.shape == (51, 40)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_a_pure_tone_lands_in_the_right_mel_bin():
    sr, f0 = 16000, 1500.0
    t = np.arange(sr // 2) / sr
    S = log_mel_spectrogram(np.sin(2 * np.pi * f0 * t), sr, n_mels=40)
    edges = mel_to_hz(np.linspace(0, hz_to_mel(sr / 2), 42))
    peak = int(np.median(S.argmax(axis=1)))
    assert edges[peak] < f0 < edges[peak + 2]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="x must be longer"):
        stft(np.zeros(10), n_fft=64)
    with pytest.raises(ValueError, match="window"):
        stft(np.zeros(100), n_fft=16, window=np.ones(8))
    with pytest.raises(ValueError, match="f_min"):
        mel_filterbank(10, 64, 8000, f_max=5000)
