"""Is an explanation faithful? Deletion and insertion curves (article §8.1.3), for any model.

An explanation gives every input token j a score s_j. Sort the tokens by score, highest first,
and watch the model's output f as the tokens go:

    deletion:   y_k = f(x without its k highest-scoring tokens),   k = 0 … n
    insertion:  y_k = f(only the k highest-scoring tokens of x),   k = 0 … n

    AUC = ∫₀¹ y(t) dt over t = k / n   (trapezoid rule)

A faithful explanation names first the tokens the output depends on: the output falls fast when
they are deleted (low deletion AUC) and rises fast when they are inserted (high insertion AUC).
A random order is the baseline every method must beat (Petsiuk et al. 2018 for images;
DeYoung et al. 2020, ERASER, for text). Tokens the model always needs ([CLS], [SEP]) are
never deleted: the caller passes only the n deletable ones.

The explanations compared, each turned into one score per key token j from attention maps
A (L, H, T, T) and, where a gradient is needed, ∂y/∂A of the output y:

    raw_attention     mean_h A_L[i, j]                      (last layer)
    rollout           R[i, j],  R = Â_L … Â_1               (Abnar & Zuidema 2020)
    flow              max-flow from input j to output i     (Abnar & Zuidema 2020)
    grad_x_attention  mean_h (∂y/∂A_L ⊙ A_L)[i, j]          (last layer, signed)
    relevance         R[i, j],  R ← R + mean_h(∇A_l ⊙ A_l)⁺ R   (Chefer et al. 2021)
    random            u_j ~ U(0, 1)                           (the baseline)

each averaged over the query rows i the model's output reads (the [CLS] row for a classifier
that reads [CLS]; every row for a mean-pooled sentence embedding).
"""
from __future__ import annotations

import numpy as np

from attention_np.models.minilm_explain import gradient_weighted_relevance
from attention_np.viz import attention_flow, attention_rollout

METHODS = ("raw_attention", "rollout", "flow", "grad_x_attention", "relevance", "random")
GRID = np.linspace(0.0, 1.0, 11)             # fractions of tokens removed / inserted


def token_scores(attentions, dattentions, rows, rng: np.random.Generator) -> dict:
    """Every method's score of each key token, averaged over the query ``rows``.

    attentions, dattentions (L, H, T, T) → {method: (T,)}. ``rng`` draws the random order.
    """
    a = np.asarray(attentions, dtype=np.float64)
    g = np.asarray(dattentions, dtype=np.float64)
    rows = np.atleast_1d(rows)
    maps = {"raw_attention": a[-1].mean(axis=0),                            # (T, T)
            "rollout": attention_rollout(a),
            "flow": attention_flow(a, outputs=rows),
            "grad_x_attention": (g[-1] * a[-1]).mean(axis=0),
            "relevance": gradient_weighted_relevance(a, g)}
    scores = {name: m[rows].mean(axis=0) for name, m in maps.items()}      # (T,)
    scores["random"] = rng.random(a.shape[-1])
    return scores


def removal_order(scores) -> np.ndarray:
    """Token indices by decreasing score (ties: the earlier token first)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def keep_masks(order) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of both curves for tokens removed in ``order`` (n,):
    deletion (n + 1, n), row k keeps all but order[:k]; insertion (n + 1, n), row k keeps
    only order[:k]. True = the token is kept."""
    n = len(order)
    rank = np.empty(n, dtype=np.int64)
    rank[np.asarray(order)] = np.arange(n)                                  # position in order
    insertion = rank[None, :] < np.arange(n + 1)[:, None]                   # (n + 1, n)
    return ~insertion, insertion


def curve_auc(values) -> float:
    """∫₀¹ y(t) dt by the trapezoid rule for y_k at t = k / n, k = 0 … n (n ≥ 1)."""
    y = np.asarray(values, dtype=np.float64)
    return float((y[1:] + y[:-1]).sum() / (2 * (len(y) - 1)))


def sentence_curves(output, scores: dict) -> dict:
    """Deletion and insertion curves of one input for every method.

    output(keep (M, n) bool) → (M,) model outputs, one batched call for all methods;
    scores {method: (n,)} over the n deletable tokens → {method: {"deletion": (n + 1,),
    "insertion": (n + 1,)}}.
    """
    masks = [keep_masks(removal_order(s)) for s in scores.values()]
    n1 = len(next(iter(scores.values()))) + 1
    keep = np.concatenate([m for pair in masks for m in pair])             # (methods·2·n1, n)
    unique, inverse = np.unique(keep, axis=0, return_inverse=True)         # each input once
    y = np.asarray(output(unique))[inverse.ravel()].reshape(len(scores), 2, n1)
    return {name: {"deletion": y[k, 0], "insertion": y[k, 1]} for k, name in enumerate(scores)}


def summarise(curves: list[dict]) -> dict:
    """Per-sentence curves → {method: {"deletion_auc", "insertion_auc" (means over sentences),
    their standard errors, and the mean curves on :data:`GRID`}}."""
    out = {}
    for name in curves[0]:
        result = {}
        for kind in ("deletion", "insertion"):
            per = [c[name][kind] for c in curves]
            auc = np.array([curve_auc(y) for y in per])
            on_grid = [np.interp(GRID, np.linspace(0, 1, len(y)), y) for y in per]
            result[f"{kind}_auc"] = float(auc.mean())
            result[f"{kind}_auc_sem"] = float(auc.std(ddof=1) / np.sqrt(len(auc))
                                              if len(auc) > 1 else 0.0)
            result[f"{kind}_curve"] = np.mean(on_grid, axis=0).tolist()
        out[name] = result
    return out


def report_lines(summary: dict, what: str) -> list[str]:
    """One line per method: its AUCs and the gap to the random order."""
    rand = summary["random"]
    lines = [f"faithfulness ({what}): deletion AUC (lower = more faithful), insertion AUC "
             "(higher = more faithful)"]
    for name, s in summary.items():
        lines.append(f"  {name:17s} deletion {s['deletion_auc']:.3f} ± {s['deletion_auc_sem']:.3f}"
                     f" ({s['deletion_auc'] - rand['deletion_auc']:+.3f} vs random)   insertion "
                     f"{s['insertion_auc']:.3f} ± {s['insertion_auc_sem']:.3f} "
                     f"({s['insertion_auc'] - rand['insertion_auc']:+.3f} vs random)")
    return lines


def figure_curves(summary: dict, ylabel: str, n_inputs: int, out_dir, relpath: str,
                  title: str, title_zh: str):
    """Mean deletion and insertion curves of every method, AUCs in the legend; ``title_zh``:
    ``title`` in Chinese, for the gallery."""
    import matplotlib.pyplot as plt
    from demos._common import save_figure
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2), sharey=True, constrained_layout=True)
    for ax, kind in zip(axes, ("deletion", "insertion")):
        for name, s in summary.items():
            style = dict(color="black", ls="--", lw=2) if name == "random" else dict(lw=1.6)
            ax.plot(GRID, s[f"{kind}_curve"], marker="o", ms=3,
                    label=f"{name} (AUC {s[f'{kind}_auc']:.3f})", **style)
        ax.set_xlabel(f"fraction of tokens {'deleted' if kind == 'deletion' else 'inserted'}, "
                      "highest score first")
        better = "lower" if kind == "deletion" else "higher"
        ax.set_title(f"{kind} ({better} curve = more faithful)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(f"{title} — mean over {n_inputs} inputs", fontsize=11)
    return save_figure(fig, out_dir, relpath,
                       "Deletion (left) and insertion (right) curves: tokens removed from, or "
                       "put back into, each input in the order an explanation ranks them, and "
                       f"the model's output ({ylabel}) after each step, averaged over "
                       f"{n_inputs} inputs. The dashed line is a random order: an explanation "
                       "is faithful only as far as it beats it (AUC in the legend).",
                       f"Faithfulness: {title}",
                       caption_zh="删除曲线（左）与插入曲线（右）：按某种解释给出的排序，把词元逐个"
                                  "从每条输入中删去或放回，记录每一步之后模型的输出"
                                  f"（{ylabel}），再对 {n_inputs} 条输入取平均。虚线是随机排序："
                                  "一种解释胜过它多少，才算有多忠实（AUC 见图例）。",
                       title_zh=f"忠实度：{title_zh}")
