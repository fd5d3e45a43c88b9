"""bench/gpu.py: its --quick run (the tiny config; on the CPU here) ends on the figure's documented form, and its FLOP
count of a transformer call includes attention and grows with the tokens as attention and linear layers must.

The GPU figures themselves need a CUDA GPU and are not checked here.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ltx2_anywhere.pipelines import tiny

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
LAST_LINE = (r"two-stage \d+x\d+x\d+, (sequential|group) offload \+ VAE tiling: (peak|out of memory at) \d+\.\d\d GB "
             r"(VRAM|RSS) \(target <= 16 GB: (holds|MISSED)\)")


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=240)


def test_quick_run_ends_on_its_figure():
    run = run_script("--quick")
    assert run.returncode == 0, f"bench/gpu.py --quick failed:\n{run.stderr}"
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("# "), "the header (title, machine, versions) comes first"
    assert re.fullmatch(LAST_LINE, lines[-1]), f"unexpected last line: {lines[-1]!r}"
    assert re.search(r"one transformer call = \S+ TFLOP, [1-9]\d*% of it attention", run.stdout)
    assert re.search(r"\| 256x128x17 +\| fp8 +\| none +\| \d+\.\d{3} ", run.stdout), "fp8 rows are measured"


def test_quick_run_on_the_2_5_config_ends_on_its_figure():
    run = run_script("--quick", "--family", "2.5", "--modes")
    assert run.returncode == 0, f"bench/gpu.py --quick --family 2.5 failed:\n{run.stderr}"
    assert "LTX-2.5 tiny (random weights) config" in run.stdout.splitlines()[0]
    assert re.fullmatch(LAST_LINE, run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_points_to_quick():
    run = run_script("--steps", "1")
    assert run.returncode == 1
    assert "needs a CUDA GPU" in run.stderr and "--quick" in run.stderr


@pytest.fixture
def bench(monkeypatch):
    """bench/gpu.py as a module (it imports its neighbour _common the way a script run from bench/ does)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", module)
    spec.loader.exec_module(module)
    return module


def test_flop_count_includes_attention_and_grows_with_the_tokens(bench):
    family = tiny.tiny_family()
    config = family.config()
    cpu = torch.device("cpu")
    model, _ = bench.build_model(family, config, cpu)
    conditioning = bench.random_conditioning(family, config, cpu)
    # Twice the width: twice the video tokens (3 x 8 x 8 = 192 -> 384), the same audio and text tokens.
    total, attention = bench.transformer_flops(model, conditioning, bench.Size(256, 256, 17))
    wide_total, wide_attention = bench.transformer_flops(model, conditioning, bench.Size(512, 256, 17))

    t = config["transformer"]
    video_self_attention = t["num_layers"] * 4 * 192**2 * t["num_attention_heads"] * t["attention_head_dim"]
    assert attention >= video_self_attention > 0, "the attention kernels are counted, at least video self-attention"
    assert total > attention
    growth = wide_attention / attention
    assert 2 < growth <= 4, "video self-attention is quadratic in the tokens, the cross-attentions linear"
    assert 1 < wide_total / total < growth, "linear layers grow at most 2x, pulling the total below attention"
