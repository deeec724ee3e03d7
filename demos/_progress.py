"""Progress you can see while a demo trains.

``progress(total, desc)`` is the one progress display of the demos:

* on a terminal, a tqdm bar (steps, rate, elapsed / ETA, and the loss set with ``set_postfix``);
* when the output goes to a file or a pipe (CI, ``| tee``), or when two demos run side by side
  (``set_prefix``), one line per epoch: a bar's carriage returns would fill a log with
  thousands of partial lines;
* nothing at all after ``set_quiet(True)`` (``python -m demos --quiet``, a demo's ``--quiet``).

Both displays share tqdm's small interface: ``update(n)``, ``set_postfix(**values)``,
``write(line)``, ``close()``, and use as a context manager.
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

_QUIET = False
_PREFIX = ""          # "[name] " while python -m demos runs two demos side by side


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress display and ``say`` line of the demos."""
    global _QUIET
    _QUIET = bool(quiet)


def is_quiet() -> bool:
    return _QUIET


def set_prefix(prefix: str) -> None:
    """Start every line with ``prefix`` and show progress as lines, never as a bar: two demos
    that run side by side (``python -m demos``) share one terminal, where two bars would
    overwrite each other."""
    global _PREFIX
    _PREFIX = prefix


def say(line: str) -> None:
    """Print a line of a demo's report (above a running bar), unless quiet."""
    if not _QUIET:
        tqdm.write(_PREFIX + line, file=sys.stdout)
        sys.stdout.flush()


class EpochLines:
    """The display for a log file: one line every ``every`` steps (an epoch) and one at the end."""

    def __init__(self, total: int, desc: str, every: int, file=None):
        self.total, self.desc, self.every = int(total), desc, max(1, int(every))
        self.n, self.postfix, self.file = 0, "", file or sys.stdout
        self.start, self._printed = time.perf_counter(), -1

    def update(self, n: int = 1) -> None:
        before, self.n = self.n, self.n + n
        if self.n // self.every > before // self.every or self.n >= self.total:
            self._line()

    def set_postfix(self, **values) -> None:
        self.postfix = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in values.items())

    def write(self, line: str) -> None:
        print(_PREFIX + line, file=self.file, flush=True)

    def _line(self) -> None:
        if self._printed == self.n:
            return
        self._printed = self.n
        seconds = time.perf_counter() - self.start
        eta = seconds / self.n * (self.total - self.n) if self.n else float("nan")
        self.write(f"{self.desc}: {self.n}/{self.total}  {self.postfix}  "
                   f"[{seconds:.0f} s elapsed, ~{eta:.0f} s left]")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int, desc: str, every: int | None = None, unit: str = "step",
             enabled: bool = True):
    """A progress display for a loop of ``total`` steps: a tqdm bar on a terminal, else one
    line every ``every`` steps (default: a tenth of the run), nothing when quiet or not
    ``enabled``."""
    if _QUIET or not enabled:
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty() and not _PREFIX:
        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
                    mininterval=0.5)
    return EpochLines(total, desc, every or max(1, total // 10))
