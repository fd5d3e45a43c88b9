"""What the job tests of the hosted clients share: a fake clock for run_job, and for every client one `ProviderCase`
(its fake, its client, its key, a plain request), so one test can run a failure mode against all of them."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fakes.bytecompute_server import ByteComputeServer
from fakes.fal_server import FalServer
from fakes.generic_server import loopback_only
from fakes.ltx_server import LtxServer
from fakes.server import FakeApi
from fakes.vibedream_server import VibedreamServer
from fakes.wavespeed_server import WaveSpeedServer
from ltx2_anywhere.pipelines.hosted.base import HttpClient
from ltx2_anywhere.pipelines.hosted.bytecompute import ByteComputeProvider
from ltx2_anywhere.pipelines.hosted.fal import FalProvider
from ltx2_anywhere.pipelines.hosted.jobs import HostedOutcome, run_job
from ltx2_anywhere.pipelines.hosted.ltx import LtxProvider
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest, Provider
from ltx2_anywhere.pipelines.hosted.vibedream import VibedreamProvider
from ltx2_anywhere.pipelines.hosted.wavespeed import WaveSpeedProvider


class Interrupted(Exception):
    """Stands in for ComfyUI's InterruptProcessingException."""


class Clock:
    """run_job's clock and sleep: sleeping advances it at once, so waiting costs no real time."""

    def __init__(self, now: float = 0.0):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(client: Provider, prepared, dest, **kwargs) -> HostedOutcome:
    """run_job on a fresh Clock: a 60 s deadline, polls 1 to 5 s apart."""
    clock = Clock()
    kwargs = {"deadline_s": 60.0, "poll": (1.0, 5.0), "sleep": clock.sleep, "clock": clock, **kwargs}
    return run_job(client, prepared, dest, **kwargs)


def assert_no_key_leak(fake: FakeApi, *texts: str) -> None:
    """Neither the texts nor any URL the fake was sent carry the key."""
    for text in texts:
        assert fake.key not in text
    for rec in fake.requests:
        assert fake.key not in rec.path and fake.key not in rec.query


@dataclass(frozen=True)
class ProviderCase:
    name: str
    fake: Callable[[str, Path], FakeApi]  # (key, a scratch folder) -> the fake, not started
    client: type[Provider]
    key: str
    fields: dict  # the GenerationRequest of a plain job this provider takes

    def request(self, **fields) -> GenerationRequest:
        return GenerationRequest(**{**self.fields, **fields})

    def connect(self, fake: FakeApi, **http) -> Provider:
        """The client pointed at the fake, with quick retries and timeouts (`http` overrides them)."""
        options = dict(allow_loopback=True, timeout=5.0, backoff=0.01, stall_timeout=0.5, sleep=lambda s: None)
        return self.client(HttpClient(**{**options, **http}), self.key, base_url=fake.url)

    @contextlib.contextmanager
    def serve(self):
        """The fake, running; afterwards it must have had no bug of its own and no test may have connected
        outside 127.0.0.1."""
        with tempfile.TemporaryDirectory() as folder, self.fake(self.key, Path(folder)) as fake, \
                loopback_only() as outside:
            yield fake
        assert fake.errors == [] and outside == []


def _keyed(server: type[FakeApi]):
    return lambda key, _folder: server(key)


FAL = ProviderCase("fal", lambda key, folder: FalServer(folder, key), FalProvider, "fal-secret-id:secret-0123456789",
                   dict(mode="t2v", prompt="a fox runs in the snow", seed=11, width=96, height=64, num_frames=9,
                        fps=25.0))
WAVESPEED = ProviderCase("wavespeed", lambda key, folder: WaveSpeedServer(folder, key), WaveSpeedProvider,
                         "ws-secret-key-0123456789", dict(mode="t2v", prompt="a lighthouse at night", seed=5,
                                                          resolution="480p", duration=5.0))
VIBEDREAM = ProviderCase("vibedream", _keyed(VibedreamServer), VibedreamProvider, "vd-secret-key-0123456789",
                         dict(mode="i2v", prompt="a cat yawns", seed=42, image_url="https://example.com/cat.png"))
BYTECOMPUTE = ProviderCase("bytecompute", _keyed(ByteComputeServer), ByteComputeProvider, "bytecompute_secret-key-0123456789",
                           dict(mode="t2v", prompt="waves at dusk", seed=7, width=256, height=160, duration=5.0,
                                fps=25.0))
LTX = ProviderCase("ltx", _keyed(LtxServer), LtxProvider, "ltx-secret-key-0123456789",
                   dict(mode="t2v", prompt="a lighthouse in a storm", seed=3, duration=6.0, fps=25.0))
CASES = (VIBEDREAM, BYTECOMPUTE, LTX)  # fal and WaveSpeed have their own test files as well
EVERY = (FAL, WAVESPEED, VIBEDREAM, BYTECOMPUTE, LTX)
