"""LSTM / GRU cells, padded sequences and the bidirectional wrapper against torch.nn."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from attention_np.nn.recurrent import (
    bidirectional_backward, bidirectional_forward, gru_backward, gru_cell_backward,
    gru_cell_forward, gru_forward, init_recurrent_params, lstm_backward, lstm_cell_backward,
    lstm_cell_forward, lstm_forward, reverse_padded)
from tests.helpers import assert_matches_torch, check_finite_differences

DTYPES = [np.float64, np.float32]


def _inputs(kind, B, T, D, H, dtype, seed, with_state=True):
    rng = np.random.default_rng(seed)
    p = init_recurrent_params(kind, D, H, rng, dtype)
    p = {k: (v * 2).astype(dtype) for k, v in p.items()}    # larger weights: saturating gates
    inputs = {"x": rng.standard_normal((B, T, D)).astype(dtype), **p}
    if with_state:
        inputs["h0"] = rng.standard_normal((B, H)).astype(dtype)
        if kind == "lstm":
            inputs["c0"] = rng.standard_normal((B, H)).astype(dtype)
    return inputs


def _torch_params(kind, W_x, W_h, b=None, b_x=None, b_h=None):
    """Our row-vector layout → torch's weight_ih (G·H, D) etc."""
    if kind == "lstm":
        b_x, b_h = b, torch.zeros_like(b)
    return {"weight_ih_l0": W_x.T, "weight_hh_l0": W_h.T, "bias_ih_l0": b_x, "bias_hh_l0": b_h}


def _torch_sequence(kind, x, h0, c0, weights, lengths):
    """torch.nn.LSTM/GRU on packed sequences; returns cat(hs flat, h_T[, c_T])."""
    B, T, D = x.shape
    H = weights["weight_hh_l0"].shape[1]
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(D, H, batch_first=True)
    module = module.to(x.dtype)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    state = (h0[None], c0[None]) if kind == "lstm" else h0[None]
    out, final = torch.func.functional_call(module, weights, (packed, state))
    hs, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    finals = final if kind == "lstm" else (final,)
    return torch.cat([hs.reshape(B, -1)] + [f[0] for f in finals], dim=1)


def _ours_sequence(kind, mask):
    def ours(x, h0, W_x, W_h, c0=None, b=None, b_x=None, b_h=None):
        params = dict(W_x=W_x, W_h=W_h, b=b) if kind == "lstm" else dict(
            W_x=W_x, W_h=W_h, b_x=b_x, b_h=b_h)
        B, T, _ = x.shape
        H = W_h.shape[0]
        if kind == "lstm":
            hs, (hT, cT), cache = lstm_forward(x, h0, c0, params, mask)
            finals = [hT, cT]
        else:
            hs, hT, cache = gru_forward(x, h0, params, mask)
            finals = [hT]
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
    return ours


def _grad_names(kind):
    extra = ["c0", "b"] if kind == "lstm" else ["b_x", "b_h"]
    return ["x", "h0", "W_x", "W_h"] + extra


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(B=st.integers(1, 4), T=st.integers(1, 7), D=st.integers(1, 6), H=st.integers(1, 5),
       padded=st.booleans(), seed=st.integers(0, 2**16))
def test_sequence_matches_torch(kind, dtype, B, T, D, H, padded, seed):
    inputs = _inputs(kind, B, T, D, H, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    lengths = rng.integers(1, T + 1, size=B) if padded else np.full(B, T)
    mask = np.arange(T)[None, :] < lengths[:, None] if padded else None

    def theirs(x, h0, W_x, W_h, c0=None, b=None, b_x=None, b_h=None):
        weights = _torch_params(kind, W_x, W_h, b, b_x, b_h)
        return _torch_sequence(kind, x, h0, c0, weights, lengths)
    assert_matches_torch(f"{kind}_sequence", _ours_sequence(kind, mask), theirs, inputs,
                         grad_wrt=_grad_names(kind), seed=seed)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(B=st.integers(1, 5), D=st.integers(1, 6), H=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_cell_matches_torch(kind, dtype, B, D, H, seed):
    inputs = _inputs(kind, B, 1, D, H, dtype, seed)
    inputs["x"] = inputs["x"][:, 0]

    def ours(x, h0, W_x, W_h, c0=None, b=None, b_x=None, b_h=None):
        if kind == "lstm":
            h, c, cache = lstm_cell_forward(x, h0, c0, dict(W_x=W_x, W_h=W_h, b=b))

            def backward(dout):
                dx, dh, dc, g = lstm_cell_backward(dout[:, :H], dout[:, H:], cache)
                return {"x": dx, "h0": dh, "c0": dc, **g}
            return np.concatenate([h, c], axis=1), backward
        h, cache = gru_cell_forward(x, h0, dict(W_x=W_x, W_h=W_h, b_x=b_x, b_h=b_h))

        def backward(dout):
            dx, dh, g = gru_cell_backward(dout, cache)
            return {"x": dx, "h0": dh, **g}
        return h, backward

    def theirs(x, h0, W_x, W_h, c0=None, b=None, b_x=None, b_h=None):
        if kind == "lstm":
            cell = torch.nn.LSTMCell(D, H).to(x.dtype)
            weights = {"weight_ih": W_x.T, "weight_hh": W_h.T, "bias_ih": b,
                       "bias_hh": torch.zeros_like(b)}
            h, c = torch.func.functional_call(cell, weights, (x, (h0, c0)))
            return torch.cat([h, c], dim=1)
        cell = torch.nn.GRUCell(D, H).to(x.dtype)
        weights = {"weight_ih": W_x.T, "weight_hh": W_h.T, "bias_ih": b_x, "bias_hh": b_h}
        return torch.func.functional_call(cell, weights, (x, h0))
    assert_matches_torch(f"{kind}_cell", ours, theirs, inputs, grad_wrt=_grad_names(kind),
                         seed=seed)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_sequence_finite_differences(kind):
    inputs = _inputs(kind, 3, 5, 4, 3, np.float64, seed=7)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    check_finite_differences(_ours_sequence(kind, mask), inputs, _grad_names(kind))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(B=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 5), H=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_bidirectional_matches_torch(kind, dtype, B, T, D, H, seed):
    rng = np.random.default_rng(seed)
    pf = init_recurrent_params(kind, D, H, rng, dtype)
    pb = {k + "_r": v for k, v in init_recurrent_params(kind, D, H, rng, dtype).items()}
    inputs = {"x": rng.standard_normal((B, T, D)).astype(dtype), **pf, **pb}
    lengths = rng.integers(1, T + 1, size=B)
    mask = np.arange(T)[None, :] < lengths[:, None]
    n = 2 if kind == "lstm" else 1

    def split(p):
        fwd = {k: v for k, v in p.items() if not k.endswith("_r") and k != "x"}
        return fwd, {k[:-2]: v for k, v in p.items() if k.endswith("_r")}

    def ours(x, **p):
        fwd, bwd = split(p)
        hs, finals, cache = bidirectional_forward(kind, x, fwd, bwd, mask)
        flat = [s for direction in finals for s in direction]
        out = np.concatenate([hs.reshape(B, -1)] + flat, axis=1)

        def backward(dout):
            dhs = dout[:, :T * 2 * H].reshape(B, T, 2 * H)
            d = [dout[:, T * 2 * H + k * H:T * 2 * H + (k + 1) * H] for k in range(2 * n)]
            dx, gf, gb = bidirectional_backward(dhs, cache, (tuple(d[:n]), tuple(d[n:])))
            return {"x": dx, **gf, **{k + "_r": v for k, v in gb.items()}}
        return out, backward

    def theirs(x, **p):
        fwd, bwd = split(p)
        module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(
            D, H, batch_first=True, bidirectional=True).to(x.dtype)
        weights = _torch_params(kind, **fwd)
        weights.update({k + "_reverse": v for k, v in _torch_params(kind, **bwd).items()})
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
        out, final = torch.func.functional_call(module, weights, (packed,))
        hs, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        finals = final if kind == "lstm" else (final,)
        flat = [f[d] for d in range(2) for f in finals]     # fwd (h, c), then bwd (h, c)
        return torch.cat([hs.reshape(B, -1)] + flat, dim=1)
    grad_wrt = [k for k in inputs]
    assert_matches_torch(f"bidirectional_{kind}", ours, theirs, inputs, grad_wrt, seed=seed)


def test_reverse_padded_is_its_own_inverse():
    x = np.arange(12).reshape(2, 6)
    y = reverse_padded(x, [4, 6])
    assert y.tolist() == [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]]
    assert np.array_equal(reverse_padded(y, [4, 6]), x)


def test_padded_steps_freeze_state_and_zero_output():
    rng = np.random.default_rng(0)
    p = init_recurrent_params("lstm", 3, 4, rng)
    x = rng.standard_normal((2, 5, 3))
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    hs, (hT, cT), _ = lstm_forward(x, None, None, p, mask)
    assert np.all(hs[0, 2:] == 0)
    short, (h2, c2), _ = lstm_forward(x[:1, :2], None, None, p)
    np.testing.assert_allclose(hT[0], h2[0])
    np.testing.assert_allclose(hs[0, :2], short[0])


def test_bad_shapes_name_the_argument():
    p = init_recurrent_params("gru", 3, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="W_x"):
        gru_forward(np.zeros((2, 5, 4)), None, p)
    with pytest.raises(ValueError, match="h0"):
        gru_forward(np.zeros((2, 5, 3)), np.zeros((3, 4)), p)
    with pytest.raises(ValueError, match="mask"):
        gru_forward(np.zeros((2, 5, 3)), None, p, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="kind"):
        init_recurrent_params("rnn", 3, 4, np.random.default_rng(0))
