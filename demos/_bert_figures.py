"""Figures of the bert_attention demo: where "it" attends (interactive views and per-head maps),
six explanation maps for "it", Clark-style head statistics, and an attention atlas."""
from __future__ import annotations

import numpy as np

from attention_np.models.minilm_explain import queries_keys
from attention_np.viz import align_queries_keys, attention_atlas, head_view_html, model_view_html
from demos._common import Figure, save_figure


def figure_it_attention(views: dict, out, name: str) -> list[Figure]:
    """Head and model views of each "it" sentence, and the per-layer / per-head attention of
    "it"; ``views[key]`` holds text, tokens, attn (L, H, T, T), rows (L, H, T), diff (L, H)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.5), constrained_layout=True,
                             gridspec_kw={"width_ratios": [1.3, 1]})
    figs = []
    for row, (key, v) in enumerate(views.items()):
        text, tokens = v["text"], v["tokens"]
        head_view_html(v["attn"], tokens, out / f"head_view_{key}.html",
                       title=f"MiniLM head view: {text}")
        model_view_html(v["attn"], tokens, out / f"model_view_{key}.html",
                        title=f"MiniLM model view: {text}")
        ax = axes[row, 0]
        im = ax.imshow(v["rows"].mean(axis=1), cmap="viridis", aspect="auto", vmin=0)
        ax.set_xticks(range(len(tokens)), tokens, rotation=60, fontsize=8)
        ax.set_ylabel("layer")
        ax.set_title(f'"{key}": attention of "it", mean over heads', fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax = axes[row, 1]
        im = ax.imshow(v["diff"], cmap="RdBu_r", vmin=-0.5, vmax=0.5, aspect="auto")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f'"{key}": a(it→animal) − a(it→street) per head', fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
        figs += [Figure(f"{name}/head_view_{key}.html", f"Head view of \"{text}\": hover "
                        "'it' to see its lines; toggle heads by clicking their colours.",
                        caption_zh=f"“{text}”的头视图：把鼠标悬停在“it”上可看到它的连线；点击"
                                   "各个头的色块可以显示或隐藏该头。"),
                 Figure(f"{name}/model_view_{key}.html",
                        f"Model view of \"{text}\": all 72 heads; click one to enlarge.",
                        caption_zh=f"“{text}”的模型视图：全部 72 个注意力头，点击其中一个可"
                                   "放大。")]
    figs.append(save_figure(fig, out.parent, f"{name}/it_attention.png",
                            "Left: where \"it\" attends in each layer (mean over the 12 heads). "
                            "Right: per head, weight on \"animal\" minus weight on \"street\" "
                            "(red: animal). Compare the two sentences head by head.",
                            "Where does \"it\" attend?",
                            caption_zh="左：每一层中“it”关注哪里（12 个头的平均）。右：每个头给"
                                       "“animal”的权重减去给“street”的权重（红色：偏向 animal）。"
                                       "请逐个头对比两个句子。",
                            title_zh="“it”关注哪里？"))
    return figs


def figure_explanations(explained: dict, out, name: str) -> Figure:
    """``explained[key]`` = (tokens, {map name: (T,) row of "it"}, title)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(11, 9), constrained_layout=True)
    for ax, (tokens, rows, title) in zip(axes, explained.values()):
        it = tokens.index("it")
        words = np.array([t not in ("[CLS]", "[SEP]") for t in tokens])
        words[it] = False        # the token's own entry dominates rollout and relevance
        grid = np.stack([r / max(r[words].max(), 1e-12) for r in rows.values()])  # (6, T)
        grid[:-1, it] = np.nan   # every row but saliency is the row of "it" of a (T, T) map
        ax.imshow(np.ma.masked_invalid(grid), cmap="magma", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
        ax.set_xticks(range(len(tokens)), tokens, rotation=45, fontsize=9)
        ax.set_title(title, fontsize=9)
    return save_figure(fig, out.parent, f"{name}/explanations.png",
                       "Six answers to \"what does 'it' draw on?\", each row scaled so its "
                       "largest word entry is 1 ([CLS]/[SEP] may saturate; negative "
                       "gradient × attention shows as 0; the self-entry of 'it' is hidden in "
                       "the first five rows). Raw attention sees one layer; rollout multiplies "
                       "all layers' head-averaged maps, flow takes the max-flow through them; "
                       "gradient × attention and the relevance weight edges by the gradient "
                       "of the similarity to a target that names neither the animal nor the "
                       "street; saliency is per input token. Whether such maps are faithful "
                       "is measured in faithfulness.png.",
                       "Raw attention vs rollout vs flow vs gradient-based maps",
                       caption_zh="对“‘it’依赖哪些词？”的六种回答，每一行都按它在普通词上的最大值"
                                  "缩放为 1（[CLS]/[SEP] 可能因此饱和；为负的梯度 × 注意力显示为 0；"
                                  "前五行隐藏了“it”对自身的那一项）。原始注意力（raw attention）只看"
                                  "一层；注意力展开（rollout）把各层按头平均后的注意力图连乘起来，"
                                  "注意力流（flow）则取穿过这些层的最大流；梯度 × 注意力（gradient × "
                                  "attention）与相关性（relevance）用梯度给各条边加权，这个梯度来自"
                                  "与一个目标句的相似度，而目标句既不提 animal 也不提 street；显著性"
                                  "（saliency）则是逐个输入词元给出的。这些图是否忠实，在 "
                                  "faithfulness.png 中度量。",
                       title_zh="原始注意力、注意力展开、注意力流与基于梯度的解释图对比")


def figure_corpus_stats(stats: dict, n_sentences: int, out, name: str) -> Figure:
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for ax, (stat, values) in zip(axes.ravel(), stats.items()):
        vmax = None if stat.startswith("entropy") else 1.0
        im = ax.imshow(values, cmap="magma", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(stat, fontsize=10)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"MiniLM heads over {n_sentences} sentences (Clark et al. 2019): "
                 "share of attention to fixed targets, and row entropy")
    return save_figure(fig, out.parent, f"{name}/head_stats.png",
                       "Per head (rows: layers, columns: heads), averaged over every "
                       "query token of the corpus: how much attention goes to [CLS], "
                       "[SEP], punctuation, the previous and the next token, and the mean "
                       "row entropy (low = focused).", "Clark-style head summary",
                       caption_zh="逐个注意力头统计（行：层，列：头），并对语料中的每个查询词元取平均："
                                  "有多少注意力流向 [CLS]、[SEP]、标点、前一个词元和后一个词元，以及"
                                  "注意力行的平均熵（越低越集中）。",
                       title_zh="Clark 式注意力头汇总")


def figure_atlas(model, batch, stats: dict, punctuation, out, name: str) -> Figure:
    """Queries and keys of two heads over the corpus, projected with PCA."""
    import matplotlib.pyplot as plt
    _, _, tokens, cache = batch
    flat = [(b, t) for b, toks in enumerate(tokens) for t in range(len(toks))]
    kinds_of = {"[CLS]": "[CLS]", "[SEP]": "[SEP]"}
    labels = [kinds_of.get(tokens[b][t], "punct" if tokens[b][t] in punctuation else "word")
              for b, t in flat]
    picks = {"previous-token head": np.unravel_index(stats["→ previous token"].argmax(),
                                                     stats["→ previous token"].shape),
             "[CLS] head": np.unravel_index(stats["→ [CLS]"].argmax(), stats["→ [CLS]"].shape)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    for ax, (head_name, (l, h)) in zip(axes, picks.items()):
        q, k = queries_keys(model, cache, int(l))                           # (B, H, T, Dh)
        qs, ks = align_queries_keys(np.stack([q[b, h, t] for b, t in flat]),
                                    np.stack([k[b, h, t] for b, t in flat]))
        if head_name.startswith("previous"):   # colour a positional head by position
            colours = [f"pos {t // 3 * 3}–{t // 3 * 3 + 2}" if t < 12 else "pos ≥ 12"
                       for _, t in flat]
        else:
            colours = labels
        attention_atlas(np.concatenate([qs, ks]), colours * 2,
                        kinds=["query"] * len(qs) + ["key"] * len(ks), ax=ax,
                        title=f"{head_name}: layer {l}, head {h}")
    return save_figure(fig, out.parent, f"{name}/atlas.png",
                       "Attention atlas: query (o) and key (^) vectors of every corpus token "
                       "for the strongest previous-token head (coloured by position) and the "
                       "strongest [CLS] head (coloured by token kind), after AttentionViz's "
                       "query/key alignment, projected by PCA. Left: queries sit next to the "
                       "keys one position back, around a ring ordered by position. Right: "
                       "the one [CLS] key (blue triangle) lies inside the cloud of queries, "
                       "so every query scores it high.", "Attention atlas",
                       caption_zh="注意力图集（attention atlas）：取最强的前一词元头（按位置着色）和"
                                  "最强的 [CLS] 头（按词元类别着色），画出语料中每个词元的查询向量"
                                  "（o）和键向量（^），先按 AttentionViz 的方法对齐查询与键，再用 "
                                  "PCA 投影。左：每个查询都紧挨着前一个位置的键，沿一个按位置排列的"
                                  "环分布。右：[CLS] 的键（蓝色三角形）落在查询点云之中，所以每个"
                                  "查询给它的得分都很高。",
                       title_zh="注意力图集")
