"""Rows of the bad-input table (tests/test_bad_input.py) that the library does not pass yet.

Each row runs as ``xfail(strict=True)`` with its reason: when the library gains the check, the
row passes, the strict xfail fails, and the row is deleted here. Rows are written
``"<entry>: <mutation-argument> …"`` (case ids ``<entry>-<mutation>-<argument>``).
"""

GAPS = {
}

_REASON = {f"{row.split(': ')[0]}-{case}": reason
           for reason, rows in GAPS.items() for row in rows for case in row.split(": ")[1].split()}


def gap(case_id: str) -> str | None:
    """The reason the row ``case_id`` is expected to fail, or None."""
    return _REASON.get(case_id)
