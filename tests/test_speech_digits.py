"""The speech demo's pieces: WAV parsing, the formant fallback, LAS gradients, a short training run."""
import io
import shutil
import wave

import numpy as np
import pytest

from attention_np.apps.las import (LASConfig, init_las, loss_and_grads, transcribe_beam,
                                   transcribe_greedy)
from demos._speech_data import _wav_to_array, espeak, formant_utterance, make_specs
from demos.speech_digits import edit_distance, error_rates, make_batch, tokens_to_digits, train


def _tiny_cfg(dtype="float64"):
    return LASConfig(n_mels=5, listener_hidden=3, emb=4, speller_hidden=5, attn_dim=4,
                     conv_filters=2, conv_width=3, max_len=4, dtype=dtype)


def _tiny_batch(rng, B=3, T=11):
    feats = [rng.standard_normal((T - b, 5)) for b in range(B)]
    digits = [(1, 2), (3,), (4, 5, 6)]
    return make_batch(feats, digits, list(range(B)))


def test_wav_bytes_with_bogus_length_are_read_to_the_end():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050)
        w.writeframes((np.arange(100, dtype="<i2") * 300).tobytes())
    data = bytearray(buf.getvalue())
    data[40:44] = (0x7FFFFFFF).to_bytes(4, "little")     # what espeak-ng writes to a pipe
    x, sr = _wav_to_array(bytes(data))
    assert sr == 22050 and len(x) == 100
    np.testing.assert_allclose(x * 32768, np.arange(100) * 300)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_speaks_at_16_khz():
    x = espeak("seven", "en-us", 160, 50)
    assert 0.2 * 16000 < len(x) < 1.5 * 16000 and np.abs(x).max() > 0.05


def test_formant_fallback_and_specs_are_seeded():
    a = formant_utterance((1, 2, 3), np.random.default_rng(0))
    b = formant_utterance((1, 2, 3), np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and len(a) > 0.5 * 16000
    assert make_specs(5, ("m1",), seed=3) == make_specs(5, ("m1",), seed=3)


def test_error_rates():
    assert edit_distance("kitten", "sitting") == 3
    assert tokens_to_digits([3 + 4, 3 + 2, 2, 3 + 9]) == [4, 2]
    rates = error_rates([(1, 2, 3), (4,)], [[1, 3], [4]])
    assert rates["word_error_rate"] == pytest.approx(1 / 4)
    assert rates["sentence_accuracy"] == 0.5


def test_las_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    cfg = _tiny_cfg()
    params = init_las(cfg, rng)
    x, mask, y_in, y_out = _tiny_batch(rng)
    _, grads, _ = loss_and_grads(params, cfg, x, mask, y_in, y_out)
    assert set(grads) == set(params)
    for name in ("listen0.fwd.W_x", "listen1.bwd.W_h", "att.F", "att.V", "att.U", "dec.W_h",
                 "emb", "out.W"):
        p = params[name]
        idx = tuple(rng.integers(0, s) for s in p.shape)
        if name == "emb":
            idx = (int(y_in[0, 1]), 0)
        old = p[idx]
        p[idx] = old + 1e-6
        plus = loss_and_grads(params, cfg, x, mask, y_in, y_out)[0]
        p[idx] = old - 1e-6
        minus = loss_and_grads(params, cfg, x, mask, y_in, y_out)[0]
        p[idx] = old
        np.testing.assert_allclose(grads[name][idx], (plus - minus) / 2e-6, rtol=1e-4,
                                   atol=1e-9, err_msg=name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_listener_gives_the_numpy_loss_and_gradients(dtype):
    """The demo trains with backend="numba" (the listener's LSTM scans on the fused kernels)."""
    from dataclasses import replace
    rng = np.random.default_rng(0)
    cfg = _tiny_cfg(dtype)
    params = init_las(cfg, rng)
    x, mask, y_in, y_out = _tiny_batch(rng)
    loss, grads, _ = loss_and_grads(params, cfg, x, mask, y_in, y_out)
    loss_n, grads_n, _ = loss_and_grads(params, replace(cfg, backend="numba"), x, mask, y_in,
                                        y_out)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(loss_n, loss, **tol)
    for name in grads:
        np.testing.assert_allclose(grads_n[name], grads[name], err_msg=name, **tol)


def test_beam_search_with_beam_one_is_greedy():
    rng = np.random.default_rng(1)
    cfg = _tiny_cfg()
    params = init_las(cfg, rng)
    x, mask, _, _ = _tiny_batch(rng)
    greedy, _ = transcribe_greedy(params, cfg, x, mask)
    tokens, alphas, _ = transcribe_beam(params, cfg, x, mask, beam=1)
    n = tokens.shape[1]
    np.testing.assert_array_equal(tokens, greedy[:, :n])
    assert alphas.shape[:2] == tokens.shape and np.allclose(alphas.sum(-1), 1, atol=1e-6)


def test_training_lowers_the_loss():
    rng = np.random.default_rng(2)
    feats = [rng.standard_normal((int(rng.integers(16, 24)), 5)).astype(np.float32)
             for _ in range(16)]
    digits = [tuple(int(d) for d in rng.integers(0, 10, 2)) for _ in range(16)]
    for f, ds in zip(feats, digits):                      # make the digits audible: a bump per digit
        f[4:8, ds[0] % 5] += 3
        f[10:14, ds[1] % 5] += 3
    cfg = LASConfig(n_mels=5, listener_hidden=8, emb=8, speller_hidden=16, attn_dim=8,
                    conv_filters=2, conv_width=3)
    _, losses = train(cfg, feats, digits, epochs=6, batch=8, lr=1e-2)
    assert np.mean(losses[-2:]) < losses[0] - 0.2


def test_strict_monotonicity_rejects_an_alignment_stuck_on_one_frame():
    """Rows: digits, then <end>. A digit read off the same step as the previous one passes the
    non-strict test and fails the strict one; <end> may stay on the last digit's step."""
    from demos.speech_digits import is_monotone, is_strictly_monotone, repeated_peaks

    def alignment(peaks, steps=8):
        return np.eye(steps)[peaks]
    walking = alignment([1, 3, 5, 5])                  # 3 digits, <end> on the last one's step
    stuck = alignment([1, 3, 3, 6])                    # digits 2 and 3 on one step
    backwards = alignment([1, 4, 2, 6])
    assert is_strictly_monotone(walking, 3) and is_monotone(walking, 4)
    assert is_monotone(stuck, 4) and not is_strictly_monotone(stuck, 3)
    assert not is_monotone(backwards, 4) and not is_strictly_monotone(backwards, 3)
    assert not is_strictly_monotone(alignment([1, 3, 5, 4]), 3)        # <end> steps back
    assert is_strictly_monotone(alignment([2, 2]), 1)                  # one digit + <end>
    # consecutive digit pairs: walking (1→3, 3→5), stuck (1→3, 3→3): 1 repeat in 4
    assert repeated_peaks([walking, stuck], [[7, 1, 2], [7, 1, 2]]) == pytest.approx(1 / 4)
