"""Deletion / insertion faithfulness of explanations of the sentiment classifier.

The output watched is p_c: the probability of the class c the model predicts for the whole
sentence. Words are deleted from the sentence ([CLS] stays; the words left keep their order and
take consecutive positions), and each explanation scores the words from the attention of the
[CLS] query — the only row the classifier reads — and the gradients ∂p_c/∂A
(demos/_faithfulness.py).
"""
from __future__ import annotations

import numpy as np

from attention_np.apps.sentiment import sentiment_backward, sentiment_forward
from attention_np.core import softmax_backward, softmax_forward
from demos._faithfulness import sentence_curves, summarise, token_scores
from demos._progress import progress


def class_probability(params, config, cls_id: int, words, c: int):
    """output(keep (M, n) bool) → (M,) p_c of [CLS] + the kept ``words`` (n ids)."""
    words = np.asarray(words)

    def output(keep):
        lengths = keep.sum(axis=1) + 1                                    # [CLS] counts
        ids = np.zeros((len(keep), int(lengths.max())), dtype=np.int64)
        ids[:, 0] = cls_id
        for m, k in enumerate(keep):
            ids[m, 1:lengths[m]] = words[k]
        logits, _, _ = sentiment_forward(ids, lengths, params, config)
        return softmax_forward(logits.astype(np.float64))[0][:, c]
    return output


def attention_and_gradients(params, config, ids):
    """One sentence ids (T,) → predicted class c, attentions and ∂p_c/∂A, each (L, H, T, T)."""
    ids = np.asarray(ids)[None]                                           # (1, T)
    logits, weights, cache = sentiment_forward(ids, np.array([ids.shape[1]]), params, config)
    p, p_cache = softmax_forward(logits)                                  # (1, C)
    c = int(p[0].argmax())
    onehot = np.zeros_like(p)
    onehot[0, c] = 1.0
    _, dweights = sentiment_backward(softmax_backward(onehot, p_cache), cache,
                                     return_dweights=True)
    return c, np.stack([w[0] for w in weights]), np.stack([d[0] for d in dweights])


def sentiment_faithfulness(params, config, split, n: int, seed: int = 0) -> dict:
    """Mean AUCs and curves over the first ``n`` sentences of ``split``."""
    rng = np.random.default_rng(seed)
    curves, n = [], min(n, len(split))
    with progress(n, "  faithfulness", unit="sentence") as bar:
        for i in range(n):
            ids = split.ids[i, :split.lengths[i]]                         # [CLS] w_1 … w_n
            c, attn, dattn = attention_and_gradients(params, config, ids)
            scores = token_scores(attn, dattn, [0], rng)
            output = class_probability(params, config, int(ids[0]), ids[1:], c)
            curves.append(sentence_curves(output, {k: s[1:] for k, s in scores.items()}))
            bar.update()
    return summarise(curves)
