"""Figures of the date-translation demo: accuracy per model and input length, alignment heatmaps
(source characters × output characters), the Transformer's cross-attention per head and a GIF
of one decode."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.apps.seq2seq.model import forward, shift_right
from attention_np.apps.seq2seq.search import translate_greedy
from attention_np.apps.seq2seq.train import crop
from attention_np.viz import animate_decoding, plot_alignment
from demos import _dates_data as data
from demos._common import Figure, save_figure


def source_tokens(text: str) -> list[str]:
    return ["␣" if c == " " else c for c in text]


def target_tokens(ids) -> list[str]:
    return [data.TGT_VOCAB[i] for i in ids]


def pick_examples(test, n: int = 3) -> list[int]:
    """A long sentence with a spelled-out date, a numeric date, and a month-name date."""
    def first(pred):
        return next(i for i, s in enumerate(test.sources) if pred(s))
    return [first(lambda s: len(s) > 45 and "of" in s and any(w in s for w in ("two", "nine"))),
            first(lambda s: 10 <= len(s) <= 22 and sum(c.isdigit() for c in s) >= 6),
            first(lambda s: 20 <= len(s) <= 40 and any(m in s.lower() for m in data.MONTHS))][:n]


def _final_and_by_length(a1, a2, metrics, bins, colours, budget) -> None:
    """Held-out exact match per model (bars) and against input length (lines)."""
    names = list(metrics)
    a1.barh(names, [metrics[m]["exact_match"] for m in names],
            color=[colours[m] for m in names])
    for y, m in enumerate(names):
        a1.text(metrics[m]["exact_match"], y, f" {metrics[m]['exact_match']:.3f} "
                f"({metrics[m]['train_steps']} steps)", va="center", fontsize=9)
    a1.set_xlim(0, 1.35)
    a1.invert_yaxis()
    a1.set_xlabel(f"held-out exact match (greedy), budget {budget} steps each")
    centres = [(lo + hi) / 2 for lo, hi in bins]
    for m in names:
        acc = [np.nan if a is None else a for a in metrics[m]["exact_match_by_length"]]
        a2.plot(centres, acc, "o-", label=m, color=colours[m], lw=2.5 if m == "none" else 1.5)
    a2.set_xticks(centres, [f"{lo}–{hi}" for lo, hi in bins])
    a2.set_xlabel("input length (characters)")
    a2.set_ylabel("held-out exact match")
    a2.set_ylim(0, 1.02)
    a2.set_title("against input length (the model kept)", fontsize=10)
    a2.legend(fontsize=8, loc="lower left")


def _against_steps(a3, a4, metrics, colours, budget) -> None:
    """Held-out exact match (sample efficiency) and validation exact match against steps."""
    for m in metrics:
        c = metrics[m]["test_exact_match_by_step"]
        a3.plot(c["step"], c["exact_match"], "o-", ms=3, color=colours[m], label=m,
                lw=2.5 if m == "none" else 1.5)
        a3.plot(metrics[m]["train_steps"], metrics[m]["exact_match"], "*", ms=11,
                color=colours[m])                         # the kept (best) parameters
        h = metrics[m]["history"]
        a4.plot(h["step"], h["val_exact"], color=colours[m], label=m)
    a3.set_ylabel("held-out exact match")
    a3.set_title("sample efficiency (★: the model kept, at the step training ended)",
                 fontsize=10)
    a4.set_ylabel("validation exact match (training formats)")
    for ax in (a3, a4):
        ax.set_xlabel("training step (batch 64)")
        ax.set_xlim(0, budget * 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    a3.legend(fontsize=8, loc="lower right")


def accuracy_figure(out_dir, name, metrics, bins) -> Figure:
    import matplotlib.pyplot as plt
    fig, ((a1, a2), (a3, a4)) = plt.subplots(2, 2, figsize=(13, 8.5), layout="constrained")
    colours = {m: f"C{i}" for i, m in enumerate(metrics)}
    budget = max(m["step_budget"] for m in metrics.values())
    _final_and_by_length(a1, a2, metrics, bins, colours, budget)
    _against_steps(a3, a4, metrics, colours, budget)
    return save_figure(fig, out_dir, f"{name}/accuracy.png",
                       "Every model trained for the same step budget (early stopping may end "
                       "a run sooner). Top: held-out exact match per model and against input "
                       "length. Bottom left: held-out exact match against training steps "
                       "(sample efficiency); bottom right: the validation score that early "
                       "stopping watches.", "Accuracy",
                       caption_zh="所有模型的训练步数相同（早停可能让某次训练提前结束）。上排：各模型"
                                  "在留出测试集上的完全匹配率，以及它随输入长度的变化。左下：留出集"
                                  "完全匹配率随训练步数的变化（样本效率）；右下：早停所依据的验证集"
                                  "得分。",
                       title_zh="准确率")


def alignment_figure(out_dir, name, model, cfg, params, test, rows) -> Figure:
    import matplotlib.pyplot as plt
    src, mask = crop(test.src, test.src_len, np.array(rows))
    tokens, weights = translate_greedy(params, cfg, src, mask)
    fig, axes = plt.subplots(1, len(rows), figsize=(7 * len(rows), 4.2), layout="constrained",
                             squeeze=False)
    for ax, r, tok, w in zip(axes[0], rows, tokens, weights):
        L = int(test.src_len[r])
        plot_alignment(w[:, :L], source_tokens(test.sources[r]), target_tokens(tok), ax=ax,
                       title=f"{model}: {data.decode_target(tok)}")
    return save_figure(fig, out_dir, f"{name}/alignment_{model}.png",
                       f"{model}: attention weights of each generated character (rows) over the "
                       "source characters (columns), greedy decoding on held-out inputs.",
                       f"Alignment — {model}",
                       caption_zh=f"{model}：在留出输入上贪心解码时，每个生成字符（行）对各个源"
                                  "字符（列）的注意力权重。",
                       title_zh=f"对齐：{model}")


def transformer_heads_figure(out_dir, name, cfg, params, test, row) -> Figure:
    import matplotlib.pyplot as plt
    src, mask = crop(test.src, test.src_len, np.array([row]))
    tokens, _ = translate_greedy(params, cfg, src, mask)
    _, _, cache = forward(params, cfg, src, mask, shift_right(cfg, tokens))
    cross = cache["cross"][-1][0]                                       # (H, T, Tk), last layer
    cols = 2
    fig, axes = plt.subplots(-(-cfg.heads // cols), cols, figsize=(14, 3.6 * cfg.heads / cols),
                             layout="constrained", squeeze=False)
    for h, ax in enumerate(axes.flat):
        plot_alignment(cross[h], source_tokens(test.sources[row]), target_tokens(tokens[0]),
                       ax=ax, title=f"head {h}")
    return save_figure(fig, out_dir, f"{name}/transformer_cross_attention.png",
                       "Transformer cross-attention of the last decoder layer, one panel per "
                       "head: rows are generated characters, columns source characters.",
                       "Transformer cross-attention per head",
                       caption_zh="Transformer 解码器最后一层的交叉注意力，每个头一幅子图：行是生成"
                                  "的字符，列是源字符。",
                       title_zh="Transformer 各头的交叉注意力")


def decode_gif(out_dir, name, cfg, params, test, row) -> Figure:
    src, mask = crop(test.src, test.src_len, np.array([row]))
    tokens, weights = translate_greedy(params, cfg, src, mask)
    path = Path(out_dir) / name / "decode_bahdanau.gif"
    animate_decoding(weights[0], path, source_tokens=source_tokens(test.sources[row]),
                     target_tokens=target_tokens(tokens[0]), fps=2.0)
    return Figure(f"{name}/decode_bahdanau.gif",
                  "One Bahdanau decode, step by step: each new output character and where it "
                  "looked in the source.", "Decoding, animated",
                  caption_zh="逐步展示 Bahdanau 模型的一次解码：每一步新写出的字符，以及它在源"
                             "序列中看向了哪里。",
                  title_zh="解码过程动画")


def make_all(out_dir, name, models, metrics, test, bins) -> list[Figure]:
    rows = pick_examples(test)
    figs = [accuracy_figure(out_dir, name, metrics, bins)]
    for model, (cfg, params) in models.items():
        if model != "none":
            figs.append(alignment_figure(out_dir, name, model, cfg, params, test, rows))
    if "transformer" in models:
        figs.append(transformer_heads_figure(out_dir, name, *models["transformer"], test, rows[0]))
    if "bahdanau" in models:
        figs.append(decode_gif(out_dir, name, *models["bahdanau"], test, rows[0]))
    return figs
