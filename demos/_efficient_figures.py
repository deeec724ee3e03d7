"""Figures of ``demos.efficient_attention``: cost vs T, approximation error, recall vs distance."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from demos import _recall_task as recall
from demos._common import Figure, save_figure

NAME = "efficient_attention"


COST_FIGURES = {  # key of the measurement → (y label, file name, caption)
    "time_s": ("forward time (s)", "cost_time.png",
               "Time of one attention forward pass vs sequence length (log-log, fitted slopes "
               "over T ≥ 1024): exact attention grows as T², the variants as T."),
    "peak_mib": ("peak traced memory (MiB)", "cost_memory.png",
                 "Peak memory (tracemalloc: NumPy allocations; Numba-internal buffers are not "
                 "traced) of one forward pass vs T."),
}


def plot_cost(rows: dict, out: Path, key: str) -> Figure:
    """One line per variant: ``key`` ("time_s" or "peak_mib") against T, log-log."""
    import matplotlib.pyplot as plt
    ylabel, fname, caption = COST_FIGURES[key]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, r in rows.items():
        style = "--" if "Numba" in name else "-"
        ax.loglog(r["T"], r[key], style, marker="o", ms=3,
                  label=f"{name} (slope {r[key + '_slope']:.2f})")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, out, f"{NAME}/{fname}", caption, title=ylabel)


def plot_approximation(res: dict, out: Path) -> Figure:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, pts in res.items():
        if not isinstance(pts, list):
            continue
        x, y = zip(*pts)
        if len(pts) == 1:
            ax.axhline(y[0], color="k", ls=":", label=f"{name} (no budget): {y[0]:.2f}")
        else:
            ax.loglog(x, y, marker="o", label=name)
    ax.set_xlabel("budget per query: keys attended / random features / projected rank")
    ax.set_ylabel("relative error ‖out − exact‖ / ‖exact‖")
    ax.set_title(f"Approximation of exact attention ({res['source']})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out, f"{NAME}/approximation_error.png",
                       "Relative error of each efficient variant against exact softmax attention "
                       "on real query/key/value vectors, vs its budget.", "approximation error")


def plot_recall(res: dict, cfg: recall.RecallConfig, window: int, out: Path) -> Figure:
    import matplotlib.pyplot as plt
    edges = np.asarray(res["distance_edges"])
    mid = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    curves = [(name, r) for name, r in res.items() if isinstance(r, dict)]
    for i, (name, r) in enumerate(curves):                          # equal curves stay visible
        note = ", exact by construction" if name.endswith("global question") else ""
        ax.plot(mid, r["accuracy_by_distance"], marker="os^Dv<>p"[i % 8], ms=9 - i,
                ls=("-", "--", ":")[i % 3], label=f"{name} ({r['accuracy']:.2f}{note})")
    ax.axvline(window, color="grey", ls=":", lw=1)
    ax.text(window, 0.02, f" w = {window}", color="grey", fontsize=8)
    ax.axhline(1 / cfg.n_values, color="k", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("distance from the queried (key, value) pair to its question (tokens)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    if cfg.n_queries == 1:
        ax.set_title(f"Associative recall, T = {cfg.T}, one question (the last token), "
                     "one attention layer", fontsize=10)
        return save_figure(fig, out, f"{NAME}/recall_accuracy.png",
                           "Accuracy of a one-layer attention model on associative recall vs "
                           "how far back the queried pair is: the local window fails beyond w. "
                           "\"Window + global question\" matches exact attention by "
                           "construction (the question's row attends to every key, so it is "
                           "exact attention); see the multi-query figure for a setting where "
                           "no token can be global.", "recall vs distance")
    ax.set_title(f"Multi-query recall, T = {cfg.T}, {cfg.n_queries} questions at random "
                 "positions, no global question", fontsize=10)
    return save_figure(fig, out, f"{NAME}/recall_multi_query.png",
                       f"The same model answering {cfg.n_queries} questions at random positions "
                       f"among {cfg.n_pairs} pairs: no fixed token is the question, so no "
                       "global token can stand in for exact attention. Making token 0 global "
                       "helps only when a pair happens to sit there: in one layer the "
                       "questions read its input, not a summary of the sequence.",
                       "multi-query recall vs distance")
