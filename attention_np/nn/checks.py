"""Input validation shared by every public function.

Each check raises ``ValueError`` naming the argument and the shapes involved, so a user who
passes ``(B, T, D)`` where ``(B, H, T, D)`` was expected reads *which* argument was wrong.
"""
from __future__ import annotations

import numpy as np


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """float16 is computed in float32 (its exp/sum lose too much) and cast back."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def as_float_array(x, name: str, ndim: int | tuple[int, ...] | None = None,
                   min_ndim: int | None = None, check_finite: bool = False) -> np.ndarray:
    """Return ``x`` as a floating ndarray (ints are promoted to float64), checking its rank.

    ``ndim`` is an exact rank or a tuple of allowed ranks; ``min_ndim`` a lower bound.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
            arr = arr.astype(np.float64)
        else:
            raise ValueError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    if check_finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values (shape {arr.shape})")
    return arr


def check_same_dim(a: np.ndarray, a_name: str, a_axis: int,
                   b: np.ndarray, b_name: str, b_axis: int) -> None:
    """Raise unless ``a.shape[a_axis] == b.shape[b_axis]``."""
    if a.shape[a_axis] != b.shape[b_axis]:
        raise ValueError(
            f"{a_name} dim {a_axis} ({a.shape[a_axis]}) must equal {b_name} dim {b_axis} "
            f"({b.shape[b_axis]}); got {a_name}{a.shape} and {b_name}{b.shape}")


def check_shape(x: np.ndarray, name: str, shape: tuple) -> None:
    """Raise unless ``x.shape == shape`` (``None`` entries match anything)."""
    ok = x.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        dims = ["?" if s is None else str(s) for s in shape]
        want = f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"
        raise ValueError(f"{name} must have shape {want}, got {x.shape}")


def check_attention_inputs(q, k, v, names: tuple = ("q", "k", "v")):
    """q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) as float arrays of one rank sharing their
    leading dims; messages use ``names`` (e.g. phi_q, phi_k, v for feature maps)."""
    nq, nk, nv = names
    q = as_float_array(q, nq, min_ndim=2)
    k = as_float_array(k, nk, ndim=q.ndim)
    v = as_float_array(v, nv, ndim=q.ndim)
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"{nq}, {nk}, {nv} must share their leading (batch/head) dims, got "
                         f"{nq}{q.shape}, {nk}{k.shape}, {nv}{v.shape}")
    check_same_dim(q, nq, -1, k, nk, -1)
    check_same_dim(k, nk, -2, v, nv, -2)
    return q, k, v


def check_nonempty(x: np.ndarray, name: str, axis: int, what: str) -> None:
    """Raise unless ``x`` has at least one entry along ``axis`` (``what`` names that axis)."""
    if x.shape[axis] == 0:
        raise ValueError(f"{name} must have a positive {what} (axis {axis}), got shape {x.shape}")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum`` (a size or a count), or ValueError naming it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def check_odd_size(value, name: str) -> int:
    """A kernel size: a positive odd integer, so 'same' padding (k − 1)/2 is whole."""
    k = check_positive_int(value, name)
    if k % 2 == 0:
        raise ValueError(f"{name} must be odd for 'same' padding, got {value!r}")
    return k


def check_indices(indices, name: str, size: int) -> np.ndarray:
    """Sorted unique int positions in [0, size) (an empty array for None)."""
    if indices is None:
        return np.zeros(0, dtype=np.intp)
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of integer positions, got {indices!r}")
    idx = idx.astype(np.intp)
    if idx.size and (idx.min() < 0 or idx.max() >= size or np.unique(idx).size != idx.size):
        raise ValueError(f"{name} must hold distinct positions in [0, {size}), got {indices!r}")
    return np.sort(idx)


def check_num_heads(num_heads, d_model: int, where: str) -> int:
    """``num_heads``, a positive integer dividing ``d_model`` (``where`` says where d_model
    comes from, e.g. "x_q has shape (2, 5, 6)"), or ValueError naming num_heads."""
    if not isinstance(num_heads, (int, np.integer)) or isinstance(num_heads, bool) \
            or num_heads < 1 or d_model % num_heads:
        raise ValueError(f"num_heads ({num_heads!r}) must be a positive divisor of d_model "
                         f"({d_model}); {where}")
    return int(num_heads)


def check_params(params, shapes: dict, name: str = "params", prefix: str = "") -> dict:
    """Each ``params[prefix + key]`` as a float array of shape ``shapes[key]`` (``None``
    entries match any size), for the keys of ``shapes``, returned under ``key``; messages name
    ``name[prefix + key]``, e.g. params['W_1'] or params['blocks.2.ffn.W_1']."""
    missing = [prefix + key for key in shapes if prefix + key not in params]
    if missing:
        raise ValueError(f"{name} is missing {missing}")
    checked = {}
    for key, shape in shapes.items():
        label = f"{name}[{prefix + key!r}]"
        checked[key] = as_float_array(params[prefix + key], label, ndim=len(shape))
        check_shape(checked[key], label, shape)
    return checked


def check_mask(mask, name: str, target_shape: tuple) -> np.ndarray | None:
    """Validate a boolean attention mask (True = may attend) broadcastable to ``target_shape``.

    Returns the mask broadcast to ``target_shape`` (a read-only view), or ``None``.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ValueError(
            f"{name} must be a boolean array (True = may attend), got dtype {m.dtype} "
            f"with shape {m.shape}")
    try:
        return np.broadcast_to(m, target_shape)
    except ValueError:
        raise ValueError(
            f"{name} with shape {m.shape} is not broadcastable to {target_shape}") from None


def as_dout(dout, shape: tuple, dtype=None, name: str = "dy") -> np.ndarray:
    """The upstream gradient of a backward as an array (cast to ``dtype`` unless None), raising
    unless it has the forward output's ``shape``."""
    dout = np.asarray(dout)
    if dout.shape != tuple(shape):
        raise ValueError(f"{name} must have the forward output's shape {tuple(shape)}, "
                         f"got {dout.shape}")
    return dout if dtype is None else dout.astype(dtype, copy=False)


def check_rng(rng, when: str = "") -> np.random.Generator:
    """``rng`` must be a ``np.random.Generator`` (``when`` says why it is needed, e.g.
    "when dropout_p > 0"), or ValueError naming rng."""
    if not isinstance(rng, np.random.Generator):
        why = f" {when}" if when else ""
        raise ValueError(f"rng must be a numpy.random.Generator{why}, got {type(rng).__name__}")
    return rng


def check_dropout(dropout_p, rng) -> float:
    """Attention dropout: ``dropout_p`` in [0, 1), and a ``np.random.Generator`` when it is > 0."""
    is_number = isinstance(dropout_p, (int, float, np.integer, np.floating))
    if isinstance(dropout_p, bool) or not (is_number and 0.0 <= dropout_p < 1.0):
        raise ValueError(f"dropout_p must be a number in [0, 1), got {dropout_p!r}")
    if dropout_p > 0:
        check_rng(rng, f"when dropout_p > 0 (dropout_p={dropout_p})")
    return float(dropout_p)
