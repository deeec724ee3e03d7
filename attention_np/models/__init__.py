"""Pretrained models run on attention_np layers (see :mod:`attention_np.models.minilm`)."""
