"""Figures of the classify_sentiment demo: every head's attention on two test sentences, [CLS]
attention per head, the head × word-class role scores, head ablation and the overfitting curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.apps.sentiment import predict
from demos._common import save_figure
from demos._sentiment_data import CLASSES, word_class


def _head_names(num_layers: int, num_heads: int) -> list[str]:
    return [f"L{l}H{h}" for l in range(num_layers) for h in range(num_heads)]


def _example_indices(test) -> list[int]:
    """A short negated sentence with a degree word, and a short "but" sentence."""
    short = [i for i, s in enumerate(test.sentences) if len(s) <= 13]
    picks = [next(i for i in short if test.negated[i] and
                  any(word_class(w) == "intensifier" for w in test.sentences[i]))]
    picks.append(next(i for i in short if "but" in test.sentences[i] and i not in picks))
    return picks


def figure_examples(result, out_dir: Path, name: str) -> list:
    from attention_np.viz.static import plot_heads, plot_heatmap
    test, enc = result["test"], result["config"].encoder
    figures = []
    for k, i in enumerate(_example_indices(test)):
        n = int(test.lengths[i])
        tokens = ["[CLS]"] + test.sentences[i]
        attn = np.stack([w[i, :, :n, :n] for w in result["weights"]])          # (L, H, n, n)
        pred = predict(test.ids[i:i + 1], test.lengths[i:i + 1], result["params"],
                       result["config"])[0]
        label = f"label {CLASSES[test.labels[i]]}, predicted {CLASSES[pred]}"
        fig = plot_heads(attn, tokens, title=f"\"{' '.join(test.sentences[i])}\" ({label})")
        figures.append(save_figure(fig, out_dir, f"{name}/heads_{k}.png",
                                   "Every head's attention (rows = queries); row 0 is [CLS], "
                                   "the only row the classifier reads in the last layer.",
                                   f"example {k + 1}: all heads",
                                   caption_zh="每个注意力头的注意力（行是查询）；第 0 行是 [CLS]，"
                                              "也是分类器在最后一层唯一读取的一行。",
                                   title_zh=f"例 {k + 1}：所有注意力头"))
        cls_rows = attn[:, :, 0, :].reshape(-1, n)                          # (L·H, n)
        fig = plot_heatmap(cls_rows, _head_names(enc.num_layers, enc.num_heads), tokens,
                           title=f"[CLS] attention per head\n({label})", annotate=True)
        fig.axes[0].set_ylabel("head")
        fig.axes[0].set_xlabel("token")
        figures.append(save_figure(fig, out_dir, f"{name}/cls_attention_{k}.png",
                                   "Where [CLS] looks, one row per head: heads that "
                                   "specialise light up on negators, degree words or adjectives.",
                                   f"example {k + 1}: [CLS] attention",
                                   caption_zh="[CLS] 看向哪里，每个头一行：发生了分工的头会在否定词、"
                                              "程度词或形容词上亮起来。",
                                   title_zh=f"例 {k + 1}：[CLS] 的注意力"))
    return figures


def figure_roles(results, out_dir: Path, name: str):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(3.4 * len(results) + 0.8, 4.2),
                             squeeze=False, constrained_layout=True)
    roles = list(next(iter(results[0]["role_scores"].values())))        # word classes
    for ax, r in zip(axes[0], results):
        names = list(r["role_scores"])
        m = np.array([[r["role_scores"][h][c] for c in roles] for h in names])
        image = ax.imshow(np.log2(np.maximum(m, 1e-3)), cmap="RdBu_r", vmin=-3, vmax=3,
                          aspect="auto")
        for (i, j), v in np.ndenumerate(m):           # white text on the darkest cells
            dark = abs(np.log2(max(v, 1e-3))) > 2
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
        for j, role in enumerate(roles):                 # the head chosen on validation
            i = names.index(r["best_head"][role]["head"])
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5,
                                       edgecolor="limegreen"))
        ax.set_xticks(range(len(roles)), roles, rotation=30, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(f"seed {r['seed']} (acc {r['accuracy']:.2f})", fontsize=10)
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="log₂ role score (0 = no preference)")
    fig.suptitle("Attention from [CLS] to each word class ÷ that class's share of tokens")
    return save_figure(fig, out_dir, f"{name}/role_scores.png",
                       "Head × word-class role scores on the test set for every seed "
                       "(number in the cell; red = the head over-attends to that class, blue = "
                       "avoids it). Framed in green: the best head per role, chosen on the "
                       "validation split.",
                       "head × word class",
                       caption_zh="每个随机种子在测试集上的“注意力头 × 词类”角色得分（数字写在格中；"
                                  "红色表示该头对这一词类的关注多于均匀分布，蓝色表示回避它）。绿框："
                                  "在验证集上为每个角色选出的最佳头。",
                       title_zh="注意力头 × 词类")


def figure_ablation(results, out_dir: Path, name: str):
    import matplotlib.pyplot as plt
    names = list(results[0]["head_ablation"])
    fig, ax = plt.subplots(figsize=(7.5, 3.6), constrained_layout=True)
    width = 0.8 / len(results)
    for k, r in enumerate(results):
        drop = [r["accuracy"] - r["head_ablation"][h] for h in names]
        ax.bar(np.arange(len(names)) + (k - (len(results) - 1) / 2) * width, drop, width,
               label=f"seed {r['seed']} (full model {r['accuracy']:.3f})")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("test accuracy lost")
    ax.set_title("Removing one head at a time (its rows of W_o set to 0)")
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, f"{name}/head_ablation.png",
                       "Accuracy lost when each head is removed: the heads the classifier "
                       "relies on, which need not be the ones with the clearest role.",
                       "head ablation",
                       caption_zh="逐个移除注意力头后损失的准确率：它显示的是分类器真正依赖的头，"
                                  "而这些头未必是角色最分明的那些。",
                       title_zh="注意力头消融")


def figure_overfitting(curves: dict, settings: dict, out_dir: Path, name: str):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, constrained_layout=True)
    for ax, (run_name, run) in zip(axes, curves.items()):
        rows = run["curve"]
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["train"] for r in rows], "o-", label="train")
        ax.plot(steps, [r["test"] for r in rows], "s-", label="test (unseen pairs)")
        ax.set_title(run_name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    fig.suptitle(f"Overfitting (§8.2.3): {settings['overfit_train']} training sentences")
    return save_figure(fig, out_dir, f"{name}/overfitting.png",
                       "Train vs test accuracy on a small training set, without and with "
                       "regularisation: the gap between the curves is the overfitting.",
                       "overfitting",
                       caption_zh="小训练集上的训练准确率与测试准确率，左右两图分别为不加和加正则化："
                                  "两条曲线之间的差距就是过拟合。",
                       title_zh="过拟合")


def all_figures(results, curves: dict, settings: dict, out_dir: Path, name: str) -> list:
    """Every figure of the demo, in the order the gallery shows them."""
    figures = figure_examples(results[0], out_dir, name)
    figures += [figure_roles(results, out_dir, name), figure_ablation(results, out_dir, name),
                figure_overfitting(curves, settings, out_dir, name)]
    return figures
