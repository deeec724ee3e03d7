"""docs/_ext/page_at_a_time.py: with -j, a page that runs its notebook is read by a process of
its own, and a page served from the jupyter cache stays in Sphinx's chunks."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[1] / "docs" / "_ext"
sys.path.insert(0, str(EXT))
page_at_a_time = pytest.importorskip("page_at_a_time")


def test_running_pages_come_first_one_per_chunk():
    from sphinx.util.parallel import make_chunks
    names = [f"page{i:02d}" for i in range(30)]
    running = {"page03", "page17", "page29"}
    chunks = page_at_a_time.reading_chunks(names, 2, running.__contains__, make_chunks)
    assert chunks[:3] == [["page03"], ["page17"], ["page29"]]
    served = [n for n in names if n not in running]
    assert chunks[3:] == make_chunks(served, 2)
    assert sorted(n for chunk in chunks for n in chunk) == names      # every page, once


def test_all_served_or_all_running():
    from sphinx.util.parallel import make_chunks
    names = ["a", "b", "c"]
    assert page_at_a_time.reading_chunks(names, 2, lambda n: False, make_chunks) == \
        make_chunks(names, 2)
    assert page_at_a_time.reading_chunks(names, 2, lambda n: True, make_chunks) == \
        [["a"], ["b"], ["c"]]


def test_reader_is_wrapped_once_and_writer_untouched():
    from sphinx.builders import Builder
    before_write = Builder._write_parallel
    page_at_a_time.setup(None)
    wrapped = Builder._read_parallel
    page_at_a_time.setup(None)                       # a second Sphinx app in one process
    assert Builder._read_parallel is wrapped and wrapped.page_at_a_time
    assert Builder._write_parallel is before_write


def test_will_execute_follows_the_jupyter_cache(tmp_path):
    """A notebook page runs until the cache holds its executed copy; a Markdown page never."""
    pytest.importorskip("myst_nb")
    pytest.importorskip("ipykernel")
    from sphinx.application import Sphinx
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(textwrap.dedent(f"""
        extensions = ["myst_nb"]
        nb_execution_mode = "cache"
        nb_execution_cache_path = {str(tmp_path / "jc")!r}
        """))
    (src / "index.md").write_text("# Index\n\n```{toctree}\nnotebook\nplain\n```\n")
    (src / "notebook.md").write_text(textwrap.dedent("""\
        ---
        file_format: mystnb
        kernelspec:
          name: python3
          display_name: Python 3
        ---
        # A notebook

        ```{code-cell} ipython3
        print(6 * 7)
        ```
        """))
    (src / "plain.md").write_text("# Plain\n\nNo code here.\n")

    def new_app():
        return Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"),
                      "html", status=None, warning=None, freshenv=True)

    app = new_app()
    assert page_at_a_time.will_execute(app.env, "notebook")
    assert not page_at_a_time.will_execute(app.env, "plain")
    app.build()                                      # executes the notebook into the cache
    app = new_app()
    assert not page_at_a_time.will_execute(app.env, "notebook")
    assert "42" in (tmp_path / "out" / "notebook.html").read_text()
