"""What loading the pack costs ComfyUI at start-up, over the `import torch` it has already paid.

ComfyUI imports torch, then each custom node folder (`load_custom_node`: the folder's `__init__.py` under a module
name made from its path), then answers /object_info with one `INPUT_TYPES()` call per node. Each sample is a fresh
interpreter, so nothing is cached in `sys.modules`; samples of the two kinds alternate so drifting load hits both.
The pack's cost is timed inside the interpreter that imported torch first (the state ComfyUI is in); the gap
between the medians of the two kinds of interpreter is printed beside it as a cross-check.

    python bench/import_time.py [--repeats 11] [--root REPO] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, footer, header, median, say, spread, table

TARGET_MS = 50.0
SLOW_NODE_S = 0.002  # nodes whose INPUT_TYPES() takes longer are named in the output

CHILD = """
import importlib.util, json, os, sys, time

mode, root = sys.argv[1], sys.argv[2]
start = time.perf_counter()
import torch  # noqa: F401
torch_done = time.perf_counter()
result = {"torch": torch_done - start}
if mode == "pack":
    name = root.replace(".", "_x_")  # ComfyUI's module name for a custom node folder
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "__init__.py"),
                                                  submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    per_node = {}
    for key, cls in module.NODE_CLASS_MAPPINGS.items():
        node_start = time.perf_counter()
        cls.INPUT_TYPES()
        per_node[key] = time.perf_counter() - node_start
    listed = time.perf_counter()
    result.update(pack_import=imported - torch_done, input_types=listed - imported, pack=listed - torch_done,
                  per_node=per_node)
result["total"] = time.perf_counter() - start
print(json.dumps(result))
"""


def sample(mode: str, root: Path, cwd: str) -> dict:
    # ComfyUI caches bytecode after its first start; a PYTHONDONTWRITEBYTECODE inherited from the shell would make
    # every sample compile the pack from source, which users do not pay.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(root)], cwd=cwd, capture_output=True, text=True,
                         check=False, timeout=120, env=env)
    if out.returncode:
        raise RuntimeError(f"the {mode} interpreter failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="fresh interpreters of each kind (>= 7 for a figure)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the pack folder to load (default: this checkout)")
    parser.add_argument("--quick", action="store_true", help="2 repeats: checks the script, not the figure")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    root = args.root.resolve()

    header("pack import cost (ComfyUI start-up)")
    say(f"pack folder: {root}; {repeats} fresh interpreters of each kind, alternating, after one warm-up each")
    torch_only, with_pack = [], []
    with tempfile.TemporaryDirectory() as cwd:  # an empty working folder: no stray models/ or modules
        sample("torch", root, cwd)  # warm-ups: byte-compile the pack and fill the OS file cache
        sample("pack", root, cwd)
        for _ in range(repeats):
            torch_only.append(sample("torch", root, cwd))
            with_pack.append(sample("pack", root, cwd))

    def column(runs, key):
        return [run[key] for run in runs]

    table(["interpreter", "what is timed", "median ms", "min ms", "max ms"], [
        ["torch only (reference)", "import torch", *spread(column(torch_only, "total"), 1e3)],
        ["torch + pack", "import torch", *spread(column(with_pack, "torch"), 1e3)],
        ["torch + pack", "import the pack folder", *spread(column(with_pack, "pack_import"), 1e3)],
        ["torch + pack", f"INPUT_TYPES() of {len(with_pack[0]['per_node'])} nodes",
         *spread(column(with_pack, "input_types"), 1e3)],
        ["torch + pack", "pack: import + INPUT_TYPES", *spread(column(with_pack, "pack"), 1e3)],
        ["torch + pack", "everything", *spread(column(with_pack, "total"), 1e3)],
    ])
    nodes = {key: median([run["per_node"][key] for run in with_pack]) for key in with_pack[0]["per_node"]}
    slow = sorted(((seconds, key) for key, seconds in nodes.items() if seconds >= SLOW_NODE_S), reverse=True)
    slow_text = ", ".join(f"{key} {seconds * 1e3:.1f} ms" for seconds, key in slow) or "none"
    say(f"INPUT_TYPES() over {SLOW_NODE_S * 1e3:g} ms (a node's first call pays the imports it shares): {slow_text}")
    pack_ms = median(column(with_pack, "pack")) * 1e3
    torch_ms = median(column(torch_only, "total")) * 1e3
    gap_ms = median(column(with_pack, "total")) * 1e3 - torch_ms
    say(f"cross-check: median(torch + pack) - median(torch only) = {gap_ms:.1f} ms")
    say(f"pack / import torch = {pack_ms / torch_ms:.3f} (pack {pack_ms:.1f} ms, import torch {torch_ms:.0f} ms)")
    footer()
    verdict = "holds" if pack_ms <= TARGET_MS else "MISSED"
    say(f"pack import: {pack_ms:.1f} ms over import torch (target <= {TARGET_MS:g} ms: {verdict})")


if __name__ == "__main__":
    main()
