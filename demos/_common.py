"""What every demo shares: command-line arguments, output folders and gallery entries."""
from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from attention_np.nn.backend import one_numba_thread  # noqa: F401  (the demos' workers use it)


# ``python -m demos`` runs two demos side by side, one core each, and sets this to "1" in their
# processes: a demo then runs its independent trainings one after the other instead of
# starting worker processes of its own.
WORKERS_VARIABLE = "ATTENTION_NP_DEMO_WORKERS"


# The kernels' autotuner (attention_np.kernels._tune) times candidate block sizes the first time
# a kernel gets a big problem, and saves the winner for every later process on the machine.
TUNE_VARIABLE = "ATTENTION_NP_TUNE"


def default_kernel_blocks() -> None:
    """The demos run the Numba kernels with their default block sizes (``ATTENTION_NP_TUNE=0``,
    unless the user set it). Otherwise a fresh clone's ``python -m demos`` tuned in the middle
    of efficient_attention's cost curve (its first flash call of ≥ 1 GFLOP), timing the
    candidates beside the other lane's demo and saving that loaded machine's choice for every
    later process; and the demos that ran after it used other block sizes than those before it
    (block sizes change the order of additions, so a demo's numbers would hang on a timing).
    ``python -m attention_np.kernels.bench`` still tunes."""
    os.environ.setdefault(TUNE_VARIABLE, "0")


def demo_workers(default: int = 2) -> int:
    """How many worker processes a demo may start for its independent runs: ``default`` (the
    two cores), or what ``ATTENTION_NP_DEMO_WORKERS`` says."""
    value = os.environ.get(WORKERS_VARIABLE, "")
    return max(1, int(value)) if value.strip() else default


class InlineExecutor:
    """``submit``/``map`` of concurrent.futures, run at once in this process (one worker)."""

    def submit(self, fn, *args, **kwargs) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:        # re-raised by future.result(), as a pool would
            future.set_exception(error)
        return future

    def map(self, fn, *iterables):
        """The results in order, each computed when it is read (a progress bar moves with them)."""
        return (fn(*args) for args in zip(*iterables))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def worker_pool(workers: int | None = None):
    """The executor a demo runs its independent trainings on: ``workers`` (default
    :func:`demo_workers`) forked processes, or this process when that is 1. Every run has its
    own seed and data, so the numbers do not depend on which."""
    workers = demo_workers() if workers is None else min(workers, demo_workers())
    if workers <= 1:
        return InlineExecutor()
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))


class DemoUnavailable(RuntimeError):
    """Raised by a demo's ``run`` when an optional requirement is missing (message: how to get it).
    ``python -m demos`` reports it and goes on with the other demos."""


LANGUAGES = {"en": "English", "zh": "中文"}


@dataclass
class Figure:
    """One gallery entry: a file (PNG, SVG, GIF or HTML) relative to the output root, and what
    to look at — in English and in Chinese (the gallery and the site show the reader's
    language; the text inside a figure stays English)."""
    path: str
    caption: str
    title: str = ""
    caption_zh: str = ""
    title_zh: str = ""

    def caption_in(self, lang: str) -> str:
        """The caption in ``lang`` ("en" or "zh"); a missing translation is an error."""
        return self._text("caption", lang)

    def title_in(self, lang: str) -> str:
        """The title in ``lang`` ("" when the figure has none)."""
        return self._text("title", lang) if self.title else ""

    def _text(self, field: str, lang: str) -> str:
        if lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {sorted(LANGUAGES)}, got {lang!r}")
        text = getattr(self, field if lang == "en" else f"{field}_zh")
        if not text:
            raise ValueError(f"{self.path} has no {field} in {LANGUAGES[lang]}")
        return text


def parse_args(description: str, argv=None) -> argparse.Namespace:
    """``--out DIR`` (default ``out``), ``--full`` (the slower run whose numbers go in the README)
    and ``--quiet``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output root folder")
    parser.add_argument("--full", action="store_true", help="longer run for the README numbers")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or report lines")
    return parser.parse_args(argv)


def demo_main(run, doc: str):
    """The ``main(argv=None)`` of a demo module: parse ``--out``/``--full``/``--quiet``, call
    ``run`` and list the files it drew."""
    def main(argv=None) -> None:
        from demos._progress import say, set_quiet
        default_kernel_blocks()
        args = parse_args(doc.strip().splitlines()[0], argv)
        set_quiet(args.quiet)
        for figure in run(args.out, full=args.full):
            say(f"wrote {Path(args.out) / figure.path}")
    return main


def one_blas_thread():
    """Context manager: OpenBLAS on one thread. The demos multiply small matrices, where BLAS
    threads only fight over the cores (measured 10–40× slower on a busy 2-core machine)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1, user_api="blas")


def demo_dir(out_dir: Path, name: str) -> Path:
    """``out_dir/name``, created."""
    path = Path(out_dir) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, out_dir: Path, relpath: str, caption: str, title: str = "",
                svg: bool = False, caption_zh: str = "", title_zh: str = "") -> Figure:
    """Save a matplotlib figure as PNG (and SVG when asked) under ``out_dir`` and close it;
    the gallery entry carries the caption (and title) in English and Chinese."""
    import matplotlib.pyplot as plt
    path = Path(out_dir) / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if svg:
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return Figure(relpath, caption, title, caption_zh, title_zh)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON (NumPy scalars converted)."""
    def default(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o)}")
    Path(path).write_text(json.dumps(obj, indent=2, default=default) + "\n")
