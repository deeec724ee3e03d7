"""Exercises 6–7: soft attention's backward, and hard attention's REINFORCE estimator."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.hard import hard_attention_backward, hard_attention_forward
from attention_np.soft import soft_attention_backward, soft_attention_forward


def _soft_cases(rng):
    cases = []
    for i, (dtype, masked) in enumerate(SETTINGS):
        B, H, Tq, Tk, Dv = dims(rng, 5)
        lead = (B, H) if i % 2 == 0 else (B,)                          # heads > 1, or none
        scores, values = randn(rng, lead + (Tq, Tk), dtype, 2.0), randn(rng, lead + (Tk, Dv), dtype)
        mask = dead_row_mask(rng, scores.shape) if masked else None
        context, _, cache = soft_attention_forward(scores, values, mask)
        dcontext = randn(rng, context.shape, dtype)
        dscores, dvalues, dalpha = soft_attention_backward(dcontext, cache, return_dweights=True)
        fd = FiniteDiff(lambda scores, values, mask=mask:
                        soft_attention_forward(scores, values, mask)[0],
                        upcast(scores=scores, values=values), dcontext.astype(np.float64),
                        {"dscores": "scores", "dvalues": "values"})
        mistakes = [("equals dα = dc hᵀ, the gradient with respect to the weights: push it "
                     "through the softmax backward, softmax_backward(dα, cache['softmax'])",
                     {"dscores": dalpha})]
        cases.append(Case(
            label(dtype, shape_text(scores=scores, values=values), masked), (dcontext, cache),
            {"dscores": dscores, "dvalues": dvalues}, dtype=dtype, masked=masked, fd=fd,
            dead={} if mask is None else {"dscores": dead_positions(mask, scores.shape)},
            variants=lambda m=mistakes: m))
    return cases


def _hard_mistakes(dcontext, cache, reward):
    r = np.broadcast_to(np.asarray(reward, dtype=np.float64), cache["weights"].shape[:-1])
    onehot = cache["onehot"]
    return [("ignores the reward: multiply by r, one per query (broadcast to (..., Tq, 1))",
             {"dscores": hard_attention_backward(dcontext, cache, 1.0)[0]}),
            ("is −r · onehot(j*): the gradient of log α_j* with respect to the scores also "
             "has −α (∂ log softmax(e)_j / ∂e = onehot(j) − α)",
             {"dscores": (-r[..., None] * onehot).astype(onehot.dtype)})]


def _hard_cases(rng):
    cases = []
    for i, (dtype, masked) in enumerate(SETTINGS):
        B, Tq, Tk, Dv = dims(rng, 4)
        scores, values = randn(rng, (B, Tq, Tk), dtype, 2.0), randn(rng, (B, Tk, Dv), dtype)
        mask = dead_row_mask(rng, scores.shape) if masked else None
        context, _, _, cache = hard_attention_forward(
            scores, values, np.random.default_rng(int(rng.integers(2**31))), mask)
        dcontext = randn(rng, context.shape, dtype)
        per_query = i % 2 == 1
        reward = rng.standard_normal((B, Tq)) if per_query else float(rng.uniform(0.5, 2))
        dscores, dvalues = hard_attention_backward(dcontext, cache, reward)
        cases.append(Case(
            label(dtype, shape_text(scores=scores, values=values), masked,
                  "a reward per query (B, Tq)" if per_query else "one scalar reward"),
            (dcontext, cache, reward), {"dscores": dscores, "dvalues": dvalues},
            dtype=dtype, masked=masked,
            dead={} if mask is None else {"dscores": dead_positions(mask, scores.shape)},
            variants=lambda d=dcontext, c=cache, r=reward: _hard_mistakes(d, c, r)))
    return cases


EXERCISES = [
    Exercise(
        name="soft_attention_backward", title="soft attention's backward", section="§3.1, §4.1",
        signature="soft_attention_backward(dcontext, cache)", outputs=("dscores", "dvalues"),
        make_cases=_soft_cases, solution="attention_np.soft.soft_attention_backward",
        cache_from="soft_attention_forward(scores, values, mask)",
        cache_fields=(("attended", "the weights α, (..., Tq, Tk) (0 at masked keys)"),
                      ("values", "the values h, (..., Tk, Dv)"),
                      ("softmax", "the softmax's cache {'y': α, 'axis': -1}"),
                      ("dropout", "None here (no attention dropout)")),
        doc="""Forward: α = softmax(e) over the Tk keys (masked keys 0),  c = α h

dcontext (..., Tq, Dv) → dscores (..., Tq, Tk), dvalues (..., Tk, Dv).""",
        task="""Soft attention is a weighted average: α = softmax(e) over the keys and
c_i = Σ_j α_ij h_j. Given dcontext = ∂L/∂c, return the gradients of the scores e and of the
values h. Leading axes (batch, heads) can be any number. You may call the library's
softmax_backward (you wrote it in exercise 2).""",
        hints=("c = α h is a batched matrix product: dα = dc hᵀ and dh = αᵀ dc, with ᵀ "
               "swapping the last two axes only.",
               "dα is the gradient with respect to the weights; the scores are one softmax "
               "further back: softmax_backward(dα, cache['softmax']).",
               "Masked keys have α = 0, so the softmax backward gives them de = 0 on its own.")),
    Exercise(
        name="hard_attention_backward", title="hard attention: the REINFORCE estimator",
        section="§3.2", signature="hard_attention_backward(dcontext, cache, reward)",
        outputs=("dscores", "dvalues"), make_cases=_hard_cases,
        solution="attention_np.hard.hard_attention_backward",
        cache_from="hard_attention_forward(scores, values, rng, mask)",
        cache_fields=(("weights", "α = softmax(e), (..., Tq, Tk)"),
                      ("onehot", "onehot(j*) of the sampled key, (..., Tq, Tk); all zeros "
                                 "for a fully masked query (nothing was sampled)"),
                      ("Dv", "the values' feature size"),
                      ("softmax", "the softmax's cache (not needed here)")),
        doc="""Forward: α = softmax(e),  j* ~ α,  c = h_j*.   Return ∂(−r · log α_j*)/∂e and ∂L/∂h.

dcontext (..., Tq, Dv), reward a float or (..., Tq) → dscores (..., Tq, Tk), dvalues
(..., Tk, Dv).""",
        task="""Hard attention samples one key j* ~ α per query and returns its value, c = h_j*.
Sampling has no gradient, so the scores are trained with REINFORCE: for a reward r the
gradient of E[r] is E[r ∇ log α_j*]. We minimise a loss, so return the gradient of
−r · log α_j* for the scores — and for the values the ordinary gradient along the sampled path.
A fully masked query sampled nothing: its gradients are 0. The reward is a scalar or one
number per query. (No finite-difference check here: a sample is not differentiable.)""",
        hints=("∂ log softmax(e)_j / ∂e = onehot(j) − α.",
               "A reward per query has shape (..., Tq): give it a trailing axis, "
               "r[..., None], to scale each query's row of (..., Tq, Tk).",
               "c = onehot h, so dh = onehotᵀ dc (swap the last two axes). A fully masked "
               "query has onehot = 0 and α = 0, so its gradients come out 0 by themselves.",
               "Keep the dtype: a float64 reward times float32 arrays gives float64; cast back.")),
]
