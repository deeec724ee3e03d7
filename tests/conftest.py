"""Hypothesis profiles and the end-of-run table of errors against torch."""
import os

from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

from tests import helpers

settings.register_profile(
    "ci", max_examples=200, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The tests multiply small matrices: OpenBLAS threads only add overhead there (measured 10-40x
# slower on a busy 2-core machine). Kept for the whole session.
_BLAS_LIMIT = threadpool_limits(1, user_api="blas")


def pytest_terminal_summary(terminalreporter):
    """Print the largest float64 error against torch seen for each op (see helpers.record_error)."""
    if not helpers.MAX_ERRORS:
        return
    terminalreporter.section("largest float64 abs error vs torch, per op")
    for op, err in sorted(helpers.MAX_ERRORS.items()):
        terminalreporter.write_line(f"{op:45s} {err:.3e}")
