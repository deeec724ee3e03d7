"""Optimisers over dicts of NumPy parameters: SGD (with momentum), Adam / AdamW, and global
gradient-norm clipping. The update rules follow ``torch.optim`` step for step.

    params = {"W": W, "b": b};  grads = {"W": dW, "b": db}
    opt = Adam(lr=1e-3, weight_decay=0.01)        # AdamW by default (decoupled=True)
    clip_grad_norm(grads, max_norm=1.0)
    opt.step(params, grads)                       # updates W and b in place

The optimiser's state (momentum buffers, moments, step counts) lives in its own dicts keyed
by parameter name — that is the one place in the package where state is kept between calls.
"""
from __future__ import annotations

import numpy as np


def _check_pairs(params: dict, grads: dict):
    """Yield (name, param, grad) for every non-None gradient, validating names and shapes."""
    for name, g in grads.items():
        if g is None:
            continue
        if name not in params:
            raise ValueError(f"grads has key {name!r} that is not in params "
                             f"(params keys: {sorted(params)})")
        p, g = params[name], np.asarray(g)
        if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
            raise ValueError(f"params[{name!r}] must be a floating ndarray (updated in place), "
                             f"got {type(p).__name__}")
        if g.shape != p.shape:
            raise ValueError(f"grads[{name!r}] must have the shape of params[{name!r}] "
                             f"{p.shape}, got {g.shape}")
        yield name, p, g.astype(p.dtype, copy=False)


def _check_nonneg(**values) -> None:
    for name, v in values.items():
        if not v >= 0:
            raise ValueError(f"{name} must be non-negative, got {v}")


class SGD:
    """Stochastic gradient descent with optional momentum and L2 weight decay.

        g ← ∇L + λ θ
        b ← g (first step),  b ← μ b + g (later steps)      (only if μ > 0; g ← b)
        θ ← θ − η g

    As ``torch.optim.SGD(lr=η, momentum=μ, weight_decay=λ)`` (no dampening or Nesterov).
    """

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        _check_nonneg(lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        """Update every ``params[name]`` that has a gradient, in place."""
        for name, p, g in _check_pairs(params, grads):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                buf = self.buffers.get(name)
                g = self.buffers[name] = g.copy() if buf is None else self.momentum * buf + g
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba, 2015); with ``decoupled=True`` it is AdamW (Loshchilov & Hutter, 2019).

        AdamW: θ ← θ (1 − η λ)            Adam (decoupled=False): g ← g + λ θ
        m ← β₁ m + (1 − β₁) g,            v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ),                v̂ = v / (1 − β₂ᵗ)
        θ ← θ − η m̂ / (√v̂ + ε)

    As ``torch.optim.AdamW`` / ``torch.optim.Adam`` with the same arguments. t counts the
    steps each parameter has taken.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = True):
        _check_nonneg(lr=lr, eps=eps, weight_decay=weight_decay)
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.weight_decay, self.decoupled = weight_decay, decoupled
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t: dict[str, int] = {}

    def step(self, params: dict, grads: dict) -> None:
        """Update every ``params[name]`` that has a gradient, in place."""
        b1, b2 = self.betas
        for name, p, g in _check_pairs(params, grads):
            if self.weight_decay and self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            elif self.weight_decay:
                g = g + self.weight_decay * p
            t = self.t[name] = self.t.get(name, 0) + 1
            m = self.m[name] = b1 * self.m.get(name, 0.0) + (1.0 - b1) * g
            v = self.v[name] = b2 * self.v.get(name, 0.0) + (1.0 - b2) * g * g
            denom = np.sqrt(v) / np.sqrt(1.0 - b2 ** t) + self.eps        # √v̂ + ε
            p -= (self.lr / (1.0 - b1 ** t)) * m / denom                  # η m̂ / (√v̂ + ε)


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

        ‖g‖ = √(Σ_name Σ_i g_i²),   c = max_norm / (‖g‖ + 10⁻⁶),   g ← c g  if c < 1

    As ``torch.nn.utils.clip_grad_norm_``. Returns ‖g‖ before clipping (a float).
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    arrays = [g for g in grads.values() if g is not None]
    for name, g in grads.items():
        if g is not None and not isinstance(g, np.ndarray):
            raise ValueError(f"grads[{name!r}] must be an ndarray (it is scaled in place), "
                             f"got {type(g).__name__}")
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in arrays)))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in arrays:
            g *= coef
    return total
