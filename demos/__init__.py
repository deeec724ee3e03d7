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
]

# Quick-mode wall time of each demo, measured on a 2-core AMD EPYC (Zen 4) with little else
# running (``python -m demos --list`` shows them; the gallery records each run's own time).
QUICK_SECONDS = {
    "formulas": 4,
    "translate_dates": 245,
    "caption_digits": 225,
    "classify_sentiment": 140,
    "bert_attention": 60,
    "efficient_attention": 40,
    "speech_digits": 75,
    "recommend": 15,
}
