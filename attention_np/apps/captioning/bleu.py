"""Corpus BLEU (Papineni et al. 2002), one reference per candidate, no smoothing.

    p_n  = Σ_c Σ_{g ∈ n-grams(c)} min(count_c(g), count_ref(g)) / Σ_c |n-grams(c)|
    BP   = 1 if C > R else exp(1 − R / C)       (C, R: total candidate / reference length)
    BLEU = BP · exp( Σ_{n=1}^{N} (1/N) log p_n )

Counts are pooled over the corpus before dividing (corpus BLEU, as reported in papers), so
short captions without 4-grams still count for n < 4. If some p_n is 0, BLEU is 0.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                max_n: int = 4) -> float:
    """BLEU-``max_n`` of tokenised candidates against one tokenised reference each, in [0, 1]."""
    if len(candidates) != len(references):
        raise ValueError(f"need one reference per candidate, got {len(candidates)} candidates "
                         f"and {len(references)} references")
    matches, totals = [0] * max_n, [0] * max_n
    for cand, ref in zip(candidates, references):
        for n in range(1, max_n + 1):
            c, r = _ngrams(cand, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(k, r[g]) for g, k in c.items())
            totals[n - 1] += max(len(cand) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    C = sum(len(c) for c in candidates)
    R = sum(len(r) for r in references)
    brevity = 1.0 if C > R else math.exp(1 - R / C)
    return brevity * math.exp(log_p)
