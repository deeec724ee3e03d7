"""The plumbing a model needs that is not attention: linear algebra around it.

``layers`` (embedding, layer norm, dropout, positional encoding), ``activations``, ``losses``,
``conv`` (im2col convolution and pooling), ``recurrent`` (LSTM/GRU cells and sequences),
``init`` (initialisers), ``params`` (the flat parameter-dict convention), ``optim`` (SGD, Adam)
and ``checks`` (the input validation every public function uses).
"""
