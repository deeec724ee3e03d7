"""The public entries of attention_np, attention_np.efficient, transformer, location attention,
DIN and kernels, each described by the shapes of its arguments (for tests/test_bad_input.py).

An argument spec is a string ``"<kind>:<dims>"``: kind ``f`` float array, ``b`` boolean mask,
``i`` integer ids below the size of the letter after ``i`` (``"iV:BT"``); each dim letter has a
size in :data:`DIMS` (all different, so a swapped axis is a shape error). A dict of specs is a
parameter dict. Anything else is passed as it is; :class:`Fresh` makes a new object per call.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import attention_np as an
import kernels
import kernels.efficient
from attention_np import din, efficient as ef, location_attention as la, transformer as tr

DIMS = {"B": 2, "H": 3, "Q": 4, "K": 5, "D": 6, "E": 7, "F": 8, "A": 9, "V": 10, "C": 11,
        "R": 12, "S": 13, "L": 2, "O": 3, "P": 1}
DERIVED = {"M": lambda d: d["H"] * 2, "Z": lambda d: 4 * d["D"], "T": lambda d: d["K"]}


@dataclass(frozen=True)
class Fresh:
    """A literal argument made anew for every call (e.g. a seeded rng)."""
    make: Callable


RNG = Fresh(lambda: np.random.default_rng(0))


@dataclass(frozen=True)
class Entry:
    """A public forward (and its backward): ``forward(**args)``; ``backward(dout, result, args)``
    with ``result`` what the forward returned. ``free``: arguments whose leading axes are free
    (so their rank is not fuzzed); ``tied``: letters also fixed by a literal argument;
    ``bad_literals``: values of literal arguments that must raise a ValueError naming them;
    ``saturating``: +inf may legitimately give a finite output (tanh, sigmoid);
    ``dout_name``: the library backward's name for its upstream gradient."""
    name: str
    forward: Callable
    args: dict
    backward: Callable | None = None
    free: tuple = ()
    tied: str = ""
    bad_literals: dict = field(default_factory=dict)
    saturating: bool = False
    dout_name: str = ""

    def __post_init__(self):
        library = getattr(self.backward, "library", None)
        if not self.dout_name and library is not None:
            object.__setattr__(self, "dout_name", next(iter(inspect.signature(library).parameters)))
        elif not self.dout_name:
            object.__setattr__(self, "dout_name", "dout")


def _cache_bwd(fn):
    """backward(dout, result, args) for the usual ``fn(dout, cache)`` (cache is result[-1])."""
    def backward(dout, result, args):
        return fn(dout, result[-1])
    backward.library = fn
    return backward


MHA = {f"W_{n}": "f:MM" for n in "qkvo"} | {f"b_{n}": "f:M" for n in "qkvo"}
BLOCK = MHA | {"W_1": "f:MF", "b_1": "f:F", "W_2": "f:FM", "b_2": "f:M", "ln1_gamma": "f:M",
               "ln1_beta": "f:M", "ln2_gamma": "f:M", "ln2_beta": "f:M"}
QKV = {"q": "f:BHQD", "k": "f:BHKD", "v": "f:BHKE"}
SELF_QKV = {"q": "f:BHTD", "k": "f:BHTD", "v": "f:BHTE"}
LOCATION = {"W": "f:SA", "U": "f:LA", "F": "f:LO", "b": "f:A", "w": "f:A"}   # O: odd width
DIN = {"W1": "f:ZF", "b1": "f:F", "w2": "f:F", "b2": "f:P"}
CONFIG = tr.EncoderConfig(d_model=6, num_heads=3, d_ff=8, num_layers=2)
LAYERS = Fresh(lambda: tr.init_encoder(CONFIG, np.random.default_rng(0)))


def _activation(name, saturating=False):
    return Entry(name, getattr(an, f"{name}_forward"), {"x": "f:BQD"},
                 _cache_bwd(getattr(an, f"{name}_backward")), free=("x",), saturating=saturating)


def _score(name, extra=None, saturating=False):
    return Entry(f"{name}_score", getattr(an, f"{name}_score_forward"),
                 {"q": "f:BQD", "k": "f:BKD"} if extra is None else extra,
                 _cache_bwd(getattr(an, f"{name}_score_backward")), saturating=saturating)


def _flash_bwd(dout, result, a):
    return kernels.flash_attention_backward(dout, a["q"], a["k"], a["v"], *result,
                                            mask=a["mask"])


def _window_bwd(dout, result, a):
    return kernels.efficient.sliding_window_attention_backward(dout, a["q"], a["k"], a["v"],
                                                               *result, window=2)


def _linear_kernel_bwd(dout, result, a):
    return kernels.efficient.linear_attention_backward(dout, a["q"], a["k"], a["v"], *result)


ENTRIES = [
    _activation("relu"), _activation("gelu"), _activation("tanh", True),
    _activation("sigmoid", True),
    Entry("softmax", an.softmax_forward, {"x": "f:BQK", "mask": "b:BQK"},
          _cache_bwd(an.softmax_backward), free=("x",), bad_literals={"axis": [3]}),
    Entry("linear", an.linear_forward, {"x": "f:BQD", "W": "f:DE", "b": "f:E"},
          _cache_bwd(an.linear_backward), free=("x",)),
    Entry("dropout", an.dropout_forward, {"x": "f:BQD", "p": 0.5, "rng": RNG},
          _cache_bwd(an.dropout_backward), free=("x",), bad_literals={"p": [1.5, -0.1]}),
    Entry("embedding", an.embedding_forward, {"ids": "iV:BQ", "W": "f:VD"},
          _cache_bwd(an.embedding_backward), free=("ids",)),
    Entry("layer_norm", an.layer_norm_forward, {"x": "f:BQD", "gamma": "f:D", "beta": "f:D"},
          _cache_bwd(an.layer_norm_backward), free=("x",), bad_literals={"eps": [0.0, -1.0]}),
    Entry("masked_mean", an.nn.layers.masked_mean_forward, {"x": "f:BKD", "mask": "b:BK"},
          _cache_bwd(an.nn.layers.masked_mean_backward)),
    Entry("cross_entropy", an.cross_entropy_forward, {"logits": "f:BQC", "targets": "iC:BQ"},
          _cache_bwd(an.cross_entropy_backward), free=("logits", "targets"),
          bad_literals={"label_smoothing": [1.5]}),
    Entry("soft_attention", an.soft_attention_forward,
          {"scores": "f:BQK", "values": "f:BKE", "mask": "b:BQK"},
          _cache_bwd(an.soft_attention_backward), free=("scores",)),
    Entry("hard_attention", an.hard_attention_forward,
          {"scores": "f:BQK", "values": "f:BKE", "rng": RNG, "mask": "b:BQK"},
          lambda dout, result, a: an.hard_attention_backward(dout, result[-1], reward=1.0),
          free=("scores",), dout_name="dcontext"),
    _score("dot"), _score("scaled_dot"),
    _score("general", {"q": "f:BQD", "k": "f:BKE", "W": "f:DE"}),
    _score("additive", {"q": "f:BQD", "k": "f:BKE", "W_q": "f:DA", "W_k": "f:EA", "v": "f:A"},
           saturating=True),
    Entry("scaled_dot_product_attention", an.scaled_dot_product_attention_forward,
          QKV | {"mask": "b:BHQK"}, _cache_bwd(an.scaled_dot_product_attention_backward),
          free=("q",), bad_literals={"backend": ["cuda"], "dropout_p": [1.0]}),
    Entry("multi_head_attention", an.multi_head_attention_forward,
          {"x_q": "f:BQM", "x_kv": "f:BKM", "params": MHA, "num_heads": 3, "mask": "b:BHQK"},
          _cache_bwd(an.multi_head_attention_backward), tied="MH",
          bad_literals={"num_heads": [0, 4], "backend": ["cuda"]}),
    Entry("encoder_block", tr.encoder_block_forward,
          {"x": "f:BTM", "params": BLOCK, "config": CONFIG, "mask": "b:BHTT"},
          _cache_bwd(tr.encoder_block_backward), tied="MHF", saturating=True),   # relu(-inf) = 0
    Entry("encoder", tr.encoder_forward,
          {"x": "f:BTM", "layers": LAYERS, "config": CONFIG, "mask": "b:BHTT"},
          _cache_bwd(tr.encoder_backward), tied="MHF", saturating=True),
    Entry("feed_forward", tr.feed_forward_forward,
          {"h": "f:BTM", "params": {"W_1": "f:MF", "b_1": "f:F", "W_2": "f:FM", "b_2": "f:M"}},
          _cache_bwd(tr.feed_forward_backward), free=("h",), saturating=True,
          bad_literals={"activation": ["swish"]}),
    Entry("conv1d_same", la.conv1d_same_forward, {"alpha": "f:BT", "F": "f:LO"},
          _cache_bwd(la.conv1d_same_backward)),
    Entry("location_attention", la.location_attention_forward,
          {"s": "f:BS", "keys": "f:BTA", "values": "f:BTE", "alpha_prev": "f:BT",
           "params": LOCATION, "mask": "b:BT"}, _cache_bwd(la.location_attention_backward),
          saturating=True),                                              # tanh
    Entry("din_activation", din.din_activation_forward,
          {"behaviours": "f:BKD", "candidate": "f:BD", "params": DIN},
          _cache_bwd(din.din_activation_backward), saturating=True),
    Entry("din_attention", din.din_attention_forward,
          {"behaviours": "f:BKD", "candidate": "f:BD", "params": DIN, "mask": "b:BK"},
          _cache_bwd(din.din_attention_backward), bad_literals={"normalize": ["max"]},
          saturating=True),
    Entry("block_sparse_attention", ef.block_sparse_attention_forward,
          QKV | {"layout": np.ones((2, 3), bool), "block_size": 2},   # ⌈Q/2⌉ × ⌈K/2⌉ blocks
          _cache_bwd(ef.block_sparse_attention_backward), free=("q",), tied="Q",
          bad_literals={"block_size": [0]}),
    Entry("elu_feature_map", ef.elu_feature_map_forward, {"x": "f:BQD"},
          _cache_bwd(ef.elu_feature_map_backward), free=("x",)),
    Entry("kernelized_attention", ef.kernelized_attention_forward,
          {"phi_q": "f:BHQF", "phi_k": "f:BHKF", "v": "f:BHKE"},
          _cache_bwd(ef.kernelized_attention_backward), free=("phi_q",)),
    Entry("linear_attention", ef.linear_attention_forward, QKV,
          _cache_bwd(ef.linear_attention_backward), free=("q",)),
    Entry("linformer_attention", ef.linformer_attention_forward,
          QKV | {"params": {"E": "f:RK", "F": "f:RK"}},
          _cache_bwd(ef.linformer_attention_backward), free=("q",)),
    Entry("favor_features", ef.favor_features_forward, {"x": "f:BHQD", "W": "f:FD",
                                                         "per_row": True},
          _cache_bwd(ef.favor_features_backward), free=("x",)),
    Entry("performer_attention", ef.performer_attention_forward, QKV | {"W": "f:FD"},
          _cache_bwd(ef.performer_attention_backward), free=("q",)),
    Entry("sliding_window_attention", ef.sliding_window_attention_forward,
          SELF_QKV | {"window": 2}, _cache_bwd(ef.sliding_window_attention_backward),
          free=("q",), bad_literals={"window": [-1]}),
    Entry("kernels.softmax", kernels.softmax, {"x": "f:BQK"},
          lambda dout, y, a: kernels.softmax_backward(y, dout), free=("x",), dout_name="dy",
          bad_literals={"axis": [3]}),
    Entry("kernels.matmul", kernels.matmul, {"a": "f:BQD", "b": "f:BDE"}, free=("a", "b")),
    Entry("kernels.flash_attention", kernels.flash_attention_forward, QKV | {"mask": "b:BHQK"},
          _flash_bwd),
    Entry("kernels.sliding_window_attention", kernels.efficient.sliding_window_attention_forward,
          SELF_QKV | {"window": 2}, _window_bwd, bad_literals={"window": [-1]}),
    Entry("kernels.linear_attention", kernels.efficient.linear_attention_forward, SELF_QKV,
          _linear_kernel_bwd),
]

# Public functions that ENTRIES reach through a wrapper (a backward called with extra arguments)
# or through another call (EncoderConfig through every encoder entry).
REACHED_THROUGH_WRAPPERS = [an.hard_attention_backward, kernels.flash_attention_backward,
                            kernels.efficient.sliding_window_attention_backward,
                            kernels.efficient.linear_attention_backward, kernels.softmax_backward,
                            tr.EncoderConfig]
