"""Grade a learner's file: run its function on every case of the exercise in a worker
(:mod:`runner`), compare each output with the library's (:mod:`diagnose`), spot-check the
gradients of a backward exercise with finite differences, and sum up in a :class:`Report`.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attention_np.exercises.diagnose import close, compare, describe, where
from attention_np.exercises.runner import run_learner
from attention_np.exercises.spec import Case, Exercise

SHOWN_FAILURES = 3          # failing cases shown in full; the others are counted
FD_ENTRIES = 3              # entries per gradient checked by finite differences (float64 cases)


@dataclass
class Report:
    """The grade of one exercise. status: "passed", "failed", "error" (the function raised),
    "timeout", "todo" (still raises NotImplementedError), "not started" (no file) or
    "broken" (the file does not import, or lacks the function). lines: what to print."""
    name: str
    status: str
    lines: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def text(self) -> str:
        body = "\n".join(self.lines).split("\n")
        return "\n".join([f"{self.name}: {self.status.upper()}"] + ["  " + line for line in body])


def cases_of(ex: Exercise) -> list[Case]:
    """The exercise's cases, drawn from a generator seeded by its name (the same every run)."""
    return ex.make_cases(np.random.default_rng(zlib.crc32(ex.name.encode())))


def _outputs(ex: Exercise, value) -> tuple[dict | None, str | None]:
    """The learner's return value as {output name: value}, or the message saying it is not a
    tuple of the right length."""
    if len(ex.outputs) == 1:
        return {ex.outputs[0]: value}, None
    if not isinstance(value, (tuple, list)) or len(value) != len(ex.outputs):
        return None, (f"{ex.name} must return a tuple ({', '.join(ex.outputs)}) like the "
                      f"library's, got {describe(value)}")
    return dict(zip(ex.outputs, value)), None


def _swapped(name: str, got, case: Case) -> str | None:
    """'dq holds what dk should be' when an output equals another expected output."""
    if not isinstance(got, np.ndarray):
        return None
    for other, want in case.expected.items():
        if other != name and want is not None and got.shape == want.shape and \
                got.dtype == want.dtype and close(got, want).all():
            return (f"{name} holds what {other} should be: return the outputs in the order "
                    f"({', '.join(case.expected)})")
    return None


def _finite_differences(case: Case, values: dict, rng) -> tuple[str | None, int]:
    """Check a few entries of each gradient against central differences of the library's
    forward (float64 cases only). Returns (message or None, entries checked)."""
    if case.fd is None or case.dtype != np.float64:
        return None, 0
    checked = 0
    for name in case.fd.wrt:
        grad = np.asarray(values[name], dtype=np.float64)
        for flat in rng.choice(grad.size, size=min(FD_ENTRIES, grad.size), replace=False):
            idx = np.unravel_index(flat, grad.shape)
            numeric = case.fd.numeric(name, idx)
            if not np.isclose(grad[idx], numeric, rtol=1e-5, atol=1e-7):
                return (f"the finite-difference check disagrees: {name}{where(idx)} is "
                        f"{grad[idx]:.6g}, the numeric derivative {numeric:.6g}"), checked
            checked += 1
    return None, checked


def check_case(ex: Exercise, case: Case, value, rng) -> tuple[list[str], int]:
    """The messages for one case (empty when right) and the entries checked by finite
    differences."""
    values, problem = _outputs(ex, value)
    if problem:
        return [problem], 0
    messages = []
    for name in ex.graded_outputs:
        message = compare(name, values[name], case.expected[name], case)
        if message is not None:
            messages.append((name, _swapped(name, values[name], case) or message))
    if messages:
        return _merge(messages), 0
    message, checked = _finite_differences(case, values, rng)
    return ([message] if message else []), checked


def _failing_group(cases: list[Case], failed: set[int], key) -> tuple[bool, object]:
    """(True, k) when the cases split by ``key`` into two groups (None is no group) and the
    failures are exactly the group ``k``; else (False, None)."""
    groups: dict = {}
    for i, case in enumerate(cases):
        if key(case) is not None:
            groups.setdefault(key(case), set()).add(i)
    bad = [k for k, members in groups.items() if members & failed]
    if len(groups) == 2 and len(bad) == 1 and failed == groups[bad[0]]:
        return True, bad[0]
    return False, None


def _in_short(cases: list[Case], failed: set[int]) -> str | None:
    """'right in float64, wrong in float32' / 'right without a mask, wrong with one'."""
    found, bad = _failing_group(cases, failed,
                                lambda c: None if c.dtype is None else np.dtype(c.dtype).name)
    if found:
        ok = "float32" if bad == "float64" else "float64"
        return f"In short: right in {ok}, wrong in {bad}."
    found, bad = _failing_group(cases, failed, lambda c: c.masked)
    if found:
        return ("In short: right without a mask, wrong with one." if bad else
                "In short: right with a mask, wrong without one.")
    return None


def _stopped(ex: Exercise, outcome, cases: list[Case], path: Path) -> Report:
    """The report when the worker stopped early: an exception, a hang, no such function."""
    at = "" if outcome.index is None else (f" on case {outcome.index + 1} of {len(cases)} "
                                           f"({cases[outcome.index].label})")
    if outcome.kind == "todo":
        return Report(ex.name, "todo", [f"not done yet: {ex.name} still raises "
                                        f"NotImplementedError — edit {path}"])
    if outcome.kind == "raised":
        return Report(ex.name, "error", [f"your function raised{at}:", outcome.text])
    if outcome.kind == "import":
        return Report(ex.name, "broken", [f"{path} does not import:", outcome.text])
    if outcome.kind == "missing":
        return Report(ex.name, "broken", [f"{path} defines no function {ex.name}"])
    if outcome.kind == "timeout":
        what = "importing your file" if outcome.index is None else "your function"
        return Report(ex.name, "timeout", [f"{what} did not finish{at}: {outcome.text} — an "
                                           "endless loop? (the grader stopped it)"])
    return Report(ex.name, "error", [f"{outcome.text}{at} — a crash inside your function?"])


def _pattern(message: str) -> str:
    """A message with its numbers blanked: two cases failing alike give the same pattern."""
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", message)


def _failure_lines(cases: list[Case], failures: dict) -> list[str]:
    """The failing cases in words: each case that fails in a way not yet shown (at most
    SHOWN_FAILURES of them), then how many more fail, the same way or otherwise."""
    lines, seen, same, other = [], set(), 0, 0
    for index, messages in failures.items():
        patterns = {_pattern(m) for m in messages}
        if patterns <= seen:
            same += 1
        elif len(lines) < SHOWN_FAILURES:
            lines.append(f"case {index + 1} of {len(cases)} ({cases[index].label}):\n"
                         + "\n".join("  " + m for m in messages))
            seen |= patterns
        else:
            other += 1
    if same:
        lines.append(f"({same} more case{' fails' if same == 1 else 's fail'} the same way)")
    if other:
        lines.append(f"… and {other} more case{' fails' if other == 1 else 's fail'} "
                     "in other ways")
    return lines


def _merge(messages: list[tuple[str, str]]) -> list[str]:
    """Messages about several outputs that say the same thing, said once:
    [("out", "out ignores x"), ("weights", "weights ignores x")] → ["out and weights: each
    ignores x"]."""
    tails: dict = {}
    for name, message in messages:
        tail = message[len(name) + 1:] if message.startswith(name + " ") else None
        tails.setdefault(tail if tail else message, []).append(name)
    merged = []
    for tail, names in tails.items():
        if len(names) == 1:
            merged.append(next(m for n, m in messages if n == names[0]))
        else:
            merged.append(f"{', '.join(names[:-1])} and {names[-1]}: each {tail}")
    return merged


def grade(ex: Exercise, path, timeout: float = 5.0) -> Report:
    """Grade the learner's ``path`` for exercise ``ex`` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        return Report(ex.name, "not started", [f"no file {path}: start with "
                                               f"python -m attention_np.exercises start {ex.name}"])
    cases = cases_of(ex)
    outcomes = run_learner(path, ex.name, [(c.args, c.kwargs) for c in cases], timeout)
    rng, failures, fd_checked = np.random.default_rng(0), {}, 0
    for outcome in outcomes:
        if outcome.kind != "ok":
            return _stopped(ex, outcome, cases, path)
        messages, checked = check_case(ex, cases[outcome.index], outcome.value, rng)
        fd_checked += checked
        if messages:
            failures[outcome.index] = messages
    if not failures:
        fd = f"; finite differences agree at {fd_checked} entries" if fd_checked else ""
        return Report(ex.name, "passed", [f"all {len(cases)} cases right{fd}"])
    summary = _in_short(cases, set(failures))
    return Report(ex.name, "failed", [f"{len(failures)} of {len(cases)} cases wrong"]
                  + _failure_lines(cases, failures) + ([summary] if summary else []))
