"""Figures of the caption_digits demo: training curves, per-word overlays, a decoding GIF, and
the article's decoder next to Show-Attend-Tell."""
from __future__ import annotations

import numpy as np

from attention_np.viz import animate_decoding, plot_image_attention
from demos._common import Figure, save_figure
from demos._digits_data import CANVAS, END, decode

EXAMPLES = (0, 1, 2)


def _words_and_steps(tokens, alphas):
    """Generated words + "<end>" (if it was generated) and their attention rows (n + 1, L)."""
    words = decode(tokens) + (["<end>"] if END in tokens else [])
    return words, alphas[:len(words)]


def plot_curves(curves: dict, out_dir, name: str) -> Figure:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 3.6), constrained_layout=True)
    for label, curve in curves.items():
        k = min(50, len(curve))
        smooth = np.convolve(curve, np.ones(k) / k, mode="valid")
        start = len(curves["soft"]) if label == "hard" else 0     # fine-tuned after soft
        ax.plot(start + np.arange(k - 1, len(curve)), smooth, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("steps trained in all (batch of 32 strips)")
    ax.set_ylabel("cross-entropy per word (50-step mean)")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, out_dir, f"{name}/training_curves.png",
                       "Training loss of every decoder, on fresh strips every step. Fine-tuned "
                       "hard attention (\"hard\") starts from the trained soft model and "
                       "continues on sampled locations (REINFORCE), so its curve starts low "
                       "and is noisier; \"hard_from_scratch\" trains the same objective from "
                       "random weights for as many steps in all; the article's decoder, which "
                       "never looks at a location, trains as many steps as soft attention.",
                       "training curves",
                       caption_zh="各解码器的训练损失，每一步都用新生成的条带图像。微调的硬注意力（图例"
                                  "“hard”）从训练好的软注意力模型出发，改在采样到的位置上继续训练"
                                  "（REINFORCE），所以曲线起点低、噪声更大；“hard_from_scratch”从随机"
                                  "权重出发优化同一目标，总步数与前者相同；原文的解码器（图例“article”）"
                                  "从不看图像上的任何位置，训练步数与软注意力相同。",
                       title_zh="训练曲线")


def _outline_boxes(fig, boxes, n_words):
    from matplotlib.patches import Rectangle
    for k, ax in enumerate(fig.axes[:n_words]):
        if k < len(boxes) and boxes[k][0] >= 0:
            top, left, bottom, right = boxes[k]
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                                   fill=False, edgecolor="lime", linewidth=1.5))


def plot_overlays(models: dict, test, out_dir, name: str) -> list[Figure]:
    figures = []
    for kind in ("soft", "hard"):
        cfg, _, tokens, alphas = models[kind]
        for i in EXAMPLES[:2]:
            words, steps = _words_and_steps(tokens[i], alphas[i])
            fig = plot_image_attention(test.images[i], steps, words, cfg.grid, max_cols=2)
            rows = -(-len(words) // 2)                  # the strips are 4:1, not square panels
            fig.set_size_inches(7.5, 1.3 * rows + 0.5)
            _outline_boxes(fig, test.boxes[i], len(decode(tokens[i])))
            truth = " ".join(decode(test.captions[i]))
            fig.suptitle(f"{kind} attention — truth: {truth}", fontsize=10)
            figures.append(save_figure(
                fig, out_dir, f"{name}/overlay_{kind}_{i}.png",
                f"{kind.capitalize()} attention for each generated word of test strip {i}. "
                "Green: the box of the digit being named; the heat map should sit inside it.",
                f"{kind} attention, word by word",
                caption_zh=f"测试条带 {i} 上每个生成单词的{'软' if kind == 'soft' else '硬'}注意力。"
                           "绿框：当前单词所指的那个数字的位置；热力图应当落在框内。",
                title_zh=f"{'软' if kind == 'soft' else '硬'}注意力，逐词展示"))
    return figures


def write_gif(model, test, out_dir, name: str, i: int = EXAMPLES[2]) -> Figure:
    from pathlib import Path
    cfg, _, tokens, alphas = model
    words, steps = _words_and_steps(tokens[i], alphas[i])
    rel = f"{name}/decoding_soft.gif"
    animate_decoding(steps, Path(out_dir) / rel, target_tokens=words, image=test.images[i],
                     grid_shape=cfg.grid, fps=1.5)
    return Figure(rel, "Soft attention moving along the strip while the caption is generated, "
                       "one frame per word.", "decoding, step by step",
                  caption_zh="生成字幕的过程中，软注意力沿着条带图像移动，每个单词一帧。",
                  title_zh="逐步解码")


def plot_baseline_vs_soft(soft_model, article_tokens, article_weights, test, out_dir,
                          name: str, i: int = 0) -> Figure:
    """Top: the strip. Middle: Show-Attend-Tell's α per word, summed over the grid's rows, on
    the image's own x axis. Bottom: the article's weights — over its own earlier steps."""
    import matplotlib.pyplot as plt
    cfg, _, tokens, alphas = soft_model
    gh, gw = cfg.grid
    words, steps = _words_and_steps(tokens[i], alphas[i])
    by_column = steps.reshape(len(words), gh, gw).sum(axis=1)           # (n + 1, gw)
    a_words = decode(article_tokens) + ["<end>"]
    a_in = ["<start>"] + a_words[:-1]
    w = article_weights[:len(a_words), :len(a_words)]
    fig, axes = plt.subplots(3, 1, figsize=(7, 7.2), constrained_layout=True,
                             gridspec_kw={"height_ratios": [1, 2.2, 2.2]})
    axes[0].imshow(test.images[i], cmap="gray", extent=(0, CANVAS[1], CANVAS[0], 0))
    axes[0].set_title("truth: " + " ".join(decode(test.captions[i])), fontsize=10)
    axes[0].set_yticks([])
    axes[1].imshow(by_column, cmap="viridis", aspect="auto", vmin=0, vmax=1,
                   extent=(0, CANVAS[1], len(words) - 0.5, -0.5))
    for top, left, bottom, right in test.boxes[i]:
        if left >= 0:
            axes[1].axvspan(left, right, fill=False, edgecolor="lime", linewidth=1)
    axes[1].set_yticks(range(len(words)), words)
    axes[1].set_xlabel("image x (pixels) — green: digit boxes")
    axes[1].set_title("Show, Attend and Tell: each word's attention lies over the image", fontsize=10)
    axes[2].imshow(w, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    axes[2].set_yticks(range(len(a_words)), [f"→ {t}" for t in a_words])
    axes[2].set_xticks(range(len(a_in)), [f"h({t})" for t in a_in], rotation=30)
    axes[2].set_xlabel("the decoder's own LSTM states (no image axis exists)")
    axes[2].set_title("article's decoder: softmax over its hidden states — says: "
                      + " ".join(a_words[:-1]), fontsize=10)
    for ax in axes[:2]:
        ax.set_xlim(0, CANVAS[1])
    return save_figure(fig, out_dir, f"{name}/article_vs_show_attend_tell.png",
                       "Why the article's decoder cannot localise: its attention weights are "
                       "over its own previous states (bottom), so no weight is ever attached to "
                       "an image region; the image reaches it only as one pooled vector. "
                       "Show-Attend-Tell's weights (middle) live on the image's x axis and "
                       "step from digit to digit.", "article's decoder vs Show, Attend and Tell",
                       caption_zh="原文的解码器为什么无法定位：它的注意力权重分布在它自己先前的状态上"
                                  "（下图），没有哪个权重对应某个图像区域，图像只以一个池化后的向量"
                                  "进入模型。Show, Attend and Tell 的权重（中图）则落在图像的 x 轴"
                                  "上，从一个数字跳到下一个数字。",
                       title_zh="原文的解码器与 Show, Attend and Tell 对比")
