"""Image captioning with visual attention (Show, Attend and Tell; article §5.1 and §3.2).

Strips of 2–5 handwritten digits are captioned word by word ("three seven one") by a conv
encoder and an attention LSTM decoder, all written in NumPy. Soft attention takes the expected
feature; hard attention samples one location and is trained with REINFORCE. Because we know
where each digit was drawn, we measure whether the model looks at the digit it names. The
article's printed decoder, which attends over its own LSTM states, is trained as a baseline.
"""
from __future__ import annotations

import time

import numpy as np

from attention_np.captioning.baseline import (baseline_decoder_forward, baseline_generate,
                                              baseline_loss_and_grads, init_baseline_params)
from attention_np.captioning.bleu import corpus_bleu
from attention_np.captioning.encoder import encoder_forward
from attention_np.captioning.model import (CaptionConfig, generate, init_params,
                                           loss_and_grads, update_baseline)
from attention_np.optim import Adam, clip_grad_norm
from demos._common import demo_dir, parse_args, write_json
from demos._digits_data import CANVAS, END, FIRST_DIGIT, START, decode, make_caption_data
from demos._caption_figures import (plot_baseline_vs_soft, plot_curves, plot_overlays,
                                    write_gif)

NAME = "caption_digits"
#            train strips, test strips, steps (soft, hard, article), batch
QUICK = dict(n_train=4000, n_test=400, steps=(2500, 3500, 600), batch=32)
FULL = dict(n_train=12000, n_test=1000, steps=(6000, 8000, 3000), batch=32)


def train(loss_fn, params, steps: int, rng, lr: float = 3e-3, label: str = ""):
    """Adam with gradient clipping and a linear decay to 10 % of ``lr``; returns the loss curve."""
    opt, losses, start = Adam(lr=lr), [], time.perf_counter()
    for step in range(steps):
        opt.lr = lr * (1 - 0.9 * step / steps)
        stats, grads = loss_fn(rng)
        clip_grad_norm(grads, 5.0)
        opt.step(params, grads)
        losses.append(stats["ce"])
        if step % 250 == 0 or step == steps - 1:
            print(f"  {label} step {step:5d}  ce {np.mean(losses[-50:]):.3f}  "
                  f"{time.perf_counter() - start:5.0f} s", flush=True)
    return np.array(losses)


def _batches(data, images, batch):
    def draw(rng):
        idx = rng.integers(len(data), size=batch)
        return images[idx], data.captions[idx]
    return draw


def localization_hits(tokens, alphas, boxes, grid) -> tuple[np.ndarray, np.ndarray]:
    """For each generated digit word k (in order), is the argmax cell of α_k inside the box of
    the k-th digit of the image? Returns (hits, columns_only) over all generated digit words;
    a word past the last digit has no box and counts as a miss."""
    gh, gw = grid
    cell_h, cell_w = CANVAS[0] / gh, CANVAS[1] / gw
    hits, cols = [], []
    for tok, alpha, box in zip(tokens, alphas, boxes):
        for k, t in enumerate(tok):
            if t == END or t < FIRST_DIGIT:
                break
            r, c = divmod(int(alpha[k].argmax()), gw)
            y, x = (r + 0.5) * cell_h, (c + 0.5) * cell_w      # centre of the attended cell
            top, left, bottom, right = box[k] if k < len(box) else (-1, -1, -1, -1)
            in_x = left <= x < right
            hits.append(in_x and top <= y < bottom)
            cols.append(in_x)
    return np.array(hits), np.array(cols)


def evaluate(tokens, data, alphas=None, grid=None) -> dict:
    words = [decode(t) for t in tokens]
    refs = [decode(c) for c in data.captions]
    out = {"sequence_accuracy": float(np.mean([w == r for w, r in zip(words, refs)])),
           "bleu4": corpus_bleu(words, refs)}
    if alphas is not None:
        hits, cols = localization_hits(tokens, alphas, data.boxes, grid)
        out["localization_accuracy"] = float(hits.mean())
        out["localization_accuracy_columns"] = float(cols.mean())
    return out


def _train_attention_model(kind, train_data, X, cfg_kw, steps, batch, seed):
    cfg = CaptionConfig(attention=kind, **cfg_kw)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng, np.float32)
    draw, state = _batches(train_data, X, batch), {"b": None}

    def loss_fn(rng):
        images, captions = draw(rng)
        b = 0.0 if state["b"] is None else state["b"]
        stats, grads = loss_and_grads(params, cfg, images, captions, rng, b)
        if kind == "hard":
            state["b"] = update_baseline(state["b"], stats, cfg)
        return stats, grads
    curve = train(loss_fn, params, steps, rng, label=kind)
    return cfg, params, curve


def _train_article(train_data, X, cfg_kw, steps, batch, seed):
    cfg = CaptionConfig(**cfg_kw)
    rng = np.random.default_rng(seed)
    params = init_baseline_params(cfg, rng, np.float32)
    draw = _batches(train_data, X, batch)
    curve = train(lambda r: baseline_loss_and_grads(params, cfg, *draw(r)), params, steps, rng,
                  label="article")
    return cfg, params, curve


def run(out_dir, full: bool = False):
    from threadpoolctl import threadpool_limits
    setup = FULL if full else QUICK
    out = demo_dir(out_dir, NAME)
    start = time.perf_counter()
    train_data = make_caption_data(setup["n_train"], "train", seed=0)
    test = make_caption_data(setup["n_test"], "test", seed=1)
    X, Xt = (d.images.astype(np.float32) for d in (train_data, test))
    cfg_kw = dict(channels=(8, 16, 32), hidden=96)
    models, metrics, curves = {}, {}, {}
    with threadpool_limits(1):               # tiny matrices: BLAS threads only fight each other
        for seed, (kind, steps) in enumerate(zip(("soft", "hard"), setup["steps"])):
            cfg, params, curves[kind] = _train_attention_model(kind, train_data, X, cfg_kw, steps,
                                                               setup["batch"], seed)
            tokens, alphas, _ = generate(params, cfg, Xt, beam_size=3)
            metrics[kind] = evaluate(tokens, test, alphas, cfg.grid)
            models[kind] = (cfg, params, tokens, alphas)
            print(f"  {kind}: {metrics[kind]}", flush=True)
        cfg_a, params_a, curves["article"] = _train_article(train_data, X, cfg_kw,
                                                            setup["steps"][2], setup["batch"], 7)
        tokens_a, _ = baseline_generate(params_a, cfg_a, Xt, beam_size=3)
        metrics["article"] = evaluate(tokens_a, test)
        print(f"  article: {metrics['article']}", flush=True)
    metrics["setup"] = {**setup, "mode": "full" if full else "quick", **cfg_kw,
                        "seconds": round(time.perf_counter() - start, 1)}
    write_json(out / "metrics.json", metrics)
    figures = [plot_curves(curves, out_dir, NAME)]
    figures += plot_overlays(models, test, out_dir, NAME)
    figures.append(write_gif(models["soft"], test, out_dir, NAME))
    n_words = len(decode(tokens_a[0]))
    inputs = np.concatenate([[START], tokens_a[0, :n_words]])[None]  # <start> w_1 … w_n
    _, own_weights, _ = baseline_decoder_forward(encoder_forward(Xt[:1], params_a)[0], inputs,
                                                 params_a)
    figures.append(plot_baseline_vs_soft(models["soft"], tokens_a[0], own_weights[0], test,
                                         out_dir, NAME))
    return figures


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv)
    for fig in run(args.out, full=args.full):
        print(f"wrote {args.out / fig.path}")


if __name__ == "__main__":
    main()
