"""Figures of the site's own experiments (the demos draw theirs themselves)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def saturation(rows: list[dict], T: int = 32):
    """Three panels against d_k: score spread, peak weight, gradient reaching the scores; the
    dotted line is the weight of a uniform softmax over the experiment's T keys, 1/T."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
    for scaled, style, label in ((False, "o-", "e = q·k"), (True, "s-", "e = q·k / √d_k")):
        r = [row for row in rows if row["scaled"] == scaled]
        d = [row["d_k"] for row in r]
        for ax, key in zip(axes, ("score std", "mean max α", "mean ‖∂L/∂e‖")):
            ax.plot(d, [row[key] for row in r], style, label=label)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("$d_k$")
            ax.set_title(key)
    axes[0].set_yscale("log")
    axes[1].axhline(1 / T, color="gray", lw=0.8, ls=":")
    axes[1].text(2, 1 / T + 0.02, f"uniform (1/{T})", color="gray", fontsize=8)
    axes[2].set_yscale("log")
    axes[0].legend()
    return fig


def reinforce_error(rows: list[dict]):
    n = np.array([r["samples"] for r in rows])
    err = np.array([r["error"] for r in rows])
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    ax.loglog(n, err, "o-", label="‖REINFORCE mean − exact gradient‖")
    ax.loglog(n, err[0] * np.sqrt(n[0] / n), "k:", label="∝ 1/√n")
    ax.set_xlabel("samples averaged, n")
    ax.legend(fontsize=8)
    return fig


def gradient_reach(reach: dict):
    fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
    distance = reach["distance"]
    for name, values in reach.items():
        if name != "distance":
            ax.semilogy(distance, np.maximum(values, 1e-12), "o-", ms=3, label=name)
    ax.set_ylim(1e-13, 3)
    ax.set_xlabel("distance from the last position, T − 1 − j")
    ax.set_ylabel("‖∂y_T / ∂x_j‖")
    ax.set_title("how much the last output can feel input j (drawn at 1e-12: exactly 0)")
    ax.legend()
    return fig


def _box(ax, x, y, text, color, w=1.5, h=0.7):
    ax.add_patch(plt.Rectangle((x - w / 2, y - h / 2), w, h, fc=color, ec="black", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=11)


def _arrow(ax, a, b, text="", **kw):
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", lw=1.4, **kw))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, text, ha="center", fontsize=9)


def flowchart():
    """The article's §2.4 diagram, input → encoder → attention → decoder → output, with what
    travels along each arrow and the query arrow the article leaves out."""
    fig, ax = plt.subplots(figsize=(10, 2.3), layout="constrained")
    xs = [0.7, 3.0, 5.5, 8.0, 10.3]
    names = ["input\n$x_1 … x_n$", "encoder\n$h_1 … h_n$", "attention\n$α_{tj}$, $c_t$",
             "decoder\n$s_t$", "output\n$y_t$"]
    colors = ["#e8eef7", "#cfe0f5", "#ffd9a8", "#d7efd2", "#e8eef7"]
    for x, name, color in zip(xs, names, colors):
        _box(ax, x, 1.0, name, color, w=1.6, h=0.9)
    for a, b, label in ((0, 1, "tokens"), (1, 2, "keys, values"), (2, 3, "context $c_t$"),
                        (3, 4, "logits")):
        _arrow(ax, (xs[a] + 0.8, 1.0), (xs[b] - 0.8, 1.0), label)
    ax.annotate("", xy=(xs[2], 0.55), xytext=(xs[3], 0.55),
                arrowprops=dict(arrowstyle="->", lw=1.3, ls="--",
                                connectionstyle="arc3,rad=-0.35"))
    ax.text((xs[2] + xs[3]) / 2, 0.0,
            "query $s_{t-1}$ (Bahdanau) or $s_t$ (Luong): what the decoder needs next",
            ha="center", fontsize=10)
    ax.set_xlim(-0.2, 11.2)
    ax.set_ylim(-0.15, 1.55)
    ax.axis("off")
    return fig


def head_shapes(B: int = 2, T: int = 4, H: int = 3, Dh: int = 2):
    """split_heads drawn: (B, T, H·Dh) → (B, T, H, Dh) → (B, H, T, Dh), coloured by head."""
    colors = plt.cm.Set2(np.arange(H))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    ax = axes[0]
    for t in range(T):
        for f in range(H * Dh):
            ax.add_patch(plt.Rectangle((f, T - 1 - t), 1, 1, fc=colors[f // Dh], ec="white"))
    ax.set_title(f"one row of the batch, x W_q: (T={T}, d={H * Dh})\nfeatures h·Dh … (h+1)·Dh − 1 "
                 "belong to head h", fontsize=11)
    ax.set_xlim(0, H * Dh)
    ax.set_ylim(0, T)
    ax.set_xlabel("feature")
    ax.set_ylabel("position t")
    ax.set_aspect("equal")
    ax = axes[1]
    for h in range(H):
        x0 = h * (Dh + 1)
        for t in range(T):
            for f in range(Dh):
                ax.add_patch(plt.Rectangle((x0 + f, T - 1 - t), 1, 1, fc=colors[h], ec="white"))
        ax.text(x0 + Dh / 2, T + 0.2, f"head {h}", ha="center", fontsize=11)
    ax.set_title(f"split_heads → (H={H}, T={T}, Dh={Dh}): one (T, Dh) matrix per head;\n"
                 "merge_heads (the Concat) puts them back side by side", fontsize=11)
    ax.set_xlim(-0.2, H * (Dh + 1))
    ax.set_ylim(0, T + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    return fig
