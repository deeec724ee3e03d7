"""Screenshot every chapter of the built site in headless Chromium, to look at before a release.

    python docs/screenshots.py OUT_DIR [--height 6000]

Writes OUT_DIR/<page>.png (the top ``--height`` CSS pixels, 1280 wide) for the landing page,
chapters 1–14, the project and application pages and the exercises, and prints any failed
request or script error. ``--site docs/_build/html/zh_CN`` takes the Chinese edition.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

from site_browser import Browser  # noqa: E402  (docs/ is not a package)


def chapter_pages(site: Path) -> list[Path]:
    pages = [site / "index.html"] + sorted((site / "chapters").rglob("*.html")) + sorted(
        (site / "applications").glob("*.html")) + [site / n for n in (
        "library.html", "exercises.html", "results.html")]
    return [p for p in pages if p.exists()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--site", type=Path, default=DOCS / "_build" / "html")
    parser.add_argument("--height", type=int, default=6000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with Browser() as browser:
        for page_path in chapter_pages(args.site):
            page = browser.open(page_path.as_uri())
            name = page_path.relative_to(args.site).with_suffix("").as_posix().replace("/", "_")
            page.screenshot(args.out / f"{name}.png", full_height=args.height)
            problems = page.failed + page.errors
            print(f"{name}: {'ok' if not problems else problems}")
            page.close()


if __name__ == "__main__":
    main()
