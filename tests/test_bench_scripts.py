"""The benchmark scripts run (in --quick mode: seconds, not minutes) and end on a figure of the documented form.

The scripts start together, as subprocesses from the repository root, and each test reads one's output. Quick
figures come from toy sizes and a loaded machine, so only their form is checked, plus the checks the scripts make
that do not depend on timing: the node chain and diffusers compute the same video and sound, the pack's mp4 writer
and the bare PyAV loop write the same packets, and the pack's download is the served body.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAST_LINES = {
    "import_time": r"pack import: \d+\.\d ms over import torch \(target <= 50 ms: (holds|MISSED)\)",
    "overhead": r"node chain / diffusers = \d+\.\d{3}x \(target <= 1\.05: (holds|MISSED)\)",
    "encode": r"pack writer / bare PyAV = \d+\.\d{3}x \(target <= 1\.1: (holds|MISSED)\)",
    "decode_memory": r"temporal tiling: working memory \(peak - output\) grows \d+\.\dx from 9 to 17 frames "
                     r"\(untiled: \d+\.\dx; target: flat, "
                     r"<= 1\.5x: (holds|MISSED)\)",
    "download": r"download 64 MiB: peak RSS growth \d+\.\d MB \(target <= 64 MB: (holds|MISSED)\), "
                r"throughput \d+\.\d{3}x curl \(target >= 0\.8: (holds|MISSED)\)",
    "diffusion_decode_cost": r"diffusion decoder / conv decoder: \d+\.\dx to \d+\.\dx the FLOPs over \d+ "
                            r"size\(s\)",
    "lora_memory": r"LoRA runs: \d+(\.\d)? (B|kB|MB|GB) of adapters or restore copies left in memory; 19B copy "
                   r"avoided \d+\.\d GB \(target 0 B: (holds|MISSED)\)",
}


@pytest.fixture(scope="module")
def outputs() -> dict:
    runs = {
        name: subprocess.Popen([sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in LAST_LINES if name != "download" or shutil.which("curl")
    }
    results = {}
    for name, run in runs.items():
        stdout, stderr = run.communicate(timeout=240)
        results[name] = (run.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize("name", list(LAST_LINES))
def test_quick_run_ends_on_its_figure(outputs, name):
    if name not in outputs:
        pytest.skip("bench/download.py compares with curl, which this machine lacks")
    returncode, stdout, stderr = outputs[name]
    assert returncode == 0, f"bench/{name}.py --quick failed:\n{stderr}"
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("# "), "the header (title, machine, versions) comes first"
    assert re.fullmatch(LAST_LINES[name], lines[-1]), f"unexpected last line: {lines[-1]!r}"


def test_node_chain_and_diffusers_compute_the_same(outputs):
    stdout = outputs["overhead"][1]
    found = re.search(r"max \|frame diff\| (\S+), max \|audio diff\| (\S+)", stdout)
    assert found, stdout
    assert float(found[1]) <= 1e-5 and float(found[2]) <= 1e-5


def test_pack_writer_and_bare_loop_write_the_same_packets(outputs):
    assert "identical video and audio packets: yes" in outputs["encode"][1]


def test_downloads_are_checked_against_the_served_body(outputs):
    if "download" not in outputs:
        pytest.skip("bench/download.py compares with curl, which this machine lacks")
    assert "every file equal to the served body" in outputs["download"][1]


def test_lora_runs_leave_no_adapter_and_hold_no_copy(outputs):
    """Not a timing: fused runs hold nothing to restore, no run leaves an adapter, the base comes back exactly."""
    stdout = outputs["lora_memory"][1]
    rows = [line for line in stdout.splitlines() if line.startswith("| LTX-2")]
    assert rows and all(line.rstrip(" |").endswith("yes") for line in rows)
    fused = [line for line in rows if "| fused " in line]
    assert fused and all(cells.split("|")[7].strip() == "0 B" for cells in fused)
    assert stdout.strip().splitlines()[-1].endswith("(target 0 B: holds)")
