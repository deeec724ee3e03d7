"""The fused recurrent kernels (kernels.recurrent, reached by lstm_forward / gru_forward /
bidirectional_forward(backend="numba")) against the NumPy reference and torch.nn.LSTM / GRU
autograd: outputs, final states and the gradients of every input and parameter (x, h0, c0,
W_x, W_h, biases), float32 and float64, with and without padding (rows of length 1 and of full
length T), with the initial state given or left at zero."""
import numba
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from attention_np.nn.recurrent import (bidirectional_backward, bidirectional_forward,
                                       gru_backward, gru_forward, init_recurrent_params,
                                       lstm_backward, lstm_forward)
from tests.helpers import assert_close, assert_matches_torch
from tests.strategies import distinct_dims, dtypes, examples, seeds

torch = pytest.importorskip("torch")

STATES = {"lstm": ("h0", "c0"), "gru": ("h0",)}
BIASES = {"lstm": ("b",), "gru": ("b_x", "b_h")}


@st.composite
def sizes(draw):
    """(B, T, D, H), pairwise different. H reaches past 16 and 32, so that the fused gate loops
    run their SIMD bodies (16 float32 lanes), not only their scalar remainders."""
    B, T, D = draw(distinct_dims(3, hi=9))
    H = draw(st.one_of(st.integers(1, 9), st.integers(10, 40)).filter(
        lambda h: h not in (B, T, D)))
    return B, T, D, H


@st.composite
def sequences(draw):
    """(kind, (B, T, D, H), padded, with_state)."""
    return (draw(st.sampled_from(["lstm", "gru"])), draw(sizes()), draw(st.booleans()),
            draw(st.booleans()))


def _mask(rng, B, T, padded):
    """None, or a padding mask whose first row has length 1 and last row length T."""
    if not padded:
        return None
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0], lengths[-1] = 1, T                   # B = 1: one row of full length
    return np.arange(T)[None, :] < lengths[:, None]


def _inputs(kind, B, T, D, H, dtype, rng, with_state):
    """x, the parameters (twice torch's init: some gates saturate) and, if with_state, h0 (c0)."""
    p = init_recurrent_params(kind, D, H, rng, np.float64)
    inputs = {"x": rng.standard_normal((B, T, D)), **{k: 2 * v for k, v in p.items()}}
    if with_state:
        inputs |= {name: rng.standard_normal((B, H)) for name in STATES[kind]}
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _run(kind, inputs, mask, backend, dhs, dfinal):
    """Forward and backward of one scan: {name: array} of hs, the final state and every
    gradient (dh0, dc0 even when the initial state was None)."""
    params = {k: inputs[k] for k in ("W_x", "W_h") + BIASES[kind]}
    if kind == "lstm":
        hs, (h_T, c_T), cache = lstm_forward(inputs["x"], inputs.get("h0"), inputs.get("c0"),
                                             params, mask, backend=backend)
        dx, dh0, dc0, grads = lstm_backward(dhs, cache, *dfinal)
        out = {"hs": hs, "h_T": h_T, "c_T": c_T, "dx": dx, "dh0": dh0, "dc0": dc0}
    else:
        hs, h_T, cache = gru_forward(inputs["x"], inputs.get("h0"), params, mask,
                                     backend=backend)
        dx, dh0, grads = gru_backward(dhs, cache, *dfinal)
        out = {"hs": hs, "h_T": h_T, "dx": dx, "dh0": dh0}
    assert cache["backend"] == backend
    return out | {f"d{k}": g for k, g in grads.items()}


@examples(ci=60, thorough=3_000)     # ~10 ms an example once compiled (two kernels per dtype)
@given(sequences(), dtypes, seeds, st.booleans())
@example(("lstm", (2, 3, 1, 37), True, True), np.float32, 0, True)
@example(("gru", (1, 4, 3, 2), True, False), np.float64, 1, False)
def test_numba_matches_the_numpy_reference(case, dtype, seed, upstream_final):
    """Every output and gradient; the final-state gradients given or None (zeros)."""
    kind, (B, T, D, H), padded, with_state = case
    rng = np.random.default_rng(seed)
    mask = _mask(rng, B, T, padded)
    inputs = _inputs(kind, B, T, D, H, dtype, rng, with_state)
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    dfinal = tuple(rng.standard_normal((B, H)).astype(dtype) if upstream_final else None
                   for _ in STATES[kind])
    ours = _run(kind, inputs, mask, "numba", dhs, dfinal)
    ref = _run(kind, inputs, mask, "numpy", dhs, dfinal)
    truth = ref if dtype == np.float64 else _run(
        kind, {k: v.astype(np.float64) for k, v in inputs.items()}, mask, "numpy",
        dhs.astype(np.float64), tuple(None if d is None else d.astype(np.float64)
                                      for d in dfinal))
    assert ours.keys() == ref.keys()
    for name, value in ours.items():
        assert value.dtype == dtype, f"{name}: dtype {value.dtype}"
        assert_close(f"{kind} {name} numba vs numpy", value, ref[name], dtype,
                     truth=truth[name])
    if mask is not None:                               # padded steps: exactly zero outputs
        assert np.all(ours["hs"][~mask] == 0)


def _torch_params(kind, p, suffix=""):
    """Our row-vector layout → torch's weight_ih (G·H, D) etc. (LSTM: one bias, b_hh = 0)."""
    b_x, b_h = (p["b"], torch.zeros_like(p["b"])) if kind == "lstm" else (p["b_x"], p["b_h"])
    return {f"weight_ih_l0{suffix}": p["W_x"].T, f"weight_hh_l0{suffix}": p["W_h"].T,
            f"bias_ih_l0{suffix}": b_x, f"bias_hh_l0{suffix}": b_h}


def _torch_run(kind, x, weights, state, mask, bidirectional=False):
    """torch.nn.LSTM / GRU (batch_first) on packed sequences when masked → (hs, final)."""
    B, T, D = x.shape
    H = weights["weight_hh_l0"].shape[1]
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(
        D, H, batch_first=True, bidirectional=bidirectional).to(x.dtype)
    if mask is not None:
        lengths = torch.as_tensor(mask.sum(axis=1))
        x = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                    enforce_sorted=False)
    hs, final = torch.func.functional_call(module, weights, (x, state))
    if mask is not None:
        hs, _ = torch.nn.utils.rnn.pad_packed_sequence(hs, batch_first=True, total_length=T)
    return hs, (final if kind == "lstm" else (final,))


@examples(ci=40, thorough=2_000)     # ~30 ms an example (torch in two dtypes)
@given(sequences(), dtypes, seeds)
@example(("lstm", (3, 1, 2, 18), False, True), np.float32, 2)
@example(("gru", (4, 5, 2, 1), True, True), np.float64, 3)
def test_numba_matches_torch_autograd(case, dtype, seed):
    """hs, the final state and the gradients of every input against torch.nn.LSTM / GRU."""
    kind, (B, T, D, H), padded, with_state = case
    rng = np.random.default_rng(seed)
    mask = _mask(rng, B, T, padded)
    inputs = _inputs(kind, B, T, D, H, dtype, rng, with_state)
    run = lstm_forward if kind == "lstm" else gru_forward

    def ours(x, W_x, W_h, h0=None, c0=None, **biases):
        state = (h0, c0) if kind == "lstm" else (h0,)
        hs, final, cache = run(x, *state, {"W_x": W_x, "W_h": W_h, **biases}, mask,
                               backend="numba")
        finals = list(final) if kind == "lstm" else [final]
        out = np.concatenate([hs.reshape(B, -1)] + finals, axis=1)

        def backward(dout):
            dhs = dout[:, :T * H].reshape(B, T, H)
            dfin = [dout[:, T * H + k * H:T * H + (k + 1) * H] for k in range(len(finals))]
            if kind == "lstm":
                dx, dh0, dc0, g = lstm_backward(dhs, cache, *dfin)
                return {"x": dx, "h0": dh0, "c0": dc0, **g}
            dx, dh0, g = gru_backward(dhs, cache, *dfin)
            return {"x": dx, "h0": dh0, **g}
        return out, backward

    def theirs(x, W_x, W_h, h0=None, c0=None, **biases):
        weights = _torch_params(kind, {"W_x": W_x, "W_h": W_h, **biases})
        state = None if h0 is None else ((h0[None], c0[None]) if kind == "lstm" else h0[None])
        hs, finals = _torch_run(kind, x, weights, state, mask)
        return torch.cat([hs.reshape(B, -1)] + [f[0] for f in finals], dim=1)
    assert_matches_torch(f"numba {kind}_sequence", ours, theirs, inputs,
                         grad_wrt=list(inputs), seed=seed)


@examples(ci=30, thorough=1_000)
@given(st.sampled_from(["lstm", "gru"]), sizes(), dtypes, seeds, st.booleans())
@example("lstm", (2, 4, 3, 33), np.float32, 4, True)
def test_bidirectional_numba_matches_torch(kind, dims, dtype, seed, padded):
    """hs (B, T, 2H), both directions' final states, and the gradients of x and of both
    directions' parameters against torch's bidirectional=True."""
    B, T, D, H = dims
    rng = np.random.default_rng(seed)
    mask = _mask(rng, B, T, padded)
    fwd = {k: v for k, v in _inputs(kind, B, T, D, H, dtype, rng, False).items() if k != "x"}
    bwd = _inputs(kind, B, T, D, H, dtype, rng, False)
    inputs = {"x": bwd.pop("x"), **fwd, **{k + "_r": v for k, v in bwd.items()}}
    n = len(STATES[kind])

    def split(p):
        return ({k: v for k, v in p.items() if not k.endswith("_r")},
                {k[:-2]: v for k, v in p.items() if k.endswith("_r")})

    def ours(x, **p):
        pf, pb = split(p)
        hs, finals, cache = bidirectional_forward(kind, x, pf, pb, mask, backend="numba")
        flat = [s for direction in finals for s in direction]
        out = np.concatenate([hs.reshape(B, -1)] + flat, axis=1)

        def backward(dout):
            dhs = dout[:, :T * 2 * H].reshape(B, T, 2 * H)
            d = [dout[:, T * 2 * H + k * H:T * 2 * H + (k + 1) * H] for k in range(2 * n)]
            dx, gf, gb = bidirectional_backward(dhs, cache, (tuple(d[:n]), tuple(d[n:])))
            return {"x": dx, **gf, **{k + "_r": v for k, v in gb.items()}}
        return out, backward

    def theirs(x, **p):
        pf, pb = split(p)
        weights = _torch_params(kind, pf) | _torch_params(kind, pb, "_reverse")
        hs, finals = _torch_run(kind, x, weights, None, mask, bidirectional=True)
        flat = [f[d] for d in range(2) for f in finals]      # fwd (h, c), then bwd (h, c)
        return torch.cat([hs.reshape(B, -1)] + flat, dim=1)
    assert_matches_torch(f"numba bidirectional_{kind}", ours, theirs, inputs,
                         grad_wrt=list(inputs), seed=seed)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_result_does_not_depend_on_the_thread_count(kind):
    """Each thread scans a block of batch rows: one block (1 thread) or uneven blocks (B = 5 on
    2 threads) give the same numbers."""
    rng = np.random.default_rng(5)
    inputs = _inputs(kind, 5, 6, 3, 4, np.float64, rng, True)
    mask = _mask(rng, 5, 6, True)
    dhs = rng.standard_normal((5, 6, 4))
    many = _run(kind, inputs, mask, "numba", dhs, (None,) * len(STATES[kind]))
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = _run(kind, inputs, mask, "numba", dhs, (None,) * len(STATES[kind]))
    finally:
        numba.set_num_threads(before)
    for name in many:
        np.testing.assert_allclose(one[name], many[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_bad_arguments_name_themselves():
    rng = np.random.default_rng(6)
    p = init_recurrent_params("lstm", 3, 4, rng)
    x = rng.standard_normal((2, 5, 3))
    with pytest.raises(ValueError, match="backend"):
        lstm_forward(x, None, None, p, backend="cuda")
    with pytest.raises(ValueError, match="backend"):
        bidirectional_forward("gru", x, init_recurrent_params("gru", 3, 4, rng),
                              init_recurrent_params("gru", 3, 4, rng), backend="torch")
    _, _, cache = lstm_forward(x, None, None, p, backend="numba")
    with pytest.raises(ValueError, match="dc_T"):           # read by the kernel: checked first
        lstm_backward(np.zeros((2, 5, 4)), cache, np.zeros((2, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="dhs"):
        lstm_backward(np.zeros((2, 5, 5)), cache)
    with pytest.raises(ValueError, match="b_h"):
        gru_forward(x, None, {**init_recurrent_params("gru", 3, 4, rng), "b_h": np.zeros(13)},
                    backend="numba")
