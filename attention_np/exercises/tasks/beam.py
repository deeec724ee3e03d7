"""One step of beam search with GNMT's length penalty (chapter 11, machine translation)."""
from __future__ import annotations

import numpy as np

from attention_np.decoding import beam_step
from attention_np.exercises.data import label
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise

OUTPUTS = ("parent", "token", "score", "lengths")


def _beam_step_with(score, lengths, finished, log_probs, end, alpha, penalty=True,
                    new_length=True, frozen=True, grow_finished=False, gnmt=True):
    """beam_step with the knobs of its usual mistakes → {output: value}."""
    B, K, V = log_probs.shape
    logp = log_probs.copy()
    if frozen:
        logp[finished] = -np.inf
        logp[finished, end] = 0.0
    cand = (score[:, :, None] + logp).reshape(B, K * V)
    grown = lengths + (1 if grow_finished else ~finished)
    counted = grown if new_length else lengths
    lp = ((5.0 + counted) / 6.0) ** alpha if gnmt else np.maximum(counted, 1.0) ** alpha
    rank = cand / np.repeat(lp[:, :, None], V, axis=2).reshape(B, K * V) if penalty else cand
    top = np.argsort(-rank, axis=1, kind="stable")[:, :K]
    parent = top // V
    return dict(zip(OUTPUTS, (parent, top % V, np.take_along_axis(cand, top, axis=1),
                              np.take_along_axis(grown, parent, axis=1))))


def _mistakes(args):
    alpha = args[-1]
    found = [(say("extends a finished beam by other tokens: once a beam has emitted `end` it "
                  "can only be followed by `end` again, at no cost (log p = 0)",
                  "给已结束的束接上了别的词元：一个束一旦输出了 `end`，后面只能再接 `end`，"
                  "而且不计代价（log p = 0）"), _beam_step_with(*args, frozen=False)),
             (say("counts the free `end` of a finished beam: a finished beam keeps its length",
                  "把已结束的束后面那个免费的 `end` 也算进了长度：已结束的束保持原来的长度"),
              _beam_step_with(*args, grow_finished=True))]
    if alpha:
        found += [(say("ranks by Σ log p, ignoring the length penalty: rank the candidates by "
                       "Σ log p / ((5 + |Y|) / 6)^α", "按 Σ log p 排序，忽略了长度惩罚：候选应按 "
                       "Σ log p / ((5 + |Y|) / 6)^α 排序"), _beam_step_with(*args, penalty=False)),
                  (say("divides by the penalty of the length before the new token: a live "
                       "beam's candidate has |Y| + 1 tokens", "除以的是加上新词元之前那个长度的"
                       "惩罚：活着的束的候选有 |Y| + 1 个词元"),
                   _beam_step_with(*args, new_length=False)),
                  (say("divides by |Y|^α: GNMT's penalty is ((5 + |Y|) / 6)^α",
                       "除以的是 |Y|^α：GNMT 的惩罚是 ((5 + |Y|) / 6)^α"),
                   _beam_step_with(*args, gnmt=False))]
    return found


def _state(rng, B, K, V, first, dtype):
    """A search in progress: (score, lengths, finished, log_probs)."""
    log_probs = np.log(rng.dirichlet(np.full(V, 0.7), size=(B, K))).astype(dtype)
    if first:
        score = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], (B, 1)).astype(dtype)
        return score, np.zeros((B, K), np.int64), np.zeros((B, K), bool), log_probs
    lengths = rng.integers(1, 7, (B, K))
    score = (-rng.uniform(0.3, 1.2, (B, K)) * lengths).astype(dtype)
    finished = rng.random((B, K)) < 0.4
    finished[0, 0] = True
    return score, lengths, finished, log_probs


def _cases(rng):
    cases = []
    for dtype, alpha, first in ((np.float64, 0.0, True), (np.float64, 0.6, False),
                                (np.float32, 1.0, False), (np.float32, 0.0, False),
                                (np.float64, 0.8, True)):
        B, K, V = 2 + int(rng.integers(0, 3)), 2 + int(rng.integers(0, 3)), 5 + int(rng.integers(0, 4))
        end = int(rng.integers(0, V))
        score, lengths, finished, log_probs = _state(rng, B, K, V, first, dtype)
        args = (score, lengths, finished, log_probs, end, alpha)
        what = say("the first step (one live beam)", "第一步（只有一个活着的束）") if first else \
            say(f"{int(finished.sum())} finished beams", f"{int(finished.sum())} 个束已结束")
        cases.append(Case(
            label(dtype, f"B = {B}, K = {K}, V = {V}", None, f"end = {end}", f"α = {alpha:g}",
                  what), (score, lengths, finished, log_probs, end),
            dict(zip(OUTPUTS, beam_step(*args))), kwargs={"length_penalty": alpha},
            dtype=np.dtype(dtype), variants=lambda a=args: _mistakes(a)))
    return cases


BEAM_STEP = Exercise(
    name="beam_step", section="§6.1", page="chapters/11-projects/translation",
    title=("one step of beam search, with GNMT's length penalty",
           "束搜索的一步，带 GNMT 的长度惩罚"),
    signature="beam_step(score, lengths, finished, log_probs, end, length_penalty=0.0)",
    outputs=OUTPUTS, make_cases=_cases, solution="attention_np.decoding.beam_step",
    forbidden=("attention_np.decoding.beam_step_core",),
    doc="""candidates: beam k extended by token v, Σ log p = score[k] + log_probs[k, v]
(a finished beam: only by `end`, at no cost, keeping its length; a live one grows by 1);
keep the K best by  Σ log p / lp(|Y|),  lp(|Y|) = ((5 + |Y|) / 6)^α

score (B, K) float (−inf: an impossible beam), lengths (B, K) int, finished (B, K) bool,
log_probs (B, K, V) float, end an int, length_penalty α ≥ 0
→ parent (B, K) int, token (B, K) int, score (B, K) (Σ log p, not divided by lp),
lengths (B, K) int. Ties: the lower beam, then the lower token (a stable sort).""",
    task=("""Beam search keeps the K most probable prefixes of the translation. One step:
extend each beam by every token of the vocabulary, score each candidate by its summed log
probability, and keep the K best per row. Every token adds a log p ≤ 0, so plain beam search
prefers short outputs; GNMT (Wu et al., 2016) ranks by Σ log p / ((5 + |Y|) / 6)^α instead,
|Y| the number of tokens. A beam that has emitted `end` is finished: it can only be extended by
`end`, at no cost, and keeps its length. Return, for each survivor, the beam it extends, its
new token, its Σ log p and its length.""",
          """束搜索保留译文中概率最大的 K 个前缀。一步是这样的：把每个束用词表中的每个词元延长一格，
用对数概率之和给每个候选打分，每行保留最好的 K 个。每个词元都会加上一个 ≤ 0 的 log p，所以普通的
束搜索偏爱短的输出；GNMT（Wu et al., 2016）改用 Σ log p / ((5 + |Y|) / 6)^α 排序，|Y| 是词元个数。
输出过 `end` 的束就结束了：它只能再接 `end`，不计代价，长度也不变。对每个留下来的候选，返回它所延长
的束、它的新词元、它的 Σ log p 和它的长度。"""),
    hints=(("Put the candidates of a row side by side: (score[:, :, None] + log_probs) reshaped "
            "to (B, K·V); candidate c extends beam c // V by token c % V.",
            "把一行的候选并排放：(score[:, :, None] + log_probs) reshape 成 (B, K·V)；候选 c "
            "延长的是束 c // V，新词元是 c % V。"),
           ("For a finished beam, replace its log_probs row by −inf everywhere but 0 at `end`.",
            "对已结束的束，把它那一行 log_probs 全部换成 −inf，只在 `end` 处为 0。"),
           ("Rank by the penalised score but return Σ log p: np.argsort(-rank, axis=1, "
            "kind='stable')[:, :K] keeps the ties in order.",
            "按加了惩罚的得分排序，但返回的是 Σ log p：np.argsort(-rank, axis=1, "
            "kind='stable')[:, :K] 能让相等的候选保持原有顺序。"),
           ("np.take_along_axis(x, top, axis=1) picks each survivor's value out of (B, K·V).",
            "np.take_along_axis(x, top, axis=1) 从 (B, K·V) 中取出每个留下来的候选的值。")))

EXERCISES = [BEAM_STEP]
