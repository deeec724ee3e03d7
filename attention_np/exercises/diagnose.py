"""Say in words how one returned array differs from the library's: its shape, its dtype,
NaN/inf where the reference is finite, a transposed result, a constant factor (a missing 1/√D
scale, a flipped sign), a known mistake, or else the first entry that differs with both values.

:func:`compare` returns None when the output is right, else one message, in the current
language (:func:`attention_np.exercises.lang.say`).
"""
from __future__ import annotations

import numpy as np

from attention_np.exercises.lang import say
from attention_np.exercises.runner import Opaque

# (rtol, atol × the output's magnitude): float64 results must agree to rounding; float32
# results to what float32 rounding of a different but correct order of operations allows.
TOLERANCE = {np.dtype(np.float64): (1e-6, 1e-8), np.dtype(np.float32): (1e-3, 1e-4)}


def describe(value) -> str:
    """A returned value that is not an array, in words."""
    if value is None:
        return "None"
    if isinstance(value, Opaque):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return say(f"a {type(value).__name__} of {len(value)} items",
                   f"一个含 {len(value)} 项的 {type(value).__name__}")
    return say(f"a {type(value).__name__} ({value!r:.40})",
               f"一个 {type(value).__name__}（{value!r:.40}）")


def where(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _num(v) -> str:
    return repr(bool(v)) if isinstance(v, (bool, np.bool_)) else f"{float(v):.6g}"


def close(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Elementwise agreement at the tolerance of ``want``'s dtype (equal infinities and NaN
    against NaN agree)."""
    if np.issubdtype(want.dtype, np.integer):
        return got == want                                  # indices and counts: exactly
    rtol, atol = TOLERANCE.get(want.dtype, TOLERANCE[np.dtype(np.float32)])
    g, w = got.astype(np.float64), want.astype(np.float64)
    finite = np.abs(w[np.isfinite(w)])
    atol *= max(1.0, float(np.max(finite, initial=0.0)))
    with np.errstate(invalid="ignore", over="ignore"):
        return (g == w) | (np.abs(g - w) <= atol + rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w))


def _shape_message(name: str, got: tuple, want: tuple) -> str:
    head = say(f"{name} has shape {got}, expected {want}", f"{name} 的形状是 {got}，应为 {want}")
    if len(want) >= 2 and got == want[:-2] + (want[-1], want[-2]):
        return head + say(": it looks transposed (the last two axes swapped)",
                          "：看起来被转置了（最后两个轴对调了）")
    if len(got) > len(want) and got[len(got) - len(want):] == want:
        return head + say(": it has extra leading axes — a parameter's gradient is summed over "
                          "every row that used the parameter (sum over the batch/time axes)",
                          "：多出了前导轴——参数被每一行共用，它的梯度要对用到它的所有行求和"
                          "（对批次轴、时间轴求和）")
    if sorted(got) == sorted(want):
        return head + say(": the right sizes in the wrong order (axes permuted)",
                          "：各轴大小都对，但顺序错了（轴被重排了）")
    if int(np.prod(got)) == int(np.prod(want)):
        return head + say(": the right number of entries, arranged differently",
                          "：元素个数对，但排列方式不同")
    return say("wrong output shape: ", "输出形状错误：") + head


def _nonfinite(name: str, got: np.ndarray, want: np.ndarray, case) -> str | None:
    """NaN/inf where the reference is finite, or a finite value where it is ±inf."""
    with np.errstate(invalid="ignore"):
        bad = (~np.isfinite(got) & np.isfinite(want)) | (np.isinf(want) & (got != want))
    if not bad.any():
        return None
    idx = tuple(np.argwhere(bad)[0])
    text = say(f"{name}{where(idx)} is {_num(got[idx])} where the reference is "
               f"{_num(want[idx])} ({int(bad.sum())} such entries)",
               f"{name}{where(idx)} 是 {_num(got[idx])}，而参考值是 {_num(want[idx])}"
               f"（共 {int(bad.sum())} 个这样的元素）")
    dead = case.dead.get(name)
    if dead is not None and dead[idx]:
        value = "−inf" if np.isinf(want[idx]) else "0"
        text += say(f" — that row is fully masked (no key to attend to): it must give {value}, "
                    "never 0/0 = NaN",
                    f"——这一行整行都被掩码屏蔽（没有可关注的键）：结果必须是 {value}，"
                    "而不是 0/0 = NaN")
    elif case.nonfinite_hint:
        text += say(" — ", "——") + case.nonfinite_hint
    return text


def _ratio(got: np.ndarray, want: np.ndarray) -> float | None:
    """c when got = c · want everywhere for a constant c ≠ 1, else None."""
    scale = float(np.max(np.abs(want), initial=0.0))
    big = np.abs(want) > 1e-3 * scale
    if big.sum() < 2:
        return None
    c = float(np.median(got[big].astype(np.float64) / want[big]))
    if not np.isfinite(c) or c == 0 or abs(c - 1) < 1e-3:
        return None
    return c if close(got, (c * want.astype(np.float64)).astype(want.dtype)).all() else None


def _ratio_message(name: str, c: float, D: int | None) -> str:
    text = say(f"{name} is {c:.4g} × the expected value everywhere",
               f"{name} 处处都是期望值的 {c:.4g} 倍")
    if D and np.isclose(c, np.sqrt(D), rtol=1e-3):
        return text + say(f": the 1/√D scale is missing (√D = √{D} = {np.sqrt(D):.4g})",
                          f"：漏掉了 1/√D 的缩放（√D = √{D} = {np.sqrt(D):.4g}）")
    if D and np.isclose(c, 1 / np.sqrt(D), rtol=1e-3):
        return text + say(f": the 1/√D scale is applied twice (1/√D = {1 / np.sqrt(D):.4g})",
                          f"：1/√D 的缩放做了两次（1/√D = {1 / np.sqrt(D):.4g}）")
    if np.isclose(c, -1.0, rtol=1e-3):
        return say(f"{name} has the opposite sign of the expected value everywhere",
                   f"{name} 处处与期望值符号相反")
    return text + say(" (a missing or extra constant factor)", "（少乘或多乘了一个常数因子）")


def _first_difference(name: str, got: np.ndarray, want: np.ndarray, ok: np.ndarray,
                      case) -> str:
    idx = tuple(np.argwhere(~ok)[0])
    text = say(f"{name} differs from the expected value at {int((~ok).sum())} of {ok.size} "
               f"entries; the first is {name}{where(idx)}: yours {_num(got[idx])}, "
               f"expected {_num(want[idx])}",
               f"{name} 在 {ok.size} 个元素中有 {int((~ok).sum())} 个与期望值不同；第一个是 "
               f"{name}{where(idx)}：你的结果 {_num(got[idx])}，期望 {_num(want[idx])}")
    if case.fd is not None and name in case.fd.wrt:
        numeric = f"{case.fd.numeric(name, idx):.6g}"
        text += say(f" (finite differences of the library's forward: {numeric})",
                    f"（对代码库的前向计算做有限差分：{numeric}）")
    dead = case.dead.get(name)
    if dead is not None and dead[~ok].all():
        text += say(" — every difference is in a fully masked row (no key to attend to): "
                    "those must be exactly 0",
                    "——所有差异都在整行被掩码屏蔽的行里（没有可关注的键）：这些行必须恰好为 0")
    return text


def _known_mistake(name: str, got: np.ndarray, case) -> str | None:
    for words, results in (case.variants() if case.variants else []):
        alt = results.get(name)
        if alt is not None and np.shape(alt) == got.shape and close(got, np.asarray(alt)).all():
            return f"{name} {words}"
    return None


def _compare_bool(name: str, got: np.ndarray, want: np.ndarray, case) -> str | None:
    if got.dtype != np.bool_:
        return say(f"{name} must be a boolean array (True = may attend), got dtype {got.dtype}",
                   f"{name} 必须是布尔数组（True = 可以关注），而你给的 dtype 是 {got.dtype}")
    if np.array_equal(got, want):
        return None
    if np.array_equal(got, ~want):
        return say(f"{name} is inverted: True must mean 'may attend', False 'masked'",
                   f"{name} 正好取反了：True 应表示“可以关注”，False 表示“被屏蔽”")
    if want.ndim == 2 and want.shape[0] == want.shape[1] and np.array_equal(got, want.T):
        return say(f"{name} is transposed: row i is query i, column j is key j",
                   f"{name} 被转置了：第 i 行是查询 i，第 j 列是键 j")
    return _known_mistake(name, got, case) or _first_difference(name, got, want, got == want, case)


def compare(name: str, got, want, case) -> str | None:
    """None when ``got`` is the expected output ``want`` of ``case``, else what is wrong."""
    if want is None:
        if got is None:
            return None
        why = say(f" ({case.none_why})", f"（{case.none_why}）") if case.none_why else ""
        return say(f"{name} must be None here, got {describe(got)}",
                   f"{name} 在这里必须是 None，而你返回了{describe(got)}") + why
    if got is None or isinstance(got, (Opaque, tuple, list, dict)) or not np.ndim(got) and \
            np.ndim(want):
        return say(f"{name} is {describe(got)}, expected an array of shape {np.shape(want)}",
                   f"{name} 是{describe(got)}，应为形状 {np.shape(want)} 的数组")
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return _shape_message(name, got.shape, want.shape)
    if want.dtype == np.bool_:
        return _compare_bool(name, got, want, case)
    if np.issubdtype(want.dtype, np.integer) and np.issubdtype(got.dtype, np.integer):
        got = got.astype(want.dtype)                       # any integer type holds an index
    if got.dtype != want.dtype:
        widened = got.dtype == np.float64 and want.dtype == np.float32
        return say(f"{name} has dtype {got.dtype}, expected {want.dtype}",
                   f"{name} 的 dtype 是 {got.dtype}，应为 {want.dtype}") + (say(
            " (keep the inputs' dtype: one float64 operand — np.zeros(...) without dtype=, "
            "np.asarray of a Python float, a scalar such as np.sqrt(D) — turns float32 into "
            "float64)",
            "（保持输入的 dtype：只要有一个 float64 操作数——不带 dtype= 的 np.zeros(...)、"
            "对 Python 浮点数调用 np.asarray、np.sqrt(D) 这样的标量——float32 就会变成 "
            "float64）") if widened else "")
    return _nonfinite(name, got, want, case) or _explain(name, got, want, case)


def _explain(name: str, got: np.ndarray, want: np.ndarray, case) -> str | None:
    ok = close(got, want)
    if ok.all():
        return None
    if np.issubdtype(want.dtype, np.integer):
        return _known_mistake(name, got, case) or _first_difference(name, got, want, ok, case)
    if want.ndim >= 2 and want.shape[-1] == want.shape[-2] and \
            close(got, np.swapaxes(want, -1, -2)).all():
        return say(f"{name} is the transpose of the expected value (its last two axes are "
                   "swapped)", f"{name} 是期望值的转置（最后两个轴对调了）")
    c = _ratio(got, want)
    if c is not None:
        return _ratio_message(name, c, case.scale_dim)
    return _known_mistake(name, got, case) or _first_difference(name, got, want, ok, case)
