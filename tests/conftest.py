"""Hypothesis profiles and the end-of-run table of errors against torch.

Choose a profile with ``HYPOTHESIS_PROFILE``:

* ``dev`` (default): 25 examples per property test, random seeds, for the edit-test loop.
* ``ci``: 200 examples, derandomized (the seed is a hash of the test, no example database),
  so a CI run is reproducible and a good submission cannot fail on a new random draw.
* ``thorough``: 10 000 examples per property test, on demand:
  ``HYPOTHESIS_PROFILE=thorough pytest -n 2``. Tests too expensive for that many examples
  (Numba kernels, the pretrained model, training) state their own budget per profile with
  ``tests.strategies.examples(ci=..., thorough=...)``.

The inputs that once broke a property are pinned with ``@example`` in their tests, so every
profile runs them.
"""
import os
import sys

import pytest
import torch
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

from attention_np.nn import checks
from tests import helpers

_COMMON = {"deadline": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=25, **_COMMON)
settings.register_profile("ci", max_examples=200, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=10_000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The tests multiply small matrices: OpenBLAS threads only add overhead there (measured 10-40x
# slower on a busy 2-core machine). Kept for the whole session. The same holds for torch's
# intra-op threads in the reference computations (a third less CPU time; matters under -n 2).
_BLAS_LIMIT = threadpool_limits(1, user_api="blas")
torch.set_num_threads(1)


@pytest.fixture
def mask_checks(monkeypatch):
    """Replace ``check_mask`` in every module that imported it by a wrapper counting its calls:
    the list of the ``name`` each call validated."""
    calls = []
    original = checks.check_mask

    def counting(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("name"))
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "check_mask", None) is original:
            monkeypatch.setattr(module, "check_mask", counting)
    return calls


def pytest_report_header(config):
    return f"hypothesis profile: {os.environ.get('HYPOTHESIS_PROFILE', 'dev')}"


def pytest_sessionfinish(session):
    """Under pytest-xdist a worker hands its errors to the controller (see pytest_testnodedown)."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["max_errors"] = dict(helpers.MAX_ERRORS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    for op, err in getattr(node, "workeroutput", {}).get("max_errors", {}).items():
        helpers.record_error(op, err)


def pytest_terminal_summary(terminalreporter):
    """Print the largest float64 error against torch seen for each op (see helpers.record_error)."""
    if not helpers.MAX_ERRORS:
        return
    terminalreporter.section("largest float64 abs error vs torch, per op")
    for op, err in sorted(helpers.MAX_ERRORS.items()):
        terminalreporter.write_line(f"{op:45s} {err:.3e}")
