"""Runnable demos. ``python -m demos`` runs every demo listed in :data:`DEMOS` and writes a gallery.

Protocol for a demo module ``demos/<name>.py``:

* ``run(out_dir: pathlib.Path, full: bool = False) -> list[Figure]`` writes its files under
  ``out_dir / <name>/`` and returns the figures to show in the gallery;
* ``main(argv=None)`` parses ``--out DIR`` (default ``out``) and ``--full`` with
  :func:`demos._common.parse_args` and calls ``run`` (``main = demo_main(run, __doc__)``);
  ``if __name__ == "__main__": main()``.
"""
DEMOS = [
    "formulas",
    "translate_dates",
    "caption_digits",
    "classify_sentiment",
    "bert_attention",
    "efficient_attention",
    "speech_digits",
    "recommend",
    "knowledge_graph",
    "vision_attention",
    "induction_heads",
    "overfitting",
    "visual_question",
    "pointer_sort",
]

# Estimated quick-mode time of each demo, used only where a demo has no record yet:
# ``python -m demos --list`` and the progress lines read docs/records/<demo>.quick.json.
QUICK_SECONDS = {
    "formulas": 4,
    "translate_dates": 290,     # issue 21 rows: CPU seconds (user + sys) of a quick run on the
    "caption_digits": 340,      # shared machine under load (wall time there was 3-6x larger);
    "classify_sentiment": 215,  # translate_dates: its two workers' CPU time / 2
    "bert_attention": 60,
    "efficient_attention": 70,  # issue 21: + the multi-query recall runs (31 CPU s measured)
    "speech_digits": 75,
    "recommend": 45,            # issue 21: three learning rates per model (CPU seconds)
    "knowledge_graph": 30,
    "vision_attention": 150,
    "induction_heads": 60,
    "overfitting": 135,         # issue 32: its two workers' CPU time / 2 (267 CPU s measured)
    "visual_question": 110,     # issue 32: CPU seconds (user + sys) of a quick run, seeds 0-2
    "pointer_sort": 55,         # issue 32: CPU seconds (user + sys) of a quick run
}
