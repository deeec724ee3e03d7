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
COST_FIGURES_ZH = {  # the same, in Chinese for the gallery: key → (title, caption)
    "time_s": ("前向计算时间（s）",
               "一次注意力前向计算的耗时随序列长度的变化（双对数坐标，斜率在 T ≥ 1024 的点上拟合）："
               "精确注意力按 T² 增长，各个变体按 T 增长。"),
    "peak_mib": ("追踪到的峰值内存（MiB）",
                 "一次前向计算的峰值内存随 T 的变化（由 tracemalloc 统计：只计 NumPy 的内存分配，"
                 "不含 Numba 内部的缓冲区）。"),
}


def plot_cost(rows: dict, out: Path, key: str) -> Figure:
    """One line per variant: ``key`` ("time_s" or "peak_mib") against T, log-log."""
    import matplotlib.pyplot as plt
    ylabel, fname, caption = COST_FIGURES[key]
    title_zh, caption_zh = COST_FIGURES_ZH[key]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, r in rows.items():
        style = "--" if "Numba" in name else "-"
        ax.loglog(r["T"], r[key], style, marker="o", ms=3,
                  label=f"{name} (slope {r[key + '_slope']:.2f})")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, out, f"{NAME}/{fname}", caption, title=ylabel,
                       caption_zh=caption_zh, title_zh=title_zh)


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
                       "on real query/key/value vectors, vs its budget.", "approximation error",
                       caption_zh="在真实的查询/键/值向量上，各个高效变体与精确 softmax 注意力之间的"
                                  "相对误差随其预算的变化。",
                       title_zh="近似误差")


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
                           "no token can be global.", "recall vs distance",
                           caption_zh="单层注意力模型在联想回忆（associative recall）任务上的准确率，"
                                      "随被查询的键值对离问题有多远而变化：局部窗口在距离超过 w 后"
                                      "失效。“window + global question”按构造就与精确注意力一致"
                                      "（问题所在的那一行关注所有键，所以它就是精确注意力）；在多问题"
                                      "那幅图的设定中，没有哪个词元能被设为全局词元。",
                           title_zh="回忆准确率与距离")
    ax.set_title(f"Multi-query recall, T = {cfg.T}, {cfg.n_queries} questions at random "
                 "positions, no global question", fontsize=10)
    return save_figure(fig, out, f"{NAME}/recall_multi_query.png",
                       f"The same model answering {cfg.n_queries} questions at random positions "
                       f"among {cfg.n_pairs} pairs: no fixed token is the question, so no "
                       "global token can stand in for exact attention. Making token 0 global "
                       "helps only when a pair happens to sit there: in one layer the "
                       "questions read its input, not a summary of the sequence.",
                       "multi-query recall vs distance",
                       caption_zh=f"同一个模型在 {cfg.n_pairs} 个键值对中回答 {cfg.n_queries} 个"
                                  "位于随机位置的问题：问题不在固定的词元上，所以没有哪个全局词元"
                                  "能代替精确注意力。把词元 0 设为全局词元（图例“global token 0”）"
                                  "只在恰好有键值对位于那里时才有帮助：只有一层时，问题从它那里读到"
                                  "的是它的输入，而不是整个序列的摘要。",
                       title_zh="多问题回忆准确率与距离")
