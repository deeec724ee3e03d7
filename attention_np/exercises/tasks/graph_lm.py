"""The applications' exercises: GAT's softmax over an edge list, forward and backward (knowledge
graphs), and, for the decoder-only language model, one decoding step with a KV cache and the two
scores that find induction circuits in attention weights (induction heads)."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import dims, label, randn, shape_text, upcast
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.graph import edge_softmax_backward, edge_softmax_forward
from attention_np.lm.circuits import induction_scores, previous_token_scores
from attention_np.lm.generate import cached_attention

DTYPES = (np.float64, np.float32, np.float64, np.float32)


# --- GAT's edge softmax -------------------------------------------------------------------------

def _random_edges(rng, N: int) -> np.ndarray:
    """A shuffled duplicate-free (2, E) edge list over N nodes: self-loops allowed, one node
    (at least) with no incoming edge, every other node with one or more."""
    adj = rng.random((N, N)) < 0.5
    adj[np.arange(N), rng.integers(0, N, N)] = True
    adj[rng.integers(0, N)] = False
    edges = np.argwhere(adj).T
    return edges[:, rng.permutation(edges.shape[1])]


def _grouped_softmax(scores, index, n):
    """softmax of scores (H, E) over the edges sharing index (E,), in float64."""
    s = scores.astype(np.float64)
    m = np.full((s.shape[0], n), -np.inf)
    for h in range(s.shape[0]):
        np.maximum.at(m[h], index, s[h])
    ex = np.exp(s - m[:, index])
    total = np.zeros((s.shape[0], n))
    for h in range(s.shape[0]):
        np.add.at(total[h], index, ex[h])
    return ex / total[:, index]


def _edge_forward_mistakes(scores, edges, n):
    dtype = scores.dtype
    ex = np.exp(scores.astype(np.float64) - scores.max(axis=1, keepdims=True))
    return [(say("normalises over the edges out of node j (edges[1]): GAT's α_ij sums to 1 over "
                 "the neighbours j of the attending node i = edges[0]",
                 "按节点 j（edges[1]）发出的边做了归一化：GAT 的 α_ij 是对关注者 i = edges[0] "
                 "的所有邻居 j 求和为 1"),
             {"alpha": _grouped_softmax(scores, edges[1], n).astype(dtype)}),
            (say("is one softmax over all the edges of a head: each attending node i = edges[0] "
                 "needs its own softmax over its incoming edges",
                 "是对一个头的所有边做的一次 softmax：每个关注者 i = edges[0] 都要在自己的入边上"
                 "单独做 softmax"), {"alpha": (ex / ex.sum(axis=1, keepdims=True)).astype(dtype)})]


def _edge_forward_cases(rng):
    cases = []
    for i, dtype in enumerate(DTYPES):
        N, H = (int(x) for x in dims(rng, 2, 3, 8))
        edges = _random_edges(rng, N)
        scores = randn(rng, (H, edges.shape[1]), dtype, 2.0)
        if i == 3:
            scores = scores + np.asarray(120.0, dtype)        # exp(120) overflows float32
        alpha, _ = edge_softmax_forward(scores, edges, N)
        hint = say("subtract each node's largest score before exp (m_i = max over the edges into "
                   "i): exp of a large score overflows to inf, and inf/inf is NaN",
                   "先减去每个节点的最大得分再取 exp（m_i 是进入 i 的边上的最大值）："
                   "大得分的 exp 会溢出成 inf，而 inf/inf 是 NaN")
        cases.append(Case(
            label(dtype, shape_text(scores=scores, edges=edges), None, f"N = {N}",
                  say("scores near 120", "得分约为 120") if i == 3 else ""),
            (scores, edges, N), {"alpha": alpha}, dtype=np.dtype(dtype), nonfinite_hint=hint,
            variants=lambda a=(scores, edges, N): _edge_forward_mistakes(*a)))
    return cases


def _edge_backward_mistakes(dalpha, cache):
    alpha, dst, n = cache["alpha"], cache["dst"], cache["num_nodes"]
    every = (dalpha * alpha).sum(axis=1, keepdims=True)
    return [(say("subtracts Σ dα α over all the edges of a head: the sum runs over the edges "
                 "into the same node i only, s_i = Σ_{e' into i} dα_e' α_e'",
                 "减去的是一个头所有边上的 Σ dα α：求和只能在进入同一节点 i 的边上做，"
                 "s_i = Σ_{e' into i} dα_e' α_e'"), {"dscores": alpha * (dalpha - every)}),
            (say("is α ⊙ dα: the softmax couples the edges into a node, so subtract "
                 "s_i = Σ_{e' into i} dα_e' α_e' first, dg = α ⊙ (dα − s_i)",
                 "是 α ⊙ dα：softmax 把进入同一节点的边耦合在一起，要先减去 "
                 "s_i = Σ_{e' into i} dα_e' α_e'，即 dg = α ⊙ (dα − s_i)"),
             {"dscores": alpha * dalpha}),
            (say("forgets the factor α: dg = α ⊙ (dα − s_i)", "漏掉了因子 α：dg = α ⊙ (dα − s_i)"),
             {"dscores": dalpha - np.stack([np.bincount(dst, (dalpha * alpha)[h], n)
                                            for h in range(alpha.shape[0])])[:, dst]})]


def _edge_backward_cases(rng):
    cases = []
    for dtype in DTYPES:
        N, H = (int(x) for x in dims(rng, 2, 3, 8))
        edges = _random_edges(rng, N)
        scores = randn(rng, (H, edges.shape[1]), dtype, 2.0)
        alpha, cache = edge_softmax_forward(scores, edges, N)
        dalpha = randn(rng, alpha.shape, dtype)
        fd = FiniteDiff(lambda scores, e=edges, n=N: edge_softmax_forward(scores, e, n)[0],
                        upcast(scores=scores), dalpha.astype(np.float64), {"dscores": "scores"})
        cases.append(Case(
            label(dtype, shape_text(dalpha=dalpha, edges=edges), None, f"N = {N}"),
            (dalpha, cache), {"dscores": edge_softmax_backward(dalpha, cache)},
            dtype=np.dtype(dtype), fd=fd,
            variants=lambda a=(dalpha, cache): _edge_backward_mistakes(*a)))
    return cases


EDGE_FORWARD = Exercise(
    name="edge_softmax_forward", section="§8.1.1", page="applications/knowledge-graphs",
    title=("GAT's softmax over an edge list", "GAT 在边列表上的 softmax"),
    signature="edge_softmax_forward(scores, edges, num_nodes)", outputs=("alpha", "cache"),
    graded=("alpha",), make_cases=_edge_forward_cases,
    solution="attention_np.graph.edges.edge_softmax_forward",
    doc="""α_e = exp(g_e − m_i) / Σ_{e' into i} exp(g_e' − m_i),   e = (i, j),   m_i = max g_e'

scores (H, E), one per head and edge; edges (2, E) integer, column e = (i, j): node i attends
to node j; num_nodes N → alpha (H, E) in the edges' order and scores' dtype, cache (anything;
not graded).""",
    task=("""A graph attention layer (GAT) scores every edge (i, j) of the graph and normalises
the scores over the neighbours j of each attending node i: the softmax of chapter 3, but over
an irregular set of edges rather than a row of a matrix. A large graph comes as an edge list,
so never build the (N, N) matrix: group the edges by i = edges[0] (np.maximum.at and
np.add.at, or sort by i and use reduceat). The edges come in any order; return α in that same
order. A node with no incoming edge simply has no weight.""",
          """图注意力层（GAT）给图中每一条边 (i, j) 打分，再在每个关注者 i 的邻居 j 上把得分归一化：
就是第 3 章的 softmax，只不过作用在一组不规则的边上，而不是矩阵的一行。大图以边列表的形式给出，
所以不要构造 (N, N) 矩阵：按 i = edges[0] 把边分组（用 np.maximum.at 和 np.add.at，或者按 i
排序后用 reduceat）。边的顺序是任意的；返回的 α 要保持同样的顺序。没有入边的节点就没有权重。"""),
    hints=(("m = np.full((H, N), -np.inf); np.maximum.at(m[h], edges[0], scores[h]) per head "
            "gives each node's largest score; m[:, edges[0]] spreads it back onto the edges.",
            "m = np.full((H, N), -np.inf)；对每个头做 np.maximum.at(m[h], edges[0], scores[h])，"
            "得到每个节点的最大得分；m[:, edges[0]] 再把它放回到各条边上。"),
           ("Subtract m_i before exp: one case has scores near 120, and exp(120) is inf in "
            "float32.", "取 exp 之前先减去 m_i：有一个用例的得分约为 120，而 exp(120) 在 float32 "
            "里是 inf。"),
           ("Keep the scores' dtype: np.full without dtype= is float64.",
            "保持 scores 的 dtype：不带 dtype= 的 np.full 是 float64。")))

EDGE_BACKWARD = Exercise(
    name="edge_softmax_backward", section="§8.1.1", page="applications/knowledge-graphs",
    title=("the edge softmax's backward", "边上 softmax 的反向计算"),
    signature="edge_softmax_backward(dalpha, cache)", outputs=("dscores",),
    make_cases=_edge_backward_cases, solution="attention_np.graph.edges.edge_softmax_backward",
    cache_from="edge_softmax_forward(scores, edges, num_nodes)",
    cache_fields=(("alpha", ("the weights α, (H, E), in the edges' order",
                             "权重 α，(H, E)，按边的顺序")),
                  ("dst", ("edges[0], (E,): the attending node i of each edge",
                           "edges[0]，(E,)：每条边的关注者 i")),
                  ("num_nodes", ("N", "N"))),
    doc="""Forward: α_e = softmax over the edges e' = (i, ·) into the same node i of g_e'

dalpha (H, E) = ∂L/∂α → dscores (H, E) = ∂L/∂g, in α's dtype.""",
    task=("""Given dα = ∂L/∂α, return ∂L/∂g for the edge softmax. It is the softmax backward of
chapter 3, dg = α ⊙ (dα − Σ dα ⊙ α), where the sum runs over the edges into the same
attending node — one sum per node and head, spread back onto that node's edges.""",
          """已知 dα = ∂L/∂α，求边上 softmax 的 ∂L/∂g。它就是第 3 章 softmax 的反向计算
dg = α ⊙ (dα − Σ dα ⊙ α)，只是求和范围是进入同一个关注者节点的边——每个节点、每个头各求一个和，
再放回到这个节点的各条边上。"""),
    hints=(("s = np.zeros((H, N)); np.add.at(s[h], dst, (dalpha * alpha)[h]) per head, or "
            "np.bincount(dst, weights=…, minlength=N).",
            "s = np.zeros((H, N))；对每个头做 np.add.at(s[h], dst, (dalpha * alpha)[h])，"
            "或用 np.bincount(dst, weights=…, minlength=N)。"),
           ("s[:, dst] puts each node's sum back on its edges: dg = α ⊙ (dα − s[:, dst]).",
            "s[:, dst] 把每个节点的和放回它的各条边：dg = α ⊙ (dα − s[:, dst])。"),
           ("Keep α's dtype (np.zeros without dtype= is float64; np.bincount always gives "
            "float64).", "保持 α 的 dtype（不带 dtype= 的 np.zeros 是 float64；np.bincount "
            "总是返回 float64）。")))


# --- one decoding step with a KV cache ----------------------------------------------------------

def _step_with(q, k_new, v_new, k_cache, v_cache, L, causal=True, scale=True):
    """The step in float64 with the knobs of its usual mistakes → {output: value}."""
    Tn, D = q.shape[2], q.shape[3]
    K = np.concatenate([k_cache[:, :, :L], k_new], axis=2).astype(np.float64)
    V = np.concatenate([v_cache[:, :, :L], v_new], axis=2).astype(np.float64)
    e = q.astype(np.float64) @ np.swapaxes(K, -1, -2) / (np.sqrt(D) if scale else 1.0)
    if causal:
        allowed = np.arange(K.shape[2])[None, :] <= L + np.arange(Tn)[:, None]
        e = np.where(allowed, e, -np.inf)
    w = np.exp(e - e.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return {"out": (w @ V).astype(q.dtype), "weights": w.astype(q.dtype)}


def _step_mistakes(q, k_new, v_new, k_cache, v_cache, L):
    args = (q, k_new, v_new, k_cache, v_cache, L)
    found = [(say("leaves out 1/√D: e = q Kᵀ / √D, D = q.shape[-1]",
                  "漏掉了 1/√D：e = q Kᵀ / √D，D = q.shape[-1]"), _step_with(*args, scale=False))]
    if q.shape[2] > 1:
        found.append((say("lets the new positions see each other's future: new query i sees "
                          "the cached positions and the new ones up to itself, ≤ L + i (the "
                          "causal mask the full recompute has)",
                          "让新位置互相看到了未来：新查询 i 只能看到缓存中的位置和不晚于自己的"
                          "新位置，即 ≤ L + i（和完整重算时一样的因果掩码）"),
                      _step_with(*args, causal=False)))
    return found


def _step_cases(rng):
    cases = []
    for i, dtype in enumerate(DTYPES):
        B, H, D, L = dims(rng, 4, 2, 6)
        Tn = 1 if i % 2 == 0 else 3
        max_len = L + Tn + 2
        k_cache, v_cache = (randn(rng, (B, H, max_len, D), dtype) for _ in range(2))
        k_cache[:, :, L:], v_cache[:, :, L:] = 0, 0                   # the unwritten slots
        q, k_new, v_new = (randn(rng, (B, H, Tn, D), dtype) for _ in range(3))
        K, V = k_cache.copy(), v_cache.copy()
        out, weights = cached_attention(q, k_new, v_new, K, V, L)
        unwritten = say("is unchanged: write the new keys and values into the caches, "
                        "k_cache[:, :, L:L + Tn] = k_new (the next step reads them there)",
                        "没有变化：要把新的键和值写进缓存，k_cache[:, :, L:L + Tn] = k_new"
                        "（下一步要从那里读取它们）")
        cases.append(Case(
            label(dtype, shape_text(q=q, k_cache=k_cache), None, f"length L = {L}"),
            (q, k_new, v_new, k_cache, v_cache, L),
            {"out": out, "weights": weights, "k_cache": K, "v_cache": V}, dtype=np.dtype(dtype),
            scale_dim=D, written={"k_cache": 3, "v_cache": 4},
            variants=lambda a=(q, k_new, v_new, k_cache, v_cache, L), u=unwritten:
            _step_mistakes(*a) + [(u, {"k_cache": a[3], "v_cache": a[4]})]))
    return cases


KV_STEP = Exercise(
    name="cached_attention", section="§2.2.3", page="applications/induction-heads",
    title=("one decoding step with a KV cache", "带 KV 缓存的一步解码"),
    signature="cached_attention(q, k_new, v_new, k_cache, v_cache, length)",
    outputs=("out", "weights"), make_cases=_step_cases,
    solution="attention_np.lm.generate.cached_attention",
    doc="""K[:, :, L:L+Tn] ← k_new,  V[:, :, L:L+Tn] ← v_new      (L = length, in place)
out_i = softmax(q_i K[:L+i+1]ᵀ / √D) V[:L+i+1]          new query i sees positions ≤ L + i

q, k_new, v_new (B, H, Tn, D); k_cache, v_cache (B, H, max_len, D), filled up to L, with
L + Tn ≤ max_len → out (B, H, Tn, D), weights (B, H, Tn, L + Tn).""",
    task=("""When a causal language model generates, the keys and values of the tokens already
read never change, so it keeps them in a cache and runs each new token alone. Write that step
for one attention layer: store the Tn new keys and values at positions L … L + Tn − 1 of the
caches (in place: the next step reads them there), then let the new queries attend to the
L + Tn positions written so far — never to the unwritten slots after them. The result must
equal causal attention recomputed over the whole prefix, restricted to the last Tn queries;
so when Tn > 1, new query i sees positions ≤ L + i only.""",
          """因果语言模型生成文本时，已经读过的词元的键和值不会再变，所以把它们存进缓存，每个新词元
单独计算一次。为一层注意力写出这一步：把 Tn 个新的键和值存到缓存的位置 L … L + Tn − 1
（就地写入：下一步要从那里读取），然后让新的查询关注目前已写入的 L + Tn 个位置——绝不能看后面
尚未写入的槽位。结果必须等于在整个前缀上重新计算的因果注意力中最后 Tn 个查询的结果；
所以 Tn > 1 时，新查询 i 只能看到 ≤ L + i 的位置。"""),
    hints=(("K = k_cache[:, :, :L + Tn] after the write: a view, (B, H, L + Tn, D).",
            "写入之后 K = k_cache[:, :, :L + Tn]：这是一个视图，形状 (B, H, L + Tn, D)。"),
           ("The mask of the new queries: np.arange(L + Tn)[None, :] <= L + np.arange(Tn)[:, None] "
            "— with Tn = 1 it lets the one query see everything.",
            "新查询的掩码：np.arange(L + Tn)[None, :] <= L + np.arange(Tn)[:, None]——"
            "Tn = 1 时唯一的查询可以看到全部位置。"),
           ("Reuse scaled dot-product attention (yours or the library's "
            "scaled_dot_product_attention_forward) once K, V and the mask are ready.",
            "K、V 和掩码准备好之后，直接复用缩放点积注意力（你写的，或代码库的 "
            "scaled_dot_product_attention_forward）。")))


# --- the scores that find induction circuits ----------------------------------------------------

def _causal_weights(rng, B, H, T, dtype):
    """Random causal attention weights (B, H, T, T): rows sum to 1 over keys ≤ the query."""
    e = randn(rng, (B, H, T, T), np.float64, 2.0)
    e = np.where(np.tril(np.ones((T, T), bool)), e, -np.inf)
    w = np.exp(e - e.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)).astype(dtype)


def _layers(rng, dtype):
    L, B, H = dims(rng, 3, 2, 5)
    T = int(rng.integers(7, 12))
    return [_causal_weights(rng, B, H, T, dtype) for _ in range(L)]


def _mean_at(ws, rows, cols):
    return np.array([np.asarray(w, np.float64)[:, :, rows, cols].mean(axis=(0, 2)) for w in ws])


def _previous_mistakes(ws):
    T = ws[0].shape[-1]
    i = np.arange(1, T)
    return [(say("reads α[i, i] — attention to the token itself: the previous token of query i "
                 "is key i − 1", "读的是 α[i, i]——对自身的注意力：查询 i 的前一个词元是键 i − 1"),
             {"scores": _mean_at(ws, i, i)}),
            (say("reads α[i − 1, i], with query and key swapped: row i of α is query i, so the "
                 "previous token is α[i, i − 1]", "读的是 α[i − 1, i]，查询和键对调了：α 的第 i "
                 "行是查询 i，所以前一个词元是 α[i, i − 1]"), {"scores": _mean_at(ws, i - 1, i)}),
            (say("averages over every query, including query 0, whose i − 1 = −1 wraps around to "
                 "the last key: query 0 has no previous token, start at i = 1",
                 "对所有查询取平均，包括查询 0，而它的 i − 1 = −1 会绕回最后一个键："
                 "查询 0 没有前一个词元，要从 i = 1 开始"),
             {"scores": _mean_at(ws, np.arange(T), np.arange(T) - 1)})]


def _induction_mistakes(ws, period):
    T = ws[0].shape[-1]
    i = np.arange(period, T)
    return [(say("reads α[i, i − period], the earlier copy of the current token itself: an "
                 "induction head attends to the token after it, α[i, i − period + 1]",
                 "读的是 α[i, i − period]，也就是当前词元先前的那一次出现本身：归纳头关注的是它"
                 "后面的那个词元，α[i, i − period + 1]"), {"scores": _mean_at(ws, i, i - period)}),
            (say("averages over queries from period − 1 on: the second period starts at "
                 "query i = period", "从查询 period − 1 开始取平均：第二个周期从查询 i = period "
                 "开始"), {"scores": _mean_at(ws, np.arange(period - 1, T),
                                               np.arange(period - 1, T) - period + 1)})]


def _previous_cases(rng):
    cases = []
    for dtype in DTYPES:
        ws = _layers(rng, dtype)
        cases.append(Case(label(dtype, f"{len(ws)} × weights {ws[0].shape}"), (ws,),
                          {"scores": previous_token_scores(ws)}, dtype=np.dtype(dtype),
                          variants=lambda w=ws: _previous_mistakes(w)))
    return cases


def _induction_cases(rng):
    cases = []
    for dtype in DTYPES:
        ws = _layers(rng, dtype)
        T = ws[0].shape[-1]
        period = int(rng.integers(3, T - 1))
        cases.append(Case(label(dtype, f"{len(ws)} × weights {ws[0].shape}", None,
                                f"period {period}"), (ws, period),
                          {"scores": induction_scores(ws, period)}, dtype=np.dtype(dtype),
                          variants=lambda a=(ws, period): _induction_mistakes(*a)))
    return cases


_FLOAT64 = ("Return float64 scores whatever the weights' dtype (np.asarray(w, dtype=np.float64) "
            "first), as the library does: they are averages for a table, not activations.",
            "不论权重是什么 dtype，都返回 float64 的分数（先做 np.asarray(w, dtype=np.float64)），"
            "和代码库一样：它们是填进表格的平均值，不是激活值。")

PREVIOUS = Exercise(
    name="previous_token_scores", section="§2.2.3", page="applications/induction-heads",
    title=("the previous-token score of every head", "每个头的前一词元分数"),
    signature="previous_token_scores(weights)", outputs=("scores",),
    make_cases=_previous_cases, solution="attention_np.lm.circuits.previous_token_scores",
    doc="""score[l, h] = mean over batch rows b and queries i ≥ 1 of α_l[b, h, i, i − 1]

weights: a list of L arrays (B, H, T, T), layer l's attention weights (row i: query i)
→ scores (L, H), float64.""",
    task=("""An induction circuit needs a head that attends from each token to the one just
before it. Measure that for every head of every layer: the mean weight α[i, i − 1] that query
i puts on the previous position, over the batch rows and the queries i = 1 … T − 1 (query 0
has no previous token). """ + _FLOAT64[0],
          """归纳电路需要一个头：每个词元都关注紧挨在它前面的那个词元。为每一层的每个头量出这一点：
查询 i 放在前一个位置上的权重 α[i, i − 1]，在批次各行和查询 i = 1 … T − 1 上的平均值
（查询 0 没有前一个词元）。""" + _FLOAT64[1]),
    hints=(("i = np.arange(1, T); w[:, :, i, i - 1] picks one entry per query: shape "
            "(B, H, T − 1).",
            "i = np.arange(1, T)；w[:, :, i, i - 1] 为每个查询取出一个元素：形状 (B, H, T − 1)。"),
           ("Average over the batch and query axes, (0, 2), and keep the heads.",
            "在批次轴和查询轴 (0, 2) 上取平均，保留头这一轴。"),
           ("np.array([... for w in weights]) stacks the layers into (L, H).",
            "np.array([... for w in weights]) 把各层叠成 (L, H)。")))

INDUCTION = Exercise(
    name="induction_scores", section="§2.2.3", page="applications/induction-heads",
    title=("the induction score of every head", "每个头的归纳分数"),
    signature="induction_scores(weights, period)", outputs=("scores",),
    make_cases=_induction_cases, solution="attention_np.lm.circuits.induction_scores",
    doc="""score[l, h] = mean over batch rows b and queries i = period … T − 1 of
α_l[b, h, i, i − period + 1]

weights: a list of L arrays (B, H, T, T) of rows that repeat with ``period`` ([A B C … | A B C
…]); period ≥ 2 and < T → scores (L, H), float64.""",
    task=("""Feed a model a random sequence that repeats with a period, [A B C … | A B C …]. In
the second period an induction head, at the current token, attends to the token that came
right after the current token's earlier copy — the one that comes next — so it can predict
it. Measure that for every head: the mean weight α[i, i − period + 1] over the batch rows and
the second-period queries i = period … T − 1. """ + _FLOAT64[0],
          """给模型输入一段按周期重复的随机序列 [A B C … | A B C …]。在第二个周期里，归纳头在当前词元
处关注的是当前词元上一次出现时紧跟在它后面的那个词元——也就是接下来要出现的词元——从而能预测它。
为每个头量出这一点：权重 α[i, i − period + 1] 在批次各行和第二个周期的查询 i = period … T − 1
上的平均值。""" + _FLOAT64[1]),
    hints=(("The earlier copy of token i is at i − period; the token after it is at "
            "i − period + 1.", "词元 i 上一次出现在 i − period；它后面的词元在 i − period + 1。"),
           ("i = np.arange(period, T); w[:, :, i, i - period + 1] has shape (B, H, T − period).",
            "i = np.arange(period, T)；w[:, :, i, i - period + 1] 的形状是 (B, H, T − period)。"),
           ("Average over axes (0, 2) and stack the layers: (L, H).",
            "在轴 (0, 2) 上取平均，再把各层叠起来：(L, H)。")))

GRAPH = [EDGE_FORWARD, EDGE_BACKWARD]
LM = [KV_STEP, PREVIOUS, INDUCTION]
