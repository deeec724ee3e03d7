"""Figures of the visual-question demo: where the attention looks for several questions about
one strip, and accuracy by question family for the three models."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.apps.vqa import predict
from demos._common import Figure, save_figure
from demos._vqa_data import ANSWERS, FAMILIES, question_text, with_question

NAME = "visual_question"


def questions_for(digits: np.ndarray) -> list[tuple[str, int | None]]:
    """Several questions that make sense for a strip with these digits (left to right)."""
    digits = [int(d) for d in digits if d >= 0]
    once = [d for d in digits[1:] if digits.count(d) == 1]
    qs = [("left_of", d) for d in once[:2]]
    if digits.count(max(digits)) == 1:
        qs.append(("largest", None))
    qs.append(("is_there", digits[0]))
    qs.append(("how_many", digits[-1]))
    return qs


def pick_strip(test, rng_seed: int = 0) -> int:
    """A test strip of 5 distinct digits (the most questions to ask of one image)."""
    rng = np.random.default_rng(rng_seed)
    fives = [i for i in range(len(test)) if (test.digits[i] >= 0).sum() == 5
             and len(set(test.digits[i].tolist())) == 5]
    return int(rng.choice(fives)) if fives else 0


def ask(cfg, params, feats_one, questions) -> list[tuple[str, str, np.ndarray]]:
    """(question, answer, last hop's attention (L,)) for each (family, digit)."""
    out = []
    for family, d in questions:
        ids, length = with_question(None, 0, family, d)
        answer, weights = predict(params, cfg, feats_one[None], ids, length)
        out.append((question_text(family, d), ANSWERS[int(answer[0])], weights[0, -1]))
    return out


def strip_figure(image: np.ndarray, asked: list, out: Path, relpath: str,
                 digits=None) -> Figure:
    """The strip on top; below it one row per question: the attention over the 16 columns,
    drawn to the strip's scale, with the model's answer."""
    import matplotlib.pyplot as plt
    H, W = image.shape
    n = len(asked)
    fig, axes = plt.subplots(n + 1, 1, figsize=(7.5, 1.2 + 0.75 * n), layout="constrained",
                             gridspec_kw={"height_ratios": [2.2] + [1] * n})
    axes[0].imshow(image, cmap="gray_r", extent=(0, W, H, 0), aspect="auto")
    axes[0].set_title("one test strip" + (f" (digits {' '.join(str(d) for d in digits)})"
                                          if digits is not None else ""))
    vmax = max(float(alpha.max()) for _, _, alpha in asked)       # one colour scale for all rows
    for ax, (question, answer, alpha) in zip(axes[1:], asked):
        L = len(alpha)
        ax.imshow(alpha[None], cmap="magma", vmin=0, vmax=vmax, extent=(0, W, 1, 0),
                  aspect="auto")
        ax.set_ylabel(f"{question}\n→ {answer}", rotation=0, ha="right", va="center",
                      fontsize=8)
        ax.set_xticks(np.arange(L + 1) * W / L, minor=True)
        ax.tick_params(which="minor", length=2)
    for ax in axes:
        ax.set_yticks([])
        ax.set_xticks([])
    return save_figure(fig, out, relpath,
                       "Several questions asked of the same test strip. Each row below the "
                       "strip is where the attention looks over the strip's 16 columns (bright = "
                       f"more weight; the brightest colour is {vmax:.2f}), drawn to the strip's "
                       "scale; on its left, the question and the answer the model gave. The "
                       "image is the same for every row: only the question changed.",
                       "Where each question looks",
                       caption_zh="对同一条测试条带提出的几个问题。条带下方每一行是注意力在条带 "
                                  f"16 列上的分布（越亮权重越大，最亮处为 {vmax:.2f}），按条带的"
                                  "比例画出；左侧写着问题和模型给出的答案。每一行的图像都相同，"
                                  "变的只是问题。",
                       title_zh="每个问题看向哪里")


def family_figure(metrics: dict, out: Path) -> Figure:
    """Test accuracy by question family, three models side by side."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    names = ("question_only", "mean_pool", "attention")
    x = np.arange(len(FAMILIES))
    for i, name in enumerate(names):
        acc = metrics[name]["test_accuracy_by_family"]
        ax.bar(x + (i - 1) * 0.27, [acc[f] for f in FAMILIES], 0.27, label=name)
    ax.set_xticks(x, [f.replace("_", " ") for f in FAMILIES])
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy (held-out combinations)")
    ax.legend(loc="upper left", fontsize=8)
    steps = metrics["attention"]["train_steps"]
    return save_figure(fig, out, f"{NAME}/by_family.png",
                       f"Test accuracy by kind of question, {steps} training steps per model. "
                       "The question alone knows the kind of answer and nothing else. The mean "
                       "of the regions and the attention both read the strip: compare them kind "
                       "by kind — attention picks one region for the question, the mean keeps "
                       "how many of a digit there are.",
                       "Accuracy by question",
                       caption_zh=f"按问题类型统计的测试准确率，每个模型训练 {steps} 步。只看问题"
                                  "的模型只知道答案属于哪一类，别的一概不知。区域平均和注意力都读"
                                  "了条带：请逐类比较——注意力为问题挑出一个区域，平均则保留了某个"
                                  "数字出现了几次。",
                       title_zh="各类问题的准确率")


def losses_figure(kept: dict, out: Path) -> Figure:
    """Training loss of the three models (running mean over 100 steps)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    for name in ("question_only", "mean_pool", "attention"):
        losses = np.asarray(kept[name][2])
        k = min(100, len(losses))
        ax.plot(np.arange(k - 1, len(losses)), np.convolve(losses, np.ones(k) / k, "valid"),
                label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy (running mean)")
    ax.set_ylim(bottom=0)
    ax.legend()
    return save_figure(fig, out, f"{NAME}/training.png",
                       "Training loss of the three models on the same questions and the same "
                       "CNN columns. The question-only model stops at what the question alone "
                       "can tell.",
                       "Training loss",
                       caption_zh="三个模型在相同问题、相同 CNN 列特征上的训练损失。只看问题的"
                                  "模型停在仅凭问题所能知道的水平。",
                       title_zh="训练损失")


def all_figures(kept: dict, metrics: dict, out: Path) -> list[Figure]:
    test, feats = kept["test"], kept["test_feats"]
    cfg, params, _ = kept["models"]["attention"]
    i = pick_strip(test)
    asked = ask(cfg, params, feats[i], questions_for(test.digits[i]))
    digits = [int(d) for d in test.digits[i] if d >= 0]
    return [strip_figure(test.images[i], asked, out, f"{NAME}/questions.png", digits),
            family_figure(metrics, out),
            losses_figure(kept["models"], out)]
