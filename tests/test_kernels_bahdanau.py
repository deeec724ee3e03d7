"""The fused Bahdanau decoder (kernels/bahdanau.py, reached by the translator's
``Seq2SeqConfig(backend="numba")``) against the NumPy reference (apps/seq2seq/rnn_decoder.py's
time loop) and a torch autograd version of the whole model (the bench's, kernels/bench/seq2seq.py):
outputs, weights and every gradient, float32 and float64, with padded sources (a row of full
length, a row of length 1) and a fully masked source row (zero weights, zero context, no NaN)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.apps.seq2seq import rnn_decoder
from attention_np.apps.seq2seq.config import Seq2SeqConfig
from attention_np.apps.seq2seq.model import init_model, loss_and_grads
from attention_np.kernels.bench import seq2seq as bench
from tests.helpers import assert_close
from tests.strategies import dtypes, examples, seeds


@st.composite
def decoder_sizes(draw):
    """(B, Tk, T, E, H, A): small, pairwise different where it matters."""
    B = draw(st.integers(1, 6))
    Tk = draw(st.integers(1, 7).filter(lambda v: v != B))
    T = draw(st.integers(1, 5))
    E, H, A = draw(st.sampled_from([(3, 4, 5), (2, 9, 3), (5, 17, 6)]))
    return B, Tk, T, E, H, A


def _cfg(E, H, A, dtype, backend="numpy", V=(11, 7)):
    return Seq2SeqConfig(V[0], V[1], model="bahdanau", emb=E, hidden=H, attn_dim=A,
                         dtype=np.dtype(dtype).name, backend=backend)


def _decoder_run(backend, params, e, keys, mask, state0, dhs, dctx):
    """Forward and backward of the decoder's time loop → {name: array}."""
    hs, ctx, w, cache = rnn_decoder._bahdanau_forward(params, e, keys, mask, state0, backend)
    de, dkeys, (dh0, dc0), grads = rnn_decoder._bahdanau_backward(dhs, dctx, keys, cache,
                                                                  e.shape[-1])
    return {"hs": hs, "ctx": ctx, "weights": w, "de": de, "dkeys": dkeys, "dh0": dh0,
            "dc0": dc0, **grads}


def _decoder_inputs(B, Tk, T, E, H, A, dtype, seed):
    rng = np.random.default_rng(seed)
    cfg = _cfg(E, H, A, np.float64)
    params = init_model(cfg, seed)
    Hd = cfg.d_model
    lengths = rng.integers(1, Tk + 1, size=B)
    lengths[0] = Tk
    if B > 1:
        lengths[-1] = 1
    if B > 2:
        lengths[1] = 0                                   # a fully masked source row
    mask = np.arange(Tk)[None, :] < lengths[:, None]
    arrays = {"e": rng.standard_normal((B, T, E)), "keys": rng.standard_normal((B, Tk, Hd)),
              "h0": rng.standard_normal((B, Hd)), "c0": rng.standard_normal((B, Hd)),
              "dhs": rng.standard_normal((B, T, Hd)), "dctx": rng.standard_normal((B, T, Hd))}
    return params, arrays, mask


def _cast(params, arrays, dtype):
    return ({k: v.astype(dtype) for k, v in params.items()},
            {k: v.astype(dtype) for k, v in arrays.items()})


def _run_decoder(backend, params, arrays, mask):
    a = arrays
    return _decoder_run(backend, params, a["e"], a["keys"], mask, (a["h0"], a["c0"]), a["dhs"],
                        a["dctx"])


@examples(ci=25, thorough=1_000)
@given(decoder_sizes(), dtypes, seeds)
def test_fused_decoder_matches_the_numpy_reference(sizes, dtype, seed):
    params64, arrays64, mask = _decoder_inputs(*sizes, dtype, seed)
    params, arrays = _cast(params64, arrays64, dtype)
    ours = _run_decoder("numba", params, arrays, mask)
    ref = _run_decoder("numpy", params, arrays, mask)
    truth = ref if dtype == np.float64 else _run_decoder("numpy", params64, arrays64, mask)
    assert ours.keys() == ref.keys()
    for name, value in ours.items():
        assert value.dtype == dtype, f"{name}: dtype {value.dtype}"
        assert np.all(np.isfinite(value)), name
        assert_close(f"bahdanau decoder {name} numba vs numpy", value, ref[name], dtype,
                     truth=truth[name])
    empty = ~mask.any(axis=1)                            # fully masked sources: α = 0, c = 0
    assert np.all(ours["weights"][empty] == 0) and np.all(ours["ctx"][empty] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_step_matches_numpy_and_torch(dtype):
    """loss_and_grads of the whole translator, backend numba vs numpy vs the bench's torch
    model (the bench row's correctness: both sides compute the same thing)."""
    torch = pytest.importorskip("torch")
    cfg64 = _cfg(6, 5, 4, np.float64, V=(13, 9))
    params64 = init_model(cfg64, 0)
    src, mask, tgt = bench.batch(np.random.default_rng(1), cfg64, B=5, Tk=9, T=4)
    params = {k: v.astype(dtype) for k, v in params64.items()}
    loss_np, g_np, _ = loss_and_grads(params, _cfg(6, 5, 4, dtype), src, mask, tgt)
    loss_nb, g_nb, _ = loss_and_grads(params, _cfg(6, 5, 4, dtype, "numba"), src, mask, tgt)
    loss_64, g_64, _ = loss_and_grads(params64, cfg64, src, mask, tgt)
    run, torch_grads = bench.torch_step(torch, cfg64, params64, src, mask, tgt)
    loss_t = float(run().detach())
    g_t = torch_grads()
    np.testing.assert_allclose(loss_64, loss_t, rtol=1e-12)
    for name in g_64:                                    # the NumPy reference against torch
        np.testing.assert_allclose(g_64[name], g_t[name], rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    assert g_nb.keys() == g_np.keys()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert abs(loss_nb - loss_np) <= tol * max(1.0, abs(loss_np))
    for name in g_np:
        assert g_nb[name].dtype == dtype, name
        scale = np.abs(g_64[name]).max() + 1e-30
        assert np.abs(g_nb[name] - g_64[name]).max() / scale < (1e-10 if dtype == np.float64
                                                                else 1e-4), name
