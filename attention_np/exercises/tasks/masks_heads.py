"""The causal and padding masks (:data:`MASKS`, chapter 6), and splitting and merging attention
heads (:data:`HEADS`, chapter 8)."""
from __future__ import annotations

import numpy as np

from attention_np.core import causal_mask, padding_mask
from attention_np.exercises.data import dims, label, randn, shape_text
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise
from attention_np.self_attention import merge_heads, split_heads

DTYPES = (np.float64, np.float32, np.float64, np.float32)


def _causal_mistakes(Tq, Tk, want):
    found = [(say("masks the diagonal: query i may attend to key i itself (j ≤ i, not j < i)",
                  "把对角线也屏蔽了：查询 i 可以关注键 i 自己（j ≤ i，而不是 j < i）"),
              {"mask": want & ~np.eye(Tq, Tk, dtype=bool)})]
    if Tq != Tk:
        found.append((say("is aligned bottom-right (query i sees keys j ≤ i + Tk − Tq); the "
                          "library's mask is top-left aligned, like torch's is_causal: j ≤ i",
                          "按右下角对齐了（查询 i 能看到 j ≤ i + Tk − Tq 的键）；代码库的掩码"
                          "按左上角对齐，与 torch 的 is_causal 相同：j ≤ i"),
                      {"mask": np.tril(np.ones((Tq, Tk), dtype=bool), Tk - Tq)}))
    return found


def _causal_cases(rng):
    (a, b), T, Tk = dims(rng, 2), int(rng.integers(3, 8)), int(rng.integers(2, 6))
    cases = []
    for args in ((min(a, b), max(a, b)), (max(a, b), min(a, b)), (T,), (1, Tk)):
        want = causal_mask(*args)
        cases.append(Case(f"causal_mask{args}".replace(",)", ")"), args, {"mask": want},
                          variants=lambda Tq=want.shape[0], Tk=want.shape[1], w=want:
                          _causal_mistakes(Tq, Tk, w)))
    return cases


def _padding_mistakes(lengths, T):
    steps, n = np.arange(T)[None, :], lengths[:, None]
    return [(say("has one real position too many: position lengths[b] is already padding (the "
                 "real tokens are 0 … lengths[b] − 1)",
                 "多算了一个真实位置：位置 lengths[b] 已经是填充（真实词元是 0 … lengths[b] − 1）"),
             {"mask": steps <= n}),
            (say("puts the real tokens at the end: they come first, then the padding",
                 "把真实词元放到了末尾：应该先是真实词元，然后才是填充"),
             {"mask": steps >= T - n})]


def _padding_cases(rng):
    cases = []
    for int_type in (np.int64, np.int32, np.int64):
        B, T = dims(rng, 2, 3, 8)
        lengths = rng.integers(0, T + 1, B).astype(int_type)
        lengths[0], lengths[-1] = 0, T                      # an empty row and a full one
        cases.append(Case(f"lengths {lengths.tolist()} ({np.dtype(int_type).name}), T = {T}",
                          (lengths, T), {"mask": padding_mask(lengths, T)},
                          variants=lambda n=lengths, T=T: _padding_mistakes(n, T)))
    return cases


def _split_cases(rng):
    cases = []
    for dtype in DTYPES:
        B, T, H, Dh = dims(rng, 4, 2, 6)
        x = randn(rng, (B, T, H * Dh), dtype)
        mistakes = [
            (say("looks like (B, T, H·Dh) reshaped straight to (B, H, T, Dh): that cuts the time "
                 "axis into heads. Reshape to (B, T, H, Dh) first, then move the head axis",
                 "看起来是把 (B, T, H·Dh) 直接 reshape 成了 (B, H, T, Dh)：这样切开的是时间轴。"
                 "应先 reshape 成 (B, T, H, Dh)，再移动头所在的轴"),
             {"heads": x.reshape(B, H, T, Dh)}),
            (say("gives head h the features h, h + H, h + 2H, …: head h owns the contiguous block "
                 "h·Dh … (h+1)·Dh − 1 (reshape to (B, T, H, Dh), not (B, T, Dh, H))",
                 "把特征 h, h + H, h + 2H, … 分给了头 h：头 h 拥有的是连续的一段 "
                 "h·Dh … (h+1)·Dh − 1（reshape 成 (B, T, H, Dh)，而不是 (B, T, Dh, H)）"),
             {"heads": x.reshape(B, T, Dh, H).transpose(0, 3, 1, 2)})]
        cases.append(Case(label(dtype, shape_text(x=x), None, f"num_heads {H}"), (x, H),
                          {"heads": split_heads(x, H)}, dtype=dtype,
                          variants=lambda m=mistakes: m))
    return cases


def _merge_cases(rng):
    cases = []
    for dtype in DTYPES:
        B, H, T, Dh = dims(rng, 4, 2, 6)
        x = randn(rng, (B, H, T, Dh), dtype)
        mistakes = [
            (say("looks like (B, H, T, Dh) reshaped straight to (B, T, H·Dh): move the head axis "
                 "next to Dh first (transpose to (B, T, H, Dh)), then reshape",
                 "看起来是把 (B, H, T, Dh) 直接 reshape 成了 (B, T, H·Dh)：应先把头所在的轴移到 "
                 "Dh 旁边（transpose 成 (B, T, H, Dh)），再 reshape"),
             {"merged": x.reshape(B, T, H * Dh)}),
            (say("interleaves the heads' features (feature d·H + h): head h's block is features "
                 "h·Dh … (h+1)·Dh − 1, so transpose to (B, T, H, Dh), not (B, T, Dh, H)",
                 "把各个头的特征交错排列了（特征 d·H + h）：头 h 的那一段是特征 "
                 "h·Dh … (h+1)·Dh − 1，所以要 transpose 成 (B, T, H, Dh)，而不是 (B, T, Dh, H)"),
             {"merged": x.transpose(0, 2, 3, 1).reshape(B, T, H * Dh)})]
        cases.append(Case(label(dtype, shape_text(x=x)), (x,), {"merged": merge_heads(x)},
                          dtype=dtype, variants=lambda m=mistakes: m))
    return cases


MASKS = [
    Exercise(
        name="causal_mask", section="§4.3", page="chapters/06-self-attention",
        title=("the causal mask", "因果掩码"),
        signature="causal_mask(Tq, Tk=None)", outputs=("mask",), make_cases=_causal_cases,
        solution="attention_np.core.causal_mask",
        doc="""mask[i, j] = (j ≤ i):  query i may attend to keys 0 … i (top-left aligned)

Tq, Tk ints (Tk = Tq when None) → mask (Tq, Tk) bool, True = may attend.""",
        task=("""A decoder must not look at the future: query i may attend to key j only when
j ≤ i. Return that (Tq, Tk) boolean mask, True where attending is allowed — the library's
convention, the same as torch's scaled_dot_product_attention. When Tq ≠ Tk the mask is aligned
at the top-left corner, like torch's is_causal.""",
              """解码器不能偷看未来：只有当 j ≤ i 时，查询 i 才能关注键 j。返回这个 (Tq, Tk) 的布尔
掩码，允许关注的位置为 True——这是代码库的约定，与 torch 的 scaled_dot_product_attention 相同。
Tq ≠ Tk 时掩码按左上角对齐，与 torch 的 is_causal 一致。"""),
        hints=(("Compare a row of key indices with a column of query indices: "
                "np.arange(Tk)[None, :] <= np.arange(Tq)[:, None] broadcasts to (Tq, Tk).",
                "把一行键的下标和一列查询的下标相比较："
                "np.arange(Tk)[None, :] <= np.arange(Tq)[:, None] 会广播成 (Tq, Tk)。"),
               ("The result must be a bool array (np.tril of np.ones gives floats).",
                "结果必须是 bool 数组（对 np.ones 做 np.tril 得到的是浮点数）。"),
               ("True means 'may attend': the mask of the future is its negation.",
                "True 表示“可以关注”：屏蔽未来的那部分是它的取反。"))),
    Exercise(
        name="padding_mask", section="§4.3", page="chapters/06-self-attention",
        title=("the padding mask", "填充掩码"),
        signature="padding_mask(lengths, T)", outputs=("mask",), make_cases=_padding_cases,
        solution="attention_np.core.padding_mask",
        doc="""mask[b, t] = (t < lengths[b]):  the first lengths[b] positions of row b are real

lengths (B,) ints in [0, T], T an int → mask (B, T) bool, True for real tokens.""",
        task=("""Sentences of different lengths are padded to a common length T. Return the
(B, T) boolean mask that is True at the real tokens — the first lengths[b] positions of row b —
and False at the padding. (To mask the keys of attention it is broadcast as m[:, None, :].)""",
              """长短不一的句子被填充到同一长度 T。返回 (B, T) 的布尔掩码：真实词元处为 True——
即第 b 行的前 lengths[b] 个位置——填充处为 False。（用它屏蔽注意力的键时，要广播成
m[:, None, :]。）"""),
        hints=(("np.arange(T)[None, :] < lengths[:, None] has shape (B, T).",
                "np.arange(T)[None, :] < lengths[:, None] 的形状是 (B, T)。"),
               ("Position lengths[b] itself is the first padding position: use <, not <=.",
                "位置 lengths[b] 本身就是第一个填充位置：用 <，不要用 <=。"),
               ("A row with length 0 is all False; one with length T is all True.",
                "长度为 0 的行全为 False；长度为 T 的行全为 True。"))),
]

HEADS = [
    Exercise(
        name="split_heads", section="§3.4", page="chapters/08-multi-head-attention",
        title=("split into attention heads", "拆分成注意力头"),
        signature="split_heads(x, num_heads)", outputs=("heads",), make_cases=_split_cases,
        solution="attention_np.self_attention.split_heads",
        doc="""(B, T, H·Dh) → (B, H, T, Dh): head h owns features h·Dh … (h+1)·Dh − 1

x (B, T, d) with d = num_heads · Dh → heads (B, H, T, Dh), same dtype.""",
        task=("""Multi-head attention runs H attentions side by side on d/H-dimensional
slices of the features. Split x of shape (B, T, d) into heads of shape (B, H, T, Dh), head h
holding the h-th contiguous block of Dh features (as torch does). Getting the order of the
reshape and the transpose wrong is the bug people report most.""",
              """多头注意力在特征的 d/H 维切片上并排运行 H 个注意力。把形状为 (B, T, d) 的 x
拆成形状为 (B, H, T, Dh) 的注意力头，头 h 拿第 h 段连续的 Dh 个特征（与 torch 相同）。把 reshape
和 transpose 的顺序弄反，是大家最常报告的 bug。"""),
        hints=(("Reshape only splits an axis where it stands: (B, T, d) → (B, T, H, Dh).",
                "reshape 只能就地拆开一个轴：(B, T, d) → (B, T, H, Dh)。"),
               ("Then move the head axis before time: .transpose(0, 2, 1, 3).",
                "然后把头所在的轴移到时间轴前面：.transpose(0, 2, 1, 3)。"),
               ("Reshaping straight to (B, H, T, Dh) gives the right shape and the wrong values.",
                "直接 reshape 成 (B, H, T, Dh)，形状是对的，数值却是错的。"))),
    Exercise(
        name="merge_heads", section="§3.4", page="chapters/08-multi-head-attention",
        title=("merge attention heads", "合并注意力头"),
        signature="merge_heads(x)", outputs=("merged",), make_cases=_merge_cases,
        solution="attention_np.self_attention.merge_heads",
        doc="""(B, H, T, Dh) → (B, T, H·Dh): Concat(head_1, …, head_H) along the features

x (B, H, T, Dh) → merged (B, T, H·Dh), same dtype; the inverse of split_heads.""",
        task=("""After attention, the heads are concatenated along the features:
Concat(head_1, …, head_H). Turn (B, H, T, Dh) back into (B, T, H·Dh), the inverse of
split_heads: merge_heads(split_heads(x, H)) must give x back.""",
              """注意力算完之后，各个头沿特征维拼接起来：Concat(head_1, …, head_H)。把
(B, H, T, Dh) 变回 (B, T, H·Dh)，它是 split_heads 的逆运算：merge_heads(split_heads(x, H))
必须还原出 x。"""),
        hints=(("First put the head axis next to the features: transpose to (B, T, H, Dh).",
                "先把头所在的轴移到特征轴旁边：transpose 成 (B, T, H, Dh)。"),
               ("Then reshape to (B, T, H·Dh): the last two axes fuse into one.",
                "再 reshape 成 (B, T, H·Dh)：最后两个轴合成一个。"),
               ("Round-trip test: merge_heads(split_heads(x, H)) == x.",
                "来回检验：merge_heads(split_heads(x, H)) == x。"))),
]
