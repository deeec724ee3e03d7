"""README's tables of measured numbers, written from the records (never typed by hand):
``python -m demos --readme-only`` rewrites the text between the markers, and
tests/test_records.py fails when README differs from what the records say.

A headline is a template: ``{quick:none.exact_match:.3f}`` is a reference into this demo's quick
record (``{full:…}`` its full record), with the syntax of demos/_records.py.
"""
from __future__ import annotations

import re
from pathlib import Path

from demos import _records

README = _records.ROOT / "README.md"

# (demo, article sections, what it trains or computes, headline template)
DEMO_ROWS = [
    ("formulas", "§3–§4", "the article's formulas with real numbers; two hand-built heads",
     '"it" → "animal" weight {quick:coreference_it_animal:.3f} in the coreference head'),
    ("translate_dates", "§6.1, §4.1.3",
     "BiLSTM encoder, LSTM decoders without attention and with five kinds of it, a small Transformer: human dates → ISO",
     "same {quick:none.step_budget}-step budget: attention {quick:min(<bahdanau,luong_dot,luong_general,luong_concat,luong_local,transformer>.exact_match):.3f}–"
     "{quick:max(<bahdanau,luong_dot,luong_general,luong_concat,luong_local,transformer>.exact_match):.3f} exact match on unseen formats, no attention "
     "{quick:none.exact_match:.3f}"),
    ("caption_digits", "§5.1, §3.2", "Show, Attend and Tell on digit strips, soft and hard attention",
     "soft {quick:soft.sequence_accuracy:.3f} captions right, {quick:soft.localization_accuracy:.3f}"
     " of words attend to their digit; hard fine-tuned {quick:hard.sequence_accuracy:.3f}; hard "
     "from scratch {quick:hard_from_scratch.sequence_accuracy:.3f}; the article's decoder, same "
     "budget, {quick:article_baseline.sequence_accuracy:.3f}"),
    ("classify_sentiment", "§5.2, §4.3.3", "2-layer Transformer encoder, 5-class sentiment",
     "test {quick:test_accuracy:.3f} (mean-pooled embeddings → linear, same budget: "
     "{quick:mean_pool_baseline.test_accuracy:.3f}); heads chosen on validation: negator "
     "{quick:best_head.negator.test_score:.1f}, \"but\" {quick:best_head.contrast.test_score:.1f} "
     "(lift over uniform)"),
    ("bert_attention", "§4.2.3, §7.2, §8.1.3",
     "pretrained all-MiniLM-L6-v2 run on our layers; faithfulness of explanations",
     "deletion AUC (lower = more faithful) over {quick:faithfulness_setup.pairs} sentence pairs: "
     "relevance {quick:faithfulness.relevance.deletion_auc:.3f}, raw attention "
     "{quick:faithfulness.raw_attention.deletion_auc:.3f}, rollout "
     "{quick:faithfulness.rollout.deletion_auc:.3f}, random order "
     "{quick:faithfulness.random.deletion_auc:.3f}"),
    ("efficient_attention", "§8.2, §8.3", "window, block-sparse, linear, Performer, Linformer",
     "memory slope {quick:cost.exact (NumPy).peak_mib_slope:.1f} (exact) vs "
     "{quick:cost.linear (elu+1).peak_mib_slope:.1f} (linear); recall with four questions, no "
     "global token: exact {quick:recall_multi_query.exact.accuracy:.2f}, window "
     "{quick:recall_multi_query.window w=8.accuracy:.2f}"),
    ("speech_digits", "§6.3", "Listen, Attend and Spell on espeak-ng digit strings",
     "WER {quick:word_error_rate:.3f} on unseen voices; "
     "{quick:strict_monotone_alignment_fraction:.3f} of alignments strictly monotone"),
    ("recommend", "§6.4", "Deep Interest Network vs mean pooling, both with a learning-rate search",
     "AUC {quick:din.auc:.3f} vs {quick:pooling.auc:.3f} (Bayes-optimal "
     "{quick:bayes_optimal_auc:.3f})"),
    ("knowledge_graph", "§8.1.1", "GAT and relation-aware GAT on a generated knowledge graph",
     "test accuracy MLP {quick:mlp.test_accuracy:.3f}, mean aggregation "
     "{quick:mean_aggregation.test_accuracy:.3f}, GAT {quick:gat.test_accuracy:.3f}, "
     "relation-aware GAT {quick:relation_gat.test_accuracy:.3f}"),
    ("vision_attention", "§1.2.2, §2.2.2", "CNN, CNN + SE, CNN + CBAM, ViT on 8×8 digits",
     "test accuracy CNN {quick:cnn.test_accuracy:.3f}, SE {quick:cnn_se.test_accuracy:.3f}, "
     "CBAM {quick:cnn_cbam.test_accuracy:.3f}, ViT {quick:vit.test_accuracy:.3f}"),
    ("induction_heads", "§2.2.3", "2-layer attention-only decoder LM on repeated random tokens",
     "induction score {quick:induction_score:.2f}, previous-token {quick:prev_token_score:.2f}; "
     "repeated-half loss {quick:loss_second_half:.2f} vs {quick:loss_first_half:.2f}"),
    ("overfitting", "§8.2.3",
     "the sentiment classifier at half width on four training-set sizes, 1/2/4 heads, attention "
     "dropout 0/0.1/0.3, same steps",
     "largest train–test gap {quick:headline.largest_gap:.2f}; attention dropout 0.3 changes test "
     "accuracy by {quick:mean(summary.effects.4 heads, attention dropout 0?3.1000.mean):+.3f} at "
     "1000 sentences and {quick:mean(summary.effects.4 heads, attention dropout 0?3.16000.mean):+.3f}"
     " at 16000"),
    ("visual_question", "§8.1.2",
     "questions in words over digit strips: question-to-region attention (two hops) vs mean "
     "pooling vs the question alone, same steps",
     "test accuracy attention {quick:attention.test_accuracy:.3f}, mean pooling "
     "{quick:mean_pool.test_accuracy:.3f}, question only {quick:question_only.test_accuracy:.3f} "
     "({quick:attention.train_steps} steps each); attention on the answer's digit "
     "{quick:attention_on_target:.2f}"),
    ("pointer_sort", "§8.3.2",
     "Pointer Networks vs a seq2seq decoder over a value vocabulary, trained on n ≤ 10",
     "sequences sorted exactly at n = 10 / 15 / 20: pointer "
     "{quick:pointer.sequence_accuracy.10:.2f} / {quick:pointer.sequence_accuracy.15:.2f} / "
     "{quick:pointer.sequence_accuracy.20:.2f}, seq2seq {quick:seq2seq.sequence_accuracy.10:.2f} / "
     "{quick:seq2seq.sequence_accuracy.15:.2f} / {quick:seq2seq.sequence_accuracy.20:.2f} "
     "({quick:pointer.train_steps} steps each)"),
]

# Headlines whose quick paths do not exist in the full record (full mode changes a setting that
# names the metric): efficient_attention's recall runs at T = 128 with a window of 16, not 8.
FULL_HEADLINES = {
    "efficient_attention":
        "memory slope {full:cost.exact (NumPy).peak_mib_slope:.1f} (exact) vs "
        "{full:cost.linear (elu+1).peak_mib_slope:.1f} (linear); recall with four questions, no "
        "global token, T = {full:recall_multi_query_config.T}: exact "
        "{full:recall_multi_query.exact.accuracy:.2f}, window "
        "{full:recall_multi_query.window w=16.accuracy:.2f}",
}

PLACEHOLDER = re.compile(r"\{(quick|full):([^{}]+?)\}")


def headline(demo: str, template: str, cache: dict) -> str:
    """A template with its references replaced by the numbers of the demo's records."""
    def one(m):
        return _records.resolve(f"{demo}.{m.group(1)}:{m.group(2)}", cache)
    return PLACEHOLDER.sub(one, template)


def demo_table(rows=DEMO_ROWS) -> str:
    cache = {}
    lines = ["| demo | article | what it trains or computes | headline (quick mode) |",
             "|---|---|---|---|"]
    walls, cpus, machines = [], [], set()
    for demo, article, what, template in rows:
        if _records.record_path(demo, "quick").exists():
            lines.append(f"| `{demo}` | {article} | {what} | {headline(demo, template, cache)} |")
            rec = cache.get((demo, "quick")) or _records.load(demo, "quick")
            walls.append(rec["wall_seconds"])
            cpus.append(rec["cpu_seconds"])
            machines.add(f"{rec['provenance']['cpu']}, {rec['provenance']['cores']} cores")
    missing = [row[0] for row in rows if not _records.record_path(row[0], "quick").exists()]
    if walls:
        lines += ["", f"Quick mode, seed 0, each demo recorded alone: {sum(walls) / 60:.1f} minutes "
                      f"wall ({sum(cpus) / 60:.1f} CPU-minutes) for these {len(walls)} demos on "
                      f"{' / '.join(sorted(machines))}; each record names its commit and date."]
    jobs = {mode: _records.load("main_job", mode) for mode in ("cold", "warm")
            if _records.record_path("main_job", mode).exists()}
    if jobs:
        said = [f"{rec['wall_seconds'] / 60:.1f} minutes with Numba's cache {mode}"
                + (" (a fresh clone)" if mode == "cold" else "")
                + f" on {_records.cpu_name(rec['provenance'])}, {rec['provenance']['cores']} "
                  f"cores, {rec['provenance']['date']} ({_checked(rec)})"
                for mode, rec in jobs.items()]
        lines += ["", f"`python -m demos` itself runs the demos two at a time, one core each: "
                      f"{'; '.join(said)} (docs/records/main_job.*.json; two machines' speeds "
                      f"differ, compare only runs on one)."]
    if missing:
        lines += ["", "Not recorded yet: " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join(lines)


def _checked(job: dict) -> str:
    """How a main_job run compared with the quick records: "2411 of 2411 metrics within
    tolerance, 2403 exactly as recorded"."""
    demos = job["metrics"]["demos"].values()
    total = sum(d.get("metrics", 0) for d in demos)
    return (f"{sum(d.get('within_tolerance', 0) for d in demos)} of {total} metrics within "
            f"tolerance of the quick records, {sum(d.get('exact', 0) for d in demos)} exactly")


def full_table(rows=DEMO_ROWS) -> str:
    """The same headlines read from the full records (``python -m demos --record NAME --full``):
    longer budgets, more data and, for the demos that have them, seeds 0–2 (a headline is then
    what that demo's metrics.json reports: the seeds' mean or seed 0's run, as its record says)."""
    cache, lines = {}, ["| demo | headline (full mode) | wall (min) | CPU (min) |",
                        "|---|---|---:|---:|"]
    walls, cpus, machines, missing, loaded = [], [], set(), [], 0
    for demo, _, _, template in rows:
        if not _records.record_path(demo, "full").exists():
            missing.append(demo)
            continue
        rec = cache.get((demo, "full")) or _records.load(demo, "full")
        cache[(demo, "full")] = rec
        text = headline(demo, FULL_HEADLINES.get(demo, template.replace("{quick:", "{full:")),
                        cache)
        lines.append(f"| `{demo}` | {text} | {rec['wall_seconds'] / 60:.1f} | "
                     f"{rec['cpu_seconds'] / 60:.1f} |")
        walls.append(rec["wall_seconds"])
        cpus.append(rec["cpu_seconds"])
        machines.add(f"{_records.cpu_name(rec['provenance'])}, {rec['provenance']['cores']} cores")
        load = rec["provenance"].get("load_average_at_end") or [0]
        loaded += load[0] > rec["provenance"]["cores"]        # other jobs ran beside this one
    if walls:
        lines += ["", f"Full mode, one `python -m demos --record NAME --full` per demo: "
                      f"{sum(walls) / 60:.1f} minutes wall ({sum(cpus) / 60:.1f} CPU-minutes) for "
                      f"these {len(walls)} demos on {' / '.join(sorted(machines))}"
                      + (f"; {loaded} of them ended with the machine's load average above its "
                         f"core count (other jobs beside them: their wall times are "
                         f"loaded-machine times)." if loaded else ".")]
    if missing:
        lines += ["", "No full record yet: " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join(lines)


def replace_between(text: str, name: str, body: str) -> str:
    start, end = f"<!-- records:{name} start -->", f"<!-- records:{name} end -->"
    if start not in text or end not in text:
        raise ValueError(f"README has no {start} … {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def kernel_table() -> str:
    """The kernel benchmark's table from docs/records/kernels.json, with the machine it ran on."""
    path = _records.record_path("kernels", None)
    if not path.exists():
        return "(no kernel record yet: run `python -m demos --record kernels`)"
    rec = _records.load("kernels", None)
    prov, res = rec["provenance"], rec["metrics"]
    ms = (lambda t: "—" if t is None else f"{t:.1f}")
    cpu = _records.cpu_name(prov)
    lines = [f"Recorded {prov['date']} on **{cpu}**, {res['threads']} threads "
             f"(commit `{prov['commit']}`, `{rec['command']}`); yardsticks of that machine: "
             f"OpenBLAS sgemm {res['peaks']['gemm_gflops']:.0f} GFLOPS, 2-thread copy "
             f"{res['peaks']['copy_gbs']:.1f} GB/s. Kernel configuration: {res['config']}."
             + (f" Load average when it ended: {', '.join(map(str, prov['load_average_at_end']))}"
                " (1, 5, 15 min) — on a busy machine the ratios move; compare only within one run."
                if "load_average_at_end" in prov else ""),
             "",
             "| kernel | shape | ours ms | NumPy ms | torch ms | rate | torch/ours | % of yardstick |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        ratio = "—" if r.get("torch_ms") is None else f"{r['torch_ms'] / r['ours_ms']:.2f}×"
        pct = r.get("percent_of_yardstick")
        lines.append(f"| {r['kernel']} | {r['shape']} | {ms(r['ours_ms'])} | "
                     f"{ms(r.get('numpy_ms'))} | {ms(r.get('torch_ms'))} | "
                     f"{r['rate']:.1f} {r['unit']} | {ratio} | "
                     f"{'—' if pct is None else f'{pct:.0f}%'} |")
    return "\n".join(lines)


def rendered(text: str) -> str:
    """README's text with every generated block as the records make it."""
    text = replace_between(text, "demos", demo_table())
    text = replace_between(text, "demos-full", full_table())
    return replace_between(text, "kernels", kernel_table())


def update_readme(path: Path = README) -> Path:
    path.write_text(rendered(path.read_text(encoding="utf-8")), encoding="utf-8")
    return path
