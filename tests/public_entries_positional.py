"""Positional encoding's public entries (attention_np.positional) for the bad-input table
(tests/test_bad_input.py collects this module through tests/bad_input_table.py).

Letters as in tests/public_entries.py; RoPE's feature size is 2·H (even), its positions
(K,) for the K = T steps of x.
"""
from __future__ import annotations

import numpy as np

from attention_np import positional as pe
from tests.public_entries import Entry, _cache_bwd

POSITIONS = np.arange(5)                                        # K = 5 positions

ENTRIES = [
    Entry("learned_positions", pe.learned_positions_forward,
          {"positions": np.array([0, 2, 1]), "W": "f:SD"},
          _cache_bwd(pe.learned_positions_backward), dout_name="dP"),
    Entry("rope", pe.rope_forward, {"x": "f:BHKM", "positions": POSITIONS},
          _cache_bwd(pe.rope_backward), tied="K", bad_literals={"base": [1.0, -3.0]},
          dout_name="dy"),
]

# (id, the public function the row exercises, the call, names its message may give)
CALLS = [
    ("sinusoidal_encoding-T", pe.sinusoidal_encoding, lambda: pe.sinusoidal_encoding(0, 4),
     ["T"]),
    ("sinusoidal_encoding-base", pe.sinusoidal_encoding,
     lambda: pe.sinusoidal_encoding(4, 4, base=0.5), ["base"]),
    ("rope_angles-D", pe.rope_angles, lambda: pe.rope_angles(np.arange(3), 5), ["D"]),
    ("rope_forward-positions", pe.rope_forward,
     lambda: pe.rope_forward(np.ones((1, 1, 3, 4)), np.arange(4)), ["positions"]),
]

MODULES = [(pe, None)]
