"""Where am I? Positional information for attention, which on its own is blind to order
(permute the keys and values together and every output is the same).

Three ways to put position back (article §4 writes none; the Transformer needs one):

* **Sinusoidal encoding** (Vaswani et al., 2017, §3.5), added to the inputs:

      PE(m, 2i) = sin(m / base^{2i/d}),   PE(m, 2i + 1) = cos(m / base^{2i/d})

  Fixed, defined for any position; PE(m + k) is a linear function (a rotation) of PE(m).
* **Learned positions** (BERT, GPT-2, ViT), added to the inputs: a table P (max_len, d) whose
  row m is trained like a word embedding, x_m + P[m]. Nothing is known past max_len.
* **Rotary embeddings, RoPE** (Su et al., 2021, "RoFormer: Enhanced Transformer with Rotary
  Position Embedding"), applied to the queries and keys inside attention: each pair of features
  (x_{2i}, x_{2i+1}) of the vector at position m is rotated by the angle m θ_i,
  θ_i = base^{−2i/D}:

      [y_{2i}  ]   [cos mθ_i  −sin mθ_i] [x_{2i}  ]
      [y_{2i+1}] = [sin mθ_i   cos mθ_i] [x_{2i+1}]

  A rotation keeps lengths, and R(mθ)ᵀ R(nθ) = R((n − m)θ), so the score of a rotated query
  and key, ⟨RoPE(q, m), RoPE(k, n)⟩ = qᵀ R((n − m)θ) k, depends on the offset n − m alone.

Shapes: positions are integer arrays; RoPE takes (B, H, T, D) with even D (heads first, as the
package's attention) and positions (T,) shared by the batch or (B, T) per sequence.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_dout, as_float_array, check_positive_int
from attention_np.nn.layers import embedding_backward, embedding_forward

__all__ = ["sinusoidal_encoding", "learned_positions_forward", "learned_positions_backward",
           "rope_angles", "rope_forward", "rope_backward"]


def _check_base(base) -> float:
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)) \
            or not np.isfinite(base) or base <= 1:
        raise ValueError(f"base must be a finite number > 1, got {base!r}")
    return float(base)


def sinusoidal_encoding(T: int, d: int, base: float = 10000.0, dtype=np.float64) -> np.ndarray:
    """PE (T, d): PE[m, 2i] = sin(m / base^{2i/d}), PE[m, 2i+1] = cos(m / base^{2i/d}).

    For odd d the last column is a sine (its cosine partner is dropped). Add it to the token
    embeddings: ``x + PE`` (x (B, T, d)).
    """
    T, d, base = check_positive_int(T, "T"), check_positive_int(d, "d"), _check_base(base)
    m = np.arange(T, dtype=np.float64)[:, None]                   # (T, 1)
    two_i = np.arange(0, d, 2, dtype=np.float64)                  # (⌈d/2⌉,)
    angle = m / base ** (two_i / d)                               # (T, ⌈d/2⌉)
    pe = np.empty((T, d), dtype=np.float64)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d // 2])
    return pe.astype(dtype, copy=False)


def _check_positions(positions, name: str = "positions", limit: int | None = None) -> np.ndarray:
    p = np.asarray(positions)
    if not np.issubdtype(p.dtype, np.integer) or p.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D (T,) or 2-D (B, T) integer array, got dtype "
                         f"{p.dtype} with shape {p.shape}")
    if p.size and p.min() < 0:
        raise ValueError(f"{name} must be ≥ 0, got a minimum of {p.min()}")
    if limit is not None and p.size and p.max() >= limit:
        raise ValueError(f"{name} reaches {p.max()}, past the table's {limit} rows "
                         f"(learned positions know nothing beyond max_len)")
    return p


def learned_positions_forward(positions, W):
    """P = W[positions]: the learned position vectors, to add to the token embeddings.

    positions (T,) or (B, T) int in [0, max_len); W (max_len, d) → P (T, d) or (B, T, d), cache.
    """
    W = as_float_array(W, "W", ndim=2)
    positions = _check_positions(positions, limit=W.shape[0])
    return embedding_forward(positions, W)


def learned_positions_backward(dP, cache) -> np.ndarray:
    """dW[m] = Σ of dP over every use of position m (rows never used get 0) → dW (max_len, d)."""
    dP = as_dout(dP, cache["ids"].shape + (cache["W_shape"][1],), name="dP")
    return embedding_backward(dP, cache)


def rope_angles(positions, D: int, base: float = 10000.0) -> np.ndarray:
    """m θ_i for every position m and pair i: θ_i = base^{−2i/D} → (…positions, D/2) float64."""
    D = check_positive_int(D, "D")
    if D % 2:
        raise ValueError(f"RoPE rotates pairs of features: D must be even, got {D}")
    return _angles(_check_positions(positions), D, _check_base(base))


def _angles(positions: np.ndarray, D: int, base: float) -> np.ndarray:
    theta = base ** (-np.arange(0, D, 2, dtype=np.float64) / D)                # (D/2,)
    return positions[..., None].astype(np.float64) * theta                      # (…, D/2)


def rope_forward(x, positions, base: float = 10000.0):
    """Rotate each feature pair (x_{2i}, x_{2i+1}) of the vector at position m by m θ_i.

    x (B, H, T, D), D even; positions (T,) or (B, T) int ≥ 0 → y (B, H, T, D), cache.
    """
    x = as_float_array(x, "x", ndim=4)
    B, H, T, D = x.shape
    if D == 0 or D % 2:
        raise ValueError(f"RoPE rotates pairs of features: x's last axis D must be even and "
                         f"≥ 2, got x with shape {x.shape}")
    angles = _angles(_check_positions(positions), D, _check_base(base))   # (T, D/2) / (B, T, D/2)
    if angles.shape[-2] != T or (angles.ndim == 3 and angles.shape[0] != B):
        raise ValueError(f"positions with shape {np.shape(positions)} do not match x's "
                         f"(B, T) = ({B}, {T}); give (T,) or (B, T)")
    angles = angles[None, None] if angles.ndim == 2 else angles[:, None]  # (·, ·, T, D/2)
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    return _rotate(x, cos, sin), {"cos": cos, "sin": sin, "shape": x.shape, "dtype": x.dtype}


def _rotate(x, cos, sin):
    """[x_{2i}, x_{2i+1}] → [x_{2i} cos − x_{2i+1} sin, x_{2i} sin + x_{2i+1} cos]."""
    even, odd = x[..., 0::2], x[..., 1::2]                               # (B, H, T, D/2) each
    y = np.empty_like(x)
    y[..., 0::2] = even * cos - odd * sin
    y[..., 1::2] = even * sin + odd * cos
    return y


def rope_backward(dy, cache):
    """y = R(mθ) x per pair, so dx = R(mθ)ᵀ dy = R(−mθ) dy: the same rotation, backwards."""
    dy = as_dout(dy, cache["shape"], cache["dtype"], name="dy")
    return _rotate(dy, cache["cos"], -cache["sin"])
