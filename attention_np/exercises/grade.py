"""Grade a learner's file: read its imports (:mod:`imports`: no torch, not the library's own
solution), run its function on every case of the exercise in a worker (:mod:`runner`), compare
each output with the library's (:mod:`diagnose`), spot-check the gradients of a backward
exercise with finite differences, and sum up in a :class:`Report` — in the current language.

An output that is a dict (a backward's parameter gradients) or a tuple (a block's two kinds of
attention weights) is graded entry by entry, as ``grads['W_q']`` or ``weights[1]``.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attention_np.exercises.diagnose import close, compare, describe, where
from attention_np.exercises.imports import leaning_on, solution_location
from attention_np.exercises.lang import say
from attention_np.exercises.runner import run_learner
from attention_np.exercises.spec import Case, Exercise

# What ``list`` and a report call each status (the keys are what .progress.json records).
STATUS = {"passed": ("passed", "通过"), "failed": ("failed", "未通过"),
          "error": ("error", "出错"), "timeout": ("timeout", "超时"),
          "todo": ("todo", "未完成"), "not started": ("not started", "未开始"),
          "broken": ("broken", "无法运行"), "rejected": ("rejected", "不予评分"),
          "started": ("started", "已开始")}


def status_word(status: str) -> str:
    """A status as the learner reads it, in the current language."""
    en, zh = STATUS.get(status, (status, status))
    return say(en, zh)

SHOWN_FAILURES = 3          # failing cases shown in full; the others are counted
FD_ENTRIES = 3              # entries per gradient checked by finite differences (float64 cases)


@dataclass
class Report:
    """The grade of one exercise. status: "passed", "failed", "error" (the function raised),
    "timeout", "todo" (still raises NotImplementedError), "not started" (no file), "broken"
    (the file does not import, or lacks the function) or "rejected" (it imports torch or uses
    the library's own solution). lines: what to print."""
    name: str
    status: str
    lines: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def text(self) -> str:
        body = "\n".join(self.lines).split("\n")
        head = say(f"{self.name}: {self.status.upper()}",
                   f"{self.name}：{status_word(self.status)}")
        return "\n".join([head] + ["  " + line for line in body])


def cases_of(ex: Exercise) -> list[Case]:
    """The exercise's cases, drawn from a generator seeded by its name (the same every run)."""
    return ex.make_cases(np.random.default_rng(zlib.crc32(ex.name.encode())))


def _outputs(ex: Exercise, value) -> tuple[dict | None, str | None]:
    """The learner's return value as {output name: value}, or the message saying it is not a
    tuple of the right length."""
    if len(ex.outputs) == 1:
        return {ex.outputs[0]: value}, None
    if not isinstance(value, (tuple, list)) or len(value) != len(ex.outputs):
        names = ", ".join(ex.outputs)
        return None, say(f"{ex.function} must return a tuple ({names}) like the library's, "
                         f"got {describe(value)}",
                         f"{ex.function} 必须像代码库的版本一样返回元组 ({names})，而你返回了"
                         f"{describe(value)}")
    return dict(zip(ex.outputs, value)), None


def _flatten(name: str, want, got) -> tuple[list, str | None]:
    """[(name, got, want)] for one output, a dict or tuple of arrays taken entry by entry
    (``grads['W_q']``, ``weights[1]``), or the message saying the learner's has another form."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [], say(f"{name} must be a dict with keys {sorted(want)}, got {describe(got)}",
                           f"{name} 必须是键为 {sorted(want)} 的字典，而你返回了{describe(got)}")
        missing = sorted(set(want) - set(got))
        if missing:
            return [], say(f"{name} lacks the keys {missing} (it must have {sorted(want)})",
                           f"{name} 缺少键 {missing}（应有 {sorted(want)}）")
        return [(f"{name}[{k!r}]", got[k], w) for k, w in want.items()], None
    if isinstance(want, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return [], say(f"{name} must be a tuple of {len(want)} arrays, got {describe(got)}",
                           f"{name} 必须是含 {len(want)} 个数组的元组，而你返回了{describe(got)}")
        return [(f"{name}[{i}]", g, w) for i, (g, w) in enumerate(zip(got, want))], None
    return [(name, got, want)], None


def _swapped(name: str, got, case: Case) -> str | None:
    """'dq holds what dk should be' when an output equals another expected output."""
    if not isinstance(got, np.ndarray):
        return None
    for other, want in case.expected.items():
        if other != name and isinstance(want, np.ndarray) and got.shape == want.shape and \
                got.dtype == want.dtype and close(got, want).all():
            order = ", ".join(case.expected)
            return say(f"{name} holds what {other} should be: return the outputs in the order "
                       f"({order})", f"{name} 里装的是 {other} 应有的值：请按 ({order}) 的顺序"
                                     "返回各个输出")
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
                return say(f"the finite-difference check disagrees: {name}{where(idx)} is "
                           f"{grad[idx]:.6g}, the numeric derivative {numeric:.6g}",
                           f"有限差分检验不一致：{name}{where(idx)} 是 {grad[idx]:.6g}，"
                           f"数值导数是 {numeric:.6g}"), checked
            checked += 1
    return None, checked


def check_case(ex: Exercise, case: Case, value, rng, written=None) -> tuple[list[str], int]:
    """The messages for one case (empty when right) and the entries checked by finite
    differences. ``written``: {position in args: value after the call} of the arrays the
    function writes in place (graded under their names in ``case.written``)."""
    values, problem = _outputs(ex, value)
    if problem:
        return [problem], 0
    for name, position in case.written.items():
        values[name] = (written or {}).get(position)
    messages, flat = [], {}
    for name in tuple(ex.graded_outputs) + tuple(case.written):
        entries, problem = _flatten(name, case.expected[name], values[name])
        if problem:
            messages.append((name, problem))
        for entry, got, want in entries:
            flat[entry] = got
            message = compare(entry, got, want, case)
            if message is not None:
                messages.append((entry, _swapped(entry, got, case) or message))
    if messages:
        return _merge(messages), 0
    message, checked = _finite_differences(case, flat, rng)
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
        return say(f"In short: right in {ok}, wrong in {bad}.",
                   f"简而言之：{ok} 下正确，{bad} 下出错。")
    found, bad = _failing_group(cases, failed, lambda c: c.masked)
    if found:
        return (say("In short: right without a mask, wrong with one.",
                    "简而言之：不带掩码时正确，带掩码时出错。") if bad else
                say("In short: right with a mask, wrong without one.",
                    "简而言之：带掩码时正确，不带掩码时出错。"))
    return None


def _stopped(ex: Exercise, outcome, cases: list[Case], path: Path) -> Report:
    """The report when the worker stopped early: an exception, a hang, no such function."""
    at = "" if outcome.index is None else say(
        f" on case {outcome.index + 1} of {len(cases)} ({cases[outcome.index].label})",
        f"（第 {outcome.index + 1}/{len(cases)} 个用例：{cases[outcome.index].label}）")
    fn = ex.function
    if outcome.kind == "todo":
        return Report(ex.name, "todo", [say(
            f"not done yet: {fn} still raises NotImplementedError — edit {path}",
            f"还没做完：{fn} 仍然抛出 NotImplementedError——请编辑 {path}")])
    if outcome.kind == "raised":
        return Report(ex.name, "error", [say(f"your function raised{at}:",
                                             f"你的函数抛出了异常{at}："), outcome.text])
    if outcome.kind == "import":
        return Report(ex.name, "broken", [say(f"{path} does not import:",
                                              f"{path} 无法导入："), outcome.text])
    if outcome.kind == "missing":
        return Report(ex.name, "broken", [say(f"{path} defines no function {fn}",
                                              f"{path} 中没有定义函数 {fn}")])
    if outcome.kind in ("library", "torch"):
        return Report(ex.name, "rejected", [leaning_on(ex, outcome.kind, outcome.text)])
    if outcome.kind == "timeout":
        what = say("importing your file", "导入你的文件") if outcome.index is None else \
            say("your function", "你的函数")
        return Report(ex.name, "timeout", [say(
            f"{what} did not finish{at}: {outcome.text} — an endless loop? (the grader stopped "
            "it)", f"{what}没有结束{at}：{outcome.text}——死循环了吗？（评分程序已将它终止）")])
    return Report(ex.name, "error", [say(f"{outcome.text}{at} — a crash inside your function?",
                                         f"{outcome.text}{at}——你的函数里崩溃了？")])


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
            lines.append(say(f"case {index + 1} of {len(cases)} ({cases[index].label}):\n",
                             f"第 {index + 1}/{len(cases)} 个用例（{cases[index].label}）：\n")
                         + "\n".join("  " + m for m in messages))
            seen |= patterns
        else:
            other += 1
    if same:
        lines.append(say(f"({same} more case{' fails' if same == 1 else 's fail'} the same way)",
                         f"（另有 {same} 个用例以同样的方式出错）"))
    if other:
        lines.append(say(f"… and {other} more case{' fails' if other == 1 else 's fail'} "
                         "in other ways", f"……另有 {other} 个用例以其他方式出错"))
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
            every = "各自" if tail.startswith("的") else "都"
            merged.append(say(f"{', '.join(names[:-1])} and {names[-1]}: each {tail}",
                              f"{'、'.join(names[:-1])} 和 {names[-1]} {every}{tail}"))
    return merged


def _kept(ex: Exercise) -> tuple | None:
    """The positions of the learner's returned tuple the grader reads (None: a bare value)."""
    if len(ex.outputs) == 1:
        return None
    return tuple(i for i, name in enumerate(ex.outputs) if name in ex.graded_outputs)


def grade(ex: Exercise, path, timeout: float = 5.0, accept_library: bool = False) -> Report:
    """Grade the learner's ``path`` for exercise ``ex`` (see the module docstring).
    ``accept_library``: grade a file that uses the library's own solution or torch as any
    other (a self-test of the grader: the library's solution must pass)."""
    path = Path(path)
    if not path.exists():
        return Report(ex.name, "not started", [say(
            f"no file {path}: start with python -m attention_np.exercises start {ex.name}",
            f"没有文件 {path}：先运行 python -m attention_np.exercises start {ex.name}")])
    if not accept_library:
        problem = leaning_on(ex, "file", path)
        if problem:
            return Report(ex.name, "rejected", [problem])
    cases = cases_of(ex)
    forbidden = None if accept_library else ex.forbidden_names
    outcomes = run_learner(path, ex.function,
                           [(c.args, c.kwargs, tuple(c.written.values())) for c in cases],
                           timeout, _kept(ex), forbidden)
    rng, failures, fd_checked = np.random.default_rng(0), {}, 0
    for outcome in outcomes:
        if outcome.kind != "ok":
            return _stopped(ex, outcome, cases, path)
        messages, checked = check_case(ex, cases[outcome.index], outcome.value, rng,
                                       outcome.written)
        fd_checked += checked
        if messages:
            failures[outcome.index] = messages
    if not failures:
        fd = say(f"; finite differences agree at {fd_checked} entries",
                 f"；有限差分检验在 {fd_checked} 个元素上一致") if fd_checked else ""
        return Report(ex.name, "passed", [say(f"all {len(cases)} cases right{fd}",
                                              f"全部 {len(cases)} 个用例正确{fd}"),
                                          solution_location(ex)])
    summary = _in_short(cases, set(failures))
    return Report(ex.name, "failed", [say(f"{len(failures)} of {len(cases)} cases wrong",
                                          f"{len(cases)} 个用例中有 {len(failures)} 个出错")]
                  + _failure_lines(cases, failures) + ([summary] if summary else []))
