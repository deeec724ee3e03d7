"""The vision demo's figures: ViT attention rollout over digits, CBAM spatial maps, SE channel
weights per class, attention distance against receptive field, and the training curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.viz import attention_rollout
from demos._common import Figure, save_figure
from demos._vision_analysis import class_means

NAME = "vision_attention"
EXTENT = (-0.5, 7.5, 7.5, -0.5)              # pixel centres at 0 … 7


def _one_per_class(labels, keep, per_class: int = 1) -> list[int]:
    """The first ``per_class`` indices of each class among those where ``keep`` is True."""
    return [int(i) for k in range(10) for i in np.flatnonzero(keep & (labels == k))[:per_class]]


def _cls_rollout(weights, n: int, grid: int) -> np.ndarray:
    """Rollout from the [CLS] token of image n over the patch grid → (grid, grid)."""
    R = attention_rollout(np.stack([w[n] for w in weights]))            # (T, T)
    return R[0, 1:].reshape(grid, grid)


def _outline(ax, image) -> None:
    """The digit's strokes as a white contour (pixel centres at 0 … 7)."""
    ax.contour(np.arange(8), np.arange(8), image, levels=[0.4], colors="white", linewidths=1.0)


def rollout_figure(config, run: dict, test, out_dir: Path) -> Figure:
    """Rollout from [CLS] to each 2×2 patch (one colour per patch, one scale for all panels)
    under the digit's outline: correct digits (one per class) on top, mistakes below."""
    import matplotlib.pyplot as plt
    labels, predicted = test.labels, run["predicted"]
    rows = [("correct", _one_per_class(labels, predicted == labels)),
            ("wrong", [int(i) for i in np.flatnonzero(predicted != labels)[:10]])]
    grids = {n: _cls_rollout(run["weights"], n, config.grid) for _, idx in rows for n in idx}
    vmax = max(g.max() for g in grids.values())
    fig, axes = plt.subplots(2, 10, figsize=(13, 3.5), layout="constrained")
    for r, (kind, idx) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(idx):
                ax.set_frame_on(False)
                continue
            n = idx[c]
            im = ax.imshow(grids[n], cmap="magma", vmin=0, vmax=vmax, extent=EXTENT)
            _outline(ax, test.images[n, 0])
            ax.set_title(f"{labels[n]} → {predicted[n]}", fontsize=10,
                         color="black" if kind == "correct" else "tab:red")
        axes[r, 0].set_ylabel(kind, fontsize=11)
    fig.colorbar(im, ax=axes, shrink=0.85, label="rollout weight of the patch")
    fig.suptitle("ViT attention rollout from [CLS] to each 2×2 patch, digit outline in white "
                 "(title: true → predicted)", fontsize=11)
    return save_figure(fig, out_dir, f"{NAME}/rollout.png",
                       "Attention rollout (Abnar & Zuidema 2020) from the [CLS] token through all "
                       "four layers to the 16 patches of each held-out digit: top, one correct "
                       "digit per class; bottom, the ViT's mistakes (red).",
                       "ViT attention rollout",
                       caption_zh="注意力展开（attention rollout，Abnar & Zuidema 2020）：从 [CLS] "
                                  "词元出发，穿过全部四层，到达每个留出数字的 16 个图块。上排"
                                  "（correct）：每类一个预测正确的数字；下排（wrong）：ViT 预测错的"
                                  "数字（红色标题）。",
                       title_zh="ViT 注意力展开")


def cbam_figure(run: dict, test, out_dir: Path) -> Figure:
    """One digit per class; rows: the digit, then how much CBAM's spatial gate closes, 1 − a,
    in block 1 (8×8) and block 2 (4×4 cells of 2×2 pixels), on one log colour scale, with the
    digit's outline on top (the gates stay nearly open: a linear scale would show nothing)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    idx = _one_per_class(test.labels, run["predicted"] == test.labels)
    closed = [1.0 - run["weights"][b][1][idx, 0].astype(np.float64) for b in (0, 1)]   # (10, S, S)
    norm = LogNorm(vmin=max(min(c.min() for c in closed), 1e-7), vmax=max(c.max() for c in closed))
    fig, axes = plt.subplots(3, 10, figsize=(13, 4.3), layout="constrained")
    for c, n in enumerate(idx):
        axes[0, c].imshow(test.images[n, 0], cmap="gray_r", extent=EXTENT)
        axes[0, c].set_title(str(test.labels[n]), fontsize=10)
        for r, block in enumerate(closed, start=1):
            im = axes[r, c].imshow(np.maximum(block[c], norm.vmin), cmap="viridis", norm=norm,
                                   extent=EXTENT)
            _outline(axes[r, c], test.images[n, 0])
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for r, text in enumerate(["digit", "block 1: 1 − a", "block 2: 1 − a"]):
        axes[r, 0].set_ylabel(text, fontsize=10)
    fig.colorbar(im, ax=axes[1:, :], shrink=0.9, label="1 − a  (how much the gate damps)")
    return save_figure(fig, out_dir, f"{NAME}/cbam_spatial.png",
                       "CBAM's spatial attention a = σ(conv7×7([mean_c; max_c])) for one held-out "
                       "digit per class, shown as 1 − a on a log scale (the digit's outline in "
                       "white): the trained gates stay almost open (a close to 1) and damp mostly "
                       "the background at the borders. Block 1 gates the 8×8 conv features, "
                       "block 2 the 4×4 ones after pooling.", "CBAM spatial attention maps",
                       caption_zh="CBAM 的空间注意力 a = σ(conv7×7([mean_c; max_c]))，每类取一个留出"
                                  "数字，以对数色标显示 1 − a（白线为数字轮廓）：训练后的门控几乎"
                                  "全开（a 接近 1），主要压低的是边缘的背景。block 1 门控 8×8 的卷积"
                                  "特征，block 2 门控池化之后 4×4 的特征。",
                       title_zh="CBAM 空间注意力图")


def se_figure(run: dict, test, entry: dict, out_dir: Path) -> Figure:
    import matplotlib.pyplot as plt
    blocks = run["weights"]
    fig, axes = plt.subplots(1, len(blocks), figsize=(13, 3.6), layout="constrained",
                             gridspec_kw={"width_ratios": [s.shape[1] for s in blocks]})
    for b, (ax, s) in enumerate(zip(axes, blocks)):
        means = class_means(s, test.labels)                              # (10, C)
        order = np.argsort(means.std(axis=0))                            # class-specific last
        im = ax.imshow(means[:, order], cmap="viridis", aspect="auto", vmin=0, vmax=1)
        ax.set_title(f"block {b + 1}: {s.shape[1]} channels, η² = "
                     f"{entry['se_class_specificity'][b]:.2f}", fontsize=10)
        ax.set_xlabel("channel (sorted by spread over classes)")
        ax.set_yticks(range(10))
    axes[0].set_ylabel("digit class")
    fig.colorbar(im, ax=axes, shrink=0.9, label="mean SE weight s")
    return save_figure(fig, out_dir, f"{NAME}/se_channels.png",
                       "Squeeze-and-Excitation weights averaged over the held-out images of each "
                       "class. η² is the share of the weights' variance explained by the class: "
                       "do classes use different channels?", "SE channel weights per class",
                       caption_zh="Squeeze-and-Excitation 权重在每个类别的留出图像上的平均值。η² 是"
                                  "权重方差中能由类别解释的比例：不同类别用的是不同的通道吗？",
                       title_zh="各类别的 SE 通道权重")


def distance_figure(metrics: dict, out_dir: Path) -> Figure:
    import matplotlib.pyplot as plt
    dist = np.array(metrics["vit"]["mean_attention_distance"])            # (L, H)
    cnn = metrics["cnn"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, layout="constrained")
    L, H = dist.shape
    for h in range(H):
        ax1.plot(np.arange(1, L + 1) + 0.06 * (h - (H - 1) / 2), dist[:, h], "o", ms=7,
                 label=f"head {h + 1}")
    ax1.plot(np.arange(1, L + 1), dist.mean(axis=1), "k-", lw=1, label="mean of heads")
    ax1.axhline(metrics["vit"]["uniform_attention_distance"], ls="--", c="gray")
    ax1.text(1.3, metrics["vit"]["uniform_attention_distance"] + 0.25, "uniform attention",
             color="gray", fontsize=9, va="bottom")
    ax1.set(xlabel="ViT layer", ylabel="distance (pixels)", xticks=range(1, L + 1),
            title="ViT: mean attention distance per head")
    ax1.legend(fontsize=8, loc="lower right")
    blocks = np.arange(1, len(cnn["receptive_field_px"]) + 1)
    ax2.plot(blocks, (np.array(cnn["receptive_field_px"]) - 1) / 2, "s-", c="tab:green",
             label="receptive field half-width (r − 1)/2")
    ax2.plot(blocks, cnn["effective_distance_px"], "D-", c="tab:purple",
             label="gradient-weighted mean distance")
    ax2.axhline(metrics["vit"]["uniform_attention_distance"], ls="--", c="gray")
    ax2.set(xlabel="CNN conv block", xticks=blocks,
            title="CNN: how far a unit sees (cumulative)")
    ax2.legend(fontsize=8, loc="upper left")
    ax2.set_ylim(0, 1.1 * max(dist.max(), (cnn["receptive_field_px"][-1] - 1) / 2))
    return save_figure(fig, out_dir, f"{NAME}/distance.png",
                       "Left: how far each ViT head looks, the attention-weighted mean distance "
                       "between query and key patches (ViT paper Fig. 7). Right: the plain CNN's "
                       "receptive field per block, and its effective (gradient-weighted) mean "
                       "distance. A conv layer sees one pixel step further; attention can reach "
                       "across the image from layer 1.", "Attention distance vs receptive field",
                       caption_zh="左：每个 ViT 头看多远，即查询图块与键图块之间按注意力加权的平均"
                                  "距离（ViT 论文图 7）。右：普通 CNN 每个卷积块的感受野，以及按梯度"
                                  "加权的有效平均距离。卷积层每层只多看一步像素；注意力从第 1 层起"
                                  "就能跨越整幅图像。",
                       title_zh="注意力距离与感受野")


def loss_figure(curves: dict, out_dir: Path) -> Figure:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    for name, losses in curves.items():
        ax.semilogy(np.convolve(losses, np.ones(25) / 25, mode="valid"), label=name)
    ax.set(xlabel="step", ylabel="cross-entropy (moving avg of 25)")
    ax.legend()
    return save_figure(fig, out_dir, f"{NAME}/loss.png",
                       "Training loss of the four models (same steps, batch and schedule).",
                       "Training curves",
                       caption_zh="四个模型的训练损失（训练步数、批大小和学习率调度都相同）。",
                       title_zh="训练曲线")
