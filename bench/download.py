"""Downloading a large hosted result: the pack's memory and speed against `curl` on the same local server.

A hosted job ends with a download that can be a long 1080p clip; it must stream to disk (a result held in memory
would cost its size in RAM on top of the models) and be as fast as the tool users would otherwise reach for. A
local HTTP server, in its own process, serves a 1 GiB `video/mp4` body with a Content-Length (a seeded random
1 MiB block repeated), as a provider's CDN does. Each pack run is a fresh interpreter that imports the pack, opens
an `HttpClient` (loopback allowed, as in the tests), resets the kernel's peak-RSS mark (`/proc/self/clear_refs`)
and calls `HttpClient.download` with a progress callback, as a hosted job does. Its peak RSS growth is VmHWM after
the download minus VmRSS before it. `curl -o` fetches the same URL in between; both are timed by themselves
(curl's `time_total`, the pack's clock around `download`), runs alternating after a warm-up of each; their CPU
seconds (curl's include its start) cross-check the wall-clock ratio, which moves with the load on a small shared
machine. Every file is checked byte for byte against the served body before it counts.

    python bench/download.py [--size-mib 1024] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _common import cpu_seconds, footer, header, median, say, spread, table

MAX_RSS_GROWTH_MB = 64
MIN_SPEED_VS_CURL = 0.8
BLOCK = 2**20
SEED = 1234
MB = 1e6


def block() -> bytes:
    return random.Random(SEED).randbytes(BLOCK)


def serve(size: int, port_file: Path) -> None:
    """The server process: every GET gets `size` bytes of the repeated block, written straight to the socket."""
    body = memoryview(block())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            left = size
            while left:
                n = min(left, BLOCK)
                self.wfile.write(body[:n])
                left -= n

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


def start_server(size: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    port_file = workdir / "port"
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(size), str(port_file)])
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the benchmark's HTTP server did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text()}/result.mp4"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def fetch_with_pack(url: str, dest: Path) -> dict:
    """One pack download, in this (fresh) interpreter."""
    from ltx2_anywhere.pipelines.hosted.base import HttpClient

    client = HttpClient(allow_loopback=True)
    progress_calls = 0

    def on_progress(done, total):
        nonlocal progress_calls
        progress_calls += 1

    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so the peak below is this download's
    start, cpu = time.perf_counter(), time.process_time()
    client.download(url, dest, on_progress=on_progress)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_before_kib": before, "growth_kib": _status_kib("VmHWM") - before,
            "progress_calls": progress_calls}


def run_pack(url: str, dest: Path) -> dict:
    command = [sys.executable, __file__, "--fetch", url, str(dest)]
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if out.returncode:
        raise RuntimeError(f"the pack's download failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_curl(url: str, dest: Path) -> dict:
    cpu = cpu_seconds()
    out = subprocess.run(["curl", "--silent", "--show-error", "--fail", "--output", str(dest),
                          "--write-out", "%{time_total}", url], capture_output=True, text=True, check=False,
                         timeout=600)
    if out.returncode:
        raise RuntimeError(f"curl failed: {out.stderr.strip()}")
    return {"seconds": float(out.stdout), "cpu_seconds": cpu_seconds() - cpu}


def expected_digest(size: int) -> str:
    digest, body = hashlib.sha256(), block()
    for offset in range(0, size, BLOCK):
        digest.update(body[:min(BLOCK, size - offset)])
    return digest.hexdigest()


def check_file(path: Path, size: int, digest: str, who: str) -> None:
    """The file must be the served body exactly; then it goes, so the disk holds one copy at a time."""
    found = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 * BLOCK):
            found.update(chunk)
    actual = path.stat().st_size
    path.unlink()
    if actual != size or found.hexdigest() != digest:
        raise RuntimeError(f"{who} wrote {actual:,} bytes that differ from the {size:,} served")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the served result")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each, alternating")
    parser.add_argument("--quick", action="store_true", help="64 MiB, one run of each: checks the script")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)  # size port_file: the server process
    parser.add_argument("--fetch", nargs=2, help=argparse.SUPPRESS)  # url dest: one pack download
    args = parser.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    if args.fetch:
        sys.stdout.write(json.dumps(fetch_with_pack(args.fetch[0], Path(args.fetch[1]))) + "\n")
        return
    if not shutil.which("curl"):
        raise SystemExit("bench/download.py compares the pack with curl: install curl (apt-get install curl).")
    size_mib, repeats = (64, 1) if args.quick else (args.size_mib, args.repeats)
    size = size_mib * 2**20

    header("download of a large hosted result: the pack's HttpClient vs curl, same local server")
    curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    say(f"{size_mib} MiB video/mp4 with Content-Length from a ThreadingHTTPServer in its own process; "
        f"{repeats} timed run(s) of each after a warm-up, alternating; {curl_version}")
    digest = expected_digest(size)
    pack_runs, curl_runs = [], []
    with tempfile.TemporaryDirectory(prefix="l2a-download-") as tmp:
        workdir = Path(tmp)
        server, url = start_server(size, workdir)
        try:
            for index in range(repeats + 1):
                for who, run, runs in (("pack", run_pack, pack_runs), ("curl", run_curl, curl_runs)):
                    dest = workdir / f"{who}-{index}.mp4"
                    result = run(url, dest)
                    check_file(dest, size, digest, who)
                    if index:
                        runs.append(result)
        finally:
            server.kill()
            server.wait()

    def rates(runs):
        return [size / MB / run["seconds"] for run in runs]

    def cpu_per_gib(runs):
        return f"{median([run['cpu_seconds'] for run in runs]) * 2**30 / size:.2f}"

    growth_mb = [run["growth_kib"] * 1024 / MB for run in pack_runs]
    table(["who", "MB/s median", "min", "max", "CPU s per GiB (median)", "peak RSS growth MB (max)"],
          [["pack HttpClient.download", *spread(rates(pack_runs), digits=0), cpu_per_gib(pack_runs),
            f"{max(growth_mb):.1f}"],
           ["curl", *spread(rates(curl_runs), digits=0), cpu_per_gib(curl_runs), "(other process)"]])
    say(f"pack process RSS before the download: {pack_runs[0]['rss_before_kib'] / 1024:.0f} MiB (python, requests, "
        f"the pack's hosted client); progress callbacks per download: {pack_runs[0]['progress_calls']}; "
        "every file equal to the served body")
    speed = median(rates(pack_runs)) / median(rates(curl_runs))
    footer()
    memory_verdict = "holds" if max(growth_mb) <= MAX_RSS_GROWTH_MB else "MISSED"
    speed_verdict = "holds" if speed >= MIN_SPEED_VS_CURL else "MISSED"
    say(f"download {size_mib} MiB: peak RSS growth {max(growth_mb):.1f} MB (target <= {MAX_RSS_GROWTH_MB} MB: "
        f"{memory_verdict}), throughput {speed:.3f}x curl (target >= {MIN_SPEED_VS_CURL}: {speed_verdict})")


if __name__ == "__main__":
    main()
