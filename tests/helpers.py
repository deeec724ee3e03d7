"""One helper to compare any forward/backward pair with torch autograd, one for finite differences.

Usage pattern (tinygrad's ``helper_test_op``, micrograd's torch comparison)::

    def ours(q, k):
        out, cache = dot_score_forward(q, k)
        return out, lambda dout: dict(zip(("q", "k"), dot_score_backward(dout, cache)))

    assert_matches_torch("dot_score", ours, lambda q, k: q @ k.transpose(-1, -2),
                         {"q": q, "k": k}, grad_wrt=["q", "k"])

The fake loss is ``(out * dout).sum()`` with a random ``dout``, so every element of every
gradient matters.

float64 results are compared with torch's float64 results at fixed, tight tolerances. float32
results are judged against the float64 truth, not against torch's float32 rounding (see
:func:`assert_float32_close`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

MAX_ERRORS: dict[str, float] = {}

FLOAT64_TOLERANCE = (1e-9, 1e-10)   # (rtol, atol)

# float32 passes when |ours − truth| ≤ PEER_FACTOR · max|peer − truth|
#                                      + cond · (FLOOR_ATOL + FLOOR_RTOL · |truth|)
PEER_FACTOR = 4.0
FLOOR_RTOL, FLOOR_ATOL = 1.3e-6, 1e-5   # torch.testing's default float32 tolerances


def record_error(op: str, err: float) -> None:
    """Remember the largest float64 error seen for ``op`` (printed at the end of the run)."""
    MAX_ERRORS[op] = max(MAX_ERRORS.get(op, 0.0), float(err))


def _restrict(arrays, where):
    """The entries of each array where ``where`` (broadcast to their shape) is True."""
    if where is None:
        return [np.asarray(a) for a in arrays]
    where = np.broadcast_to(where, np.shape(arrays[0]))
    return [np.asarray(a)[where] for a in arrays]


def assert_float32_close(name: str, ours, truth, peer, *, cond: float = 1.0, where=None) -> None:
    """Judge a float32 result by its error against the float64 truth, with torch as the yardstick.

    Why: comparing our float32 result with torch's float32 result measures the difference of
    two roundings, and either can be the worse one. With thousands of random cases some input
    is ill-conditioned enough that the difference crosses any fixed tolerance (a causal query
    seeing one key: our dq is the exact 0, torch's float32 gives -2.3e-5; layer norm of a
    2-wide row with a tiny σ), and the test then fails at random. So, like PyTorch's OpInfo
    tests (per-dtype, per-op tolerances), we compute the truth in float64 from the same
    float32 inputs (upcast) and pass when

        |ours − truth| ≤ PEER_FACTOR · max|peer − truth|
                         + cond · (FLOOR_ATOL + FLOOR_RTOL · |truth|)

    elementwise, where ``peer`` is an independent float32 computation of the same thing
    (torch's) and ``cond`` a condition factor the test supplies for an ill-conditioned case
    (e.g. 1/σ for layer norm). Our float32 may be a small multiple worse than torch's, never
    an order of magnitude; the floor (torch.testing's own float32 tolerances) covers cases where
    the peer happens to be nearly exact.

    ``where`` restricts the comparison (e.g. to rows that torch can define).
    """
    ours, truth, peer = (np.asarray(a, dtype=np.float64) for a in (ours, truth, peer))
    assert ours.shape == truth.shape == peer.shape, \
        f"{name}: shapes ours {ours.shape}, truth {truth.shape}, peer {peer.shape}"
    ours, truth, peer = (a.ravel() for a in _restrict([ours, truth, peer], where))
    if ours.size == 0:
        return
    with np.errstate(invalid="ignore"):
        peer_err = float(np.nanmax(np.abs(peer - truth), initial=0.0))
        bound = PEER_FACTOR * peer_err + cond * (FLOOR_ATOL + FLOOR_RTOL * np.abs(truth))
        err = np.abs(ours - truth)
        ok = (err <= bound) | (ours == truth) | (np.isnan(ours) & np.isnan(truth))
    if not np.all(ok):
        i = int(np.argmax(~ok))
        raise AssertionError(
            f"{name}: float32 error against the float64 truth too large at {np.sum(~ok)} of "
            f"{ok.size} entries; first: ours {ours[i]!r}, truth {truth[i]!r}, error {err[i]:.3g} "
            f"> bound {bound[i]:.3g} (torch float32's worst error {peer_err:.3g}, cond {cond:g})")


def layer_norm_condition(rows, eps: float = 1e-5) -> float:
    """The condition factor of a layer norm for :func:`assert_float32_close`: 1/σ of its worst
    input row, at least 1. Its dx carries a factor 1/√(σ² + ε), so the rounding of a row with a
    tiny spread (e.g. d = 2 and two nearly equal entries) is amplified by it."""
    rows = np.asarray(rows, dtype=np.float64)
    sigma = np.sqrt(rows.var(axis=-1) + eps)
    return float(max(1.0, 1.0 / np.min(sigma, initial=np.inf)))


def stacked_condition(rows_per_norm, eps: float = 1e-5) -> float:
    """The condition factor of layer norms applied one after another (a block, a stack, a
    model): the product of each norm's :func:`layer_norm_condition`, at least 1. Condition
    numbers multiply under composition: a rounding error made before the first norm is
    amplified by every later one. (Measured: a float32 LM with d_model = 2 and three norms of
    1/σ = 249, 10 and 37 had a relative error of 2e-3 in its embedding gradient, eight times
    more than the largest single factor allows and within their product.)"""
    return float(np.prod([layer_norm_condition(r, eps) for r in rows_per_norm]))


def torch_layer_norm_condition(norms, theirs: Callable, inputs: dict) -> float:
    """:func:`stacked_condition` of the rows that reach the torch modules ``norms`` when
    ``theirs`` runs on ``inputs`` upcast to float64 (layer norms inside a torch model)."""
    import torch
    rows = []
    hooks = [norm.register_forward_pre_hook(lambda _, args: rows.append(args[0].detach().numpy()))
             for norm in norms]
    tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in inputs.items()}
    try:
        with torch.no_grad():
            theirs(**tensors)
    finally:
        for hook in hooks:
            hook.remove()
    return stacked_condition(rows)


def assert_close(name: str, ours: np.ndarray, ref: np.ndarray, dtype, where=None,
                 op: str | None = None, scale: float = 1.0, *, truth=None,
                 cond: float = 1.0) -> float:
    """Compare ``ours`` with a reference ``ref`` computed independently in the same dtype.

    float64: assert_allclose at FLOAT64_TOLERANCE, atol × ``scale``; returns the max abs error
    (recorded for ``op``). float32: ``truth``, the same computation in float64 from the
    upcast inputs, is required, and the judgement is :func:`assert_float32_close` with ``ref``
    as the peer and condition factor ``cond × scale``. ``where`` restricts the comparison.
    """
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != reference {ref.shape}"
    if np.dtype(dtype) != np.float64:
        if truth is None:
            raise TypeError(f"{name}: a {np.dtype(dtype)} result is judged against the float64 "
                            "truth: pass truth=")
        assert_float32_close(name, ours, truth, ref, cond=cond * scale, where=where)
        return float("nan")
    ours_w, ref_w = _restrict([ours, ref], where)
    err = float(np.max(np.abs(ours_w - ref_w), initial=0.0))
    rtol, atol = FLOAT64_TOLERANCE
    np.testing.assert_allclose(ours_w, ref_w, rtol=rtol, atol=atol * scale, err_msg=name)
    if op is not None:
        record_error(op, err)
    return err


def _torch_run(theirs: Callable, inputs: dict, grad_wrt: list[str], dout: np.ndarray,
               dtype=None) -> tuple[np.ndarray, dict]:
    """torch's output and gradients of Σ out ⊙ dout; floating inputs cast to ``dtype`` if given."""
    import torch

    def tensor(name, x):
        if not isinstance(x, np.ndarray):
            return x
        floating = np.issubdtype(x.dtype, np.floating)
        if floating and dtype is not None:
            x = x.astype(dtype)
        t = torch.from_numpy(np.ascontiguousarray(x))
        return t.requires_grad_(True) if floating and name in grad_wrt else t

    tensors = {k: tensor(k, v) for k, v in inputs.items()}
    ref = theirs(**tensors)
    d = torch.from_numpy(dout.astype(dtype) if dtype is not None else dout)
    (ref * d).nan_to_num(0.0).sum().backward()
    grads = {name: np.zeros(np.shape(inputs[name]), dtype or inputs[name].dtype)
             if tensors[name].grad is None else tensors[name].grad.numpy() for name in grad_wrt}
    return ref.detach().numpy(), grads


def assert_matches_torch(op: str, ours: Callable, theirs: Callable, inputs: dict,
                         grad_wrt: list[str], *, out_rows=None, seed: int = 0,
                         cond: float = 1.0, dead_rows_zero: bool = True) -> None:
    """Check forward and backward of ``ours`` against torch autograd on ``theirs``.

    ours(**inputs) -> (out, backward) where backward(dout) -> {name: grad}
    theirs(**tensors) -> torch output (same shape as ours)
    out_rows: optional boolean broadcastable to out.shape; False marks outputs torch cannot
        define (fully masked rows -> NaN in torch). There our output must be exactly 0, dout is
        set to 0 for both sides, and only the True part is compared.
    dead_rows_zero: whether our output must be exactly 0 where out_rows is False (not so for
        a layer that adds a bias after the attention, e.g. multi-head attention's b_o).
    cond: float32 only: the condition factor of the case (see assert_float32_close).
    float64 inputs are compared with torch in float64; float32 inputs are judged against
    torch in float64 on the same (upcast) inputs, with torch's float32 error as the yardstick.
    """
    dtype = next(v.dtype for v in inputs.values() if isinstance(v, np.ndarray)
                 and np.issubdtype(v.dtype, np.floating))
    out, backward = ours(**inputs)
    rng = np.random.default_rng(seed)
    dout = rng.standard_normal(out.shape).astype(out.dtype)
    if out_rows is not None:
        rows = np.broadcast_to(out_rows, out.shape)
        if dead_rows_zero:
            assert np.all(out[~rows] == 0), f"{op}: output of fully masked rows must be 0"
        dout = np.where(rows, dout, 0).astype(out.dtype)
    assert out.dtype == dtype, f"{op}: output dtype {out.dtype} != input dtype {dtype}"
    grads = backward(dout)
    for name in grad_wrt:
        assert grads[name] is not None, f"{op}: gradient of {name} is None"
        assert np.all(np.isfinite(grads[name])), f"{op}: d{name} has NaN/inf"
        assert grads[name].dtype == dtype, f"{op}: d{name} dtype {grads[name].dtype}"

    ref, ref_grads = _torch_run(theirs, inputs, grad_wrt, dout)
    truth, truth_grads = ((ref, ref_grads) if dtype == np.float64 else
                          _torch_run(theirs, inputs, grad_wrt, dout, np.float64))
    assert_close(f"{op} forward", out, ref, dtype, where=out_rows, op=op, truth=truth, cond=cond)
    for name in grad_wrt:
        assert_close(f"{op} d{name}", grads[name], ref_grads[name], dtype, op=f"{op} d{name}",
                     truth=truth_grads[name], cond=cond)


def numerical_grad(f: Callable, x: np.ndarray, idx: tuple, eps: float):
    """Central difference ∂f/∂x[idx] ≈ (f(x+ε) − f(x−ε)) / 2ε, restoring x afterwards
    (elementwise when f returns an array)."""
    old = x[idx]
    x[idx] = old + eps
    plus = f()
    x[idx] = old - eps
    minus = f()
    x[idx] = old
    return (plus - minus) / (2 * eps)


def check_finite_differences(ours: Callable, inputs: dict, grad_wrt: list[str], *,
                             seed: int = 0, n_entries: int = 12, eps: float = 1e-6,
                             rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Compare the analytic gradient of L = Σ out ⊙ dout with central differences (float64).

    ``ours`` has the same contract as in :func:`assert_matches_torch`. ``n_entries`` random
    entries of every input in ``grad_wrt`` are perturbed (inputs are modified in place and
    restored). The difference is taken output by output before the sum with ``dout``, so the
    outputs a perturbation leaves unchanged cancel exactly instead of adding the rounding of
    a large L to the quotient (a flaky case at 10 000 examples: gelu on 1 296 entries).
    """
    rng = np.random.default_rng(seed)
    out, backward = ours(**inputs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout)

    def output() -> np.ndarray:
        return np.asarray(ours(**inputs)[0], dtype=np.float64)

    for name in grad_wrt:
        x = inputs[name]
        assert x.dtype == np.float64, "finite differences need float64 inputs"
        for flat in rng.choice(x.size, size=min(n_entries, x.size), replace=False):
            idx = np.unravel_index(flat, x.shape)
            num = float(np.sum(numerical_grad(output, x, idx, eps) * dout))
            np.testing.assert_allclose(grads[name][idx], num, rtol=rtol, atol=atol,
                                       err_msg=f"d{name}{idx}")


def assert_backward_casts_dout(backward: Callable, cache, out: np.ndarray, names,
                               rng: np.random.Generator) -> None:
    """A float64 upstream gradient reaching a float32 forward gives float32 gradients, bit for
    bit those of the same gradient cast to float32 first. ``backward(dout, cache)`` returns
    (dx, grads) with ``grads`` keyed by ``names``."""
    dout = rng.standard_normal(out.shape)                                   # float64
    dx, grads = backward(dout, cache)
    assert dx.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    dx32, grads32 = backward(dout.astype(np.float32), cache)
    np.testing.assert_array_equal(dx, dx32)
    for k in names:
        np.testing.assert_array_equal(grads[k], grads32[k])


def numba_scans(monkeypatch) -> list:
    """Record every recurrent scan that runs on the fused kernels: the list fills with the
    kind ("lstm", "gru") of each call, so that a test can tell that backend="numba" reached
    the scans rather than being dropped on the way (the NumPy path gives the same numbers)."""
    from attention_np.nn.recurrent import sequences
    calls, scan = [], sequences._numba_scan_forward

    def counted(kind, *args, **kwargs):
        calls.append(kind)
        return scan(kind, *args, **kwargs)
    monkeypatch.setattr(sequences, "_numba_scan_forward", counted)
    return calls
