"""Parallel reading (``-j``): a page that runs its notebook gets a process of its own.

Sphinx's parallel reader cuts the pages, in name order, into a few chunks (for 39 pages on two
processes: three chunks of 13) and hands each chunk whole to one process. Our pages execute
their notebooks while they are read, and a page can take two minutes, so a chunk is as slow as
its pages together: in a cold build on two cores (2026-12-08, AMD EPYC family 26 model 2) the
third chunk — the recommendation, sentiment, speech, translation and efficient-attention
pages — ran alone on one core for 127 of the build's 407 seconds while the other core idled.

Here every page whose notebook will run (myst-nb reads it as a notebook with code, and the
jupyter cache has no executed copy of that code) is a chunk of its own, so a process takes the
next such page as soon as it is done with its last one; the other pages are chunked as Sphinx
chunks them, after those. One chunk per page is not free — each costs a process and a merge of
its environment (about half a second) — which is why a page served from the cache, such as every
page of the Chinese edition after the English build, stays in Sphinx's chunks.

Only the reading is changed, while :meth:`Builder._read_parallel` runs; writing keeps Sphinx's
chunks. Should a Sphinx release rename either, the build goes on with Sphinx's own chunks.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import sphinx.builders
from sphinx.builders import Builder


def will_execute(env, docname: str) -> bool:
    """Whether reading ``docname`` runs its notebook (myst-nb's "cache" mode, as docs/conf.py
    sets it: a notebook with code whose executed copy is not in the jupyter cache). When the
    answer cannot be had, True: the page gets a process of its own, which costs little."""
    config = getattr(env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":             # not a myst-nb build,
        return config is not None and config.execution_mode != "off"   # or no cache to serve
    try:
        from jupyter_cache import get_cache
        from myst_nb.core.read import create_nb_reader

        path = Path(env.doc2path(docname))
        text = path.read_text(encoding="utf-8")
        reader = create_nb_reader(str(path), env.myst_config, config, text)
        if reader is None:
            return False                                        # plain Markdown or reST
        notebook = reader.read(text)
        if not any(cell.cell_type == "code" for cell in notebook.cells):
            return False
        get_cache(config.execution_cache_path or ".jupyter_cache").match_cache_notebook(notebook)
        return False                                            # served from the cache
    except KeyError:
        return True                                             # not in the cache: it runs
    except Exception:                                           # noqa: BLE001 (see docstring)
        return True


def reading_chunks(docnames: list, nproc: int, executes, make_chunks) -> list:
    """[[page] for each page that ``executes``] + Sphinx's ``make_chunks`` of the others."""
    runs = {name: executes(name) for name in docnames}
    served = [name for name in docnames if not runs[name]]
    return ([[name] for name in docnames if runs[name]]
            + (make_chunks(served, nproc) if served else []))


@contextlib.contextmanager
def _chunks_replaced(chunks: list):
    original = sphinx.builders.make_chunks
    sphinx.builders.make_chunks = lambda *args, **kwargs: chunks
    try:
        yield
    finally:
        sphinx.builders.make_chunks = original


def setup(app):
    read_parallel = getattr(Builder, "_read_parallel", None)
    if (read_parallel is not None and hasattr(sphinx.builders, "make_chunks")
            and not getattr(read_parallel, "page_at_a_time", False)):
        def _read_parallel(self, docnames, nproc):
            chunks = reading_chunks(list(docnames), nproc,
                                    lambda name: will_execute(self.env, name),
                                    sphinx.builders.make_chunks)
            with _chunks_replaced(chunks):
                return read_parallel(self, docnames, nproc)
        _read_parallel.page_at_a_time = True
        Builder._read_parallel = _read_parallel
    return {"parallel_read_safe": True, "parallel_write_safe": True}
