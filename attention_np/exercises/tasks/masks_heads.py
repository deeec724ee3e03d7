"""Exercises 8–9, the causal and padding masks (:data:`MASKS`), and 12–13, splitting and merging
attention heads (:data:`HEADS`)."""
from __future__ import annotations

import numpy as np

from attention_np.core import causal_mask, padding_mask
from attention_np.exercises.data import dims, label, randn, shape_text
from attention_np.exercises.spec import Case, Exercise
from attention_np.self_attention import merge_heads, split_heads

DTYPES = (np.float64, np.float32, np.float64, np.float32)


def _causal_mistakes(Tq, Tk, want):
    found = [("masks the diagonal: query i may attend to key i itself (j ≤ i, not j < i)",
              {"mask": want & ~np.eye(Tq, Tk, dtype=bool)})]
    if Tq != Tk:
        found.append(("is aligned bottom-right (query i sees keys j ≤ i + Tk − Tq); the "
                      "library's mask is top-left aligned, like torch's is_causal: j ≤ i",
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
    return [("has one real position too many: position lengths[b] is already padding (the real "
             "tokens are 0 … lengths[b] − 1)", {"mask": steps <= n}),
            ("puts the real tokens at the end: they come first, then the padding",
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
            ("looks like (B, T, H·Dh) reshaped straight to (B, H, T, Dh): that cuts the time "
             "axis into heads. Reshape to (B, T, H, Dh) first, then move the head axis",
             {"heads": x.reshape(B, H, T, Dh)}),
            ("gives head h the features h, h + H, h + 2H, …: head h owns the contiguous block "
             "h·Dh … (h+1)·Dh − 1 (reshape to (B, T, H, Dh), not (B, T, Dh, H))",
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
            ("looks like (B, H, T, Dh) reshaped straight to (B, T, H·Dh): move the head axis "
             "next to Dh first (transpose to (B, T, H, Dh)), then reshape",
             {"merged": x.reshape(B, T, H * Dh)}),
            ("interleaves the heads' features (feature d·H + h): head h's block is features "
             "h·Dh … (h+1)·Dh − 1, so transpose to (B, T, H, Dh), not (B, T, Dh, H)",
             {"merged": x.transpose(0, 2, 3, 1).reshape(B, T, H * Dh)})]
        cases.append(Case(label(dtype, shape_text(x=x)), (x,), {"merged": merge_heads(x)},
                          dtype=dtype, variants=lambda m=mistakes: m))
    return cases


MASKS = [
    Exercise(
        name="causal_mask", title="the causal mask", section="§4.3",
        signature="causal_mask(Tq, Tk=None)", outputs=("mask",), make_cases=_causal_cases,
        solution="attention_np.core.causal_mask",
        doc="""mask[i, j] = (j ≤ i):  query i may attend to keys 0 … i (top-left aligned)

Tq, Tk ints (Tk = Tq when None) → mask (Tq, Tk) bool, True = may attend.""",
        task="""A decoder must not look at the future: query i may attend to key j only when
j ≤ i. Return that (Tq, Tk) boolean mask, True where attending is allowed — the library's
convention, the same as torch's scaled_dot_product_attention. When Tq ≠ Tk the mask is aligned
at the top-left corner, like torch's is_causal.""",
        hints=("Compare a row of key indices with a column of query indices: "
               "np.arange(Tk)[None, :] <= np.arange(Tq)[:, None] broadcasts to (Tq, Tk).",
               "The result must be a bool array (np.tril of np.ones gives floats).",
               "True means 'may attend': the mask of the future is its negation.")),
    Exercise(
        name="padding_mask", title="the padding mask", section="§4.3",
        signature="padding_mask(lengths, T)", outputs=("mask",), make_cases=_padding_cases,
        solution="attention_np.core.padding_mask",
        doc="""mask[b, t] = (t < lengths[b]):  the first lengths[b] positions of row b are real

lengths (B,) ints in [0, T], T an int → mask (B, T) bool, True for real tokens.""",
        task="""Sentences of different lengths are padded to a common length T. Return the
(B, T) boolean mask that is True at the real tokens — the first lengths[b] positions of row b —
and False at the padding. (To mask the keys of attention it is broadcast as m[:, None, :].)""",
        hints=("np.arange(T)[None, :] < lengths[:, None] has shape (B, T).",
               "Position lengths[b] itself is the first padding position: use <, not <=.",
               "A row with length 0 is all False; one with length T is all True.")),
]

HEADS = [
    Exercise(
        name="split_heads", title="split into attention heads", section="§3.4",
        signature="split_heads(x, num_heads)", outputs=("heads",), make_cases=_split_cases,
        solution="attention_np.self_attention.split_heads",
        doc="""(B, T, H·Dh) → (B, H, T, Dh): head h owns features h·Dh … (h+1)·Dh − 1

x (B, T, d) with d = num_heads · Dh → heads (B, H, T, Dh), same dtype.""",
        task="""Multi-head attention runs H attentions side by side on d/H-dimensional
slices of the features. Split x of shape (B, T, d) into heads of shape (B, H, T, Dh), head h
holding the h-th contiguous block of Dh features (as torch does). Getting the order of the
reshape and the transpose wrong is the bug people report most.""",
        hints=("Reshape only splits an axis where it stands: (B, T, d) → (B, T, H, Dh).",
               "Then move the head axis before time: .transpose(0, 2, 1, 3).",
               "Reshaping straight to (B, H, T, Dh) gives the right shape and the wrong values.")),
    Exercise(
        name="merge_heads", title="merge attention heads", section="§3.4",
        signature="merge_heads(x)", outputs=("merged",), make_cases=_merge_cases,
        solution="attention_np.self_attention.merge_heads",
        doc="""(B, H, T, Dh) → (B, T, H·Dh): Concat(head_1, …, head_H) along the features

x (B, H, T, Dh) → merged (B, T, H·Dh), same dtype; the inverse of split_heads.""",
        task="""After attention, the heads are concatenated along the features:
Concat(head_1, …, head_H). Turn (B, H, T, Dh) back into (B, T, H·Dh), the inverse of
split_heads: merge_heads(split_heads(x, H)) must give x back.""",
        hints=("First put the head axis next to the features: transpose to (B, T, H, Dh).",
               "Then reshape to (B, T, H·Dh): the last two axes fuse into one.",
               "Round-trip test: merge_heads(split_heads(x, H)) == x.")),
]
