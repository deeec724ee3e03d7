"""Deletion / insertion faithfulness of explanations of MiniLM's sentence similarity.

For a pair (a, b) the output is y = cos(u(a'), u(b)): a' is sentence a with some of its
WordPiece tokens deleted ([CLS] and [SEP] always stay), u the mean-pooled, L2-normalised
embedding. Each explanation scores a's tokens from the attention maps of a and the gradients
∂y/∂A of y at the whole sentence (demos/_faithfulness.py); the scores are averaged over every
query row, because the embedding pools every token.
"""
from __future__ import annotations

import numpy as np

from attention_np.models.minilm import pad_batch
from attention_np.models.minilm_explain import similarity_with_grads
from attention_np.models.minilm_layers import l2_normalize_forward
from attention_np.nn.layers import masked_mean_forward
from demos._faithfulness import sentence_curves, summarise, token_scores
from demos._progress import progress


def similarity_output(model, ids, u_b, batch: int = 64):
    """output(keep (M, n) bool) → (M,) cos(u(a'), u_b), a' = [CLS] + kept inner ids + [SEP]."""
    inner = np.asarray(ids)[1:-1]

    def output(keep):
        values = []
        for s in range(0, len(keep), batch):
            seqs = [np.concatenate([ids[:1], inner[k], ids[-1:]]) for k in keep[s:s + batch]]
            padded, mask = pad_batch(seqs)
            hidden, _, _ = model.forward_batch(padded, mask)                # (M, T, d)
            pooled, _ = masked_mean_forward(hidden, mask)                   # (M, d)
            values.append(l2_normalize_forward(pooled)[0] @ u_b)
        return np.concatenate(values)
    return output


def pair_curves(model, a: str, b: str, rng) -> dict:
    """Every method's deletion and insertion curves for sentence ``a`` compared with ``b``."""
    g = similarity_with_grads(model, a, b)
    ids, _ = model.tokenize(a)
    T = len(ids)
    scores = token_scores(g["attentions"][0], g["dattentions"][0], np.arange(T), rng)
    inner = {name: s[1:-1] for name, s in scores.items()}                  # deletable tokens
    u_b = model.encode([b])[0]
    return sentence_curves(similarity_output(model, ids, u_b), inner)


def minilm_faithfulness(model, pairs, seed: int = 0) -> dict:
    """Mean AUCs and curves over ``pairs`` (see demos/_faithfulness.summarise)."""
    rng = np.random.default_rng(seed)
    curves = []
    with progress(len(pairs), "  faithfulness (MiniLM)", unit="pair") as bar:
        for a, b in pairs:
            curves.append(pair_curves(model, a, b, rng))
            bar.update()
    return summarise(curves)
