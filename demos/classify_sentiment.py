"""Self-attention sentiment classifier (article §5.2): a 2-layer Transformer encoder reads
generated movie-review sentences and predicts one of 5 classes from its [CLS] token. Negators
flip, intensifiers scale and "but" favours its second clause; the test set holds unseen
(modifier, adjective) pairs. Beside it, a mean of the word embeddings → linear baseline (no
attention) trained for the same steps. We measure whether heads specialise as §4.3.3 claims
(role score = attention from [CLS] to a word class ÷ that class's share of tokens, i.e. the
lift over uniform attention; the best head per role is picked on a validation split), what
removing each head costs, over several seeds, and whether attention-based explanations are
faithful (deleting the words they rank first, watching the predicted class's probability)."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from attention_np.apps.sentiment import (SentimentConfig, ablate_head, init_sentiment_classifier,
                                         loss_and_grads, predict, role_scores,
                                         sentiment_backward, sentiment_forward)
from attention_np.core import softmax_backward, softmax_forward
from attention_np.nn.optim import Adam, clip_grad_norm
from attention_np.transformer import EncoderConfig
from demos._common import demo_dir, demo_main, one_blas_thread, worker_pool, write_json
from demos._faithfulness import (figure_curves, report_lines, sentence_curves, summarise,
                                 token_scores)
from demos._progress import progress, say
from demos._sentiment_data import CLASSES, make_splits, make_validation, word_class
from demos._sentiment_figures import all_figures

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "基于自注意力的情感分类器（原文 §5.2）：一个 2 层 Transformer "
    "编码器读入生成的影评句子，由 [CLS] 词元（token）预测 5 个类别之一。"
    "否定词会翻转情感，程度词会放大或减弱情感，“but”则偏向它后面的分句；"
    "测试集中的（修饰词，形容词）组合在训练中从未出现。作为对照，另训练一个步数相同、"
    "不用注意力的基线：对词嵌入（embedding）取平均后接一个线性层。"
    "我们在多个随机种子上度量：注意力头（attention head）是否像 §4.3.3 "
    "所说的那样出现分工（角色得分 = [CLS] 对某一词类的注意力 ÷ 该词类在词元中所占的比例，"
    "即相对均匀注意力的提升倍数；每个角色的最佳头在验证集上选出）；"
    "移除每个头要损失多少准确率；以及基于注意力的解释是否忠实（删除解释排在最前面的词，"
    "观察预测类别的概率如何变化）。"
)

NAME = "classify_sentiment"
QUICK = {"n_train": 30000, "n_val": 2000, "n_test": 2000, "steps": 4500, "seeds": (0,),
         "overfit_train": 400, "overfit_steps": 500, "faithfulness_sentences": 200}
FULL = {"n_train": 40000, "n_val": 4000, "n_test": 4000, "steps": 6000, "seeds": (0, 1, 2),
        "overfit_train": 800, "overfit_steps": 1000, "faithfulness_sentences": 500}
ROLES = ["sentiment", "negator", "intensifier", "contrast"]
DEFINITIONS = {
    "role_score": "attention mass from [CLS] on the class's tokens ÷ the class's share of the "
                  "tokens (summed over the sentences holding the class): the lift over uniform "
                  "attention, 1 = no preference, comparable across classes of any frequency",
    "best_head": "for each role the head with the highest role score on the validation split "
                 "(training distribution); its test-set score is reported beside it",
    "negated": "test sentences whose deciding clause holds a negator (in 'A but B' a negator in "
               "the clause the other one overrides does not count); accuracy_any_negator: the "
               "earlier definition, a negator anywhere in the sentence",
}


def model_config(vocab_size: int, dropout=0.1, attn_dropout=0.0) -> SentimentConfig:
    encoder = EncoderConfig(d_model=64, num_heads=4, d_ff=128, num_layers=2, dropout=dropout,
                            attn_dropout=attn_dropout, activation="relu", norm_first=False)
    return SentimentConfig(vocab_size, len(CLASSES), 48, encoder)


# --- training: length-bucketed batches, AdamW with warm-up and linear decay -------------------
# (the Transformer and the mean-pooling baseline share it)

LR = 2e-3                        # AdamW's peak learning rate


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Endless length-bucketed batches: sentences of similar length share a batch (little
    padding), buckets come in random order, membership is reshuffled every epoch."""
    while True:
        order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
        chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        for i in rng.permutation(len(chunks)):
            yield chunks[i]


def _log_row(log, row: dict, seconds: float) -> None:
    log("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in row.items()) + f" ({seconds:.0f} s)")


def train_classifier(params, config, split, steps: int, lr: float = LR, batch_size: int = 64,
                     rng=None, weight_decay: float = 0.01, evaluate=None, eval_every: int = 0,
                     log=None):
    """AdamW with linear warm-up (first 10 %) and linear decay, gradients clipped to norm 1.
    Every ``eval_every`` steps ``evaluate(params) -> dict`` is recorded (and ``log``ged).
    Returns the history: the loss of every step and the evaluations."""
    rng = np.random.default_rng(0) if rng is None else rng
    opt = Adam(lr=lr, weight_decay=weight_decay)
    history = {"loss": [], "evals": []}
    warmup, start = max(1, steps // 10), time.perf_counter()
    bar = progress(steps, "  training", every=eval_every or steps, enabled=log is not None)
    for step, idx in zip(range(1, steps + 1), _batches(split.lengths, batch_size, rng)):
        opt.lr = lr * min(step / warmup, (steps - step + 1) / (steps - warmup + 1))
        width = int(split.lengths[idx].max())
        loss, grads, _ = loss_and_grads(params, config, split.ids[idx, :width],
                                        split.lengths[idx], split.labels[idx], rng,
                                        training=True)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        history["loss"].append(loss)
        bar.set_postfix(loss=float(np.mean(history["loss"][-50:])))
        bar.update()
        if evaluate is not None and eval_every and (step % eval_every == 0 or step == steps):
            row = {"step": step, "loss": float(np.mean(history["loss"][-eval_every:])),
                   **evaluate(params)}
            history["evals"].append(row)
            if log:
                _log_row(log, row, time.perf_counter() - start)
    bar.close()
    return history


def accuracies(params, config, split) -> dict:
    """Accuracy on all sentences, on those whose deciding clause holds a negator (the
    headline "negated" set) and, labelled as the earlier definition, on every sentence that
    contains a negator anywhere (also in a clause that "but" overrides)."""
    correct = predict(split.ids, split.lengths, params, config) == split.labels
    return {"accuracy": float(correct.mean()),
            "accuracy_negated": float(correct[split.negated].mean()),
            "accuracy_any_negator": float(correct[split.has_negator].mean())}


# --- what the heads do -----------------------------------------------------------------------

def token_classes(split, vocab) -> np.ndarray:
    """(N, T) word class of every position ([CLS] and padding count as "other")."""
    table = np.array(["other", "other"] + [word_class(w) for w in vocab[2:]])
    return table[split.ids]


def role_table(params, config, split, vocab) -> tuple[dict, list]:
    """{"L{l}H{h}": {role: score}} with the query [CLS], and the attention weights."""
    _, weights = predict(split.ids, split.lengths, params, config, return_weights=True)
    classes, table = token_classes(split, vocab), {}
    for l, w in enumerate(weights):
        scores = role_scores(w, classes, split.lengths, ROLES)             # (H, roles)
        for h in range(config.encoder.num_heads):
            table[f"L{l}H{h}"] = dict(zip(ROLES, np.round(scores[h], 3).tolist()))
    return table, weights


def best_heads(validation: dict, test: dict) -> dict:
    """Per role, the head with the highest validation score, and its test score."""
    def score(head, role):
        value = validation[head][role]
        return -np.inf if np.isnan(value) else value
    best = {c: max(validation, key=lambda h, c=c: score(h, c)) for c in ROLES}
    return {c: {"head": h, "validation_score": validation[h][c], "test_score": test[h][c]}
            for c, h in best.items()}


def analyse_heads(params, config, val, test, vocab) -> dict:
    """Role scores on validation and test, the best head per role (chosen on validation) and
    the test accuracy with each head removed."""
    val_roles, _ = role_table(params, config, val, vocab)
    roles, weights = role_table(params, config, test, vocab)
    ablation, enc = {}, config.encoder
    for l in range(enc.num_layers):
        for h in range(enc.num_heads):
            ablated = ablate_head(params, l, h, enc.num_heads)
            ablation[f"L{l}H{h}"] = accuracies(ablated, config, test)["accuracy"]
    return {"role_scores": roles, "role_scores_validation": val_roles,
            "best_head": best_heads(val_roles, roles), "head_ablation": ablation,
            "weights": weights}


# --- faithfulness: deleting the words an explanation ranks first -----------------------------
# The output watched is p_c, the probability of the class c the model predicts for the whole
# sentence. Words are deleted ([CLS] stays; the words left keep their order and take
# consecutive positions), and each explanation scores the words from the attention of the
# [CLS] query — the only row the classifier reads — and the gradients ∂p_c/∂A
# (demos/_faithfulness.py).

def class_probability(params, config, cls_id: int, words, c: int):
    """output(keep (M, n) bool) → (M,) p_c of [CLS] + the kept ``words`` (n ids)."""
    words = np.asarray(words)

    def output(keep):
        lengths = keep.sum(axis=1) + 1                                    # [CLS] counts
        ids = np.zeros((len(keep), int(lengths.max())), dtype=np.int64)
        ids[:, 0] = cls_id
        for m, k in enumerate(keep):
            ids[m, 1:lengths[m]] = words[k]
        logits, _, _ = sentiment_forward(ids, lengths, params, config)
        return softmax_forward(logits.astype(np.float64))[0][:, c]
    return output


def attention_and_gradients(params, config, ids):
    """One sentence ids (T,) → predicted class c, attentions and ∂p_c/∂A, each (L, H, T, T)."""
    ids = np.asarray(ids)[None]                                           # (1, T)
    logits, weights, cache = sentiment_forward(ids, np.array([ids.shape[1]]), params, config)
    p, p_cache = softmax_forward(logits)                                  # (1, C)
    c = int(p[0].argmax())
    onehot = np.zeros_like(p)
    onehot[0, c] = 1.0
    _, dweights = sentiment_backward(softmax_backward(onehot, p_cache), cache,
                                     return_dweights=True)
    return c, np.stack([w[0] for w in weights]), np.stack([d[0] for d in dweights])


def sentiment_faithfulness(params, config, split, n: int, seed: int = 0) -> dict:
    """Mean AUCs and curves over the first ``n`` sentences of ``split``."""
    rng = np.random.default_rng(seed)
    curves, n = [], min(n, len(split))
    with progress(n, "  faithfulness", unit="sentence") as bar:
        for i in range(n):
            ids = split.ids[i, :split.lengths[i]]                         # [CLS] w_1 … w_n
            c, attn, dattn = attention_and_gradients(params, config, ids)
            scores = token_scores(attn, dattn, [0], rng)
            output = class_probability(params, config, int(ids[0]), ids[1:], c)
            curves.append(sentence_curves(output, {k: s[1:] for k, s in scores.items()}))
            bar.update()
    return summarise(curves)


# --- one seed, the baseline, overfitting -----------------------------------------------------

def run_seed(seed: int, settings: dict, log=say) -> dict:
    """Generate data, train, evaluate and analyse one seed."""
    train, test, vocab = make_splits(settings["n_train"], settings["n_test"], seed)
    val = make_validation(settings["n_val"], seed)
    config = model_config(len(vocab))
    rng = np.random.default_rng(seed)
    params = init_sentiment_classifier(config, rng)
    start = time.perf_counter()
    history = train_classifier(params, config, train, settings["steps"], rng=rng,
                               evaluate=lambda p: accuracies(p, config, test),
                               eval_every=max(1, settings["steps"] // 5), log=log)
    seconds = time.perf_counter() - start
    # the last evaluation ran at the final step on these parameters: accuracy on the test set
    final_accuracies = {k: v for k, v in history["evals"][-1].items() if k not in ("step", "loss")}
    result = {"seed": seed, "params": params, "config": config, "train": train, "test": test,
              "vocab": vocab, "history": history, "train_seconds": seconds,
              "train_steps": len(history["loss"]),
              "label_counts": np.bincount(train.labels, minlength=len(CLASSES)),
              **final_accuracies, **analyse_heads(params, config, val, test, vocab)}
    log(f"seed {seed}: test accuracy {result['accuracy']:.3f}, negated "
        f"{result['accuracy_negated']:.3f}, trained in {seconds:.0f} s")
    return result


def mean_pool_baseline(result: dict, settings: dict, log=say) -> dict:
    """The bag-of-words baseline on the same data, steps, batches and optimiser as the
    Transformer of ``result``."""
    config = replace(result["config"], pooling="mean")
    rng = np.random.default_rng(result["seed"])
    params = init_sentiment_classifier(config, rng)
    start = time.perf_counter()
    history = train_classifier(params, config, result["train"], settings["steps"], rng=rng,
                               log=log)
    acc = accuracies(params, config, result["test"])
    log(f"mean-pool baseline: test accuracy {acc['accuracy']:.3f}, negated "
        f"{acc['accuracy_negated']:.3f}")
    return {"test_accuracy": acc["accuracy"], "test_accuracy_negated": acc["accuracy_negated"],
            "test_accuracy_any_negator": acc["accuracy_any_negator"],
            "train_steps": len(history["loss"]),
            "train_seconds": time.perf_counter() - start,
            "model": "mean of the word embeddings (d 64) → linear; no attention, no positions"}


def overfitting(seed: int, settings: dict, log=say) -> dict:
    """Train on a small subset with and without regularisation (attention dropout 0.1,
    residual dropout 0.1, weight decay 0.1); record train and test accuracy as it goes."""
    train, test, vocab = make_splits(settings["overfit_train"], 1000, seed + 100)
    runs = {"no regularisation": (0.0, 0.0, 0.0),
            "attention dropout + dropout + weight decay": (0.1, 0.1, 0.1)}
    curves = {}
    for name, (attn_p, drop_p, decay) in runs.items():
        config = model_config(len(vocab), dropout=drop_p, attn_dropout=attn_p)
        rng = np.random.default_rng(seed)
        params = init_sentiment_classifier(config, rng)

        def evaluate(p, config=config):
            return {"train": accuracies(p, config, train)["accuracy"],
                    "test": accuracies(p, config, test)["accuracy"]}
        log(f"overfitting, {name}:")
        history = train_classifier(params, config, train, settings["overfit_steps"], rng=rng,
                                   weight_decay=decay, evaluate=evaluate,
                                   eval_every=max(1, settings["overfit_steps"] // 10), log=log)
        curves[name] = {"train_steps": len(history["loss"]), "curve": history["evals"]}
    return curves


# --- the demo --------------------------------------------------------------------------------

def _summary(r) -> dict:
    return {"seed": r["seed"], "test_accuracy": r["accuracy"],
            "test_accuracy_negated": r["accuracy_negated"],
            "test_accuracy_any_negator": r["accuracy_any_negator"],
            "train_steps": r["train_steps"], "train_seconds": r["train_seconds"],
            "role_scores": r["role_scores"], "role_scores_validation": r["role_scores_validation"],
            "head_ablation": r["head_ablation"], "best_head": r["best_head"],
            "train_label_counts": r["label_counts"], "curve": r["history"]["evals"]}


def _transformer_runs(settings: dict):
    """Every seed's Transformer and the faithfulness of the first → (results, faithfulness).
    Runs in a worker process."""
    with one_blas_thread():
        results = [run_seed(seed, settings) for seed in settings["seeds"]]
        faithful = sentiment_faithfulness(results[0]["params"], results[0]["config"],
                                          results[0]["test"], settings["faithfulness_sentences"])
    return results, faithful


def _side_runs(settings: dict):
    """The mean-pool baseline on the first seed's data (drawn again: the same sentences) and
    the overfitting runs → (baseline, curves). Runs in a worker process."""
    seed = settings["seeds"][0]
    with one_blas_thread():
        train, test, vocab = make_splits(settings["n_train"], settings["n_test"], seed)
        first = {"seed": seed, "config": model_config(len(vocab)), "train": train, "test": test}
        baseline = mean_pool_baseline(first, settings)
        curves = overfitting(settings["seeds"][0], settings)
    return baseline, curves


def run(out_dir, full: bool = False, seed: int = 0) -> list:
    """``seed`` moves every seed (each seed draws its own sentences, as the full run's seeds
    do)."""
    settings = FULL if full else QUICK
    settings = dict(settings, seeds=tuple(s + seed for s in settings["seeds"]))
    out = demo_dir(out_dir, NAME)
    # Two worker processes (two cores; one after the other when python -m demos runs two demos
    # side by side: demos._common.worker_pool): the Transformer(s) in one, the baseline and the
    # overfitting runs in the other. Each run has its own seed and data, so the numbers are
    # those of running them one after the other.
    with worker_pool() as pool:
        main_job = pool.submit(_transformer_runs, settings)
        side_job = pool.submit(_side_runs, settings)
        results, faithful = main_job.result()
        baseline, curves = side_job.result()
    for line in report_lines(faithful, "p(predicted class), words deleted"):
        say(line)
    seeds = [_summary(r) for r in results]
    main = seeds[0]
    metrics = {**{k: main[k] for k in ("test_accuracy", "test_accuracy_negated",
                                        "test_accuracy_any_negator", "train_steps",
                                        "best_head", "role_scores", "role_scores_validation",
                                        "head_ablation")},
               "mean_pool_baseline": baseline, "faithfulness": faithful,
               "definitions": DEFINITIONS, "seeds": seeds, "overfitting": curves,
               "settings": {**settings, "encoder": vars(results[0]["config"].encoder).copy()}}
    write_json(out / "metrics.json", metrics)
    figures = all_figures(results, curves, settings, out_dir, NAME)
    figures.append(figure_curves(faithful, "p(predicted class)", min(
        settings["faithfulness_sentences"], len(results[0]["test"])), out_dir,
        f"{NAME}/faithfulness.png", "sentiment classifier, words deleted",
        title_zh="情感分类器，删除词语"))
    return figures


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
