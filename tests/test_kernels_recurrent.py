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


# --- the entry points' contract (kernels.recurrent called directly) -----------------------------
# The wrappers promote the inputs' dtypes (float16 computes in float32), hand the @njit scans
# C-contiguous arrays of that one compute dtype (a bool mask; fresh copies of the initial state
# and of the final-state gradients, which the scans overwrite) and cast the results back. The
# public layers (nn.recurrent) already pass one dtype, a bool mask and an initial state, so
# these cases reach the kernels' module directly.

SCANS = ("_lstm_scan", "_lstm_scan_backward", "_gru_scan", "_gru_scan_backward")
PARAMS = {"lstm": ("W_x", "W_h", "b"), "gru": ("W_x", "W_h", "b_x", "b_h")}


def _check_scan_arguments(name, args):
    """The arrays handed to a scan: C-contiguous, one bool mask, every other one of a single
    float dtype (checked before the call: a mixed signature would compile a new kernel)."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    assert sum(a.dtype == np.bool_ for a in arrays) == 1, f"{name}: not one bool mask"
    floats = {a.dtype for a in arrays if a.dtype != np.bool_}
    assert len(floats) == 1 and floats <= {np.dtype(np.float32), np.dtype(np.float64)}, \
        f"{name}: dtypes {floats}"
    for a in arrays:
        assert a.flags.c_contiguous, f"{name}: a non-contiguous {a.dtype} {a.shape} array"
    return floats.pop()


@pytest.fixture
def scan_calls(monkeypatch):
    """Every call of the @njit scans as (name, its float dtype), its arguments checked by
    :func:`_check_scan_arguments`; the scans still run."""
    from attention_np.kernels import recurrent
    calls = []
    for name in SCANS:
        def spy(*args, _scan=getattr(recurrent, name), _name=name):
            calls.append((_name, _check_scan_arguments(_name, args)))
            return _scan(*args)
        monkeypatch.setattr(recurrent, name, spy)
    return calls


def _kernel_run(kind, inputs, mask, dhs, dfinal):
    """kernels.recurrent's forward then backward → ({name: array} as :func:`_run` names them,
    the forward's state)."""
    from attention_np.kernels import recurrent
    get = inputs.get
    if kind == "lstm":
        hs, h_T, c_T, state = recurrent.lstm_forward(get("x"), get("h0"), get("c0"), get("W_x"),
                                                     get("W_h"), get("b"), mask)
        dx, dh0, dc0, grads = recurrent.lstm_backward(dhs, *dfinal, state)
        out = {"hs": hs, "h_T": h_T, "c_T": c_T, "dx": dx, "dh0": dh0, "dc0": dc0}
    else:
        hs, h_T, state = recurrent.gru_forward(get("x"), get("h0"), get("W_x"), get("W_h"),
                                               get("b_x"), get("b_h"), mask)
        dx, dh0, grads = recurrent.gru_backward(dhs, *dfinal, state)
        out = {"hs": hs, "h_T": h_T, "dx": dx, "dh0": dh0}
    return out | {f"d{k}": g for k, g in grads.items()}, state


def _non_contiguous(a):
    """The same values as a strided view (every other column of a wider array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


# (kind, (B, T, D, H), dtype of each input, dtype of dhs / dh_T / dc_T, layout, padded):
# layout "fortran" gives h0, c0 in Fortran order and dhs, dh_T, dc_T as strided views, "int
# mask" the mask as a strided int8 view; dfinal None leaves dh_T, dc_T at zeros.
def _contract_cases():
    cases = []
    for kind in ("lstm", "gru"):
        names = ("x",) + STATES[kind] + PARAMS[kind]
        f32 = dict.fromkeys(names, np.float32)
        cases += [
            pytest.param(kind, (3, 4, 2, 5), {**f32, **dict.fromkeys(STATES[kind])},
                         np.float64, "int mask", None, id=f"{kind}-f32-no-state-int-mask"),
            pytest.param(kind, (3, 1, 4, 2), f32, np.float64, "fortran", np.float64,
                         id=f"{kind}-f32-T1-fortran-state-f64-upstream"),
            pytest.param(kind, (1, 3, 2, 4), f32 | dict.fromkeys(STATES[kind], np.float16),
                         np.float16, "c", np.float16, id=f"{kind}-B1-f16-state"),
            pytest.param(kind, (5, 3, 4, 2), dict.fromkeys(names, np.float16), np.float16,
                         "int mask", np.float16, id=f"{kind}-all-f16"),
        ]
        cases += [pytest.param(kind, (5, 3, 4, 2), f32 | {name: np.float64}, np.float32,
                               "fortran", np.float32, id=f"{kind}-only-{name}-f64")
                  for name in names]
    return cases


@pytest.mark.parametrize("kind, dims, dtypes_in, upstream, layout, dfinal_dtype",
                         _contract_cases())
def test_entry_points_promote_dtypes_and_pass_the_scans_contiguous_copies(
        scan_calls, kind, dims, dtypes_in, upstream, layout, dfinal_dtype):
    """Mixed input dtypes give the promoted dtype (float16 computes in float32 and returns
    float16), with the values of the NumPy reference run in float64 on the same numbers; the
    scans receive only C-contiguous arrays of the compute dtype and one bool mask, whatever the
    layout and dtype of the mask, the initial state, dhs, dh_T and dc_T (int mask, Fortran
    order, strided views, None); the caller's arrays are left unchanged."""
    B, T, D, H = dims
    rng = np.random.default_rng(7)
    base = _inputs(kind, B, T, D, H, np.float64, rng, True)
    inputs = {k: base[k].astype(dt) for k, dt in dtypes_in.items() if dt is not None}
    mask = _mask(rng, B, T, True)
    dhs = rng.standard_normal((B, T, H)).astype(upstream)
    dfinal = tuple(None if dfinal_dtype is None else
                   rng.standard_normal((B, H)).astype(dfinal_dtype) for _ in STATES[kind])
    out_dtype = np.result_type(*inputs.values())
    compute = np.float32 if out_dtype == np.float16 else out_dtype

    kernel_mask = mask
    if layout == "int mask":
        kernel_mask = np.asfortranarray(mask.astype(np.int8))[:, ::-1][:, ::-1]
    elif layout == "fortran":
        inputs |= {k: np.asfortranarray(inputs[k]) for k in STATES[kind] if k in inputs}
        dhs = np.asfortranarray(dhs)
        dfinal = tuple(_non_contiguous(d) for d in dfinal)
    before = [a.copy() for a in (*inputs.values(), kernel_mask, dhs, *dfinal) if a is not None]

    ours, _ = _kernel_run(kind, inputs, kernel_mask, dhs, dfinal)

    assert scan_calls == [(f"_{kind}_scan", compute), (f"_{kind}_scan_backward", compute)]
    after = [a for a in (*inputs.values(), kernel_mask, dhs, *dfinal) if a is not None]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b, err_msg="the caller's array was written")

    as64 = {k: v.astype(np.float64) for k, v in inputs.items()}
    truth = _run(kind, as64, mask, "numpy", dhs.astype(np.float64),
                 tuple(None if d is None else d.astype(np.float64) for d in dfinal))
    for name, value in ours.items():
        assert value.dtype == out_dtype, f"{name}: dtype {value.dtype}, not {out_dtype}"
        if out_dtype == np.float64:
            assert_close(f"{kind} {name}", value, truth[name], np.float64)
        else:           # float32 compute, rounded once to the output dtype
            tol = 4e-3 if out_dtype == np.float16 else 1e-4
            np.testing.assert_allclose(value.astype(np.float64), truth[name], rtol=tol,
                                       atol=tol, err_msg=name)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_state_holds_what_the_backward_reads(kind):
    """The forward's state for the backward: block-major buffers (n_chunks, T, R, ·) in the
    compute dtype, n_chunks = min(threads, B) blocks of R = ⌈B / n_chunks⌉ rows, and T + 1 cell
    states for the LSTM (the one entering each step and the last), nothing more."""
    B, T, D, H = 3, 2, 4, 5
    rng = np.random.default_rng(8)
    inputs = _inputs(kind, B, T, D, H, np.float32, rng, False)
    _, state = _kernel_run(kind, inputs, None, np.ones((B, T, H), np.float32),
                           (None,) * len(STATES[kind]))
    n = min(numba.get_num_threads(), B)
    R = -(-B // n)
    G = 4 if kind == "lstm" else 3
    shapes = ({"xh": (n, T, R, D + H), "act": (n, T, R, G * H), "cs": (n, T + 1, R, H),
               "tc": (n, T, R, H)} if kind == "lstm" else
              {"xs": (n, T, R, D), "h_in": (n, T, R, H), "act": (n, T, R, G * H),
               "hn": (n, T, R, H)})
    for key, shape in shapes.items():
        assert state[key].shape == shape, f"{key}: {state[key].shape} != {shape}"
        assert state[key].dtype == np.float32, f"{key}: {state[key].dtype}"
    assert state["mask"].dtype == np.bool_ and state["B"] == B
