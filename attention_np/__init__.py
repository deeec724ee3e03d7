"""attention-np: attention mechanisms from scratch in NumPy, with hand-written backward passes.

Every op is a pair ``<name>_forward(...) -> (out, cache)`` / ``<name>_backward(dout, cache)``;
attention ops return ``(out, weights, cache)``. Masks are boolean, True = may attend.

Sub-packages: ``attention_np.viz`` (figures, HTML views, analysis), ``attention_np.models``
(pretrained all-MiniLM-L6-v2 in NumPy: ``from attention_np.models.minilm import MiniLM``).
"""
from attention_np import apps, efficient, models, nn, viz
from attention_np.nn import init, optim
from attention_np.nn.activations import (gelu_backward, gelu_forward, relu_backward, relu_forward,
                                      sigmoid_backward, sigmoid_forward, tanh_backward,
                                      tanh_forward)
from attention_np.core import (causal_mask, linear_backward, linear_forward, padding_mask,
                               softmax_backward, softmax_forward)
from attention_np.nn.layers import (dropout_backward, dropout_forward, embedding_backward,
                                 embedding_forward, layer_norm_backward, layer_norm_forward,
                                 sinusoidal_positional_encoding)
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.optim import SGD, Adam, clip_grad_norm
from attention_np.hard import hard_attention_backward, hard_attention_forward
from attention_np.scores import (additive_score_backward, additive_score_forward,
                                 dot_score_backward, dot_score_forward, general_score_backward,
                                 general_score_forward, scaled_dot_score_backward,
                                 scaled_dot_score_forward)
from attention_np.self_attention import (init_multi_head_params, merge_heads,
                                         multi_head_attention_backward,
                                         multi_head_attention_forward,
                                         scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward, split_heads)
from attention_np.soft import soft_attention_backward, soft_attention_forward

__version__ = "0.1.0"
