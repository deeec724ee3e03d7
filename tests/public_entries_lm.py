"""The decoder-only LM's public entries (attention_np.lm) for the bad-input table
(tests/test_bad_input.py collects this module through tests/bad_input_table.py).

Letters as in tests/public_entries.py: V vocabulary, S max_len, M d_model, H heads, F d_ff; all
are fixed by the literal ``cfg`` too (``tied``). The model has one block, with its MLP and an
untied unembedding, so every kind of parameter is fuzzed.
"""
from __future__ import annotations

import numpy as np

from attention_np import lm, transformer as tr
from attention_np.lm import circuits
from tests.public_entries import BLOCK, DIMS, Entry, Fresh, _cache_bwd

CFG = lm.LMConfig(vocab_size=DIMS["V"], max_len=DIMS["S"], d_model=2 * DIMS["H"],
                  num_heads=DIMS["H"], num_layers=1, d_ff=DIMS["F"], tied=False)
PARAMS = {"tok_emb.W": "f:VM", "pos_emb.W": "f:SM", "ln_f.gamma": "f:M", "ln_f.beta": "f:M",
          "head.W": "f:MV"} | {f"blocks.0.{k}": v for k, v in BLOCK.items()}
TIED = "VSMHF"


def _rng():
    return np.random.default_rng(0)


def _params():
    return lm.init_lm(CFG, _rng())


def _attention_only():
    return lm.init_lm(ATTENTION_ONLY, _rng())


ATTENTION_ONLY = lm.LMConfig(vocab_size=DIMS["V"], max_len=DIMS["S"], d_model=2 * DIMS["H"],
                             num_heads=DIMS["H"], num_layers=1, d_ff=DIMS["F"], mlp=False,
                             tied=False)


ENTRIES = [
    Entry("lm", lm.lm_forward, {"ids": "iV:BT", "params": PARAMS, "cfg": CFG},
          _cache_bwd(lm.lm_backward), tied=TIED, saturating=True),        # relu(−inf) = 0
    Entry("lm_loss_and_grads", lm.lm_loss_and_grads,
          {"ids": "iV:BT", "params": PARAMS, "cfg": CFG}, tied=TIED, saturating=True),
    Entry("lm_step", lm.lm_step, {"new_ids": "iV:BT", "params": PARAMS, "cfg": CFG,
                                  "kv": Fresh(lambda: lm.init_kv_cache(CFG, DIMS["B"]))},
          tied=TIED + "B", saturating=True),
]

# (id, the public function the row exercises, the call, names its message may give)
CALLS = [
    ("LMConfig-num_heads", lm.LMConfig, lambda: lm.LMConfig(d_model=6, num_heads=4),
     ["num_heads"]),
    ("LMConfig-backend", lm.LMConfig, lambda: lm.LMConfig(backend="cuda"), ["backend"]),
    ("init_lm-cfg", lm.init_lm, lambda: lm.init_lm(None, _rng()), ["cfg"]),
    ("init_lm-rng", lm.init_lm, lambda: lm.init_lm(CFG, None), ["rng"]),
    ("init_kv_cache-batch", lm.init_kv_cache, lambda: lm.init_kv_cache(CFG, 0), ["batch"]),
    ("lm_step-kv", lm.lm_step,
     lambda: lm.lm_step(np.zeros((2, 1), int), _params(), CFG, None), ["kv"]),
    ("generate-prompt_ids", lm.generate,
     lambda: lm.generate(_params(), CFG, np.zeros((2, 3)), 2), ["prompt_ids"]),
    ("generate-max_new_tokens", lm.generate,
     lambda: lm.generate(_params(), CFG, np.zeros((2, 3), int), -1), ["max_new_tokens"]),
    ("generate-max_len", lm.generate,
     lambda: lm.generate(_params(), CFG, np.zeros((2, 3), int), DIMS["S"]),
     ["max_len", "max_new_tokens"]),
    ("generate-temperature", lm.generate,
     lambda: lm.generate(_params(), CFG, np.zeros((2, 3), int), 2, temperature=-1.0),
     ["temperature"]),
    ("generate-rng", lm.generate,
     lambda: lm.generate(_params(), CFG, np.zeros((2, 3), int), 2, temperature=1.0), ["rng"]),
    ("generate-params", lm.generate,
     lambda: lm.generate({}, CFG, np.zeros((2, 3), int), 2), ["params"]),
    ("cached_attention-length", lm.cached_attention,
     lambda: lm.cached_attention(np.ones((1, 2, 1, 3)), np.ones((1, 2, 1, 3)),
                                 np.ones((1, 2, 1, 3)), np.zeros((1, 2, 4, 3)),
                                 np.zeros((1, 2, 4, 3)), -1), ["length"]),
    ("cached_attention-k_cache", lm.cached_attention,
     lambda: lm.cached_attention(np.ones((1, 2, 1, 3)), np.ones((1, 2, 1, 3)),
                                 np.ones((1, 2, 1, 3)), np.zeros((1, 3, 4, 3)),
                                 np.zeros((1, 3, 4, 3)), 0), ["k_cache"]),
    ("induction_scores-period", circuits.induction_scores,
     lambda: circuits.induction_scores([np.full((1, 2, 4, 4), 0.25)], 4), ["period"]),
    ("previous_token_scores-weights", circuits.previous_token_scores,
     lambda: circuits.previous_token_scores([np.ones((2, 4, 4))]), ["weights"]),
    ("qk_circuit-head", circuits.qk_circuit,
     lambda: circuits.qk_circuit(_attention_only(), ATTENTION_ONLY, 0, 5), ["head"]),
    ("ov_circuit-layer", circuits.ov_circuit,
     lambda: circuits.ov_circuit(_attention_only(), ATTENTION_ONLY, 3, 0), ["layer"]),
    ("copying_scores-cfg", circuits.copying_scores,
     lambda: circuits.copying_scores(lm.init_lm(CFG, _rng()), CFG), ["mlp"]),
    ("k_composition-layer", circuits.k_composition,
     lambda: circuits.k_composition(_attention_only(), ATTENTION_ONLY, 1), ["layer"]),
    ("check_ffn_params-W_2", tr.check_ffn_params,
     lambda: tr.check_ffn_params({"W_1": np.zeros((6, 8)), "b_1": np.zeros(8),
                                   "W_2": np.zeros((6, 8)), "b_2": np.zeros(6)}, 6), ["W_2"]),
]

REACHED_THROUGH_WRAPPERS = [lm.KVCache]           # made by init_kv_cache

MODULES = [(lm, lm.__all__), (circuits, None)]
