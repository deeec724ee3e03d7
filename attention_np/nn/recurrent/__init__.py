"""Recurrent cells (LSTM, GRU), whole-sequence scans with padding, and a bidirectional wrapper.

Parameter layout (row vectors, ``y = x W + b``; gate blocks in torch's order):

* LSTM: ``W_x (D, 4H)``, ``W_h (H, 4H)``, ``b (4H,)`` — columns ``[i | f | g | o]``.
  From ``torch.nn.LSTM``: ``W_x = weight_ih_l0.T``, ``W_h = weight_hh_l0.T``,
  ``b = bias_ih_l0 + bias_hh_l0``.
* GRU: ``W_x (D, 3H)``, ``W_h (H, 3H)``, ``b_x (3H,)``, ``b_h (3H,)`` — columns ``[r | z | n]``.
  The hidden bias is kept apart because the reset gate multiplies ``h W_hn + b_hn``
  (``b_x = bias_ih_l0``, ``b_h = bias_hh_l0``).

Sequences are batch-first ``(B, T, D)``. ``mask (B, T)`` (True = real token, as
:func:`attention_np.core.padding_mask` makes) freezes the state at padded steps and zeroes their
outputs, so the final state is the state after each row's last real token — what
``torch.nn.utils.rnn.pack_padded_sequence`` gives.

The code lives in three modules: :mod:`attention_np.nn.recurrent.steps` (the gate equations of
one step, shared by the other two), :mod:`attention_np.nn.recurrent.cells` (one step as a layer,
torch's LSTMCell / GRUCell, and parameter init) and :mod:`attention_np.nn.recurrent.sequences`
(scans over padded sequences, backprop through time, the bidirectional wrapper); the public
functions of the last two are re-exported here.
"""
from attention_np.nn.recurrent.cells import (gru_cell_backward, gru_cell_forward,
                                             init_recurrent_params, lstm_cell_backward,
                                             lstm_cell_forward)
from attention_np.nn.recurrent.sequences import (bidirectional_backward, bidirectional_forward,
                                                 gru_backward, gru_forward, lstm_backward,
                                                 lstm_forward, reverse_padded)

__all__ = ["bidirectional_backward", "bidirectional_forward", "gru_backward", "gru_cell_backward",
           "gru_cell_forward", "gru_forward", "init_recurrent_params", "lstm_backward",
           "lstm_cell_backward", "lstm_cell_forward", "lstm_forward", "reverse_padded"]
