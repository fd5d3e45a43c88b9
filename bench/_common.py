"""Helpers the benchmarks share: output (scripts print through `say`, not print), the machine header, tables.

Every script prints the machine, the date and the load average around its run, because these figures come from a
shared machine: a ratio is only trusted against a reference measured in the same run, under the same load.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def say(text: str = "") -> None:
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def header(title: str) -> None:
    """What the figures below depend on: the machine, versions, and how busy the machine was at the start."""
    say(f"# {title}")
    say(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')} | {cpu_model()}, {os.cpu_count()} cores, {ram_gib():.1f} GiB RAM | "
        f"python {platform.python_version()}, torch {version('torch')}, diffusers {version('diffusers')}, "
        f"av {version('av')}")
    say(f"load average (1/5/15 min) at start: {load()}")


def footer() -> None:
    say(f"load average (1/5/15 min) at end: {load()}")


def table(headers: list[str], rows: list[list]) -> None:
    """A Markdown table, so the output pastes into RESULTS.md as it is."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        say(line)


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children. Other processes competing for the cores
    move it less than wall time (not to nothing: they also slow the work itself), so it cross-checks a wall-time
    ratio taken on a busy machine."""
    return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime"))


def timed(run) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one call, after a garbage collection."""
    gc.collect()
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = run()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def median(values) -> float:
    return statistics.median(values)


def spread(values, scale: float = 1.0, digits: int = 1) -> list[str]:
    """[median, min, max] of a sample, scaled (e.g. seconds to ms) and rounded for a table."""
    return [f"{median(values) * scale:.{digits}f}", f"{min(values) * scale:.{digits}f}",
            f"{max(values) * scale:.{digits}f}"]


def tiny_model(config: dict | None = None):
    """The pack's LTX2Model container over tiny components built in memory from the real diffusers classes
    (`config`: tiny.json or an enlarged copy), the dev variant in fp32 on the CPU; nothing is read from disk."""
    import torch

    from ltx2_anywhere.pipelines import tiny
    from ltx2_anywhere.pipelines.components import LTX2Model
    from ltx2_anywhere.pipelines.loading import scheduler_config_for

    config = tiny.tiny_config() if config is None else config
    return LTX2Model(**tiny.build_components(config), scheduler_config=scheduler_config_for(config, "dev"),
                     family=tiny.tiny_family(), variant="dev", dtype=torch.float32,
                     device=torch.device("cpu"), source="tiny (in memory)", configs=config)
