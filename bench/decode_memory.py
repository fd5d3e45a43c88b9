"""Peak memory of the video decode with and without temporal tiling, as the clip grows.

Temporal tiling exists so that a long clip decodes in the memory of a short one. Each case (frame count, tiled or
not) runs `decoding.decode_video` on a seeded random latent with the tiny VAE in a fresh interpreter; its peak is
the child's `ru_maxrss` after the decode minus the same figure after imports and setup. Tiling uses the pack's
defaults (`Tiling(temporal=True)`: 16-frame tiles overlapping by 8, what L2A_DecodeVideo offers by default).

glibc is told a fixed mmap threshold in the children (MALLOC_MMAP_THRESHOLD_): with its default, adaptive one,
freed tile buffers stay in the heap or not depending on allocation history, and the same case measured 650 or
947 MB in two runs; with it every large tensor is returned on free, so the peak follows live tensors.

    python bench/decode_memory.py [--frames 17 33 65 129 257] [--size 256] [--jobs 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import footer, header, say, table, tiny_model

FLAT = 1.5  # "about flat": the tiled peak may grow this much from the shortest to the longest clip
MMAP_THRESHOLD = str(128 * 1024)


def measure(frames: int, tiled: bool, size: int) -> dict:
    """One case, in this (fresh) interpreter."""
    import resource
    import time

    import torch

    from ltx2_anywhere.pipelines.decoding import Tiling, decode_video
    from ltx2_anywhere.pipelines.sampling import Latent

    def max_rss_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    torch.set_num_threads(1)
    model = tiny_model()
    shape = (1, model.vae.config.latent_channels, (frames - 1) // 8 + 1, size // 32, size // 32)
    video = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    latent = Latent(video=video, audio=None, width=size, height=size, num_frames=frames, fps=24.0, seed=0)
    baseline = max_rss_mib()
    start = time.perf_counter()
    images = decode_video(model, latent, Tiling(temporal=tiled))
    seconds = time.perf_counter() - start
    return {"frames": frames, "tiled": tiled, "shape": list(images.shape), "baseline_mib": baseline,
            "peak_mib": max_rss_mib() - baseline, "output_mib": images.numel() * 4 / 2**20, "seconds": seconds}


def run_case(frames: int, tiled: bool, size: int) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=MMAP_THRESHOLD)
    command = [sys.executable, str(Path(__file__).resolve()), "--case", str(frames), str(int(tiled)), str(size)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)
    if out.returncode:
        raise RuntimeError(f"case {frames} frames, tiled={tiled} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[17, 33, 65, 129, 257], help="8k+1 frame counts")
    parser.add_argument("--size", type=int, default=256, help="width and height in pixels, a multiple of 32")
    parser.add_argument("--jobs", type=int, default=2, help="cases run side by side (each measures only itself)")
    parser.add_argument("--quick", action="store_true", help="9 and 17 frames of 128x128: checks the script")
    parser.add_argument("--case", nargs=3, type=int, help=argparse.SUPPRESS)  # frames tiled size: one child
    args = parser.parse_args(argv)
    if args.case:
        frames, tiled, size = args.case
        sys.stdout.write(json.dumps(measure(frames, bool(tiled), size)) + "\n")
        return
    frame_counts, size = ([9, 17], 128) if args.quick else (sorted(args.frames), args.size)

    header("video decode peak memory, temporal tiling vs none (tiny VAE)")
    say(f"{size}x{size}, frames {frame_counts}; one fresh interpreter per case, torch on 1 thread, "
        f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}; tiling: 16-frame tiles, 8 frames overlap (the pack's defaults)")
    cases = [(frames, tiled) for frames in frame_counts for tiled in (False, True)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(cases, pool.map(lambda case: run_case(*case, size), cases)))

    rows = []
    for frames in frame_counts:
        plain, tiled = results[frames, False], results[frames, True]
        out = plain["output_mib"]
        rows.append([frames, f"{out:.0f}", f"{plain['peak_mib']:.0f}", f"{tiled['peak_mib']:.0f}",
                     f"{tiled['peak_mib'] / plain['peak_mib']:.2f}", f"{plain['peak_mib'] / out:.1f}",
                     f"{tiled['peak_mib'] / out:.1f}", f"{plain['seconds']:.1f}", f"{tiled['seconds']:.1f}"])
    table(["frames", "output MiB", "untiled peak MiB", "tiled peak MiB", "tiled / untiled", "untiled / output",
           "tiled / output", "untiled s", "tiled s"], rows)
    setup = results[cases[0]]["baseline_mib"]
    say(f"peak = the child's ru_maxrss after the decode - after setup ({setup:.0f} MiB); output = the returned "
        "float32 frames")
    first, last = frame_counts[0], frame_counts[-1]

    def growth(tiled: bool, beyond_output: bool = False) -> float:
        def peak(frames):
            case = results[frames, tiled]
            return case["peak_mib"] - (case["output_mib"] if beyond_output else 0)

        return peak(last) / peak(first)

    say(f"total peak (with the returned frames, which must grow {last / first:.1f}x): {growth(True):.1f}x tiled, "
        f"{growth(False):.1f}x untiled")
    footer()
    # The returned frames are the result the caller asked for; what tiling must keep flat is the decode's own
    # working memory on top of them.
    verdict = "holds" if growth(True, True) <= FLAT else "MISSED"
    say(f"temporal tiling: working memory (peak - output) grows {growth(True, True):.1f}x from {first} to {last} "
        f"frames (untiled: {growth(False, True):.1f}x; target: flat, <= {FLAT:g}x: {verdict})")


if __name__ == "__main__":
    main()
