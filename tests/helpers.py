"""One helper to compare any forward/backward pair with torch autograd, one for finite differences.

Usage pattern (tinygrad's ``helper_test_op``, micrograd's torch comparison)::

    def ours(q, k):
        out, cache = dot_score_forward(q, k)
        return out, lambda dout: dict(zip(("q", "k"), dot_score_backward(dout, cache)))

    assert_matches_torch("dot_score", ours, lambda q, k: q @ k.transpose(-1, -2),
                         {"q": q, "k": k}, grad_wrt=["q", "k"])

The fake loss is ``(out * dout).sum()`` with a random ``dout``, so every element of every
gradient matters.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

MAX_ERRORS: dict[str, float] = {}

TOLERANCES = {  # (rtol, atol) by dtype
    np.dtype(np.float64): (1e-9, 1e-10),
    np.dtype(np.float32): (2e-4, 2e-5),
}


def record_error(op: str, err: float) -> None:
    """Remember the largest float64 error seen for ``op`` (printed at the end of the run)."""
    MAX_ERRORS[op] = max(MAX_ERRORS.get(op, 0.0), float(err))


def _to_torch(x, requires_grad: bool):
    import torch
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
        if requires_grad and np.issubdtype(x.dtype, np.floating):
            t.requires_grad_(True)
        return t
    return x


def assert_close(name: str, ours: np.ndarray, ref: np.ndarray, dtype, where=None,
                 op: str | None = None, scale: float = 1.0) -> float:
    """assert_allclose with dtype tolerances; ``where`` restricts the comparison. Returns max abs err."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != torch {ref.shape}"
    if where is not None:
        where = np.broadcast_to(where, ours.shape)
        ours, ref = ours[where], ref[where]
    err = float(np.max(np.abs(ours - ref), initial=0.0))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol * scale, err_msg=name)
    if op is not None and np.dtype(dtype) == np.float64:
        record_error(op, err)
    return err


def assert_matches_torch(op: str, ours: Callable, theirs: Callable, inputs: dict,
                         grad_wrt: list[str], *, out_rows=None, seed: int = 0,
                         atol_scale: float = 1.0, dead_rows_zero: bool = True) -> None:
    """Check forward and backward of ``ours`` against torch autograd on ``theirs``.

    ours(**inputs) -> (out, backward) where backward(dout) -> {name: grad}
    theirs(**tensors) -> torch output (same shape as ours)
    out_rows: optional boolean broadcastable to out.shape; False marks outputs torch cannot
        define (fully masked rows -> NaN in torch). There our output must be exactly 0, dout is
        set to 0 for both sides, and only the True part is compared.
    dead_rows_zero: whether our output must be exactly 0 where out_rows is False (not so for
        a layer that adds a bias after the attention, e.g. multi-head attention's b_o).
    """
    import torch
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

    tensors = {k: _to_torch(v, k in grad_wrt) for k, v in inputs.items()}
    ref = theirs(**tensors)
    assert_close(f"{op} forward", out, ref.detach().numpy(), dtype, where=out_rows, op=op,
                 scale=atol_scale)
    (ref * torch.from_numpy(dout)).nan_to_num(0.0).sum().backward()
    for name in grad_wrt:
        g_ref = tensors[name].grad
        g_ref = np.zeros_like(inputs[name]) if g_ref is None else g_ref.numpy()
        assert grads[name] is not None, f"{op}: gradient of {name} is None"
        assert np.all(np.isfinite(grads[name])), f"{op}: d{name} has NaN/inf"
        assert grads[name].dtype == dtype, f"{op}: d{name} dtype {grads[name].dtype}"
        assert_close(f"{op} d{name}", grads[name], g_ref, dtype, op=f"{op} d{name}",
                     scale=atol_scale)


def numerical_grad(f: Callable[[], float], x: np.ndarray, idx: tuple, eps: float) -> float:
    """Central difference ∂f/∂x[idx] ≈ (f(x+ε) − f(x−ε)) / 2ε, restoring x afterwards."""
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
    restored).
    """
    rng = np.random.default_rng(seed)
    out, backward = ours(**inputs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout)

    def loss() -> float:
        return float(np.sum(ours(**inputs)[0] * dout))

    for name in grad_wrt:
        x = inputs[name]
        assert x.dtype == np.float64, "finite differences need float64 inputs"
        for flat in rng.choice(x.size, size=min(n_entries, x.size), replace=False):
            idx = np.unravel_index(flat, x.shape)
            num = numerical_grad(loss, x, idx, eps)
            np.testing.assert_allclose(grads[name][idx], num, rtol=rtol, atol=atol,
                                       err_msg=f"d{name}{idx}")
