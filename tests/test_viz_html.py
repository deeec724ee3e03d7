"""Interactive views: self-contained files, exact-enough weights, and a real headless Chromium
that runs the page's JavaScript (skipped only when no Chromium/Chrome is installed)."""
import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from attention_np.viz import head_view_html, model_view_html
from attention_np.viz.examples import example_attention

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed")


def page_data(path):
    text = path.read_text(encoding="utf-8")
    block = re.search(r"<script type='application/json' id='attn-data'>(.*?)</script>", text, re.S)
    return text, json.loads(block.group(1))


def decoded(data):
    q = np.frombuffer(base64.b64decode(data["weights"]), np.uint8).astype(np.float64)
    return (data["scale"] * (q / 255) ** 2).reshape(data["layers"], data["heads"], data["tq"], data["tk"])


def test_page_is_self_contained_and_weights_round_trip(tmp_path):
    a = example_attention(2, 3, 9, dtype=np.float32)
    tokens = ["<b>", "</script>"] + list("abcdefg")
    text, data = page_data(head_view_html(a, tokens, tmp_path / "h.html"))
    assert not re.search(r"https?://|<script src|<link ", text)
    assert data["tokens_q"] == tokens and data["split"] is None
    # sqrt quantisation: |Δw| ≤ (2·sqrt(w) + 1/255) / 510
    err = np.abs(decoded(data) - a)
    assert (err <= (2 * np.sqrt(a) + 1 / 255) / 510 + 1e-7).all()
    assert decoded(data)[a < 1e-3].max() < 2e-3 and (decoded(data)[a > 1 / 600] > 0).all()


def test_arguments_are_checked(tmp_path):
    a = example_attention(1, 2, 5)
    with pytest.raises(ValueError, match="tokens"):
        head_view_html(a, list("abcd"), tmp_path / "x.html")
    with pytest.raises(ValueError, match="tokens_b"):
        model_view_html(np.full((1, 1, 3, 4), 0.25), list("abc"), tmp_path / "x.html",
                        tokens_b=["d"], key_tokens=list("wxyz"))
    with pytest.raises(ValueError, match="layers"):
        head_view_html(a, list("abcde"), tmp_path / "x.html", layers=[3])
    _, data = page_data(model_view_html(np.full((2, 1, 3, 4), 0.25), list("abc"),
                                        tmp_path / "c.html", key_tokens=list("xyz!"), layers=[1]))
    assert data["tokens_k"] == list("xyz!") and data["layer_names"] == ["layer 1"]


class DomSummary(HTMLParser):
    """Counts elements by (tag, class) and keeps <body>'s attributes."""

    def __init__(self):
        super().__init__()
        self.count, self.body = {}, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        for cls in (attrs.get("class") or "").split() or [""]:
            self.count[(tag, cls)] = self.count.get((tag, cls), 0) + 1


def rendered_dom(path, tmp_path) -> DomSummary:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
           "--dump-dom", f"{path.resolve().as_uri()}#selftest"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout
    dom = DomSummary()
    dom.feed(out)
    assert dom.body.get("data-ready") == "1", "the page's script did not finish"
    return dom


@needs_browser
def test_head_view_in_chromium_with_sentence_pair_at_520_tokens(tmp_path):
    L, H, T = 2, 3, 520
    a = example_attention(L, H, T, dtype=np.float32)
    path = head_view_html(a, [f"a{i}" for i in range(300)], tmp_path / "head.html",
                          tokens_b=[f"b{i}" for i in range(T - 300)])
    dom = rendered_dom(path, tmp_path)
    assert dom.count[("div", "tok")] == 2 * T
    assert dom.count[("span", "swatch")] == H
    assert dom.count[("select", "")] == 2                      # layer + sentence pair
    assert dom.count[("option", "")] == L + 5
    assert dom.count[("canvas", "lines")] == 1
    assert dom.count[("div", "sepB")] == 2                     # first token of B, both columns
    test = json.loads(dom.body["data-selftest"])
    assert test["active"] == 1 and test["shaded"] == T         # hovered token + all keys shaded
    assert H <= test["hover_lines"] <= H * T                   # only the hovered row's lines
    assert test["lines"] == int(dom.body["data-lines"]) > test["hover_lines"]


@needs_browser
def test_model_view_in_chromium(tmp_path):
    L, H, T = 3, 4, 12
    a = example_attention(L, H, T)
    path = model_view_html(a, [f"t{i}" for i in range(T)], tmp_path / "model.html")
    dom = rendered_dom(path, tmp_path)
    assert dom.count[("canvas", "thumb")] == L * H
    assert dom.count[("canvas", "big")] == 1
    test = json.loads(dom.body["data-selftest"])
    assert test["thumbs"] == L * H and test["selected"] == 1   # the clicked (last) head
    assert re.match(r"query \d+ 't\d+' → key \d+ 't\d+': 0\.\d{4}$", test["readout"])
