"""all-MiniLM-L6-v2 on attention_np layers against Hugging Face transformers (the reference).

* one BERT layer (our encoder block, post-LN with GELU) and the pooling, on random weights and
  Hypothesis-drawn shapes, against ``transformers``' ``BertLayer`` and torch autograd, plus
  finite differences;
* the relevance rule by hand.
The pretrained model itself: tests/test_minilm_pretrained.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.models.minilm_explain import gradient_weighted_relevance, input_saliency
from attention_np.models.minilm_layers import l2_normalize_backward, l2_normalize_forward
from attention_np.nn.layers import masked_mean_backward, masked_mean_forward
from attention_np.transformer import EncoderConfig, encoder_block_backward, encoder_block_forward
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import examples, seeds

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


# --- one layer on random weights -------------------------------------------------------------

def tiny_bert_layer(d=12, heads=3, inner=20, seed=0):
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=d, num_attention_heads=heads, intermediate_size=inner,
                     layer_norm_eps=1e-12)
    cfg._attn_implementation = "eager"
    layer = BertLayer(cfg).double().eval()
    for p in layer.parameters():   # LayerNorm starts at γ = 1, β = 0: make every weight random
        torch.nn.init.normal_(p, std=0.3)
    return layer


# what MiniLMConfig.from_json gives as its encoder, at the size of tiny_bert_layer
TINY = EncoderConfig(d_model=12, num_heads=3, d_ff=20, activation="gelu", eps=1e-12)


def layer_params(layer):
    from attention_np.models.minilm import hf_layer_params
    return hf_layer_params({k: v.detach().numpy() for k, v in layer.state_dict().items()},
                           dtype=np.float64)


@examples(ci=8, thorough=1_000)   # ~60 ms an example (a BERT layer through transformers)
@given(B=st.integers(1, 3), T=st.integers(2, 7), seed=seeds)
def test_bert_layer_matches_transformers(B, T, seed):
    rng = np.random.default_rng(seed)
    layer = tiny_bert_layer(seed=seed % 1000)
    p = layer_params(layer)
    lengths = rng.integers(1, T + 1, size=B)
    mask = np.arange(T)[None, :] < lengths[:, None]                          # (B, T)
    x = rng.standard_normal((B, T, 12))

    def ours(x, W_1, W_q):
        q = {**p, "ffn.W_1": W_1, "attn.W_q": W_q}
        y, _, cache = encoder_block_forward(x, q, TINY, mask[:, None, None, :])

        def backward(dy):
            dx, g = encoder_block_backward(dy, cache)
            return {"x": dx, "W_1": g["ffn.W_1"], "W_q": g["attn.W_q"]}
        return y, backward

    def theirs(x, W_1, W_q):
        additive = torch.from_numpy(np.where(mask, 0.0, -1e30)[:, None, None, :])
        weights = {"intermediate.dense.weight": W_1.T, "attention.self.query.weight": W_q.T}
        return torch.func.functional_call(layer, weights, (x,), {"attention_mask": additive})

    assert_matches_torch("bert_layer", ours, theirs,
                         {"x": x, "W_1": p["ffn.W_1"].copy(), "W_q": p["attn.W_q"].copy()},
                         grad_wrt=["x", "W_1", "W_q"], seed=seed)


def test_bert_layer_finite_differences():
    p = layer_params(tiny_bert_layer())
    rng = np.random.default_rng(1)
    mask = np.array([[True] * 5, [True, True, True, False, False]])[:, None, None, :]

    def ours(x, W_2):
        y, _, cache = encoder_block_forward(x, {**p, "ffn.W_2": W_2}, TINY, mask)

        def backward(dy):
            dx, g = encoder_block_backward(dy, cache)
            return {"x": dx, "W_2": g["ffn.W_2"]}
        return y, backward

    check_finite_differences(ours, {"x": rng.standard_normal((2, 5, 12)),
                                    "W_2": p["ffn.W_2"].copy()}, ["x", "W_2"])


def pool_ours(mask):
    def ours(hidden):
        s, c_pool = masked_mean_forward(hidden, mask)
        u, c_norm = l2_normalize_forward(s)
        return u, lambda du: {"hidden": masked_mean_backward(l2_normalize_backward(du, c_norm),
                                                           c_pool)}
    return ours


@examples(ci=20, thorough=10_000)
@given(B=st.integers(1, 4), T=st.integers(1, 6), seed=seeds)
def test_mean_pool_and_normalize(B, T, seed):
    rng = np.random.default_rng(seed)
    mask = np.arange(T)[None, :] < rng.integers(1, T + 1, size=(B, 1))

    def theirs(hidden):
        m = torch.from_numpy(mask).double()[..., None]
        return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)

    hidden = rng.standard_normal((B, T, 7))
    assert_matches_torch("mean_pool+l2_normalize", pool_ours(mask), theirs, {"hidden": hidden},
                         grad_wrt=["hidden"], seed=seed)
    check_finite_differences(pool_ours(mask), {"hidden": hidden}, ["hidden"], seed=seed)


def test_relevance_rule():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(4), size=(2, 3, 4))                            # (L, H, T, T)
    g = rng.standard_normal(a.shape)
    assert np.array_equal(gradient_weighted_relevance(a, np.zeros_like(a)), np.eye(4))
    cams = [np.maximum(g[l] * a[l], 0).mean(axis=0) for l in range(2)]
    expected = (np.eye(4) + cams[1]) @ (np.eye(4) + cams[0])                  # R ← (I + Ā_l) R
    np.testing.assert_allclose(gradient_weighted_relevance(a, g), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="dattentions"):
        gradient_weighted_relevance(a, g[:, :, :3])
    x, dx = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(input_saliency(x, dx), np.abs((x * dx).sum(axis=1)))
