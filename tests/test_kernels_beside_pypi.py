"""Our kernels beside PyPI's ``kernels`` (Hugging Face's kernel downloader, a dependency of
transformers ≥ 5.25): the bug of issue 27, tried as a user meets it.

A fresh interpreter starts in a temporary directory, not the checkout (so nothing but the
installed packages is importable), imports transformers and sentence_transformers first, and
then runs ``backend="numba"`` for scaled dot-product attention, multi-head attention, the encoder
block and MiniLM.encode against the NumPy backend; PyPI's ``from kernels import get_kernel``
must still work in the same process, and ``python -m attention_np.kernels.bench --help`` must run.
"""
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json
import sentence_transformers, transformers          # first, as in a user's notebook
import numpy as np
import attention_np as an
from attention_np.models.minilm import MiniLM

rng = np.random.default_rng(0)
gaps = {}
q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
ref = an.scaled_dot_product_attention_forward(q, k, v, causal=True)[0]
got = an.scaled_dot_product_attention_forward(q, k, v, causal=True, backend="numba")[0]
gaps["sdpa"] = float(np.abs(got - ref).max())

x = rng.standard_normal((2, 5, 6))
p = an.init_multi_head_params(6, rng)
ref = an.multi_head_attention_forward(x, x, p, 3)[0]
gaps["multi_head_attention"] = float(np.abs(
    an.multi_head_attention_forward(x, x, p, 3, backend="numba")[0] - ref).max())

cfg = an.EncoderConfig(d_model=6, num_heads=3, d_ff=8, activation="gelu")
block = an.init_encoder_block(6, 8, rng)
ref = an.encoder_block_forward(x, block, cfg)[0]
gaps["encoder_block"] = float(np.abs(
    an.encoder_block_forward(x, block, cfg, backend="numba")[0] - ref).max())

sentences = ["The animal didn't cross the street because it was too tired.", "A short one."]
slow = MiniLM.from_pretrained(dtype=np.float64)
fast = MiniLM(slow.params, slow.config, slow.tokenizer, "numba")
gaps["minilm_encode"] = float(np.abs(fast.encode(sentences) - slow.encode(sentences)).max())

import kernels as pypi_kernels
from kernels import get_kernel                       # Hugging Face's, still working
print(json.dumps({"gaps": gaps, "pypi_kernels": pypi_kernels.__file__,
                  "get_kernel": callable(get_kernel),
                  "ours": an.kernels.__file__}))
"""


def _clean_env():
    """The environment without anything that would put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_numba_backend_and_pypi_kernels_in_one_process(tmp_path):
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=_clean_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["get_kernel"]
    assert "attention_np" not in out["pypi_kernels"]             # PyPI's package, not ours
    assert out["ours"].endswith(os.path.join("attention_np", "kernels", "__init__.py"))
    tolerance = {"sdpa": 1e-12, "multi_head_attention": 1e-12, "encoder_block": 1e-12,
                 "minilm_encode": 1e-10}
    for name, gap in out["gaps"].items():
        assert gap <= tolerance[name], (name, gap)


def test_bench_help_runs_from_anywhere(tmp_path):
    res = subprocess.run([sys.executable, "-m", "attention_np.kernels.bench", "--help"],
                         cwd=tmp_path, env=_clean_env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "--quick" in res.stdout


def test_no_top_level_kernels_is_installed_by_us():
    """The distribution installs attention_np and demos, nothing named like PyPI's kernels."""
    from importlib.metadata import distribution
    top = distribution("attention-np").read_text("top_level.txt")
    names = set(top.split()) if top else set()
    if not names:                                   # an editable install may not list them
        pytest.skip("this install lists no top-level names (editable)")
    assert "kernels" not in names
