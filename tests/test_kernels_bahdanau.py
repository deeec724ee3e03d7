"""The fused Bahdanau decoder (kernels/bahdanau.py, reached by the translator's
``Seq2SeqConfig(backend="numba")``) against the NumPy reference (apps/seq2seq/rnn_decoder.py's
time loop) and a torch autograd version of the whole model (the bench's, kernels/bench/seq2seq.py):
outputs, weights and every gradient, float32 and float64, with padded sources (a row of full
length, a row of length 1) and a fully masked source row (zero weights, zero context, no NaN).
Then the entry points' dtype contract, called directly: mixed float32/float64 arguments promote
as NumPy does, float16 is computed in float32, an upstream gradient is cast to the forward's
dtype, the Numba kernels are handed contiguous arrays of the compute dtype only; a 0/1 key mask
and T = 0 steps."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.apps.seq2seq import rnn_decoder
from attention_np.apps.seq2seq.config import Seq2SeqConfig
from attention_np.apps.seq2seq.model import init_model, loss_and_grads
from attention_np.kernels import bahdanau
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


# --- the entry points' dtype contract: promotion, float16, upstream gradients, the kernels'
# --- arguments, T = 0 (kernels/bahdanau.py's decoder_forward / decoder_backward called directly)

FORWARD_ARGS = ("e", "keys", "kp", "key_mask", "h0", "c0", "W_q", "v", "W_x", "W_h", "b")
FLOAT_ARGS = tuple(name for name in FORWARD_ARGS if name != "key_mask")


def _kernel_args(T=3, seed=0):
    """float64 arguments of the entry points, B = 4 rows (one of full length, one fully masked,
    one of length 1): ({forward argument: array}, dhs, dctx, W_k), with kp = keys W_k."""
    params, arrays, mask = _decoder_inputs(4, 5, T, 3, 4, 5, np.float64, seed)
    keys, W_k = arrays["keys"], params["att.W_k"]
    args = {"e": arrays["e"], "keys": keys, "kp": keys @ W_k, "key_mask": mask,
            "h0": arrays["h0"], "c0": arrays["c0"], "W_q": params["att.W_q"],
            "v": params["att.v"], "W_x": params["dec.W_x"], "W_h": params["dec.W_h"],
            "b": params["dec.b"]}
    return args, arrays["dhs"], arrays["dctx"], W_k


def _cast_args(args, dtype, odd=None, odd_dtype=None):
    """The float arguments cast to ``dtype`` (``odd`` to ``odd_dtype``); the mask unchanged."""
    return {name: x if name == "key_mask" else x.astype(odd_dtype if name == odd else dtype)
            for name, x in args.items()}


def _run_kernels(args, dhs, dctx):
    """decoder_forward then decoder_backward → {result name: array}."""
    hs, ctx, w, state = bahdanau.decoder_forward(*(args[name] for name in FORWARD_ARGS))
    de, dkeys, dkp, (dh0, dc0), grads = bahdanau.decoder_backward(dhs, dctx, state)
    return {"hs": hs, "ctx": ctx, "weights": w, "de": de, "dkeys": dkeys, "dkp": dkp,
            "dh0": dh0, "dc0": dc0, **{"d" + name: g for name, g in grads.items()}}


def _assert_same(got, want, dtype):
    """Every result of ``got`` has ``dtype`` and is bit for bit the one of ``want`` (cast to
    ``dtype``)."""
    assert got.keys() == want.keys()
    for name, value in got.items():
        assert value.dtype == dtype, f"{name}: dtype {value.dtype}, expected {np.dtype(dtype)}"
        np.testing.assert_array_equal(value, want[name].astype(dtype), err_msg=name)


@pytest.fixture
def kernel_calls(monkeypatch):
    """[(kernel name, its arguments)] of every call the entry points make to the two Numba
    kernels while the test runs (the kernels are wrapped, then called as before)."""
    calls = []
    for name in ("_decode", "_decode_backward"):
        def spy(*args, _kernel=getattr(bahdanau, name), _name=name):
            calls.append((_name, args))
            return _kernel(*args)
        monkeypatch.setattr(bahdanau, name, spy)
    return calls


def _assert_kernels_got(calls, dt):
    """The @njit kernels trust their input (STYLE.md §4: the wrapper converts): one forward and
    one backward call, every array C-contiguous and in the compute dtype ``dt``, but the key
    mask, which is bool. (A float64 scratch array beside float32 ones would make Numba compile
    a mixed variant that rounds part of the float32 computation in float64.)"""
    assert [name for name, _ in calls] == ["_decode", "_decode_backward"]
    for name, args in calls:
        arrays = [x for x in args if isinstance(x, np.ndarray)]
        assert all(x.flags.c_contiguous for x in arrays), name
        want = {np.dtype(dt), np.dtype(np.bool_)} if name == "_decode" else {np.dtype(dt)}
        assert {x.dtype for x in arrays} == want, f"{name}: {[x.dtype for x in arrays]}"


@pytest.mark.parametrize("odd", FLOAT_ARGS)
@pytest.mark.parametrize("base, odd_dtype", [(np.float32, np.float64),
                                             (np.float64, np.float32)])
def test_one_argument_in_another_dtype_promotes_like_numpy(kernel_calls, odd, base, odd_dtype):
    """One argument of decoder_forward in another float dtype than the others: every result and
    gradient has NumPy's promoted dtype (float64 either way) and is bit for bit the result of
    the same values all in float64 (the entry point upcasts every argument first, an exact
    conversion); the kernels see float64 arrays only."""
    args64, dhs, dctx, _ = _kernel_args()
    args = _cast_args(args64, base, odd, odd_dtype)
    dhs, dctx = dhs.astype(base), dctx.astype(base)
    want = _run_kernels(_cast_args(args, np.float64), dhs.astype(np.float64),
                        dctx.astype(np.float64))
    kernel_calls.clear()
    got = _run_kernels(args, dhs, dctx)
    _assert_same(got, want, np.float64)
    _assert_kernels_got(kernel_calls, np.float64)


@pytest.mark.parametrize("grad", ["dhs", "dctx"])
@pytest.mark.parametrize("forward_dtype, grad_dtype", [(np.float32, np.float64),
                                                       (np.float64, np.float32)])
def test_upstream_gradient_is_cast_to_the_forward_dtype(kernel_calls, grad, forward_dtype,
                                                        grad_dtype):
    """An upstream gradient (dhs or dctx) in another dtype than the forward's: the gradients
    keep the forward's dtype and are bit for bit those of the upstream gradient cast to that
    dtype first; the backward kernel sees the forward's dtype only."""
    args64, dhs, dctx, _ = _kernel_args()
    args = _cast_args(args64, forward_dtype)
    upstream = {"dhs": dhs.astype(forward_dtype), "dctx": dctx.astype(forward_dtype)}
    upstream[grad] = upstream[grad].astype(grad_dtype)
    if grad_dtype == np.float64:    # not float32 numbers: the cast to float32 must round them
        upstream[grad] = upstream[grad] + 1e-12 * np.abs(upstream[grad])
    want = _run_kernels(args, upstream["dhs"].astype(forward_dtype),
                        upstream["dctx"].astype(forward_dtype))
    kernel_calls.clear()
    got = _run_kernels(args, upstream["dhs"], upstream["dctx"])
    _assert_same(got, want, forward_dtype)
    _assert_kernels_got(kernel_calls, forward_dtype)


def _reference_names(results, W_k):
    """The kernel's results under the names of _decoder_run's (the NumPy reference's): dkeys
    through the context and through kp = keys W_k, grads prefixed; att.W_k's is not computed
    by the kernel."""
    r = dict(results)
    r["dkeys"] = r["dkeys"] + r.pop("dkp") @ W_k.T
    for name in ("W_q", "v"):
        r["att." + name] = r.pop("d" + name)
    for name in ("W_x", "W_h", "b"):
        r["dec." + name] = r.pop("d" + name)
    return r


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_one_dtype_is_kept_and_float16_is_computed_in_float32(kernel_calls, dtype):
    """All arguments in one dtype: every result and gradient has that dtype. float16 is computed
    in float32: its results are bit for bit those of the float32 call on the same values,
    rounded to float16. The kernels see the compute dtype only, and the compute-dtype results
    match the NumPy reference (float32 judged against float64, as in
    test_fused_decoder_matches_the_numpy_reference)."""
    dt = np.float64 if dtype == np.float64 else np.float32
    args64, dhs, dctx, W_k = _kernel_args()
    args = _cast_args(args64, dtype)
    dhs, dctx = dhs.astype(dtype), dctx.astype(dtype)
    got = _run_kernels(args, dhs, dctx)
    _assert_kernels_got(kernel_calls, dt)
    _assert_same(got, _run_kernels(_cast_args(args, dt), dhs.astype(dt), dctx.astype(dt)), dtype)

    # against the NumPy reference: the same values in the compute dtype, kp = keys W_k
    args, dhs, dctx = _cast_args(args, dt), dhs.astype(dt), dctx.astype(dt)
    W_k = W_k.astype(dtype).astype(dt)
    args["kp"] = args["keys"] @ W_k
    ours = _reference_names(_run_kernels(args, dhs, dctx), W_k)
    params = {k: v.astype(dt) for k, v in init_model(_cfg(3, 4, 5, np.float64), 0).items()}
    params.update({"att.W_q": args["W_q"], "att.v": args["v"], "att.W_k": W_k,
                   "dec.W_x": args["W_x"], "dec.W_h": args["W_h"], "dec.b": args["b"]})
    arrays = {"e": args["e"], "keys": args["keys"], "h0": args["h0"], "c0": args["c0"],
              "dhs": dhs, "dctx": dctx}
    mask = args["key_mask"]
    ref = _run_decoder("numpy", params, arrays, mask)
    truth = _run_decoder("numpy", *_cast(params, arrays, np.float64), mask)
    for name, value in ours.items():
        assert_close(f"bahdanau kernels {name} vs numpy", value, ref[name], dt,
                     truth=truth[name])


@pytest.mark.parametrize("mask_dtype", [np.uint8, np.int64])
def test_key_mask_of_numbers_reads_as_booleans(kernel_calls, mask_dtype):
    """A key mask of 0/1 numbers gives bit for bit the results of the bool mask (fully masked
    row included), and the forward kernel is handed the bool mask."""
    args, dhs, dctx, _ = _kernel_args()
    want = _run_kernels(args, dhs, dctx)
    kernel_calls.clear()
    got = _run_kernels(dict(args, key_mask=args["key_mask"].astype(mask_dtype)), dhs, dctx)
    _assert_same(got, want, np.float64)
    _assert_kernels_got(kernel_calls, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_target_steps(dtype):
    """T = 0: outputs of shapes (B, 0, ·), and nothing flows back through no steps: every
    gradient is 0 and has its argument's shape, (dh0, dc0) included."""
    args64, dhs, dctx, _ = _kernel_args(T=0)
    args = _cast_args(args64, dtype)
    got = _run_kernels(args, dhs.astype(dtype), dctx.astype(dtype))
    B, Tk = args["key_mask"].shape
    Hd = args["h0"].shape[1]
    shapes = {"hs": (B, 0, Hd), "ctx": (B, 0, args["keys"].shape[2]), "weights": (B, 0, Tk),
              "de": args["e"].shape, "dkeys": args["keys"].shape, "dkp": args["kp"].shape,
              "dh0": (B, Hd), "dc0": (B, Hd),
              **{"d" + name: args[name].shape for name in ("W_q", "v", "W_x", "W_h", "b")}}
    assert {name: value.shape for name, value in got.items()} == shapes
    for name, value in got.items():
        assert value.dtype == dtype, name
        assert np.all(value == 0), name
