"""The whole bad-input table: tests/public_entries.py and tests/public_calls.py, plus every
``tests/public_entries_*.py`` module found by globbing the tests/ directory.

An extension module defines ``ENTRIES`` (a list of :class:`tests.public_entries.Entry`) and may
define ``CALLS`` (rows as in tests/public_calls.py), ``REACHED_THROUGH_WRAPPERS`` (public
functions its entries reach through a wrapper) and ``MODULES`` (``(module, names)`` pairs whose
public functions must all be covered; ``names=None`` means every public function or class the
module defines). tests/test_bad_input.py reads the lists below; nothing else needs editing.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from tests import public_calls, public_entries


def _extensions():
    """The ``tests.public_entries_*`` modules, in file-name order (a stable test order)."""
    here = Path(__file__).parent
    return [importlib.import_module(f"tests.{path.stem}")
            for path in sorted(here.glob("public_entries_*.py"))]


_SOURCES = [public_entries, public_calls] + _extensions()

ENTRIES = [e for m in _SOURCES for e in getattr(m, "ENTRIES", [])]
CALLS = [c for m in _SOURCES for c in getattr(m, "CALLS", [])]
REACHED_THROUGH_WRAPPERS = [f for m in _SOURCES for f in getattr(m, "REACHED_THROUGH_WRAPPERS", [])]
MODULES = [pair for m in _SOURCES for pair in getattr(m, "MODULES", [])]
