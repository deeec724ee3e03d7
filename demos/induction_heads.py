"""Induction heads (Olsson et al., 2022) grow in a two-layer attention-only language model trained
on random sequences whose second half repeats the first: a previous-token head in layer 1 and an
induction head in layer 2 complete [A][B] … [A] → [B], and they appear together in a sudden drop
of the in-context loss. The model then generates with a KV cache (same tokens as recomputing
everything, several times faster)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from attention_np.lm import LMConfig, generate, init_lm, lm_loss_and_grads
from attention_np.lm.circuits import (copying_scores, induction_scores, k_composition,
                                      previous_token_scores)
from attention_np.nn.optim import Adam, clip_grad_norm
from demos._common import Figure, demo_dir, demo_main, one_blas_thread, write_json
from demos._induction_data import (control_rows, current_token_scores, half_losses,
                                   repeated_rows, token_losses, training_batch, trigram_table,
                                   without_head)
from demos._progress import progress, say

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "归纳头（induction head，Olsson et al., 2022）在一个只含注意力层的两层语言模型"
    "（language model）中形成，训练数据是后半段重复前半段的随机序列：第 1 "
    "层的前一词元头和第 2 层的归纳头合力补全 [A][B] … [A] → [B]，"
    "两者在上下文内损失骤然下降时一同出现。随后模型用 KV 缓存（KV cache）生成："
    "得到的词元与每步全部重算时相同，速度却快好几倍。"
)

# ------------------------------------------------------------------------------- data and model
VOCAB = 32
# Untied unembedding: with W_U = W_Eᵀ the eigenvalues of W_E W_OV W_U are those of a product
# that the model also uses to read the current token, and the trained heads' OV circuits came
# out anti-copying (seeds 0-2, copying scores below 0 for every head, induction head included):
# the model suppressed the current token and copied through V-composition instead. Untied, the
# induction head's OV circuit copies (0.45-0.61 on seeds 0-2) and the algebra reads as the
# papers tell it. 256 positions: the KV-cache timing at T = 256.
MODEL = LMConfig(vocab_size=VOCAB, max_len=256, d_model=64, num_heads=2, num_layers=2,
                 mlp=False, tied=False)


@dataclass(frozen=True)
class Recipe:
    """Training data and schedule (Adam, gradient norm clipped at 1)."""
    steps: int = 2000
    rows: int = 32                    # rows per batch, all of one length 2h
    halves: tuple = (4, 20)           # h is drawn per batch from this range
    control: float = 0.5              # share of control rows
    trigram_p: float = 0.7            # how often a control row follows its trigram table
    lr: float = 3e-3
    eval_every: int = 50
    eval_half: int = 16               # the measured rows: 16 random tokens and their repeat
    eval_rows: int = 48


QUICK = FULL = Recipe()
SEEDS = {False: (0,), True: (0, 1, 2)}         # the full run checks the targets on three seeds


# ------------------------------------------------------------------------------- evaluation
def evaluate(params, eval_ids, control_ids, half: int) -> dict:
    """In-context losses of repeated and control rows and every head's two scores."""
    nll, weights = token_losses(eval_ids, params, MODEL)
    first, second = half_losses(nll, half)
    control_first, control_second = half_losses(token_losses(control_ids, params, MODEL)[0], half)
    induction, previous = induction_scores(weights, half), previous_token_scores(weights)
    return {"loss_first_half": first, "loss_second_half": second,
            "loss_control_first_half": control_first, "loss_control_second_half": control_second,
            "induction_score": float(induction[1].max()), "prev_token_score":
            float(previous[0].max()), "induction_scores": induction, "prev_token_scores": previous,
            "current_token_scores": current_token_scores(weights)}


def phase_change_step(history: list) -> int:
    """The first evaluated step at which the second-half loss is below the midpoint of its
    first and last values (where the in-context loss drops)."""
    losses = [h["loss_second_half"] for h in history]
    mid = (losses[0] + losses[-1]) / 2
    return next(h["step"] for h in history if h["loss_second_half"] <= mid)


# ------------------------------------------------------------------------------- training
def train(recipe: Recipe, seed: int):
    """Adam on the next-token loss of mixed batches → (params, evaluation history)."""
    rng = np.random.default_rng(seed)
    table = trigram_table(VOCAB, rng)
    h = recipe.eval_half
    eval_ids = repeated_rows(rng, recipe.eval_rows, h, VOCAB)
    control_ids = control_rows(rng, recipe.eval_rows, h, table, recipe.trigram_p)
    params, opt, history = init_lm(MODEL, rng), Adam(recipe.lr), []
    with progress(recipe.steps, f"  induction heads, seed {seed}") as bar:
        for step in range(recipe.steps + 1):
            if step % recipe.eval_every == 0:
                summary = evaluate(params, eval_ids, control_ids, h)
                history.append({"step": step, **{k: v for k, v in summary.items()
                                                 if not k.endswith("scores")}})
                bar.set_postfix(second_half=f"{summary['loss_second_half']:.2f}",
                                induction=f"{summary['induction_score']:.2f}")
            if step == recipe.steps:
                break
            ids = training_batch(rng, recipe.rows, recipe.halves, table, recipe.control,
                                 recipe.trigram_p)
            _, grads = lm_loss_and_grads(ids, params, MODEL)
            clip_grad_norm(grads, 1.0)
            opt.step(params, grads)
            bar.update()
    return params, history, (eval_ids, control_ids)


def ablation(params, eval_ids, half: int) -> dict:
    """Second-half loss with each head's output zeroed."""
    out = {}
    for layer in range(MODEL.num_layers):
        for head in range(MODEL.num_heads):
            nll, _ = token_losses(eval_ids, without_head(params, MODEL, layer, head), MODEL)
            out[f"layer {layer + 1} head {head + 1}"] = half_losses(nll, half)[1]
    return out


# ------------------------------------------------------------------------------- the KV cache
def kv_cache_check(params, rng, T: int = 256, prompt_len: int = 32, repeats: int = 3) -> dict:
    """Generate T − prompt_len tokens greedily with and without the cache: the largest logit
    difference, whether the tokens agree, and tokens/s of each (best of ``repeats`` runs), and
    the same differences on the numba backend."""
    prompt = repeated_rows(rng, 1, prompt_len // 2, VOCAB)
    n, runs = T - prompt_len, {}
    for use_cache in (True, False):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = generate(params, MODEL, prompt, n, use_cache=use_cache)
            seconds.append(time.perf_counter() - start)
        runs[use_cache] = result + (n / min(seconds),)
    (ids, logits, fast), (ids_ref, logits_ref, slow) = runs[True], runs[False]
    out = {"kv_cache_T": T, "kv_cache_max_abs_diff": float(np.abs(logits - logits_ref).max()),
           "kv_cache_tokens_equal": bool(np.array_equal(ids, ids_ref)),
           "tokens_per_s_with_cache": fast, "tokens_per_s_without_cache": slow,
           "kv_cache_speedup": fast / slow}
    numba_cfg = replace(MODEL, backend="numba")
    pair = [generate(params, numba_cfg, prompt, n, use_cache=c)[1] for c in (True, False)]
    out["kv_cache_max_abs_diff_numba"] = float(np.abs(pair[0] - pair[1]).max())
    out["numba_vs_numpy_max_abs_diff"] = float(np.abs(pair[0] - logits).max())
    return out


def generation_example(params, rng, half: int, shown: int = 3):
    """A prompt of h random tokens and the first ``shown`` of their repeat; greedy generation
    of the rest with the cache → (ids, prompt length, share of generated tokens that copy)."""
    row = repeated_rows(rng, 1, half, VOCAB)
    prompt_len = half + shown
    ids, _ = generate(params, MODEL, row[:, :prompt_len], 2 * half - prompt_len)
    return ids[0], prompt_len, float(np.mean(ids[0, prompt_len:] == row[0, prompt_len:]))


# ------------------------------------------------------------------------------- run
def run(out_dir: Path, full: bool = False, seed: int = 0) -> list[Figure]:
    """``seed`` shifts every training seed (the sequences are drawn from it too)."""
    with one_blas_thread():
        return _run(Path(out_dir), full, seed)


def _run(out_dir: Path, full: bool, seed: int = 0) -> list[Figure]:
    from demos import _induction_figures as figs
    out = demo_dir(out_dir, figs.NAME)
    start, cpu_start = time.perf_counter(), time.process_time()
    recipe = FULL if full else QUICK
    used = tuple(s + seed for s in SEEDS[full])
    say(f"induction heads: {MODEL.num_layers}-layer attention-only LM, {recipe.steps} steps "
        f"per seed, seeds {used}")
    runs = {s: train(recipe, s) for s in used}
    seeds = {f"seed {s}": _summary(params, history, data[0], recipe.eval_half)
             for s, (params, history, data) in runs.items()}
    if full:            # the same training with uniform control rows: no head to look back on
        params, history, data = train(replace(recipe, trigram_p=0.0), used[0])
        seeds[f"uniform control rows, seed {used[0]}"] = _summary(params, history, data[0],
                                                         recipe.eval_half)
    params, history, (eval_ids, control_ids) = runs[used[0]]
    metrics = _metrics(params, history, eval_ids, control_ids, recipe)
    metrics.update(kv_cache_check(params, np.random.default_rng(7)))
    ids, prompt_len, copied = generation_example(params, np.random.default_rng(8),
                                                 recipe.eval_half)
    copying, composition = metrics["copying_score"], metrics["k_composition"]
    ind_head, prev_head = metrics["induction_head"][1] - 1, metrics["prev_token_head"][1] - 1
    metrics["targets_met"] = {
        "induction head copies most": bool(copying[1, ind_head] == copying.max()),
        "induction head K-composes most with the previous-token head":
            bool(composition[ind_head].argmax() == prev_head),
        "induction_score >= 0.5": metrics["induction_score"] >= 0.5,
        "prev_token_score >= 0.5": metrics["prev_token_score"] >= 0.5,
        "loss_second_half <= 0.3 loss_first_half": metrics["loss_ratio"] <= 0.3,
        "kv_cache_speedup >= 3": metrics["kv_cache_speedup"] >= 3}
    metrics.update(generation_copy_accuracy=copied, seeds=seeds, model=asdict(MODEL),
                   recipe=asdict(recipe), seconds=time.perf_counter() - start,
                   cpu_seconds=time.process_time() - cpu_start)
    write_json(out / "metrics.json", metrics)
    _report(metrics)
    return figs.all_figures(params, MODEL, metrics, history, eval_ids[0], ids, prompt_len,
                            out_dir)


def _metrics(params, history, eval_ids, control_ids, recipe: Recipe) -> dict:
    h = recipe.eval_half
    final = evaluate(params, eval_ids, control_ids, h)
    ind, prev = final["induction_scores"], final["prev_token_scores"]
    final.update(induction_head=[2, int(ind[1].argmax()) + 1],
                 prev_token_head=[1, int(prev[0].argmax()) + 1],
                 loss_ratio=final["loss_second_half"] / final["loss_first_half"],
                 phase_change_step=phase_change_step(history),
                 ablation_second_half_loss=ablation(params, eval_ids, h))
    # The circuits (lm.circuits), and the same numbers for the untrained model: the scale of
    # "high" (a random (V, V) map has eigenvalues all around the circle; random subspaces
    # overlap by about √(Dh/d)).
    untrained = init_lm(MODEL, np.random.default_rng(0))
    final.update(copying_score=copying_scores(params, MODEL),
                 k_composition=k_composition(params, MODEL),
                 copying_score_random_init=copying_scores(untrained, MODEL),
                 k_composition_random_init=k_composition(untrained, MODEL))
    return final


def _summary(params, history, eval_ids, half: int) -> dict:
    """The targets of one seed."""
    nll, weights = token_losses(eval_ids, params, MODEL)
    first, second = half_losses(nll, half)
    induction, previous = induction_scores(weights, half), previous_token_scores(weights)
    ind_head, prev_head = int(induction[1].argmax()), int(previous[0].argmax())
    copying, composition = copying_scores(params, MODEL), k_composition(params, MODEL)
    return {"loss_ratio": second / first, "induction_score": float(induction[1].max()),
            "prev_token_score": float(previous[0].max()),
            "phase_change_step": phase_change_step(history),
            "copying_score": copying, "k_composition": composition,
            "induction_head_copies_most": bool(copying[1, ind_head] == copying.max()),
            "induction_head_composes_with_prev_token_head":
                bool(composition[ind_head].argmax() == prev_head)}


def _report(m: dict) -> None:
    say(f"  in-context loss: first half {m['loss_first_half']:.3f}, second half "
        f"{m['loss_second_half']:.3f} (ratio {m['loss_ratio']:.3f}); phase change at step "
        f"{m['phase_change_step']}")
    say(f"  induction score {m['induction_score']:.3f} (layer 2 head {m['induction_head'][1]}),"
        f" previous-token score {m['prev_token_score']:.3f} (layer 1 head "
        f"{m['prev_token_head'][1]})")
    ind, prev = m["induction_head"][1] - 1, m["prev_token_head"][1] - 1
    say(f"  copying score of the induction head {m['copying_score'][1, ind]:.2f} (every head: "
        f"{np.round(m['copying_score'], 2).tolist()}; untrained: "
        f"{np.round(m['copying_score_random_init'], 2).tolist()}); its K-composition with the "
        f"previous-token head {m['k_composition'][ind, prev]:.2f} (untrained max "
        f"{m['k_composition_random_init'].max():.2f})")
    say(f"  KV cache at T = {m['kv_cache_T']}: {m['tokens_per_s_with_cache']:.0f} vs "
        f"{m['tokens_per_s_without_cache']:.0f} tokens/s ({m['kv_cache_speedup']:.1f}x), "
        f"max |Δ logits| {m['kv_cache_max_abs_diff']:.1e}")
    for name, s in m["seeds"].items():
        say(f"  {name}: ratio {s['loss_ratio']:.3f}, induction {s['induction_score']:.3f},"
            f" previous-token {s['prev_token_score']:.3f}, phase change {s['phase_change_step']}")


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
