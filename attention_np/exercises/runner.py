"""Run the learner's function in a worker process: a hang is stopped after ``timeout`` seconds,
an exception comes back as the learner's traceback (the grader's frames cut off), and a crash
of the worker is reported instead of taking the grader down.

Workers are forked from a multiprocessing *forkserver* that has imported numpy and
attention_np once, so a check starts in milliseconds rather than re-importing the library;
the forkserver is a fresh interpreter, so nothing of the grader's process (threads, torch in a
test run) leaks into it. The worker sends one message per case through a pipe, so the timeout
applies to each call on its own.

The worker also refuses a file that leans on what the exercise is about: a function that is the
library's own solution (or a name the exercise forbids), or torch imported by the file or by a
call ("library" and "torch" outcomes; the grader reads the file's imports first, for the line).
"""
from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import pickle
import sys
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CONTEXT = None
IMPORT_TIMEOUT = 2.0        # the least time the learner's file gets to import, whatever timeout


@dataclass
class Outcome:
    """What one step of the worker gave. kind: "ok" (value holds the result, written the
    arrays the call wrote in place), "raised" (text is the learner's traceback), "todo"
    (NotImplementedError), "import" (the file failed to import), "missing" (no such function),
    "library" (text: the dotted name of the library function the learner's file uses),
    "torch" (torch was imported), "timeout", "died" (the worker process ended; text says how).
    ``index`` is the case (None for the import)."""
    kind: str
    index: int | None = None
    value: object = None
    text: str = ""
    written: dict | None = None


class Opaque:
    """Stands for a returned object that cannot travel back from the worker (e.g. a cache dict
    holding a function): only its description does."""

    def __init__(self, description: str):
        self.description = description

    def __repr__(self) -> str:
        return self.description


@contextlib.contextmanager
def _main_hidden():
    """multiprocessing re-imports the parent's ``__main__`` in a new worker, to unpickle what it
    defines. The worker needs nothing from it, and it may be a script that cannot be run again
    (standard input, a notebook, a test runner), so a blank module stands in while one starts."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _idle() -> None:
    """The target of the warm-up worker."""


def _context():
    """The multiprocessing context, with its forkserver started and done importing the library
    (seconds, once per grader process), so that no timeout ever counts that import."""
    global _CONTEXT
    if _CONTEXT is None:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            ctx.set_forkserver_preload(["numpy", "attention_np"])
            warm_up = ctx.Process(target=_idle, daemon=True)
            with _main_hidden():
                warm_up.start()
            warm_up.join()
        _CONTEXT = ctx
    return _CONTEXT


def _learner_traceback(exc: BaseException) -> str:
    """The traceback from the learner's code down: the frames of this module and of the import
    machinery are dropped."""
    te = traceback.TracebackException.from_exception(exc)
    frames = [f for f in te.stack
              if f.filename != __file__ and not f.filename.startswith("<frozen")]
    head = "Traceback (most recent call last):\n" if frames else ""
    return (head + "".join(traceback.StackSummary.from_list(frames).format())
            + "".join(te.format_exception_only())).rstrip()


def _portable(value, keep=None):
    """``value`` as something that pickles: tuples and lists element-wise, and only the items at
    the positions ``keep`` of a returned tuple (None: all); the others (caches the grader does
    not read), and unpicklable objects, as :class:`Opaque`."""
    if isinstance(value, (tuple, list)):
        return type(value)(_portable(v) if keep is None or i in keep else _opaque(v)
                           for i, v in enumerate(value))
    if isinstance(value, dict):
        try:
            pickle.dumps(value)
        except Exception:                 # noqa: BLE001 — anything that fails to pickle
            return _opaque(value)
        return value
    try:
        pickle.dumps(value)
    except Exception:                     # noqa: BLE001 — anything that fails to pickle
        return _opaque(value)
    return value


def _opaque(value) -> Opaque:
    if isinstance(value, dict):
        return Opaque(f"a dict with keys {sorted(map(str, value))[:6]}")
    return Opaque(f"an object of type {type(value).__name__}")


def _library_function(fn, module, forbidden: tuple) -> str | None:
    """The dotted name of the library function the learner's module hands in as ``fn`` or
    holds at its top level among ``forbidden`` (dotted names), or None."""
    if getattr(fn, "__module__", "").split(".")[0] == "attention_np":
        return f"{fn.__module__}.{getattr(fn, '__qualname__', fn.__name__)}"
    wanted = {}
    for dotted in forbidden:
        where, name = dotted.rsplit(".", 1)
        owner = sys.modules.get(where)         # a module the file did not import holds nothing
        if owner is not None and hasattr(owner, name):
            wanted[id(getattr(owner, name))] = dotted
    for value in vars(module).values():
        if id(value) in wanted:
            return wanted[id(value)]
    return None


def _load(path: str, func_name: str):
    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)            # the learner may import their other exercises
    spec = importlib.util.spec_from_file_location(f"exercise_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, func_name, None), module


def _work(conn, path: str, func_name: str, calls: list, keep, forbidden) -> None:
    """The worker: import the learner's file, then call the function on each case in turn.
    ``forbidden`` is None when the library's own solution is accepted (a self-test)."""
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    try:
        fn, module = _load(path, func_name)
    except BaseException as exc:          # noqa: BLE001 — a SyntaxError, a SystemExit, …
        conn.send(Outcome("import", text=_learner_traceback(exc)))
        return
    if not callable(fn):
        conn.send(Outcome("missing"))
        return
    if forbidden is not None:
        used = _library_function(fn, module, forbidden)
        if used is not None or "torch" in sys.modules:
            conn.send(Outcome("library", text=used) if used else Outcome("torch"))
            return
    conn.send(Outcome("loaded"))
    for i, (args, kwargs, written) in enumerate(calls):
        try:
            value = fn(*args, **kwargs)
        except NotImplementedError as exc:
            conn.send(Outcome("todo", i, text=_learner_traceback(exc)))
            return
        except BaseException as exc:      # noqa: BLE001 — report whatever the learner raised
            conn.send(Outcome("raised", i, text=_learner_traceback(exc)))
            return
        if forbidden is not None and "torch" in sys.modules:
            conn.send(Outcome("torch", i))
            return
        conn.send(Outcome("ok", i, _portable(value, keep),
                          written={p: _portable(args[p]) for p in written}))


def _receive(conn, proc, timeout: float, index: int | None) -> Outcome:
    """The worker's next message, or a timeout / died outcome (the worker is then stopped)."""
    if not conn.poll(timeout):
        proc.kill()
        return Outcome("timeout", index, text=f"no answer after {timeout:g} s")
    try:
        return conn.recv()
    except (EOFError, OSError):
        proc.join(1.0)
        return Outcome("died", index, text=f"the worker process ended (exit code {proc.exitcode})")


def run_learner(path, func_name: str, calls: list, timeout: float = 5.0, keep=None,
                forbidden: tuple | None = ()) -> list[Outcome]:
    """Import ``path`` in a worker and call ``func_name(*args, **kwargs)`` for each
    (args, kwargs[, written]) in ``calls`` (``written``: positions in args of arrays the call
    must write in place; their values after the call come back in ``Outcome.written``).
    Returns one outcome per finished call; the list ends early with the outcome that stopped it
    (import error, missing function, library solution or torch used, raised, timeout, died).
    ``timeout`` applies to each call, and to the import (at least IMPORT_TIMEOUT seconds).
    ``keep``: the positions of a returned tuple to send back (None: all); ``forbidden``: dotted
    names of library functions the file may not hold, or None to accept the library's own
    solution and torch (a self-test of the grader)."""
    calls = [(c[0], c[1], tuple(c[2]) if len(c) > 2 else ()) for c in calls]
    keep = None if keep is None else set(keep)
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_work, args=(sender, str(path), func_name, calls, keep, forbidden),
                       daemon=True)
    with _main_hidden():
        proc.start()
    sender.close()
    outcomes: list[Outcome] = []
    startup = 0.0 if ctx.get_start_method() == "forkserver" else 60.0   # spawn imports anew
    try:
        first = _receive(receiver, proc, max(timeout, IMPORT_TIMEOUT) + startup, None)
        if first.kind != "loaded":
            return [first]
        for i in range(len(calls)):
            outcome = _receive(receiver, proc, timeout, i)
            outcomes.append(outcome)
            if outcome.kind != "ok":
                break
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
    return outcomes
