"""Exercises 10–11: scaled dot-product attention, forward and backward."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)

sdpa_forward = scaled_dot_product_attention_forward
sdpa_backward = scaled_dot_product_attention_backward


def attention_inputs(rng):
    """(q, k, v, mask, causal, dtype, masked): the four standard settings on (B, H, T, D) heads
    with Tq ≠ Tk and a (B, 1, Tq, Tk) mask, then a causal case on (B, T, D) without heads."""
    for dtype, masked in SETTINGS:
        B, H, Tq, Tk, D, Dv = dims(rng, 6, 2, 8)
        D = D + 1 if D < 3 else D                                       # √D far from 1
        q, k, v = (randn(rng, s, dtype) for s in ((B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, Dv)))
        mask = dead_row_mask(rng, (B, 1, Tq, Tk)) if masked else None
        yield q, k, v, mask, False, dtype, masked
    B, Tq, Tk, D = dims(rng, 4, 3, 8)
    q, k, v = (randn(rng, s) for s in ((B, Tq, D), (B, Tk, D), (B, Tk, D + 1)))
    yield q, k, v, None, True, np.dtype(np.float64), False


def row_dead(mask, weights_shape, out_shape) -> np.ndarray:
    """True at every entry of an output row (…, Tq, ·) whose query has no key."""
    return np.broadcast_to(dead_positions(mask, weights_shape)[..., :1], out_shape)


def _label(q, k, v, mask, causal, dtype, masked):
    return label(dtype, shape_text(q=q, k=k, v=v), masked, "causal=True" if causal else "")


def _forward_mistakes(q, k, v, mask, causal):
    D, run = q.shape[-1], lambda q, m, c: dict(zip(("out", "weights"), sdpa_forward(q, k, v, m, c)))
    found = [("equals attention without the 1/√D scale (scores q kᵀ instead of q kᵀ/√D)",
              run((q * np.sqrt(D)).astype(q.dtype), mask, causal)),
             ("equals attention with the scores divided by D instead of √D",
              run((q / np.sqrt(D)).astype(q.dtype), mask, causal))]
    if mask is not None:
        found.append(("equals attention with the mask ignored: masked keys must get weight 0 "
                      "(−inf before the softmax)", run(q, None, causal)))
    if causal:
        found.append(("ignores causal=True: query i must not see the keys j > i",
                      run(q, mask, False)))
    return found


def _forward_cases(rng):
    cases = []
    for q, k, v, mask, causal, dtype, masked in attention_inputs(rng):
        out, weights, _ = sdpa_forward(q, k, v, mask, causal)
        dead = {} if mask is None else {"weights": dead_positions(mask, weights.shape),
                                        "out": row_dead(mask, weights.shape, out.shape)}
        cases.append(Case(
            _label(q, k, v, mask, causal, dtype, masked), (q, k, v),
            {"out": out, "weights": weights}, kwargs={"mask": mask, "causal": causal},
            dtype=dtype, masked=masked, dead=dead, scale_dim=q.shape[-1],
            variants=lambda a=(q, k, v, mask, causal): _forward_mistakes(*a)))
    return cases


def _backward_mistakes(q, k, v, mask, causal, dout):
    """The gradients of attention without its mask, or without its causal triangle: what a
    softmax recomputed from q and k (instead of the cache's weights) gives."""
    def grads(m, c):
        return dict(zip(("dq", "dk", "dv"), sdpa_backward(dout, sdpa_forward(q, k, v, m, c)[2])))
    use_cache = ("use the weights in the cache (cache['soft']['attended'], 0 at masked keys) "
                 "rather than a softmax recomputed from q and k")
    found = []
    if mask is not None:
        found.append((f"is the gradient of attention without the mask: {use_cache}",
                      grads(None, causal)))
    if causal:
        found.append((f"is the gradient of attention without the causal mask: {use_cache}",
                      grads(mask, False)))
    return found


def _backward_cases(rng):
    cases = []
    for q, k, v, mask, causal, dtype, masked in attention_inputs(rng):
        out, weights, cache = sdpa_forward(q, k, v, mask, causal)
        dout = randn(rng, out.shape, dtype)
        dq, dk, dv = sdpa_backward(dout, cache)
        fd = FiniteDiff(lambda q, k, v, m=mask, c=causal: sdpa_forward(q, k, v, m, c)[0],
                        upcast(q=q, k=k, v=v), dout.astype(np.float64),
                        {"dq": "q", "dk": "k", "dv": "v"})
        mistakes = _backward_mistakes(q, k, v, mask, causal, dout)
        cases.append(Case(
            _label(q, k, v, mask, causal, dtype, masked), (dout, cache),
            {"dq": dq, "dk": dk, "dv": dv}, dtype=dtype, masked=masked, fd=fd,
            dead={} if mask is None else {"dq": row_dead(mask, weights.shape, dq.shape)},
            scale_dim=q.shape[-1], variants=lambda m=mistakes: m))
    return cases


EXERCISES = [
    Exercise(
        name="scaled_dot_product_attention_forward",
        title="scaled dot-product attention, forward", section="§3.3, §4.2",
        signature="scaled_dot_product_attention_forward(q, k, v, mask=None, causal=False)",
        outputs=("out", "weights", "cache"), graded=("out", "weights"),
        make_cases=_forward_cases,
        solution="attention_np.self_attention.scaled_dot_product_attention_forward",
        doc="""out = softmax(q kᵀ / √D, masked) v

q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv), mask boolean broadcastable to (..., Tq, Tk)
(True = may attend) or None, causal: query i sees keys j ≤ i
→ out (..., Tq, Dv), weights (..., Tq, Tk), cache (anything; not graded).""",
        task="""Write the attention of the Transformer: scores e = q kᵀ/√D, weights
α = softmax(e) over the keys (masked keys get 0, a query with no key gets an all-zero row),
out = α v. Leading axes (batch, heads) can be any number; with causal=True query i may not
see the keys after it. Return the weights too — the figures of the article are pictures of
them. (The library's version also takes backend, dropout_p and rng; leave those out.)""",
        hints=("Divide by √D, D = q.shape[-1], the size of a query: without it the softmax "
               "saturates as D grows.",
               "Combine the masks with &: your causal_mask(Tq, Tk) broadcasts against a "
               "(..., Tq, Tk) mask.",
               "Reuse your softmax_forward (or the library's) for the masked softmax.")),
    Exercise(
        name="scaled_dot_product_attention_backward",
        title="scaled dot-product attention, backward", section="§3.3, §4.2",
        signature="scaled_dot_product_attention_backward(dout, cache)",
        outputs=("dq", "dk", "dv"), make_cases=_backward_cases,
        solution="attention_np.self_attention.scaled_dot_product_attention_backward",
        cache_from="scaled_dot_product_attention_forward(q, k, v, mask, causal)",
        cache_fields=(("q", "the queries, (..., Tq, D)"), ("k", "the keys, (..., Tk, D)"),
                      ("scale", "1/√D, in q's dtype"),
                      ("soft", "soft attention's cache (exercise 6): {'attended': α, "
                               "'values': v, 'softmax': {...}, 'dropout': None}"),
                      ("backend", "'numpy'"), ("out_shape", "the shape of out")),
        doc="""Forward: e = s · q kᵀ (s = 1/√D),  α = softmax(e) (masked),  out = α v

dout (..., Tq, Dv) → dq (..., Tq, D), dk (..., Tk, D), dv (..., Tk, Dv).""",
        task="""Given dout = ∂L/∂out, return the gradients of q, k and v. Walk the forward
backwards: the soft attention part (you wrote its backward in exercise 6 — call it, or the
library's soft_attention_backward, on cache['soft']), then the scaled scores e = s · q kᵀ.
The mask and the causal triangle are already in α: masked keys have α = 0.""",
        hints=("soft_attention_backward(dout, cache['soft']) returns (de, dv).",
               "e = s · q kᵀ: the scale s multiplies both dq and dk.",
               "dk = s · deᵀ q, with ᵀ swapping the last two axes: (..., Tk, Tq) @ (..., Tq, D).")),
]
