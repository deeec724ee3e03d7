"""The projects' new scores (chapter 11): one step of location-aware attention (speech), and the
Deep Interest Network's activation unit, forward and backward (recommendation)."""
from __future__ import annotations

import numpy as np

from attention_np.core import softmax_forward
from attention_np.din import din_activation_backward, din_activation_forward, init_din_params
from attention_np.exercises.data import (dead_positions, dead_row_mask, dims, label, randn,
                                         shape_text, upcast)
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.location_attention import init_location_params, location_attention_forward

SETTINGS = ((np.float64, True), (np.float32, True), (np.float64, False), (np.float32, False))


# --- location-aware attention -------------------------------------------------------------------

def _location_with(s, keys, values, alpha_prev, p, mask, flip=False, shift=0, location=True,
                   bias=True, masked=True):
    """One step computed in float64 with the knobs of its usual mistakes → {output: value}."""
    F = p["F"][:, ::-1] if flip else p["F"]
    r, T = F.shape[1], alpha_prev.shape[1]
    padded = np.pad(alpha_prev.astype(np.float64), ((0, 0), (r // 2, r // 2 + abs(shift))))
    windows = padded[:, np.arange(T)[:, None] + np.arange(r) + shift]        # (B, T, r)
    f = windows @ F.T                                                         # (B, T, K)
    a = (s @ p["W"])[:, None, :] + keys + (f @ p["U"] if location else 0) + (p["b"] if bias else 0)
    e = np.tanh(a) @ p["w"]
    weights = softmax_forward(e, -1, mask if masked else None)[0]
    context = np.einsum("bt,btd->bd", weights, values)
    return {"context": context.astype(s.dtype), "weights": weights.astype(s.dtype)}


def _location_mistakes(args):
    return [(say("flips the filter — np.convolve computes a true convolution; the layer, like "
                 "torch's conv1d, correlates: f_j = Σ_τ F[τ] α[j + τ − r//2]",
                 "把滤波器翻转了——np.convolve 算的是真正的卷积；而这一层和 torch 的 conv1d 一样"
                 "做的是互相关：f_j = Σ_τ F[τ] α[j + τ − r//2]"), _location_with(*args, flip=True)),
            (say("is shifted by r // 2 frames (f_j = Σ_τ F[τ] α[j + τ]): centre the filter on "
                 "frame j, padding α with r // 2 zeros on each side ('same')",
                 "错位了 r // 2 帧（f_j = Σ_τ F[τ] α[j + τ]）：滤波器要以第 j 帧为中心，在 α "
                 "两侧各补 r // 2 个零（'same'）"),
             _location_with(*args, shift=args[4]["F"].shape[1] // 2)),
            (say("ignores where the previous step attended: the score has the location term "
                 "f_j U, f = F ∗ α_{i−1}", "没有用上一步关注的位置：得分里有位置项 f_j U，"
                 "f = F ∗ α_{i−1}"), _location_with(*args, location=False)),
            (say("leaves out the bias b inside the tanh", "漏掉了 tanh 里面的偏置 b"),
             _location_with(*args, bias=False)),
            (say("ignores the mask: padded frames must get weight 0", "忽略了掩码：填充的帧权重"
                 "必须为 0"), _location_with(*args, masked=False))]


def _location_cases(rng):
    cases = []
    for dtype, masked in SETTINGS:
        B, T, Ds, Dh, A, K = dims(rng, 6, 2, 9)
        r = int(rng.choice([3, 5]))
        p = {k: v.astype(dtype) for k, v in
             init_location_params(Ds, Dh, A, K, r, rng).items()}
        p["b"] = randn(rng, A, dtype, 0.3)
        s, values = randn(rng, (B, Ds), dtype), randn(rng, (B, T, Dh), dtype)
        keys = randn(rng, (B, T, A), dtype, 0.5)
        mask = dead_row_mask(rng, (B, T)) if masked else None
        alpha_prev = softmax_forward(randn(rng, (B, T), dtype, 2.0), -1, mask)[0]
        context, weights, _ = location_attention_forward(s, keys, values, alpha_prev, p, mask)
        dead = {} if mask is None else {"weights": dead_positions(mask, (B, T)),
                                        "context": np.broadcast_to(
                                            dead_positions(mask, (B, T))[:, :1], context.shape)}
        cases.append(Case(
            label(dtype, shape_text(s=s, keys=keys, values=values), masked, f"F {p['F'].shape}"),
            (s, keys, values, alpha_prev, p), {"context": context, "weights": weights},
            kwargs={"mask": mask}, dtype=np.dtype(dtype), masked=masked, dead=dead,
            variants=lambda a=(s, keys, values, alpha_prev, p, mask): _location_mistakes(a)))
    return cases


# --- DIN's activation unit ----------------------------------------------------------------------

def _din_with(h, a, p, order=(0, 1, 2, 3), diff=1.0, act="sigmoid", b2=True):
    """Activation-unit scores in float64 with the knobs of its usual mistakes."""
    ab = np.broadcast_to(a[:, None, :], h.shape).astype(np.float64)
    h64 = h.astype(np.float64)
    blocks = (h64, ab, h64 * ab, diff * (h64 - ab))
    z = np.concatenate([blocks[i] for i in order], axis=-1) @ p["W1"] + p["b1"]
    u = 1 / (1 + np.exp(-z)) if act == "sigmoid" else np.maximum(z, 0)
    return (u @ p["w2"] + (p["b2"][0] if b2 else 0)).astype(h.dtype)


def _din_forward_mistakes(h, a, p):
    return [(say("concatenates in another order: z_j = [e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a], "
                 "the behaviour first, then the candidate", "拼接顺序不对："
                 "z_j = [e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a]，先行为，后候选"),
             {"scores": _din_with(h, a, p, order=(1, 0, 2, 3))}),
            (say("uses e_a − e_j: the last block is e_j − e_a", "用了 e_a − e_j：最后一块应是 "
                 "e_j − e_a"), {"scores": _din_with(h, a, p, diff=-1.0)}),
            (say("uses ReLU: the activation unit's hidden layer here is a sigmoid, "
                 "u = σ(z W₁ + b₁)", "用了 ReLU：这里激活单元的隐藏层是 sigmoid，"
                 "u = σ(z W₁ + b₁)"), {"scores": _din_with(h, a, p, act="relu")}),
            (say("leaves out b₂: s_j = u_j w₂ + b₂", "漏掉了 b₂：s_j = u_j w₂ + b₂"),
             {"scores": _din_with(h, a, p, b2=False)})]


def _din_inputs(rng):
    for dtype, _ in SETTINGS:
        B, T, D, H = dims(rng, 4, 2, 7)
        p = {k: v.astype(dtype) for k, v in init_din_params(D, H, rng).items()}
        p["b1"], p["b2"] = randn(rng, H, dtype, 0.3), randn(rng, 1, dtype, 0.3)
        yield randn(rng, (B, T, D), dtype), randn(rng, (B, D), dtype), p, np.dtype(dtype)


def _din_forward_cases(rng):
    return [Case(label(dtype, shape_text(behaviours=h, candidate=a, W1=p["W1"])), (h, a, p),
                 {"scores": din_activation_forward(h, a, p)[0]}, dtype=dtype,
                 variants=lambda x=(h, a, p): _din_forward_mistakes(*x))
            for h, a, p, dtype in _din_inputs(rng)]


def _din_backward_with(ds, cache, diff_sign=1.0, swap_product=False, sigmoid=True):
    h, a, u, W1 = cache["h"], cache["a"], cache["u"], cache["W1"]
    du = ds[..., None] * cache["w2"] * (u * (1 - u) if sigmoid else 1)
    dz = du @ W1.T
    dz_h, dz_a, dz_p, dz_d = np.split(dz, 4, axis=-1)
    ah = np.broadcast_to(a[:, None, :], h.shape)
    dh = dz_h + dz_p * (h if swap_product else ah) + dz_d
    da = (dz_a + dz_p * (ah if swap_product else h) - diff_sign * dz_d).sum(axis=1)
    return {"dbehaviours": dh, "dcandidate": da,
            "grads['W1']": cache["z"].reshape(-1, W1.shape[0]).T @ du.reshape(-1, du.shape[-1]),
            "grads['b1']": du.sum(axis=(0, 1))}


def _din_backward_mistakes(ds, cache):
    return [(say("gives the difference block the wrong sign for e_a: z = [… ; e_j − e_a], so "
                 "its gradient reaches e_a with −1", "差值那一块给 e_a 的梯度符号反了："
                 "z = [… ; e_j − e_a]，所以它传到 e_a 时要乘 −1"),
             _din_backward_with(ds, cache, diff_sign=-1.0)),
            (say("multiplies the product block's gradient by the wrong factor: "
                 "∂(e_j ⊙ e_a)/∂e_j = e_a and ∂(e_j ⊙ e_a)/∂e_a = e_j",
                 "乘积那一块的梯度乘错了因子：∂(e_j ⊙ e_a)/∂e_j = e_a，∂(e_j ⊙ e_a)/∂e_a = e_j"),
             _din_backward_with(ds, cache, swap_product=True)),
            (say("leaves out the sigmoid's derivative: u = σ(·), so du = ds w₂ ⊙ u (1 − u) "
                 "before W₁", "漏掉了 sigmoid 的导数：u = σ(·)，所以在乘 W₁ 之前 "
                 "du = ds w₂ ⊙ u (1 − u)"), _din_backward_with(ds, cache, sigmoid=False))]


def _din_backward_cases(rng):
    cases = []
    for h, a, p, dtype in _din_inputs(rng):
        scores, cache = din_activation_forward(h, a, p)
        ds = randn(rng, scores.shape, dtype)
        dh, da, grads = din_activation_backward(ds, cache)
        fd = FiniteDiff(lambda behaviours, candidate, **q: din_activation_forward(
                            behaviours, candidate, q)[0],
                        upcast(behaviours=h, candidate=a, **p), ds.astype(np.float64),
                        {"dbehaviours": "behaviours", "dcandidate": "candidate",
                         **{f"grads[{k!r}]": k for k in p}})
        cases.append(Case(label(dtype, shape_text(behaviours=h, candidate=a, W1=p["W1"])),
                          (ds, cache), {"dbehaviours": dh, "dcandidate": da, "grads": grads},
                          dtype=dtype, fd=fd,
                          variants=lambda d=ds, c=cache: _din_backward_mistakes(d, c)))
    return cases


LOCATION = Exercise(
    name="location_attention_forward", section="§6.3", page="chapters/11-projects/speech",
    title=("one step of location-aware attention", "位置感知注意力的一步"),
    signature="location_attention_forward(s, keys, values, alpha_prev, params, mask=None)",
    outputs=("context", "weights", "cache"), graded=("context", "weights"),
    make_cases=_location_cases, solution="attention_np.location_attention.location_attention_forward",
    doc="""f = F ∗ α_{i−1} (K filters of odd width r, 'same'),  e_j = wᵀ tanh(s W + k_j + f_j U + b),
α = softmax(e) over the unmasked frames,  c = Σ_j α_j h_j

s (B, Ds) the decoder state, keys (B, T, A) = h V, values h (B, T, Dh), alpha_prev (B, T),
params {W (Ds, A), U (K, A), F (K, r), b (A,), w (A,)}, mask (B, T) bool or None
→ context (B, Dh), weights (B, T), cache (anything; not graded).""",
    task=("""Chorowski et al. (2015) let the score of frame j also look at where the previous
step attended, so that the alignment of speech moves forward steadily: convolve the previous
weights α_{i−1} with K filters of odd width r — zero-padded so that f_j is centred on frame j,
like torch's conv1d(padding=r // 2), which correlates and does not flip the filter — and add
f_j U inside the additive score. The rest is soft attention over the frames.""",
          """Chorowski et al.（2015）让第 j 帧的得分也参考上一步关注的位置，这样语音的对齐就能稳步
向前推进：把上一步的权重 α_{i−1} 与 K 个奇数宽度 r 的滤波器做卷积——补零使 f_j 以第 j 帧为中心，
与 torch 的 conv1d(padding=r // 2) 一样（它做的是互相关，不翻转滤波器）——再把 f_j U 加进加性打分
函数里面。其余部分就是在各帧上的软注意力。"""),
    hints=(("Pad α_{i−1} with r // 2 zeros on each side; the windows "
            "padded[:, np.arange(T)[:, None] + np.arange(r)] are (B, T, r), and windows @ F.T "
            "is f (B, T, K).",
            "在 α_{i−1} 两侧各补 r // 2 个零；窗口 padded[:, np.arange(T)[:, None] + np.arange(r)] "
            "的形状是 (B, T, r)，windows @ F.T 就是 f (B, T, K)。"),
           ("s W is (B, A): give it a frame axis, [:, None, :], before adding keys and f U.",
            "s W 的形状是 (B, A)：加上 keys 和 f U 之前，先给它补一个帧轴 [:, None, :]。"),
           ("The softmax over the frames takes the mask; the library's softmax_forward does it.",
            "在各帧上的 softmax 要带掩码；代码库的 softmax_forward 可以做到。")))

DIN_FORWARD = Exercise(
    name="din_activation_forward", section="§6.4", page="chapters/11-projects/recommendation",
    title=("the Deep Interest Network's activation unit", "深度兴趣网络（DIN）的激活单元"),
    signature="din_activation_forward(behaviours, candidate, params)", outputs=("scores", "cache"),
    graded=("scores",), make_cases=_din_forward_cases,
    solution="attention_np.din.din_activation_forward",
    doc="""z_j = [e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a],  u_j = σ(z_j W₁ + b₁),  s_j = u_j w₂ + b₂

behaviours e (B, T, D), candidate e_a (B, D), params {W1 (4D, H), b1 (H,), w2 (H,), b2 (1,)}
→ scores (B, T), cache (anything; only scores is graded).""",
    task=("""DIN (Zhou et al., 2018) weighs a user's past behaviours by how well each matches
the candidate item, with a small network, the activation unit, instead of a dot product. It
sees the behaviour, the candidate, their product and their difference, side by side, through
a sigmoid hidden layer to one score per behaviour. (The scores are not normalised: DIN keeps
the intensity of interest.)""",
          """DIN（Zhou et al., 2018）按用户过去的每个行为与候选物品的匹配程度给它们加权，用的是一个
小网络——激活单元——而不是点积。它把行为、候选、二者的乘积和二者的差并排拼在一起，经过一个
sigmoid 隐藏层，为每个行为给出一个得分。（得分不做归一化：DIN 要保留兴趣的强度。）"""),
    hints=(("Broadcast the candidate over the history: np.broadcast_to(a[:, None, :], "
            "behaviours.shape).",
            "把候选在历史上广播：np.broadcast_to(a[:, None, :], behaviours.shape)。"),
           ("np.concatenate([...], axis=-1) gives z (B, T, 4D); z @ W1 + b1 is (B, T, H).",
            "np.concatenate([...], axis=-1) 得到 z (B, T, 4D)；z @ W1 + b1 的形状是 (B, T, H)。"),
           ("b2 has shape (1,): add b2[0], or let it broadcast.",
            "b2 的形状是 (1,)：加 b2[0]，或者让它自己广播。")))

DIN_BACKWARD = Exercise(
    name="din_activation_backward", section="§6.4", page="chapters/11-projects/recommendation",
    title=("the activation unit's backward", "激活单元的反向计算"),
    signature="din_activation_backward(dscores, cache)",
    outputs=("dbehaviours", "dcandidate", "grads"), make_cases=_din_backward_cases,
    solution="attention_np.din.din_activation_backward",
    cache_from="din_activation_forward(behaviours, candidate, params)",
    cache_fields=(("h", ("the behaviours e_j, (B, T, D)", "行为 e_j，(B, T, D)")),
                  ("a", ("the candidate e_a, (B, D)", "候选 e_a，(B, D)")),
                  ("z", ("[e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a], (B, T, 4D)",
                         "[e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a]，(B, T, 4D)")),
                  ("u", ("σ(z W₁ + b₁), (B, T, H)", "σ(z W₁ + b₁)，(B, T, H)")),
                  ("W1", ("W₁, (4D, H)", "W₁，(4D, H)")), ("w2", ("w₂, (H,)", "w₂，(H,)"))),
    doc="""Forward: z_j = [e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a],  u_j = σ(z_j W₁ + b₁),  s_j = u_j w₂ + b₂

dscores (B, T) → dbehaviours (B, T, D), dcandidate (B, D),
grads {W1 (4D, H), b1 (H,), w2 (H,), b2 (1,)}.""",
    task=("""Given dscores = ∂L/∂s, walk the activation unit back and return the gradients of
the behaviours, of the candidate and of the four parameters (in a dict keyed like params). The
candidate appears in three of z's four blocks, and in every behaviour's row: its gradient
gathers all of them.""",
          """已知 dscores = ∂L/∂s，把激活单元倒着走一遍，返回行为的梯度、候选的梯度以及四个参数的
梯度（放在一个键与 params 相同的字典里）。候选出现在 z 四块中的三块里，也出现在每个行为的那一行里：
它的梯度要把这些全部收拢起来。"""),
    hints=(("Backwards: dw₂ = Σ u ds, db₂ = Σ ds (shape (1,)); du = ds w₂; through the "
            "sigmoid, u (1 − u); dW₁ = Σ zᵀ (·); dz = (·) W₁ᵀ.",
            "倒着来：dw₂ = Σ u ds，db₂ = Σ ds（形状 (1,)）；du = ds w₂；经过 sigmoid 乘 "
            "u (1 − u)；dW₁ = Σ zᵀ (·)；dz = (·) W₁ᵀ。"),
           ("np.split(dz, 4, axis=-1) gives the four blocks' gradients.",
            "np.split(dz, 4, axis=-1) 给出四块各自的梯度。"),
           ("The candidate's gradient sums over the T behaviours: (…).sum(axis=1).",
            "候选的梯度要对 T 个行为求和：(…).sum(axis=1)。")))

EXERCISES = [LOCATION, DIN_FORWARD, DIN_BACKWARD]
