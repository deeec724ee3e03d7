"""Positions (chapter 7): the sinusoidal encoding, and rotary embeddings (RoPE) forward and
backward."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import dims, label, randn, shape_text, upcast
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.positional import rope_backward, rope_forward, sinusoidal_encoding


def _sinusoid(T, d, base, dtype, exponent=2.0, cos_first=False, halves=False):
    """The encoding with the knobs of its usual mistakes, in float64, cast to ``dtype``."""
    m = np.arange(T, dtype=np.float64)[:, None]
    i = np.arange((d + 1) // 2, dtype=np.float64)
    angle = m / base ** (exponent * i / d)                          # (T, ⌈d/2⌉)
    first, second = (np.cos, np.sin) if cos_first else (np.sin, np.cos)
    if halves:
        pe = np.concatenate([first(angle), second(angle[:, :d // 2])], axis=1)
    else:
        pe = np.empty((T, d))
        pe[:, 0::2], pe[:, 1::2] = first(angle), second(angle[:, :d // 2])
    return pe.astype(dtype)


def _sinusoid_mistakes(T, d, base, dtype):
    return [(say("has sine and cosine swapped: the even columns 2i are sines, the odd ones 2i + 1 "
                 "cosines", "正弦和余弦弄反了：偶数列 2i 是正弦，奇数列 2i + 1 是余弦"),
             {"pe": _sinusoid(T, d, base, dtype, cos_first=True)}),
            (say("uses base^(i/d) for the pair i: the exponent is 2i/d, so that the last pair "
                 "reaches a wavelength of about 2π·base", "对第 i 对用了 base^(i/d)：指数应是 "
                 "2i/d，这样最后一对的波长才能达到约 2π·base"),
             {"pe": _sinusoid(T, d, base, dtype, exponent=1.0)}),
            (say("puts all the sines first, then all the cosines (tensor2tensor's layout): the "
                 "paper, like the library, interleaves them, sin in column 2i and cos in 2i + 1",
                 "先放全部正弦，再放全部余弦（tensor2tensor 的排法）：论文和代码库都是交错排列，"
                 "第 2i 列放 sin，第 2i + 1 列放 cos"),
             {"pe": _sinusoid(T, d, base, dtype, halves=True)})]


def _sinusoid_cases(rng):
    cases = []
    for dtype, base in ((np.float64, 10000.0), (np.float32, 10000.0), (np.float64, 100.0),
                        (np.float32, 100.0)):
        T, d = dims(rng, 2, 5, 12)
        d = d + 1 if len(cases) % 2 == 0 and d % 2 == 0 else d       # odd d in half the cases
        cases.append(Case(label(dtype, f"T = {T}, d = {d}", None, f"base {base:g}"), (T, d),
                          {"pe": sinusoidal_encoding(T, d, base, dtype)},
                          kwargs={"base": base, "dtype": dtype}, dtype=np.dtype(dtype),
                          variants=lambda a=(T, d, base, dtype): _sinusoid_mistakes(*a)))
    return cases


def _rope(x, positions, base, sign=1.0, exponent=2.0, halves=False):
    """RoPE with the knobs of its usual mistakes: the rotation's sign, θ's exponent and the
    rotate-half pairing (i with i + D/2), in float64, cast to x's dtype."""
    D = x.shape[-1]
    theta = base ** (-exponent * np.arange(0, D // 2, dtype=np.float64) / D)
    angles = np.asarray(positions, dtype=np.float64)[..., None] * theta
    angles = angles[None, None] if angles.ndim == 2 else angles[:, None]
    cos, sin = np.cos(angles), sign * np.sin(angles)
    x64 = x.astype(np.float64)
    a, b = (x64[..., :D // 2], x64[..., D // 2:]) if halves else (x64[..., 0::2], x64[..., 1::2])
    y = np.empty_like(x64)
    ya, yb = a * cos - b * sin, a * sin + b * cos
    if halves:
        y[..., :D // 2], y[..., D // 2:] = ya, yb
    else:
        y[..., 0::2], y[..., 1::2] = ya, yb
    return y.astype(x.dtype)


def _rope_forward_mistakes(x, positions, base):
    T = x.shape[2]
    found = [(say("pairs feature i with feature i + D/2 (the rotate-half layout of GPT-NeoX and "
                  "Hugging Face's Llama): RoFormer's RoPE, like the library's, rotates the "
                  "adjacent pairs (x_2i, x_2i+1)", "把特征 i 和特征 i + D/2 配成了一对"
                  "（GPT-NeoX 和 Hugging Face 的 Llama 采用的 rotate-half 排法）：RoFormer "
                  "的 RoPE（代码库也是）旋转的是相邻的一对 (x_2i, x_2i+1)"),
              {"y": _rope(x, positions, base, halves=True)}),
             (say("rotates by −mθ: y_2i = x_2i cos mθ_i − x_2i+1 sin mθ_i, "
                  "y_2i+1 = x_2i sin mθ_i + x_2i+1 cos mθ_i",
                  "旋转了 −mθ：y_2i = x_2i cos mθ_i − x_2i+1 sin mθ_i，"
                  "y_2i+1 = x_2i sin mθ_i + x_2i+1 cos mθ_i"),
              {"y": _rope(x, positions, base, sign=-1.0)}),
             (say("uses θ_i = base^(−i/D): the exponent is −2i/D", "用了 θ_i = base^(−i/D)："
                  "指数应是 −2i/D"), {"y": _rope(x, positions, base, exponent=1.0)})]
    if not np.array_equal(np.broadcast_to(positions, (x.shape[0], T)),
                          np.broadcast_to(np.arange(T), (x.shape[0], T))):
        found.append((say("uses the positions 0 … T − 1 instead of the positions given",
                          "用了位置 0 … T − 1，而不是传入的 positions"),
                      {"y": _rope(x, np.arange(T), base)}))
    return found


def _rope_inputs(rng):
    """(x, positions, base, dtype, what the positions are) in four settings."""
    for dtype, per_sequence in ((np.float64, False), (np.float32, True), (np.float64, True),
                                (np.float32, False)):
        B, H, T, half = dims(rng, 4, 2, 6)
        x = randn(rng, (B, H, T, 2 * half), dtype)
        if per_sequence:
            positions = rng.integers(0, 40, (B, T))
            what = say("positions (B, T), one row per sequence", "positions (B, T)，每个序列一行")
        else:
            positions = np.arange(T) + int(rng.integers(0, 9))
            what = say(f"positions {positions[0]} … {positions[-1]}",
                       f"位置 {positions[0]} … {positions[-1]}")
        yield x, positions, (100.0 if per_sequence else 10000.0), dtype, what


def _rope_forward_cases(rng):
    cases = []
    for x, positions, base, dtype, what in _rope_inputs(rng):
        cases.append(Case(label(dtype, shape_text(x=x), None, what, f"base {base:g}"),
                          (x, positions), {"y": rope_forward(x, positions, base)[0]},
                          kwargs={"base": base}, dtype=np.dtype(dtype),
                          variants=lambda a=(x, positions, base): _rope_forward_mistakes(*a)))
    return cases


def _rope_backward_cases(rng):
    cases = []
    for x, positions, base, dtype, what in _rope_inputs(rng):
        y, cache = rope_forward(x, positions, base)
        dy = randn(rng, y.shape, dtype)
        fd = FiniteDiff(lambda x, p=positions, b=base: rope_forward(x, p, b)[0], upcast(x=x),
                        dy.astype(np.float64), {"dx": "x"})
        mistakes = [(say("rotates dy by +mθ, as the forward did: the backward of a rotation is "
                         "its transpose, the rotation by −mθ", "把 dy 像前向计算那样旋转了 +mθ："
                         "旋转的反向计算是它的转置，即旋转 −mθ"),
                     {"dx": rope_forward(dy, positions, base)[0]}),
                    (say("rotates back the rotate-half pairs (i, i + D/2): the forward rotated "
                         "the adjacent pairs (2i, 2i + 1)", "按 rotate-half 的配对 (i, i + D/2) "
                         "转了回去：前向计算旋转的是相邻的一对 (2i, 2i + 1)"),
                     {"dx": _rope(dy, positions, base, sign=-1.0, halves=True)})]
        cases.append(Case(label(dtype, shape_text(dy=dy), None, what, f"base {base:g}"),
                          (dy, cache), {"dx": rope_backward(dy, cache)}, dtype=np.dtype(dtype),
                          fd=fd, variants=lambda m=mistakes: m))
    return cases


SINUSOIDAL = Exercise(
    name="sinusoidal_encoding", section="§4.3", page="chapters/07-positional-encoding",
    title=("the sinusoidal positional encoding", "正弦位置编码"),
    signature="sinusoidal_encoding(T, d, base=10000.0, dtype=np.float64)", outputs=("pe",),
    make_cases=_sinusoid_cases, solution="attention_np.positional.sinusoidal_encoding",
    doc="""PE[m, 2i] = sin(m / base^(2i/d)),   PE[m, 2i+1] = cos(m / base^(2i/d))

T, d ints (positions 0 … T − 1, d features; for odd d the last column is a sine), base > 1
→ pe (T, d) in dtype.""",
    task=("""Attention alone is blind to order, so the Transformer adds a position vector to
each token's embedding. Vaswani et al. (2017) use sines and cosines: feature pair i of
position m is (sin(m ω_i), cos(m ω_i)) with ω_i = base^(−2i/d), wavelengths from 2π up to about
2π·base. Return the (T, d) table; when d is odd, the last column is a sine whose cosine partner
is left out.""",
          """注意力本身看不出顺序，所以 Transformer 给每个词元的嵌入加上一个位置向量。
Vaswani et al.（2017）用的是正弦和余弦：位置 m 的第 i 对特征是 (sin(m ω_i), cos(m ω_i))，
ω_i = base^(−2i/d)，波长从 2π 一直到约 2π·base。返回 (T, d) 的表；d 为奇数时，最后一列是
正弦，与它配对的余弦被省去。"""),
    hints=(("Build the angles once as a (T, ⌈d/2⌉) table: a column of positions m times a row "
            "of frequencies ω_i (broadcasting).",
            "先一次算出 (T, ⌈d/2⌉) 的角度表：一列位置 m 乘一行频率 ω_i（靠广播）。"),
           ("Fill the columns with slices: pe[:, 0::2] = sin, pe[:, 1::2] = cos — for odd d the "
            "cosines take one pair fewer.",
            "用切片填列：pe[:, 0::2] = sin，pe[:, 1::2] = cos——d 为奇数时余弦少一对。"),
           ("Compute in float64 and cast at the end: .astype(dtype).",
            "用 float64 计算，最后再转换：.astype(dtype)。")))

ROPE_FORWARD = Exercise(
    name="rope_forward", section="§4.3", page="chapters/07-positional-encoding",
    title=("rotary position embeddings (RoPE), forward", "旋转位置编码（RoPE）的前向计算"),
    signature="rope_forward(x, positions, base=10000.0)", outputs=("y", "cache"),
    graded=("y",), make_cases=_rope_forward_cases, solution="attention_np.positional.rope_forward",
    doc="""y_2i = x_2i cos mθ_i − x_2i+1 sin mθ_i,   y_2i+1 = x_2i sin mθ_i + x_2i+1 cos mθ_i,
θ_i = base^(−2i/D), m the position of the vector

x (B, H, T, D) with D even, positions (T,) or (B, T) integers ≥ 0, base > 1
→ y (B, H, T, D) in x's dtype, cache (anything; only y is graded).""",
    task=("""RoPE (Su et al., 2021) puts the position into the queries and keys themselves:
each adjacent pair of features (x_2i, x_2i+1) of the vector at position m is rotated by the
angle m θ_i. A rotation keeps lengths, and the score of a rotated query and key depends only on
their offset. Positions are (T,), shared by the batch, or (B, T), one row per sequence (e.g.
after a KV cache, or with left padding).""",
          """RoPE（Su et al., 2021）把位置直接放进查询和键里：位置 m 上那个向量的每一对相邻特征
(x_2i, x_2i+1) 旋转角度 m θ_i。旋转不改变长度，旋转后的查询和键的得分只取决于二者的相对位置。
positions 的形状是 (T,)（整批共用）或 (B, T)（每个序列一行，例如用了 KV 缓存或左填充时）。"""),
    hints=(("x[..., 0::2] and x[..., 1::2] are the two halves of every pair, (B, H, T, D/2) each.",
            "x[..., 0::2] 和 x[..., 1::2] 分别是每一对的两个分量，形状都是 (B, H, T, D/2)。"),
           ("The angles m θ_i: positions[..., None] * θ, then give them the axes that broadcast "
            "against (B, H, T, D/2): [None, None] for (T,) positions, [:, None] for (B, T).",
            "角度 m θ_i：positions[..., None] * θ，再补上能与 (B, H, T, D/2) 广播的轴："
            "(T,) 的 positions 用 [None, None]，(B, T) 的用 [:, None]。"),
           ("Keep x's dtype: cast cos and sin to it before multiplying.",
            "保持 x 的 dtype：相乘之前先把 cos 和 sin 转换成它。")))

ROPE_BACKWARD = Exercise(
    name="rope_backward", section="§4.3", page="chapters/07-positional-encoding",
    title=("rotary position embeddings (RoPE), backward", "旋转位置编码（RoPE）的反向计算"),
    signature="rope_backward(dy, cache)", outputs=("dx",), make_cases=_rope_backward_cases,
    solution="attention_np.positional.rope_backward", cache_from="rope_forward(x, positions, base)",
    cache_fields=(("cos", ("cos mθ_i, broadcastable to (B, H, T, D/2), in x's dtype",
                           "cos mθ_i，可广播到 (B, H, T, D/2)，dtype 与 x 相同")),
                  ("sin", ("sin mθ_i, likewise", "sin mθ_i，同上")),
                  ("shape", ("x's shape (B, H, T, D)", "x 的形状 (B, H, T, D)")),
                  ("dtype", ("x's dtype", "x 的 dtype"))),
    doc="""Forward: (y_2i, y_2i+1) = R(mθ_i) (x_2i, x_2i+1), R(φ) = [[cos φ, −sin φ], [sin φ, cos φ]]

dy (B, H, T, D) → dx (B, H, T, D), in dy's dtype.""",
    task=("""Given dy = ∂L/∂y for RoPE's output, return dx = ∂L/∂x. Each pair of features was
rotated by a 2 × 2 rotation matrix R(mθ_i); the gradient goes back through its transpose.""",
          """已知 RoPE 输出的 dy = ∂L/∂y，返回 dx = ∂L/∂x。每一对特征都被一个 2 × 2 的旋转矩阵
R(mθ_i) 转过；梯度要经过它的转置传回去。"""),
    hints=(("y = R x gives dx = Rᵀ dy, and R(φ)ᵀ = R(−φ): rotate dy back by −mθ_i.",
            "y = R x 给出 dx = Rᵀ dy，而 R(φ)ᵀ = R(−φ)：把 dy 反向旋转 −mθ_i。"),
           ("R(−φ) has the same cos and the opposite sin: use cache['cos'] and −cache['sin'].",
            "R(−φ) 的 cos 不变、sin 变号：用 cache['cos'] 和 −cache['sin']。"),
           ("Work on the pairs dy[..., 0::2] and dy[..., 1::2], as the forward did.",
            "像前向计算一样，在 dy[..., 0::2] 和 dy[..., 1::2] 这两组分量上操作。")))

EXERCISES = [SINUSOIDAL, ROPE_FORWARD, ROPE_BACKWARD]
