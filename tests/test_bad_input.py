"""Every public entry fuzzed with bad input, from a generated table of calls.

For each entry of the table (tests/bad_input_table.py; arguments described by their shapes):
the valid call; each array argument with a wrong dtype, a wrong rank, a wrong size on each axis
tied to another argument (masks: not broadcastable), a NaN and a +inf; each dimension set to
zero; the literal values that must be refused; a ``dout`` of the wrong shape and a NaN ``dout``.

Bad input must raise a ``ValueError`` whose message names the argument. NaN and inf are values:
a NaN in the input propagates and is never hidden (the output holds a NaN; +inf gives a
non-finite value unless the op saturates, as tanh). A zero-size dimension works (finite output)
or raises a ValueError naming an argument, never a stray IndexError or a NaN.
"""
from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest

from tests.bad_input_gaps import gap
from tests.bad_input_table import CALLS, ENTRIES, MODULES, REACHED_THROUGH_WRAPPERS
from tests.internal_api import internal_api
from tests.public_entries import DERIVED, DIMS, Fresh

SPEC = re.compile(r"^(f|b|i[A-Z]):([A-Z]*)$")


def _sizes(dims):
    return dims | {k: f(dims) for k, f in DERIVED.items()}


def _make(spec, dims, rng):
    """The argument a spec stands for (see tests/public_entries.py)."""
    if isinstance(spec, dict):
        return {k: _make(v, dims, rng) for k, v in spec.items()}
    if isinstance(spec, Fresh):
        return spec.make()
    m = SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        return spec
    shape = tuple(_sizes(dims)[c] for c in m.group(2))
    if m.group(1) == "f":
        return rng.standard_normal(shape)
    if m.group(1) == "b":
        return np.ones(shape, bool)
    n = _sizes(dims)[m.group(1)[1]]                 # ids cover 0 … n − 1
    return np.arange(int(np.prod(shape))).reshape(shape) % max(n, 1)


def _arrays(args, prefix=()):
    """(path, kind, letters) of every array spec, including those inside parameter dicts."""
    for name, spec in args.items():
        if isinstance(spec, dict):
            yield from _arrays(spec, prefix + (name,))
        elif isinstance(spec, str) and SPEC.match(spec):
            kind, letters = SPEC.match(spec).groups()
            yield prefix + (name,), kind[0], letters


def _replace(args, path, fn):
    """args with the array at ``path`` replaced by fn(array)."""
    if len(path) == 1:
        return {**args, path[0]: fn(args[path[0]])}
    return {**args, path[0]: _replace(args[path[0]], path[1:], fn)}


def _letters(entry) -> str:
    return "".join(letters for _, _, letters in _arrays(entry.args))


def _resize(axis, new):
    return lambda x: np.ones(x.shape[:axis] + (new,) + x.shape[axis + 1:], x.dtype)


def _poison(value):
    """x with its first entry set to ``value``."""
    return lambda x: np.where(np.arange(x.size).reshape(x.shape) == 0, value, x)


def _array_cases(entry):
    """(kind, path, mutation) for wrong dtype / rank / size and NaN / inf of each argument."""
    all_letters = _letters(entry) + entry.tied
    for path, kind, letters in _arrays(entry.args):
        yield "dtype", path, (lambda x: x.astype(complex)) if kind != "b" else (
            lambda x: x.astype(float))
        if path[0] not in entry.free:
            yield "rank+1", path, lambda x: np.ones((2,) + x.shape, x.dtype)
            if kind != "b":
                yield "rank-1", path, lambda x: x[0]
        for axis, c in enumerate(letters):
            if kind == "b" or all_letters.count(c) > 1:
                yield f"size{axis}", path, _resize(axis, _sizes(DIMS)[c] + 1)
        if kind == "f":
            yield "nan", path, _poison(np.nan)
            yield "inf", path, _poison(np.inf)


def cases():
    for e in ENTRIES:
        yield e, "valid", (), None
        for kind, path, fn in _array_cases(e):
            yield e, kind, path, fn
        for c in sorted(set(_letters(e)) - set(e.tied)):   # tied: a zero would mismatch a literal
            yield e, "zero", (c,), None
        for name, values in e.bad_literals.items():
            for value in values:
                yield e, "literal", (name,), value
        if e.backward is not None:
            for kind in ("dout-shape", "dout-rank", "dout-nan"):
                yield e, kind, (), None


def _marks(case_id):
    """A strict xfail for a row listed in tests/bad_input_gaps.py."""
    why = gap(case_id)
    return [] if why is None else [pytest.mark.xfail(strict=True, reason=why)]


def _param(entry, kind, path, how):
    case_id = "-".join(filter(None, [entry.name, kind, ".".join(path)]))
    return pytest.param(entry, kind, path, how, id=case_id, marks=_marks(case_id))


CASES = [_param(*c) for c in cases()]


def _call(entry, dims=DIMS, mutate=None):
    args = {k: _make(v, dims, np.random.default_rng(0)) for k, v in entry.args.items()}
    if mutate is not None:
        args = mutate(args)
    return entry.forward(**args), args


def _out(result):
    return np.asarray(result[0] if isinstance(result, tuple) else result)


def _grads(result):
    """Every array in a backward's (possibly nested) result."""
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in _grads(r)]
    return [] if result is None else [np.asarray(result)]


def _raises_naming(call, names):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert any(re.search(rf"(?<![\w']){re.escape(n)}(?![\w'])", message) or f"'{n}'" in message
               for n in names), f"the message does not name {names}: {message!r}"


def _check_backward(entry, kind):
    result, args = _call(entry)
    out = _out(result)
    if kind == "dout-nan":
        dout = np.random.default_rng(1).standard_normal(out.shape)
        dout.flat[:1] = np.nan
        grads = _grads(entry.backward(dout, result, args))
        assert any(np.isnan(g).any() for g in grads), "a NaN in dout vanished from every gradient"
        return
    shape = (2,) if out.ndim == 0 else (
        out.shape[:-1] + (out.shape[-1] + 1,) if kind == "dout-shape" else (2,) + out.shape)
    _raises_naming(lambda: entry.backward(np.ones(shape), result, args), [entry.dout_name])


@pytest.mark.parametrize("entry, kind, path, how", CASES)
def test_bad_input(entry, kind, path, how):
    if kind == "valid":
        result, args = _call(entry)
        assert np.all(np.isfinite(_out(result)))
        if entry.backward is not None:
            grads = _grads(entry.backward(np.ones(_out(result).shape), result, args))
            assert grads and all(np.all(np.isfinite(g)) for g in grads)
    elif kind in ("nan", "inf"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # inf − inf may warn; it is not hidden
            out = _out(_call(entry, mutate=lambda a: _replace(a, path, how))[0])
        if kind == "nan":
            assert np.isnan(out).any(), f"a NaN in {path[-1]} was hidden: output has no NaN"
        elif not entry.saturating:
            assert not np.all(np.isfinite(out)), f"+inf in {path[-1]} gave an all-finite output"
    elif kind == "zero":
        _check_zero_size(entry, path[0])
    elif kind == "literal":
        _raises_naming(lambda: _call(entry, mutate=lambda a: {**a, path[0]: how}), [path[0]])
    elif kind.startswith("dout"):
        _check_backward(entry, kind)
    else:
        _raises_naming(lambda: _call(entry, mutate=lambda a: _replace(a, path, how)),
                       _culprits(entry, kind, path))


def _culprits(entry, kind, path) -> list[str]:
    """Names a message may give for a bad argument: the argument itself and, for a size that
    disagrees with another argument, that argument (or the literal it is tied to)."""
    names = [path[-1]]
    if kind.startswith("size"):
        letters = next(l for p, _, l in _arrays(entry.args) if p == path)
        c = letters[int(kind[4:])]
        names += [p[-1] for p, _, l in _arrays(entry.args) if c in l]
        if c in entry.tied:
            names += [n for n, v in entry.args.items() if not isinstance(v, (str, dict))]
    return names


def _check_zero_size(entry, letter):
    base = {"M": "H", "Z": "D", "T": "K"}.get(letter, letter)
    try:
        result, _ = _call(entry, dims=DIMS | {base: 0})
    except ValueError as error:
        message = str(error)
        names = [p[-1] for p, _, _ in _arrays(entry.args)] + list(entry.args)
        assert any(re.search(rf"\b{re.escape(n)}\b", message) for n in names), message
        return
    out = _out(result)
    assert np.all(np.isfinite(out)), f"zero-size {letter} gave a non-finite output"


@pytest.mark.parametrize("call, names",
                         [pytest.param(c, n, id=i, marks=_marks(i)) for i, _, c, n in CALLS])
def test_bad_sizes_and_options(call, names):
    _raises_naming(call, names)


def _public(module, names=None):
    """The public functions and classes a module defines (or lists in ``names``), less the
    trusting cores of the package's internal API (they validate nothing by design;
    attention_np's docstring lists them)."""
    cores = internal_api()
    names = names or [n for n, v in vars(module).items() if not n.startswith("_")
                      and f"{module.__name__}.{n}" not in cores
                      and callable(v) and getattr(v, "__module__", "") == module.__name__]
    return {f"{module.__name__}.{n}": getattr(module, n) for n in names
            if not inspect.ismodule(getattr(module, n))}


def test_every_public_entry_is_in_the_table():
    """Each public function of the MODULES (tests/public_entries.py and every
    tests/public_entries_*.py) is fuzzed here (as an entry, its backward, or a row of CALLS)."""
    public = {k: f for module, names in MODULES for k, f in _public(module, names).items()}
    covered = {id(f) for e in ENTRIES for f in (e.forward, getattr(e.backward, "library", None))}
    covered |= {id(fn) for _, fn, _, _ in CALLS} | {id(f) for f in REACHED_THROUGH_WRAPPERS}
    missing = sorted(name for name, f in public.items() if id(f) not in covered)
    assert not missing, f"public functions missing from the bad-input table: {missing}"
