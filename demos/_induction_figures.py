"""Figures of the induction-heads demo: the two heads' attention, training with its phase change,
the head ablation and a GIF of cached generation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.lm import lm_forward
from attention_np.viz import animate_decoding, plot_heatmap
from demos._common import Figure, save_figure

NAME = "induction_heads"


def _head_name(layer: int, head: int) -> str:
    return f"layer {layer + 1} head {head + 1}"


def heads_figure(ids, weights: list, prev_head, ind_head, half: int, out: Path) -> Figure:
    """Side by side: the previous-token head (layer 1) and the induction head (layer 2) on one
    repeated row; open circles mark where each should look (i − 1, and i − h + 1)."""
    import matplotlib.pyplot as plt
    T = len(ids)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 6.2), layout="constrained")
    i_prev = np.arange(1, T)
    i_ind = np.arange(half, T - 1)               # the queries whose next token is in the row
    panels = [(prev_head, i_prev, i_prev - 1, "previous-token head: i → i − 1"),
              (ind_head, i_ind, i_ind - half + 1, "induction head: i → i − h + 1")]
    labels = [str(t) for t in ids]
    for ax, ((layer, head), rows, cols, what) in zip(axes, panels):
        plot_heatmap(weights[layer][head], labels, labels, ax=ax, cmap="magma", vmax=1.0,
                     annotate=False, title=f"{_head_name(layer, head)} — {what}")
        ax.plot(cols, rows, "o", mfc="none", mec="tab:cyan", ms=5, mew=0.8)
        ax.axhline(half - 0.5, color="white", lw=0.8, ls=":")
        ax.axvline(half - 0.5, color="white", lw=0.8, ls=":")
        ax.set_xlabel("key (token attended to)")
        ax.set_ylabel("query (current token)")
    fig.suptitle(f"{half} random tokens and their repeat (dotted: the repeat starts; "
                 "circles: where each head should look)")
    return save_figure(fig, out, f"{NAME}/heads.png",
                       "The two heads of the induction circuit on one repeated random sequence. "
                       "Left: a layer-1 head attends from each token to the one before it. Right: "
                       "in the second half a layer-2 head attends to the token after the earlier "
                       "occurrence of the current token — the token that comes next.",
                       "Previous-token and induction heads",
                       caption_zh="归纳电路的两个头作用在一条重复的随机序列上。左：第 1 层的一个头让"
                                  "每个词元关注它前面的那个词元。右：在后半段，第 2 层的一个头关注"
                                  "当前词元上一次出现之后的那个词元——也就是接下来要出现的词元。",
                       title_zh="前一词元头与归纳头")


def training_figure(history: list, phase_step: int, out: Path) -> Figure:
    """In-context losses over training (phase change marked), and the best heads' scores."""
    import matplotlib.pyplot as plt
    steps = [h["step"] for h in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True, layout="constrained")
    for key, label, style in (("loss_first_half", "repeated rows, first half", "-"),
                              ("loss_second_half", "repeated rows, second half", "-"),
                              ("loss_control_second_half", "control rows, second half", "--")):
        top.plot(steps, [h[key] for h in history], style, label=label)
    top.set_ylabel("next-token loss (nats)")
    top.set_ylim(bottom=0)
    bottom.plot(steps, [h["induction_score"] for h in history],
                label="induction score (best layer-2 head)")
    bottom.plot(steps, [h["prev_token_score"] for h in history],
                label="previous-token score (best layer-1 head)")
    bottom.set_ylabel("mean attention on the target")
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("training step")
    for ax in (top, bottom):
        ax.axvline(phase_step, color="grey", ls=":", lw=1.2)
        ax.legend(loc="center right", fontsize=8)
    top.annotate(f"phase change\n(step {phase_step})", (phase_step, top.get_ylim()[1] * 0.55),
                 xytext=(6, 0), textcoords="offset points", va="center", fontsize=8,
                 color="grey")
    return save_figure(fig, out, f"{NAME}/training.png",
                       "Top: the loss on the second half of repeated rows drops abruptly (the "
                       "phase change, dotted) while the first half and the control rows stay "
                       "near log V. Bottom: the induction and previous-token scores rise at the "
                       "same step.", "The phase change",
                       caption_zh="上：重复序列（repeated rows）后半段的损失骤然下降（相变，见点线），"
                                  "而前半段和对照序列（control rows）的损失始终停在 log V 附近。下："
                                  "归纳得分和前一词元得分在同一步上升。",
                       title_zh="相变")


def ablation_figure(ablation: dict, baseline: float, first_half: float, best: tuple,
                    hatched: list, out: Path) -> Figure:
    """Second-half loss with each head zeroed, beside the intact model and the first half.
    ``best``: the (layer, head) of the best previous-token and induction heads, named in the
    caption; ``hatched``: the (layer, head) of every head that scores ≥ 0.5 as either."""
    import matplotlib.pyplot as plt
    names = list(ablation)
    marked = [_head_name(*h) for h in best]
    circuit = [_head_name(*h) for h in hatched]
    fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    colours = ["tab:blue" if n.startswith("layer 1") else "tab:orange" for n in names]
    bars = ax.bar(range(len(names)), [ablation[n] for n in names], color=colours)
    for bar, name in zip(bars, names):
        bar.set_hatch("//" if name in circuit else "")
    ax.axhline(baseline, color="black", lw=1, label=f"no head zeroed ({baseline:.2f})")
    ax.axhline(first_half, color="grey", ls="--", lw=1,
               label=f"first half, nothing to copy ({first_half:.2f})")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("second-half loss (nats)")
    ax.set_title("In-context loss with one head's output set to zero\n(hatched: previous-token "
                 "heads in layer 1, induction heads in layer 2, score ≥ 0.5)", fontsize=10)
    ax.legend(fontsize=8)
    prev, ind = (ablation[n] for n in marked)
    return save_figure(fig, out, f"{NAME}/ablation.png",
                       f"The second-half loss of repeated rows with one head's output zeroed "
                       f"(rows of its layer's W_o set to 0). Zeroing the previous-token head "
                       f"({marked[0]}) takes it from {baseline:.2f} to {prev:.2f} nats, the "
                       f"induction head ({marked[1]}) to {ind:.2f}; the first half, with "
                       f"nothing to copy, is at {first_half:.2f}.", "Head ablation",
                       caption_zh=f"把一个头的输出置零（将该层 W_o 中属于这个头的行设为 0）后，重复"
                                  f"序列后半段的损失。置零前一词元头（{marked[0]}）使损失从 "
                                  f"{baseline:.2f} 变为 {prev:.2f} nats，置零归纳头（{marked[1]}）"
                                  f"则变为 {ind:.2f}；前半段没有可复制的内容，损失为 "
                                  f"{first_half:.2f}。",
                       title_zh="注意力头消融")


def generation_gif(frames: np.ndarray, ids, prompt_len: int, head, out: Path) -> Figure:
    """One frame per generated token: the induction head's attention over the context so far."""
    context = [str(t) for t in ids[:-1]]                                 # keys of the last step
    generated = [str(t) for t in ids[prompt_len:]]
    animate_decoding(frames, Path(out) / f"{NAME}/generation.gif", source_tokens=context,
                     target_tokens=generated, fps=2.0)
    return Figure(f"{NAME}/generation.gif",
                  f"Greedy generation with the KV cache after a prompt of {prompt_len} tokens "
                  f"(a random run and the start of its repeat): each row is the attention of "
                  f"{_head_name(*head)} for one new token; it lands on the token after the "
                  "earlier occurrence, which the model then writes.", "Generation, step by step",
                  caption_zh=f"在 {prompt_len} 个词元的提示（一段随机序列及其重复的开头）之后，"
                             f"用 KV 缓存做贪心生成：每一行是 {_head_name(*head)} 为一个新词元"
                             "给出的注意力；它落在当前词元上一次出现位置的后一个词元上，模型"
                             "随即写出的正是这个词元。",
                  title_zh="逐步生成")


def all_figures(params, cfg, metrics: dict, history: list, row, gen_ids, prompt_len: int,
                out: Path) -> list[Figure]:
    """Every figure of the demo, from the trained model and its metrics."""
    prev = (0, metrics["prev_token_head"][1] - 1)
    ind = (1, metrics["induction_head"][1] - 1)
    hatched = [(0, h) for h in np.flatnonzero(np.asarray(metrics["prev_token_scores"][0]) >= .5)]
    hatched += [(1, h) for h in np.flatnonzero(np.asarray(metrics["induction_scores"][1]) >= .5)]
    _, weights, _ = lm_forward(row[None], params, cfg, return_weights=True)
    # the token written at position p was chosen at position p − 1: those attention rows
    _, gen_weights, _ = lm_forward(gen_ids[None, :-1], params, cfg, return_weights=True)
    frames = gen_weights[ind[0]][0, ind[1], prompt_len - 1:]          # (generated, T − 1)
    return [heads_figure(row, [w[0] for w in weights], prev, ind, len(row) // 2, out),
            training_figure(history, metrics["phase_change_step"], out),
            ablation_figure(metrics["ablation_second_half_loss"], metrics["loss_second_half"],
                            metrics["loss_first_half"], (prev, ind), hatched, out),
            generation_gif(frames, gen_ids, prompt_len, ind, out)]
