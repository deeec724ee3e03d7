"""Visual question answering with stacked attention (Yang et al., 2016, "Stacked Attention
Networks for Image Question Answering"; article §8.1.2, multimodal learning): a question in
words chooses where to look in an image, and what it sees there answers the question.

    r_1 … r_L = CNN(image)  (or BiGRU(CNN(image)))  (B, L, R)  image regions (columns of a strip)
    q = GRU(E[w_1] … E[w_n])                      (B, Q)     the question, its last state
    u_0 = q W_u + b_u                             (B, R)
    hop k = 1 … K:
        e_kj = v_kᵀ tanh(u_{k−1} W_k + r_j U_k)   additive score of region j  (attention_np.scores)
        α_k = softmax_j(e_k),   c_k = Σ_j α_kj r_j                     (attention_np.soft)
        u_k = u_{k−1} + c_k                        the next hop asks with what it has seen
    logits = ReLU([q ; c_K] W_1 + b_1) W_2 + b_2   (B, A)     the answer classifier

With ``location`` (an odd filter width) every hop after the first is location-aware
(Chorowski et al., 2015; :mod:`attention_np.location_attention`): its score also reads where
the previous hop looked,

        f_kj = (F_k ∗ α_{k−1})_j                  K filters over the columns, "same" padding
        e_kj = v_kᵀ tanh(u_{k−1} W_k + r_j U_k + f_kj G_k + b_k)

so the first hop can find the digit a question names and the second look *beside* it ("what
is left of 7?"), even when each region knows only what stands under it.

The CNN is the captioning encoder (:mod:`attention_np.apps.captioning.encoder`: conv blocks and
a learned location embedding; a (16, 64) strip becomes one row of L = 16 columns). Its
columns see ~18 px of the strip, less than two digits. ``context`` > 0 adds a bidirectional
GRU over the columns that gives each region the context of its neighbours, as the wide
receptive field of a VGG does for the regions of Yang et al.; then the mean of the regions
already knows the arrangement. With ``context=0`` (the demo) the regions are the columns
themselves and their mean is a bag of digits: where things stand is what attention adds.

The two baselines change only how the image reaches the classifier:

    pooling="mean"            c = (1/L) Σ_j r_j     every region alike, whatever the question
    pooling="question_only"   logits = ReLU(q W_1 + b_1) W_2 + b_2   (no image: the language prior)

Parameters live in one flat dict (:mod:`attention_np.nn.params`): ``cnn.*``, ``ctx_f.*``,
``ctx_b.*``, ``q_emb.W``, ``q_gru.*``, ``query.*``, ``hop{k}.*`` (a location-aware hop adds
``hop{k}.F``, ``hop{k}.U`` (the G_k above) and ``hop{k}.b``), ``cls.*``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.apps.captioning.encoder import (encoder_backward, encoder_forward,
                                                  init_encoder_params)
from attention_np.core import linear_backward, linear_forward, padding_mask
from attention_np.nn.activations import relu_backward, relu_forward
from attention_np.nn.backend import check_backend
from attention_np.nn.conv import conv2d_backward, conv2d_forward
from attention_np.nn.checks import as_float_array, check_positive_int, check_rng, check_shape
from attention_np.nn.init import normal, uniform_fan_in, xavier_uniform
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.params import add_grads, linear_params, prefixed, sub
from attention_np.nn.recurrent import (bidirectional_backward, bidirectional_forward,
                                       gru_backward, gru_forward, init_recurrent_params)
from attention_np.location_attention import (location_attention_backward,
                                             location_attention_forward)
from attention_np.scores import additive_score_backward, additive_score_forward
from attention_np.soft import soft_attention_backward, soft_attention_forward

POOLINGS = ("attention", "mean", "question_only")


@dataclass(frozen=True)
class VQAConfig:
    """Vocabulary sizes, how the image is read (``pooling``, ``hops``) and the layer widths.
    ``context``: hidden units per direction of the BiGRU over the regions (0: no BiGRU, the
    regions are the CNN's columns). ``pixels=False``: the model takes the CNN's columns
    (B, L, C) instead of images and has no CNN of its own (a CNN trained beforehand and kept
    fixed, whose features are computed once). ``window`` > 0: instead of the BiGRU, each
    region reads the ``window`` columns from itself rightwards through a 1-D convolution and a
    ReLU (2 · ``context`` channels): a *local* context, which tells a column what stands just
    right of it and nothing about the rest of the strip. ``location`` > 0 (odd): every hop
    after the first is location-aware, with ``filters`` filters of that width over the
    previous hop's weights. ``backend`` runs the GRUs ("numba": the fused kernels)."""
    n_words: int
    n_answers: int
    pooling: str = "attention"
    hops: int = 2
    image_shape: tuple = (16, 64)
    channels: tuple = (8, 16, 32)
    pools: tuple = ((2, 2), (2, 2), (4, 1))
    context: int = 32
    embed: int = 16
    question: int = 64
    attn: int = 64
    hidden: int = 64
    pixels: bool = True
    window: int = 0
    location: int = 0
    filters: int = 8
    backend: str = "numpy"

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        check_backend(self.backend)
        for name in ("n_words", "n_answers", "hops", "embed", "question", "attn", "hidden"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.context, "context", minimum=0)
        check_positive_int(self.window, "window", minimum=0)
        check_positive_int(self.location, "location", minimum=0)
        if self.location and self.location % 2 != 1:
            raise ValueError(f"location (the filter width) must be odd, got {self.location}")

    @property
    def region(self) -> int:
        """R, the width of a region vector r_j."""
        return 2 * self.context if self.context else self.channels[-1]


def init_vqa(config: VQAConfig, rng: np.random.Generator, dtype=np.float32) -> dict:
    """The CNN as :func:`~attention_np.apps.captioning.encoder.init_encoder_params` (He init and
    a location embedding), GRUs as torch, word embeddings N(0, 1) like torch's nn.Embedding,
    linear layers as torch's nn.Linear, score weights Glorot (as the captioning decoder's).
    With location-aware hops the first hop's v starts at zero, so its weights start uniform and
    move only as the later hops need them (with a random v it could settle on a blank column
    before the second hop had learned to look beside it)."""
    check_rng(rng)
    c = config
    params = {"q_emb.W": normal((c.n_words, c.embed), rng, dtype=dtype)}
    params.update(prefixed("q_gru", init_recurrent_params("gru", c.embed, c.question, rng, dtype)))
    d_cls = c.question
    if c.pooling != "question_only":
        if c.pixels:
            params.update(prefixed("cnn", init_encoder_params(c.image_shape, c.channels, rng,
                                                              dtype, c.pools)))
        if c.context and c.window:
            C, F = c.channels[-1], 2 * c.context
            params["ctx_conv.W"] = normal((F, C, 1, c.window), rng,
                                          np.sqrt(2.0 / (C * c.window)), dtype)   # He
            params["ctx_conv.b"] = np.zeros(F, dtype)
        elif c.context:
            for side in ("ctx_f", "ctx_b"):
                params.update(prefixed(side, init_recurrent_params("gru", c.channels[-1],
                                                                   c.context, rng, dtype)))
        d_cls += c.region
    if c.pooling == "attention":
        params.update(prefixed("query", linear_params(rng, c.question, c.region, dtype)))
        for k in range(c.hops):
            params[f"hop{k}.W_u"] = xavier_uniform((c.region, c.attn), rng, dtype)
            params[f"hop{k}.W_r"] = xavier_uniform((c.region, c.attn), rng, dtype)
            params[f"hop{k}.v"] = xavier_uniform((c.attn, 1), rng, dtype)[:, 0]
            if c.location and k > 0:
                params[f"hop{k}.U"] = xavier_uniform((c.filters, c.attn), rng, dtype)
                params[f"hop{k}.F"] = uniform_fan_in((c.filters, c.location), rng,
                                                     fan_in=c.location, dtype=dtype)
                params[f"hop{k}.b"] = np.zeros(c.attn, dtype)
    if c.pooling == "attention" and c.location:
        params["hop0.v"][:] = 0     # the first hop starts as a plain average (see init_vqa)
    params.update(prefixed("cls1", linear_params(rng, d_cls, c.hidden, dtype)))
    params.update(prefixed("cls2", linear_params(rng, c.hidden, c.n_answers, dtype)))
    return params


# ------------------------------------------------------------------------------ the two inputs
def question_forward(questions, lengths, params: dict, backend: str = "numpy"):
    """q = the GRU's state after each question's last word.   questions (B, T) word ids,
    lengths (B,) → q (B, Q), cache."""
    x, emb_cache = embedding_forward(questions, params["q_emb.W"])          # (B, T, E)
    mask = padding_mask(lengths, questions.shape[1])                        # (B, T)
    _, q, gru_cache = gru_forward(x, None, sub(params, "q_gru"), mask, backend)   # (B, Q)
    return q, {"emb": emb_cache, "gru": gru_cache, "steps": questions.shape[1]}


def question_backward(dq, cache) -> dict:
    dhs = np.zeros((dq.shape[0], cache["steps"], dq.shape[1]), dq.dtype)    # only q = h_T is read
    dx, _, grads = gru_backward(dhs, cache["gru"], dh_T=dq)
    grads = prefixed("q_gru", grads)
    grads["q_emb.W"] = embedding_backward(dx, cache["emb"])
    return grads


def regions_forward(images, params: dict, config: VQAConfig):
    """r (B, L, R): the CNN's columns, through the BiGRU when ``config.context``. With
    ``config.pixels=False`` ``images`` already are the columns (B, L, C)."""
    if config.pixels:
        a, cnn_cache = encoder_forward(images, sub(params, "cnn"), config.pools)  # (B, L, C)
    else:
        a, cnn_cache = images, None
    if not config.context:
        return a, {"cnn": cnn_cache, "ctx": None}
    if config.window:     # r_j = ReLU(Σ_{t<window} a_{j+t} W_t + b), zero past the right end
        x = np.pad(a, ((0, 0), (0, config.window - 1), (0, 0)))            # (B, L + w − 1, C)
        x = x.transpose(0, 2, 1)[:, :, None, :]                             # (B, C, 1, L + w − 1)
        y, conv_cache = conv2d_forward(x, params["ctx_conv.W"], params["ctx_conv.b"])
        r, relu_cache = relu_forward(y[:, :, 0, :].transpose(0, 2, 1))     # (B, L, 2H)
        return r, {"cnn": cnn_cache, "ctx": None, "conv": (conv_cache, relu_cache, a.shape[1])}
    r, _, ctx_cache = bidirectional_forward("gru", a, sub(params, "ctx_f"), sub(params, "ctx_b"),
                                            backend=config.backend)
    return r, {"cnn": cnn_cache, "ctx": ctx_cache}                          # (B, L, 2H)


def regions_backward(dr, cache) -> dict:
    grads = {}
    if cache.get("conv") is not None:
        conv_cache, relu_cache, L = cache["conv"]
        dy = relu_backward(dr, relu_cache).transpose(0, 2, 1)[:, :, None, :]   # (B, 2H, 1, L)
        dx, grads["ctx_conv.W"], grads["ctx_conv.b"] = conv2d_backward(dy, conv_cache)
        dr = dx[:, :, 0, :L].transpose(0, 2, 1)                                # (B, L, C)
    if cache["ctx"] is not None:
        dr, g_f, g_b = bidirectional_backward(dr, cache["ctx"])
        grads.update(prefixed("ctx_f", g_f) | prefixed("ctx_b", g_b))
    if cache["cnn"] is None:                    # fixed features: nothing to train below
        return grads
    return grads | prefixed("cnn", encoder_backward(dr, cache["cnn"]))


# ------------------------------------------------------------------------------ attention hops
def hops_forward(q, r, params: dict, hops: int, location: bool = False):
    """u_0 = q W_u + b_u; per hop: α_k = softmax(v_kᵀ tanh(u W_k + r U_k)), c_k = α_k r,
    u ← u + c_k. With ``location`` every hop after the first is location-aware
    (:func:`attention_np.location_attention.location_attention_forward`): its score also reads
    f = F_k ∗ α_{k−1}, where the previous hop looked, so it can look *beside* it.
    q (B, Q), r (B, L, R) → c_K (B, R), α (B, K, L), cache."""
    u, query_cache = linear_forward(q, params["query.W"], params["query.b"])   # (B, R)
    steps, alphas = [], []
    for k in range(hops):
        if location and k > 0:
            keys, key_cache = linear_forward(r, params[f"hop{k}.W_r"])       # (B, L, A)
            c, alpha, loc_cache = location_attention_forward(
                u, keys, r, alphas[-1], _location_params(params, k))
            steps.append(("location", key_cache, loc_cache))
            alphas.append(alpha)
        else:
            scores, score_cache = additive_score_forward(u[:, None], r, params[f"hop{k}.W_u"],
                                                         params[f"hop{k}.W_r"],
                                                         params[f"hop{k}.v"])
            c, alpha, soft_cache = soft_attention_forward(scores, r)   # (B, 1, R), (B, 1, L)
            c = c[:, 0]
            steps.append(("additive", score_cache, soft_cache))
            alphas.append(alpha[:, 0])
        u = u + c
    return c, np.stack(alphas, axis=1), {"query": query_cache, "steps": steps}


def _location_params(params: dict, k: int) -> dict:
    """Hop k's weights under the names location_attention_forward uses."""
    return {"W": params[f"hop{k}.W_u"], "U": params[f"hop{k}.U"], "F": params[f"hop{k}.F"],
            "b": params[f"hop{k}.b"], "w": params[f"hop{k}.v"]}


def hops_backward(dc_last, cache):
    """Walk the hops backwards (u_k = u_{k−1} + c_k: du flows into every earlier hop; a
    location-aware hop also sends a gradient to the previous hop's weights α_{k−1}).
    Returns (dq, dr, grads)."""
    grads, steps = {}, cache["steps"]
    du = np.zeros_like(dc_last)                 # nothing reads u_K
    dr, dalpha = 0, None
    for k in reversed(range(len(steps))):
        kind, score_cache, soft_cache = steps[k]
        dc = du + (dc_last if k == len(steps) - 1 else 0)                  # c_k feeds u_k
        if kind == "location":
            du_q, dkeys, dr_soft, dalpha_prev, g = location_attention_backward(dc, soft_cache,
                                                                               dalpha)
            dr_score, dW_r, _ = linear_backward(dkeys, score_cache)
            add_grads(grads, {f"hop{k}.W_u": g["W"], f"hop{k}.W_r": dW_r, f"hop{k}.v": g["w"],
                              f"hop{k}.U": g["U"], f"hop{k}.F": g["F"], f"hop{k}.b": g["b"]})
            du = du + du_q
        else:
            dscores, dr_soft = soft_attention_backward(
                dc[:, None], soft_cache, None if dalpha is None else dalpha[:, None])
            du_q, dr_score, dW_u, dW_r, dv = additive_score_backward(dscores, score_cache)
            add_grads(grads, {f"hop{k}.W_u": dW_u, f"hop{k}.W_r": dW_r, f"hop{k}.v": dv})
            du, dalpha_prev = du + du_q[:, 0], None
        dr = dr + dr_soft + dr_score
        dalpha = dalpha_prev
    dq, grads["query.W"], grads["query.b"] = linear_backward(du, cache["query"])
    return dq, dr, grads


# ------------------------------------------------------------------------------ the model
def _check_inputs(images, questions, lengths, config: VQAConfig):
    questions, lengths = np.asarray(questions), np.asarray(lengths)
    if questions.ndim != 2 or not np.issubdtype(questions.dtype, np.integer):
        raise ValueError(f"questions must be a 2-D integer array (B, T), got shape "
                         f"{questions.shape} dtype {questions.dtype}")
    check_shape(lengths, "lengths", (questions.shape[0],))
    if config.pooling != "question_only" and config.pixels:
        images = as_float_array(images, "images", ndim=3)
        check_shape(images, "images", (questions.shape[0],) + tuple(config.image_shape))
    elif config.pooling != "question_only":
        images = as_float_array(images, "images (CNN features)", ndim=3)
        check_shape(images, "images (CNN features)",
                    (questions.shape[0], None, config.channels[-1]))
    return images, questions, lengths


def vqa_forward(images, questions, lengths, params: dict, config: VQAConfig):
    """Answer logits (B, A) and the attention weights α (B, K, L) (None for the baselines).

    images (B, H, W) (ignored by ``question_only``), questions (B, T) word ids padded after
    each question's ``lengths`` (B,). Returns ``(logits, weights, cache)``.
    """
    images, questions, lengths = _check_inputs(images, questions, lengths, config)
    q, q_cache = question_forward(questions, lengths, params, config.backend)
    weights, cache = None, {"q": q_cache, "pooling": config.pooling}
    if config.pooling == "question_only":
        x = q
    else:
        r, cache["regions"] = regions_forward(images, params, config)      # (B, L, R)
        if config.pooling == "attention":
            c, weights, cache["hops"] = hops_forward(q, r, params, config.hops,
                                                      bool(config.location))
        else:
            c = r.mean(axis=1)                                              # (B, R)
            cache["L"] = r.shape[1]
        x = np.concatenate([q, c], axis=1)                                  # (B, Q + R)
    h, cache["cls1"] = linear_forward(x, params["cls1.W"], params["cls1.b"])
    h, cache["relu"] = relu_forward(h)
    logits, cache["cls2"] = linear_forward(h, params["cls2.W"], params["cls2.b"])
    cache["Q"] = q.shape[1]
    return logits, weights, cache


def vqa_backward(dlogits, cache) -> dict:
    """Undo :func:`vqa_forward`: dlogits (B, A) → gradients keyed like the params."""
    grads = {}
    dh, grads["cls2.W"], grads["cls2.b"] = linear_backward(dlogits, cache["cls2"])
    dh = relu_backward(dh, cache["relu"])
    dx, grads["cls1.W"], grads["cls1.b"] = linear_backward(dh, cache["cls1"])
    dq = dx[:, :cache["Q"]]
    if cache["pooling"] != "question_only":
        dc = dx[:, cache["Q"]:]                                             # x = [q ; c]
        if cache["pooling"] == "attention":
            dq_hops, dr, hop_grads = hops_backward(dc, cache["hops"])
            dq = dq + dq_hops
            grads.update(hop_grads)
        else:                                                               # c = mean_j r_j
            dr = np.repeat(dc[:, None] / cache["L"], cache["L"], axis=1)
        grads.update(regions_backward(dr, cache["regions"]))
    return add_grads(grads, question_backward(dq, cache["q"]))


def loss_and_grads(params: dict, config: VQAConfig, images, questions, lengths, answers,
                   rng=None):
    """Mean cross-entropy of the answers and its gradients: ``(loss, grads)``. ``rng`` is
    unused (no dropout); it keeps the signature every app shares."""
    logits, _, cache = vqa_forward(images, questions, lengths, params, config)
    loss, ce_cache = cross_entropy_forward(logits, answers)
    return float(loss), vqa_backward(cross_entropy_backward(1.0, ce_cache), cache)


def predict(params: dict, config: VQAConfig, images, questions, lengths, batch: int = 256):
    """(answer ids (N,), attention weights (N, K, L) or None), in batches of ``batch``."""
    answers, weights = [], []
    for s in range(0, len(questions), batch):
        part = slice(s, s + batch)
        imgs = None if images is None else images[part]
        logits, w, _ = vqa_forward(imgs, questions[part], lengths[part], params, config)
        answers.append(logits.argmax(axis=1))
        weights.append(w)
    return np.concatenate(answers), (None if weights[0] is None else np.concatenate(weights))
