"""The article, worked: every formula of §4 with real numbers, printed as tables and drawn.

§4.1.3 soft attention on three encoder states; the four score functions on the same inputs;
hard attention sampled and its REINFORCE gradient; self-attention step by step on a sentence;
multi-head attention with each head's weights, as figures and as interactive HTML views.
"""
from __future__ import annotations

import numpy as np

import attention_np as an
from attention_np import viz
from demos import _formulas_sentence as sentence
from demos._common import Figure, demo_dir, demo_main, save_figure, write_json
from demos._progress import say

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "把原文算一遍：§4 的每个公式都代入真实数值，打印成表格，也画成图。内容包括：§4.1.3 "
    "中作用于三个编码器状态的软注意力（soft attention）；"
    "同一组输入上的四种打分函数（score function）；硬注意力（hard attention）的采样及其 "
    "REINFORCE 梯度；在一个句子上逐步计算的自注意力（self-attention）；"
    "以及多头注意力（multi-head attention）中每个头的注意力权重（attention weights），"
    "既画成静态图，也做成可交互的 HTML 视图。"
)

NAME = "formulas"


def table(title: str, rows: dict, cols: list[str]) -> str:
    """A small fixed-width table: one row per key of ``rows``, values printed to 3 decimals."""
    width = max(10, *(len(c) + 2 for c in cols))
    lines = [title, " " * 20 + "".join(f"{c:>{width}}" for c in cols)]
    for name, values in rows.items():
        lines.append(f"{name:<20}" + "".join(f"{v:>{width}.3f}" for v in np.ravel(values)))
    return "\n".join(lines)


def soft_attention_example(rng):
    """§4.1.3: h = [h_1, h_2, h_3], s_t → e_t = [s_tᵀh_j], α_t = softmax(e_t), c_t = α_t · h."""
    h = rng.standard_normal((1, 3, 4)).round(1)                       # (B=1, Tk=3, D=4)
    s_t = rng.standard_normal((1, 1, 4)).round(1)                     # (B=1, Tq=1, D=4)
    e_t, _ = an.dot_score_forward(s_t, h)                             # (1, 1, 3)
    c_t, alpha_t, _ = an.soft_attention_forward(e_t, h)               # (1, 1, 4), (1, 1, 3)
    say(table("§4.1.3 soft attention: e_t = s_tᵀh_j, α_t = softmax(e_t)",
                {"e_t": e_t, "α_t": alpha_t}, ["h_1", "h_2", "h_3"]))
    say(table("c_t = Σ_j α_tj h_j", {"c_t": c_t}, [f"dim {i}" for i in range(4)]))
    return {"h": h[0], "s_t": s_t[0, 0], "e_t": e_t[0, 0], "alpha_t": alpha_t[0, 0], "c_t": c_t[0, 0]}


def all_scores(ex, rng):
    """The four score functions on the same s_t and h; α for each."""
    q, k = ex["s_t"][None, None], ex["h"][None]
    D, A = q.shape[-1], 5
    scores = {
        "dot  s·h": an.dot_score_forward(q, k)[0],
        "scaled  s·h/√D": an.scaled_dot_score_forward(q, k)[0],
        "general  sᵀWh": an.general_score_forward(q, k, rng.standard_normal((D, D)) * 0.5)[0],
        "additive  vᵀtanh": an.additive_score_forward(
            q, k, rng.standard_normal((D, A)), rng.standard_normal((D, A)),
            rng.standard_normal(A))[0],
    }
    alphas = {n: an.softmax_forward(e)[0][0, 0] for n, e in scores.items()}
    say(table("score functions e(s_t, h_j)", {n: e for n, e in scores.items()}, ["h_1", "h_2", "h_3"]))
    say(table("their weights α = softmax(e)", alphas, ["h_1", "h_2", "h_3"]))
    return {n: e[0, 0] for n, e in scores.items()}, alphas


def hard_attention_example(e_t, h, rng, n: int = 2000):
    """Sample j* ~ α = softmax(e_t) many times: the frequencies approach α; the REINFORCE
    estimate averages to the exact gradient of −E[r]."""
    e, h = e_t[None, None], h[None]                                    # (1, 1, 3), (1, 3, 4)
    reward = np.array([1.0, 0.0, 0.5])                                 # r(j) for each location
    counts, grad = np.zeros(3), np.zeros(3)
    for _ in range(n):
        _, index, alpha, cache = an.hard_attention_forward(e, h, rng)
        j = index[0, 0]
        counts[j] += 1
        grad += an.hard_attention_backward(np.zeros((1, 1, 4)), cache, reward[j])[0][0, 0]
    alpha = alpha[0, 0]
    exact = -alpha * (reward - alpha @ reward)                         # ∇_e of −Σ α_j r_j
    say(table(f"hard attention, {n} samples", {"α": alpha, "sample freq.": counts / n,
                "REINFORCE mean": grad / n, "exact ∇(−E r)": exact}, ["h_1", "h_2", "h_3"]))
    return alpha, counts / n, grad / n, exact


def self_attention_example():
    """§4.2: q_i = x_i W_q, k_j = x_j W_k, e_ij = q_i·k_j/√d_k, z_i = Σ_j α_ij v_j — then §4.3."""
    tokens = sentence.TOKENS
    x = sentence.embed(tokens)[None]                                   # (1, T, 16)
    params = sentence.hand_built_params()
    out, weights, _ = an.multi_head_attention_forward(x, x, params, sentence.N_HEADS)
    it, animal = tokens.index("it"), tokens.index("animal")
    say(f"self-attention: α('it' → 'animal') in the coreference head = {weights[0, 0, it, animal]:.3f}")
    prev = [weights[0, 1, i, i - 1] for i in range(1, len(tokens))]
    say(f"previous-token head: mean α(i → i−1) = {np.mean(prev):.3f}")
    return tokens, x[0], params, weights[0], out[0]


def draw_soft(ex, scores, alphas, out):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True)
    labels = ["h_1", "h_2", "h_3"]
    axes[0].bar(labels, ex["e_t"], color="tab:gray")
    axes[0].set_title("scores e_t = s_tᵀ h_j")
    axes[1].bar(labels, ex["alpha_t"], color="tab:blue")
    axes[1].set_ylim(0, 1)
    axes[1].set_title("weights α_t = softmax(e_t)")
    parts = ex["alpha_t"][:, None] * ex["h"]                            # α_j h_j, (3, 4)
    dims = np.arange(parts.shape[1])
    for j, part in enumerate(parts):
        axes[2].bar(dims + (j - 1) * 0.25, part, 0.25, label=f"α_{j + 1} h_{j + 1}")
    axes[2].plot(dims, ex["c_t"], "k_", markersize=30, mew=2.5, label="c_t = their sum")
    axes[2].axhline(0, color="gray", lw=0.5)
    axes[2].set_xticks(dims, [f"dim {d}" for d in dims])
    axes[2].set_title("context c_t = Σ α_j h_j (per dim)")
    axes[2].legend(fontsize=7)
    figs = [save_figure(fig, out, f"{NAME}/soft_attention.png",
                        "§4.1.3 with numbers: the largest score gets most weight, and the context "
                        "c_t (black bars) is the α-weighted sum of the three encoder states.",
                        "Soft attention, one decoder step", svg=True,
                        caption_zh="§4.1.3 代入具体数值：得分最高的位置分到的权重最大；上下文向量 "
                                   "c_t（黑色短横）就是三个编码器状态按 α 加权求和的结果。",
                        title_zh="软注意力：解码器的一步")]
    w = np.stack(list(alphas.values()))                                # (4 score fns, 3)
    fig = viz.plot_heatmap(w, list(alphas), labels, title="α under each score function")
    fig.axes[0].set_ylabel("score function")
    fig.axes[0].set_xlabel("encoder state")
    figs.append(save_figure(fig, out, f"{NAME}/score_functions.png",
                            "Same s_t and h, four score functions: dot and scaled dot rank the "
                            "states alike (scaling only softens α); general and additive have "
                            "their own (here random) parameters and can prefer other states.",
                            "Score functions compared",
                            caption_zh="同一组 s_t 和 h，四种打分函数：dot 与 scaled dot 对各状态的"
                                       "排序相同（缩放只会让 α 更平缓）；general 与 additive 带有各自"
                                       "的参数（这里是随机取的），可能偏向其他状态。",
                            title_zh="打分函数对比"))
    return figs


def draw_hard(alpha, freq, reinforce, exact, out):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    x = np.arange(3)
    axes[0].bar(x - 0.2, alpha, 0.4, label="α")
    axes[0].bar(x + 0.2, freq, 0.4, label="sampled frequency")
    axes[0].set_title("hard attention samples one h_j ~ α")
    axes[1].bar(x - 0.2, exact, 0.4, label="exact ∇_e(−E[r])")
    axes[1].bar(x + 0.2, reinforce, 0.4, label="REINFORCE mean")
    axes[1].set_title("REINFORCE gradient is unbiased")
    for ax in axes:
        ax.set_xticks(x, ["h_1", "h_2", "h_3"])
        ax.legend(fontsize=8)
    return [save_figure(fig, out, f"{NAME}/hard_attention.png",
                        "Left: sample frequencies match α. Right: averaged over samples, the "
                        "score-function (REINFORCE) estimate matches the exact gradient of the "
                        "expected loss, with reward r = (1, 0, 0.5).", "Hard attention",
                        caption_zh="左：采样频率与 α 一致。右：对样本取平均后，REINFORCE（即得分函数"
                                   "估计量）给出的估计与期望损失的精确梯度一致；奖励 r = (1, 0, 0.5)。",
                        title_zh="硬注意力")]


def draw_self_attention(tokens, weights, out):
    figs = [save_figure(viz.plot_heads(weights, tokens), out, f"{NAME}/multi_head.png",
                        "Two hand-built heads on one sentence. Head 0 (coreference): 'it' puts "
                        "almost all its weight on 'animal'; other rows have a zero query and "
                        "spread evenly. Head 1 (previous token): each row's peak is one step left "
                        "of the diagonal; the first token has no predecessor and lands on "
                        "'street', where the fastest sinusoid (period 2π ≈ 6 steps) wraps round.", "Multi-head self-attention",
                        caption_zh="同一个句子上的两个手工构造的注意力头。head 0（指代）：“it”几乎把全部"
                                   "权重都给了“animal”；其余各行的查询为零，权重均匀摊开。head 1（前一"
                                   "词元）：每一行的峰值都在对角线左边一格；第一个词元没有前驱，权重落在"
                                   "“street”上——频率最高的正弦分量（周期 2π ≈ 6 步）在那里转回了起点。",
                        title_zh="多头自注意力")]
    figs.append(save_figure(viz.plot_head_stats(weights[None], tokens), out,
                            f"{NAME}/head_stats.png",
                            "Per-head numbers: the previous-token head has a high 'previous' "
                            "share and low entropy; the coreference head is near-uniform except "
                            "for 'it', so its entropy is high.", "Head statistics",
                            caption_zh="各注意力头的统计量：前一词元头（head 1）在“→ previous”一格"
                                       "上占比高、熵低；指代头（head 0）除“it”一行外几乎是均匀"
                                       "分布，所以熵很高。",
                            title_zh="注意力头统计"))
    viz.head_view_html(weights[None], tokens, out / NAME / "head_view.html")
    viz.model_view_html(weights[None], tokens, out / NAME / "model_view.html")
    figs.append(Figure(f"{NAME}/head_view.html", "Offline BertViz-style head view of the two "
                       "heads: hover 'it' to see its line to 'animal'.", "Head view (HTML)",
                       caption_zh="两个注意力头的离线头视图（head view，仿 BertViz）：把鼠标悬停在"
                                  "“it”上，就能看到它连向“animal”的线。",
                       title_zh="头视图（HTML）"))
    figs.append(Figure(f"{NAME}/model_view.html", "Model view: every head's map; click to enlarge.",
                       "Model view (HTML)", caption_zh="模型视图（model view）：每个注意力头的"
                       "注意力图，点击可放大。", title_zh="模型视图（HTML）"))
    return figs


def run(out_dir, full: bool = False, seed: int = 0) -> list[Figure]:
    """``seed`` draws the §4.1.3 example's random vectors and the hard-attention samples; the
    hand-built heads of §4.3 do not depend on it."""
    rng = np.random.default_rng(seed)
    out = demo_dir(out_dir, NAME).parent
    ex = soft_attention_example(rng)
    scores, alphas = all_scores(ex, rng)
    # the scaled scores give a softer α, so every location gets sampled
    hard = hard_attention_example(scores["scaled  s·h/√D"], ex["h"], rng, n=20000 if full else 4000)
    tokens, _, _, weights, _ = self_attention_example()
    figures = draw_soft(ex, scores, alphas, out) + draw_hard(*hard, out)
    figures += draw_self_attention(tokens, weights, out)
    it, animal = tokens.index("it"), tokens.index("animal")
    write_json(out / NAME / "metrics.json", {
        "coreference_it_animal": float(weights[0, it, animal]),
        "previous_token_mean": float(np.mean([weights[1, i, i - 1]
                                              for i in range(1, len(tokens))])),
        "soft": ex, "scores": scores, "alphas": alphas,
        "hard": dict(zip(["alpha", "frequency", "reinforce_mean", "exact_gradient"], hard)),
        "self_attention": {"tokens": tokens, "weights": weights}, "seed": seed})
    return figures


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
