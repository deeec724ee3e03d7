"""The circuit measurements of attention_np.lm.circuits on models built by hand, where the
answer is known: a head that copies has copying score 1 and one that anti-copies −1; a
layer-2 head whose keys read exactly what a layer-1 head writes has K-composition 1 with it and
0 with a head writing elsewhere; the QK circuit gives the model's own attention scores."""
import numpy as np
import pytest

from attention_np.lm import LMConfig, init_lm, lm_forward
from attention_np.lm.circuits import (copying_scores, induction_scores, k_composition,
                                      ov_circuit, previous_token_scores, qk_circuit)

CFG = LMConfig(vocab_size=6, max_len=8, d_model=6, num_heads=2, num_layers=2, mlp=False)


def model(rng=0):
    return init_lm(CFG, np.random.default_rng(rng))


def test_copying_score_is_one_for_a_copying_head_and_minus_one_for_an_inverting_head():
    p = model()
    p["tok_emb.W"] = np.eye(6)                             # token v ↔ direction v, tied
    W_v = np.zeros((6, 6))
    W_o = np.zeros((6, 6))
    W_v[:3, :3] = np.eye(3)                                # head 0 (features 0-2): + identity
    W_o[:3, :3] = np.eye(3)
    W_v[3:, 3:] = np.eye(3)                                # head 1 (features 3-5): − identity
    W_o[3:, 3:] = -np.eye(3)
    p["blocks.0.attn.W_v"], p["blocks.0.attn.W_o"] = W_v, W_o
    scores = copying_scores(p, CFG)
    np.testing.assert_allclose(scores[0], [1.0, -1.0], atol=1e-12)
    assert ov_circuit(p, CFG, 0, 0).shape == (6, 6)
    assert ov_circuit(p, CFG, 0, 0, full=False).shape == (6, 6)


def test_k_composition_is_one_where_keys_read_what_a_head_wrote():
    """Directions of mean zero, so the layer norm's centring (folded into the circuits) keeps
    them: head 0 of layer 1 writes u, head 1 writes w ⟂ u; the keys of layer-2 head 0 read u,
    those of head 1 read w."""
    p = model()
    u = np.array([1.0, -1.0, 0, 0, 0, 0]) / np.sqrt(2)
    w = np.array([0, 0, 0, 0, 1.0, -1.0]) / np.sqrt(2)
    v = np.array([0, 0, 1.0, -1.0, 0, 0]) / np.sqrt(2)
    W_v, W_o = np.zeros((6, 6)), np.zeros((6, 6))
    W_v[:, 0], W_o[0, :] = u, u                            # layer-1 head 0 (features 0-2)
    W_v[:, 3], W_o[3, :] = w, w                            # layer-1 head 1 (features 3-5)
    p["blocks.0.attn.W_v"], p["blocks.0.attn.W_o"] = W_v, W_o
    W_q, W_k = np.zeros((6, 6)), np.zeros((6, 6))
    W_q[:, 0], W_k[:, 0] = v, u                            # layer-2 head 0: keys read u
    W_q[:, 3], W_k[:, 3] = v, w                            # layer-2 head 1: keys read w
    p["blocks.1.attn.W_q"], p["blocks.1.attn.W_k"] = W_q, W_k
    np.testing.assert_allclose(k_composition(p, CFG), np.eye(2), atol=1e-12)


def test_the_norms_centring_is_folded_in():
    """A head writing the all-ones direction writes nothing the next layer can read: the
    layer norm removes each position's mean."""
    p = model()
    W_v, W_o = np.zeros((6, 6)), np.zeros((6, 6))
    W_v[0, 0], W_o[0, :] = 1.0, 1.0                        # layer-1 head 0 writes 𝟙
    p["blocks.0.attn.W_v"], p["blocks.0.attn.W_o"] = W_v, W_o
    assert np.allclose(k_composition(p, CFG)[:, 0], 0.0, atol=1e-12)
    assert np.all(k_composition(p, CFG)[:, 1] == 0.0)       # head 1 writes nothing at all
    assert copying_scores(p, CFG)[0, 1] == 0.0


def test_qk_circuit_gives_the_models_scores_when_the_norm_is_the_identity():
    """With x of mean 0 and unit σ per position, LN₁(x) = γ x + β; with β = 0 the scores are
    x W_QK xᵀ / √Dh plus the key and query biases' terms (zero here)."""
    p = model(1)
    for n in "qkvo":
        p[f"blocks.0.attn.b_{n}"] = np.zeros(6)
    p["blocks.0.ln1.gamma"] = np.linspace(0.5, 1.5, 6)
    x = np.random.default_rng(2).standard_normal((5, 6))
    x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + CFG.eps)
    Dh = 3
    for h in range(2):
        want = x @ qk_circuit(p, CFG, 0, h) @ x.T / np.sqrt(Dh)
        q = (p["blocks.0.ln1.gamma"] * x) @ p["blocks.0.attn.W_q"][:, h * Dh:(h + 1) * Dh]
        k = (p["blocks.0.ln1.gamma"] * x) @ p["blocks.0.attn.W_k"][:, h * Dh:(h + 1) * Dh]
        np.testing.assert_allclose(q @ k.T / np.sqrt(Dh), want, rtol=1e-12)


def test_attention_scores_of_the_model_and_checks():
    ids = np.array([[1, 2, 3, 1, 2, 3, 4]])
    _, weights, _ = lm_forward(ids[:, :-1], model(), CFG, return_weights=True)
    assert induction_scores(weights, 3).shape == previous_token_scores(weights).shape == (2, 2)
    with pytest.raises(ValueError, match="period"):
        induction_scores(weights, 6)
    with pytest.raises(ValueError, match="mlp"):
        copying_scores(init_lm(LMConfig(vocab_size=6, max_len=8, d_model=6, num_heads=2),
                               np.random.default_rng(0)),
                       LMConfig(vocab_size=6, max_len=8, d_model=6, num_heads=2))
    with pytest.raises(ValueError, match="layer"):
        k_composition(model(), CFG, layer=2)
