"""``python -m demos [--out DIR] [--full] [name ...]``: run the demos and write ``DIR/index.html``."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import time
from pathlib import Path

from demos import DEMOS
from demos._common import DemoUnavailable
from demos.gallery import write_gallery


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run every attention-np demo and build the gallery.")
    parser.add_argument("names", nargs="*", help=f"demos to run (default: all of {DEMOS})")
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(DEMOS)
    if unknown:
        parser.error(f"unknown demo(s) {sorted(unknown)}; choose from {DEMOS}")
    sections = []
    for name in args.names or DEMOS:
        if importlib.util.find_spec(f"demos.{name}") is None:
            continue
        module = importlib.import_module(f"demos.{name}")
        print(f"=== demos.{name} ===", flush=True)
        start = time.perf_counter()
        doc = (module.__doc__ or "").strip()
        try:
            figures = module.run(args.out, full=args.full)
        except DemoUnavailable as reason:
            print(f"=== demos.{name}: skipped: {reason} ===", flush=True)
            doc += f"\n\nSkipped in this run: {reason}"
            figures = []
        seconds = time.perf_counter() - start
        print(f"=== demos.{name}: {len(figures)} figures in {seconds:.1f} s ===", flush=True)
        sections.append((name, doc, figures, seconds))
    index = write_gallery(args.out, sections)
    print(f"gallery: {index}")


if __name__ == "__main__":
    main()
