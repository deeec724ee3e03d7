"""The package's internal API: the trusting cores that attention_np's docstring lists under
"Internal API" (tests/test_bad_input.py leaves them out of the bad-input table; tests/test_import_layers.py
checks that the list names real functions and that nothing else private crosses a module)."""
from __future__ import annotations

import re

import attention_np


def internal_api() -> set[str]:
    """Dotted names, e.g. ``attention_np.core.linear_core``, of the listed cores."""
    text = attention_np.__doc__.split("Internal API.", 1)[1]
    names, module = set(), None
    for line in text.splitlines():
        m = re.match(r"^    (\S+)\s{2,}(.+)$", line)            # "    module   names, …"
        if m:
            module, rest = m.groups()
        elif module and re.match(r"^\s{10,}\S", line):           # a continuation line
            rest = line
        else:
            continue
        names |= {f"attention_np.{module}.{n.strip()}" for n in rest.split(",") if n.strip()}
    return names
