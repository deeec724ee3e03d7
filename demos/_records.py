"""Records: the one place a measured number is typed (issue 29).

``python -m demos --record [NAME …] [--full]`` runs demos and writes one committed record per
demo and mode, ``docs/records/<demo>.<quick|full>.json``: every metric of its metrics.json, with
where it came from (commit, date, CPU, cores, library versions), its wall and CPU seconds, the
seeds and the step budgets. A quick record also stores, per metric, the tolerance that
``python -m demos --verify`` allows: the spread of that metric over seeds 0–2, measured once.
The kernel benchmark writes ``docs/records/kernels.json`` the same way.

Pages quote records through a Sphinx role and README through generated tables; both read a
number by a *reference*:

    translate_dates.quick:none.exact_match:.3f          demo.mode : path : format
    translate_dates.quick:min(*.exact_match):.3f        min / max / mean over a glob of paths
    translate_dates.quick:max(<bahdanau,luong_dot>.exact_match)   … or over listed alternatives
    translate_dates.quick:@wall_seconds:.0f             @: a field of the record, not a metric
    kernels:rows.3.speedup_vs_torch:.2f                 the kernel benchmark's record
    kernels:rows[kernel=softmax fwd].speedup_vs_torch:.2f   … a list item chosen by its fields

A path walks dicts by key and lists by index (or ``[field=value,…]``, the one item whose fields
have those values), separated by dots; ``*`` matches one key.
"""
from __future__ import annotations

import fnmatch
import json
import math
import os
import platform
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "docs" / "records"
# Metrics that measure the machine rather than the model: recorded, never verified.
TIMING = ("seconds", "speedup", "_ms", "ms_", "tokens_per", "sent_per", "wall", "cpu_")
SPREAD_SEEDS = (1, 2)


def record_path(demo: str, mode: str | None) -> Path:
    return RECORDS / (f"{demo}.{mode}.json" if mode else f"{demo}.json")


def load(demo: str, mode: str | None = "quick") -> dict:
    path = record_path(demo, mode)
    if not path.exists():
        raise FileNotFoundError(f"no record {path.relative_to(ROOT)}: run "
                                f"`python -m demos --record {demo}"
                                f"{' --full' if mode == 'full' else ''}`")
    return json.loads(path.read_text(encoding="utf-8"))


# --- reading a number -------------------------------------------------------------------------

def flatten(obj, prefix: str = "") -> dict:
    """{"a.b.0": number} for every number (bools excluded) nested in dicts and lists."""
    out = {}
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            out[prefix] = obj
        return out
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _parts(path: str) -> list[str]:
    """Split a path at the dots outside square brackets."""
    parts, depth, cur = [], 0, ""
    for ch in path:
        depth += (ch == "[") - (ch == "]")
        if ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _lookup(obj, path: str):
    for part in _parts(path):
        if part.endswith("]") and "[" in part:           # rows[kernel=softmax fwd,shape=…]
            name, _, sel = part[:-1].partition("[")
            rows = obj[name] if name else obj
            want = dict(kv.split("=", 1) for kv in sel.split(","))
            found = [r for r in rows if all(str(r.get(k)) == v for k, v in want.items())]
            if len(found) != 1:
                raise KeyError(f"{len(found)} items match [{sel}]")
            obj = found[0]
        elif isinstance(obj, list):
            obj = obj[int(part)]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            raise KeyError(path)
    return obj


def _braces(pattern: str) -> list[str]:
    """``<a,b>.x`` → ``["a.x", "b.x"]`` (one set of alternatives), else ``[pattern]``."""
    head, brace, rest = pattern.partition("<")
    if not brace:
        return [pattern]
    inner, _, tail = rest.partition(">")
    return [head + alt + tail for alt in inner.split(",")]


def value(record: dict, path: str):
    """The value at ``path`` in the record's metrics (``@path``: in the record itself);
    ``min(glob)``, ``max(glob)``, ``mean(glob)`` aggregate the numbers whose paths match."""
    for fn in ("min", "max", "mean"):
        if path.startswith(fn + "(") and path.endswith(")"):
            pattern = path[len(fn) + 1:-1]
            base = record if pattern.startswith("@") else record["metrics"]
            found = [v for p, v in flatten(base).items()
                     if any(fnmatch.fnmatchcase(p, one) for one in _braces(pattern.lstrip("@")))]
            if not found:
                raise KeyError(f"no number matches {pattern!r}")
            return {"min": min, "max": max}.get(fn, lambda xs: sum(xs) / len(xs))(found)
    if path.startswith("@"):
        return _lookup(record, path[1:])
    return _lookup(record["metrics"], path)


def resolve(reference: str, cache: dict | None = None) -> str:
    """The text of a reference ``demo.mode:path[:format]`` (module docstring)."""
    head, _, rest = reference.partition(":")
    path, _, fmt = rest.partition(":")
    if not path:
        raise ValueError(f"a record reference is demo.mode:path[:format], got {reference!r}")
    demo, _, mode = head.partition(".")
    key = (demo, mode or None)
    record = cache.get(key) if cache is not None else None
    if record is None:
        record = load(demo, mode or None)
        if cache is not None:
            cache[key] = record
    try:
        found = value(record, path)
    except (KeyError, IndexError, ValueError) as error:
        raise KeyError(f"{reference}: {record_path(*key).name} has no {path} ({error})") from None
    if found is None:
        return "—"                                # not measured (e.g. torch not installed)
    return format(found, fmt) if fmt else str(found)


# --- making a record --------------------------------------------------------------------------

def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance() -> dict:
    """Where a record comes from: the commit (and whether the tree differed from it), when,
    on which CPU, how many cores, which versions."""
    import numba
    import numpy as np
    from attention_np.kernels._bench_utils import cpu_model
    return {"commit": _git("rev-parse", "--short=12", "HEAD"),
            "tree_differs_from_commit": bool(_git("status", "--porcelain", "--",
                                                  "attention_np", "demos")),
            "date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), **cpu_details(),
            "cores": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__}


def cpu_details() -> dict:
    """What "AMD EPYC" alone does not say: the CPU's family and model numbers (AMD family 25
    is Zen 3 for models 0-15 and Zen 4 for 16 and up) and its widest vector instructions."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                fields.setdefault(key.strip(), val.strip())
    except OSError:
        return {}
    flags = set(fields.get("flags", "").split())
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other"
    return {"cpu_family_model": f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
            "vector_isa": widest}


def cpu_name(provenance: dict, chinese: bool = False, cores: bool = False) -> str:
    """"AMD EPYC (family 26 model 2, AVX-512)": the CPU a record names, with its family and
    model (one model name covers several generations: Zen 4 and Zen 5 are both "AMD EPYC") and
    its widest vector instructions where the record has them (records made before they were
    stored give the model name only). ``chinese``: "AMD EPYC（系列 26 型号 2，AVX-512）";
    ``cores``: the record's core count joins them ("…, AVX-512, 2 cores")."""
    family, _, model = provenance.get("cpu_family_model", "").partition("/")
    details = []
    if family and model and "?" not in family + model:
        details.append(f"系列 {family} 型号 {model}" if chinese else f"family {family} model {model}")
    if provenance.get("vector_isa"):
        details.append(provenance["vector_isa"])
    if cores:
        details.append(f"{provenance['cores']} 核" if chinese else f"{provenance['cores']} cores")
    if not details:
        return provenance["cpu"]
    return provenance["cpu"] + (f"（{'，'.join(details)}）" if chinese else f" ({', '.join(details)})")


def budgets(metrics: dict) -> dict:
    """The step budgets the metrics name: every ``train_steps`` / ``steps`` number."""
    return {p: v for p, v in flatten(metrics).items()
            if p.rsplit(".", 1)[-1] in ("train_steps", "steps")}


def is_timing(path: str) -> bool:
    """A measure of the machine, not of the model: a time or a peak of memory, or an element of
    one (``cost.linear.time_s.0``)."""
    return any(any(t in part for t in TIMING) or re.search(r"(^|_)(time|train|per)_s(_|$)", part)
               or "peak_mib" in part for part in path.split("."))


def is_trajectory(path: str) -> bool:
    """A point of a training curve (``history``, ``curve``, ``…_by_step``): recorded and drawn,
    not verified — on another CPU the same seed takes another path to a similar end."""
    return any(part in ("history", "curve") or part.endswith("_by_step")
               for part in path.split("."))


def is_seed_copy(path: str) -> bool:
    """A per-seed copy of a metric (``seeds.seed 0.…``, ``….per_seed.0``), verified where the
    metric itself is, or the seed itself."""
    return any(p.startswith("seed") or p.endswith("per_seed") for p in path.split("."))


def is_verified(path: str) -> bool:
    return not (is_timing(path) or is_trajectory(path) or is_seed_copy(path))


def tolerances(runs: list[dict]) -> dict:
    """Per verified metric, the largest distance of another seed's value from seed 0's, over
    the runs given (seed 0 first), plus 1e-9 so that an exact metric may not move at all."""
    base = flatten(runs[0])
    others = [flatten(r) for r in runs[1:]]
    out = {}
    for path, v in base.items():
        if is_timing(path) or is_seed_copy(path):
            continue                          # the machine's speed, or the seed itself
        spread = max((abs(o[path] - v) for o in others if path in o), default=0.0)
        out[path] = float(spread) + 1e-9
    return out


def write(demo: str, mode: str, metrics: dict, seconds: dict, seeds: list,
          spread: list[dict] | None = None) -> Path:
    """Write docs/records/<demo>.<mode>.json (``spread``: the metrics of the other seeds)."""
    record = {"demo": demo, "mode": mode,
              "command": f"python -m demos --record {demo}" + (" --full" if mode == "full" else ""),
              "provenance": provenance(), "wall_seconds": seconds["wall"],
              "cpu_seconds": seconds["cpu"], "seeds": seeds, "budgets": budgets(metrics),
              "metrics": metrics}
    if spread is not None:
        record["tolerance_seeds"] = [0, *SPREAD_SEEDS]
        record["tolerance"] = tolerances([metrics, *spread])
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = record_path(demo, mode)
    path.write_text(json.dumps(record, indent=1, sort_keys=False, default=_jsonable) + "\n",
                    encoding="utf-8")
    return path


def write_kernels(result: dict, seconds: dict, argv: list[str]) -> Path:
    """Write docs/records/kernels.json from a run of ``python -m attention_np.kernels.bench``
    (its bench.json as ``metrics``); timings are what it measures, so nothing is verified."""
    record = {"demo": "kernels", "mode": None,
              "command": " ".join(["python -m attention_np.kernels.bench", *argv]),
              "provenance": provenance(), "wall_seconds": seconds["wall"],
              "cpu_seconds": seconds["cpu"], "metrics": result}
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = record_path("kernels", None)
    path.write_text(json.dumps(record, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    return path


def write_main_job(cache: str, metrics: dict, seconds: dict) -> Path:
    """Write docs/records/main_job.<cold|warm>.json: the wall time of ``python -m demos`` (quick
    mode, two demos at a time) and of each demo in it; all timings, so nothing is verified."""
    record = {"demo": "main_job", "mode": cache, "command": "python -m demos --record main_job",
              "provenance": provenance(), "wall_seconds": seconds["wall"],
              "cpu_seconds": seconds["cpu"], "metrics": metrics}
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = record_path("main_job", cache)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


def _jsonable(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def normalise(metrics: dict) -> dict:
    """Metrics as JSON has them (NumPy arrays → lists, tuples → lists)."""
    return json.loads(json.dumps(metrics, default=_jsonable))


# --- checking a run against its record --------------------------------------------------------

# A run is within tolerance when |now − recorded| ≤ SPREAD_FACTOR × spread + REL_FLOOR ×
# max(1, |recorded|). The spread (the record's "tolerance") is the largest distance of seeds 1
# and 2 from seed 0: three draws underestimate how far a fourth may fall, and a run on another
# CPU is such a draw (its BLAS and Numba round differently, and training amplifies it), so the
# check allows three times it. REL_FLOOR covers rounding where all three seeds agreed exactly.
# On the recording machine a run reproduces its record exactly (the "exact" column).
SPREAD_FACTOR = 3.0
REL_FLOOR = 1e-6


def compare(record: dict, metrics: dict) -> list[dict]:
    """One row per verified metric: recorded, now, allowed distance, ok, exact."""
    now = flatten(normalise(metrics))
    recorded_metrics = flatten(record["metrics"])
    rows = []
    for path, spread in record["tolerance"].items():
        if not is_verified(path):
            continue
        recorded, got = recorded_metrics.get(path), now.get(path)
        allowed = SPREAD_FACTOR * spread + REL_FLOOR * max(1.0, abs(recorded or 0.0))
        ok = got is not None and recorded is not None and (
            abs(got - recorded) <= allowed or (math.isnan(got) and math.isnan(recorded)))
        rows.append({"metric": path, "recorded": recorded, "now": got, "tolerance": allowed,
                     "ok": ok, "exact": got == recorded})
    return rows
