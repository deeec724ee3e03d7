"""Encoder–decoder models for the date-translation demo, every layer a NumPy forward/backward pair.

* :mod:`.config` — :class:`Seq2SeqConfig` (sizes and which decoder);
* :mod:`.encoder` — character embedding + bidirectional LSTM;
* :mod:`.attention` — decoder attention: dot, general, concat, local-p, Bahdanau's step;
* :mod:`.rnn_decoder` — LSTM decoders: none, Bahdanau, Luong;
* :mod:`.transformer` — a small pre-LN Transformer encoder–decoder;
* :mod:`.model` — one interface over all of them (loss and gradients, encode, decode step);
* :mod:`.search` — greedy and beam-search decoding (via :mod:`attention_np.decoding`);
  :mod:`.train` — the training loop.
"""
