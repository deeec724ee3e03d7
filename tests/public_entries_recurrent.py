"""The recurrent sequence layers' public entries (attention_np.nn.recurrent) for the bad-input
table (tests/test_bad_input.py collects this module through tests/bad_input_table.py), for the
NumPy reference and for ``backend="numba"`` (the fused kernels of kernels/recurrent.py).

Letters as in tests/public_entries.py. Inputs x (B, T, E). The LSTM's hidden size is D, so its
gate width 4H is the derived Z = 4·D; the GRU's hidden size is H = 3, so its gate width 3H is
A = 9 (a fixed letter: with H = 0 the table's zero-size case becomes a shape error naming
params['W_h'], which the test accepts).
"""
from __future__ import annotations

from attention_np.nn import recurrent
from tests.public_entries import Entry, _cache_bwd

LSTM = {"x": "f:BTE", "h0": "f:BD", "c0": "f:BD",
        "params": {"W_x": "f:EZ", "W_h": "f:DZ", "b": "f:Z"}, "mask": "b:BT"}
GRU = {"x": "f:BTE", "h0": "f:BH",
       "params": {"W_x": "f:EA", "W_h": "f:HA", "b_x": "f:A", "b_h": "f:A"}, "mask": "b:BT"}
BIDIRECTIONAL = {"kind": "gru", "x": "f:BTE", "params_fwd": GRU["params"],
                 "params_bwd": GRU["params"], "mask": "b:BT"}
BACKEND = {"bad_literals": {"backend": ["cuda"]}, "saturating": True}     # σ, tanh saturate

ENTRIES = [
    entry
    for backend in ("numpy", "numba")
    for entry in (
        Entry(f"lstm_sequence[{backend}]", recurrent.lstm_forward, LSTM | {"backend": backend},
              _cache_bwd(recurrent.lstm_backward), **BACKEND),
        Entry(f"gru_sequence[{backend}]", recurrent.gru_forward, GRU | {"backend": backend},
              _cache_bwd(recurrent.gru_backward), **BACKEND),
        Entry(f"bidirectional_gru[{backend}]", recurrent.bidirectional_forward,
              BIDIRECTIONAL | {"backend": backend}, _cache_bwd(recurrent.bidirectional_backward),
              bad_literals={"backend": ["cuda"], "kind": ["rnn"]}, saturating=True),
    )
]

# (module, names) whose public functions the table must cover.
MODULES = [(recurrent, ["lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
                        "bidirectional_forward", "bidirectional_backward"])]
