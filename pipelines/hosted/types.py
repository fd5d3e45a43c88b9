"""The provider-independent vocabulary of hosted generation: what is asked, what is sent, what comes back.

Every provider client turns a GenerationRequest into a Prepared request (validated, snapped, priced, without
any network traffic), submits it once, polls it, and fetches the video. `base.py` holds the shared HTTP and job
machinery; each provider module implements `Provider` from here.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field, fields, replace
from numbers import Real
from pathlib import Path
from typing import Any

from ..choices import RETAKE_PARTS
from ..errors import L2AError
from .limits import declared_cap, download_cap

MODES = ("t2v", "i2v", "extend", "a2v", "retake")
MODE_NAMES = {"t2v": "text-to-video", "i2v": "image-to-video", "extend": "video extension", "a2v": "audio-to-video",
              "retake": "retake"}
# Which providers have each mode, for refusals that name them (tests check it against every provider's `modes`).
MODE_PROVIDERS = {"t2v": ("fal", "wavespeed", "bytecompute", "ltx"), "i2v": ("fal", "wavespeed", "vibedream",
                                                                            "bytecompute", "ltx"),
                  "extend": ("fal", "wavespeed"), "a2v": ("fal", "ltx"), "retake": ("ltx",)}
STATES = ("queued", "running", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class GenerationRequest:
    """One parameter set for every provider (fields a provider lacks are refused or ignored with a note).

    Images, videos and audio are local files (uploaded by the provider client) or already-public http(s) URLs. The
    seed is always resolved (never -1) before a request is built, so identical requests can be recognised.
    Audio-to-video takes `audio` (its length sets the video's; `duration` may state a URL's length); retake takes
    `video`, the window `window_start`..`window_end` in seconds and what to regenerate there (`retake_part`).
    """

    mode: str
    prompt: str
    seed: int
    negative_prompt: str | None = None
    image: Path | None = None
    image_url: str | None = None
    end_image: Path | None = None
    end_image_url: str | None = None
    video: Path | None = None
    video_url: str | None = None
    audio: Path | None = None
    audio_url: str | None = None
    window_start: float | None = None  # retake: the regenerated window, in seconds of the input video
    window_end: float | None = None
    retake_part: str = "both"  # retake: "both", "video" or "audio"
    width: int | None = None
    height: int | None = None
    resolution: str | None = None  # "480p" | "720p" | "1080p" | ...
    aspect_ratio: str | None = None  # "16:9" | "9:16" | "auto" | ...
    duration: float | None = None  # seconds
    num_frames: int | None = None
    fps: float | None = None
    generate_audio: bool = True
    guidance_scale: float | None = None
    num_inference_steps: int | None = None
    camera: str = "none"
    camera_scale: float = 1.0
    image_strength: float = 1.0
    end_image_strength: float = 1.0
    multiscale: bool | None = None
    acceleration: str | None = None
    prompt_expansion: bool | None = None
    options: dict = field(default_factory=dict)  # provider-specific extras, passed through after validation
    auto_duration: bool = False  # the model picks the length (LTX-2.5's duration head); duration/num_frames unused

    def check(self) -> None:
        """Refuse what no provider can render, before anything is priced or sent: an unknown mode, a number that is
        not finite (anywhere, `options` included), a size, length or frame rate of zero or less, a retake whose
        window is missing, empty or starts before 0 (the provider checks it against the clip). Each provider then
        snaps values above its own maximum, with a note."""
        if self.mode not in MODES:
            raise L2AError(f"mode = {self.mode!r} is unknown: use one of {', '.join(MODES)}. Nothing was sent.")
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "options":
                _check_finite("options", value)
            elif isinstance(value, Real) and not isinstance(value, bool):
                if not math.isfinite(value):
                    raise L2AError(f"{spec.name} = {value!r} is not a finite number: give a real value (or leave "
                                   "it unset for the provider's default). Nothing was sent.")
        for name, fix in (("width", "a size in pixels, e.g. 1280x720"), ("height", "a size in pixels, e.g. 1280x720"),
                          ("duration", "seconds, e.g. 5"), ("num_frames", "a frame count, e.g. 121"),
                          ("fps", "frames per second, e.g. 24")):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, Real) and not isinstance(value, bool)):
                raise L2AError(f"{name} = {value!r} is not a number: use {fix}. Nothing was sent.")
            if value is not None and value <= 0:
                raise L2AError(f"{name} = {value:g} is not above 0: use {fix}. Nothing was sent.")
        if self.mode == "retake":
            self._check_window()

    def _check_window(self) -> None:
        start, end = self.window_start, self.window_end
        if start is None or end is None:
            raise L2AError("a retake needs its window: give window_start and window_end in seconds. Nothing was "
                           "sent.")
        if start < 0 or end <= start:
            raise L2AError(f"the retake window {start:g}-{end:g} s is empty or starts before the clip: use 0 <= start "
                           "< end. Nothing was sent.")
        if self.retake_part not in RETAKE_PARTS:
            raise L2AError(f"retake_part = {self.retake_part!r} is unknown: use one of {', '.join(RETAKE_PARTS)}. "
                           "Nothing was sent.")


def lacks_mode(provider_label: str, mode: str) -> str:
    """The refusal of a mode a provider lacks, naming the providers that have it."""
    have = MODE_PROVIDERS.get(mode, ())
    where = f"{', '.join(have[:-1])} or {have[-1]}" if len(have) > 1 else (have[0] if have else "the local backend")
    return f"{provider_label} has no {MODE_NAMES.get(mode, mode)}: use {where}. Nothing was sent or uploaded."


def _check_finite(where: str, value) -> None:
    """Refuse NaN or infinity anywhere inside a provider option (nested dicts and lists too)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(f"{where}[{key!r}]", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(f"{where}[{index}]", item)
    elif isinstance(value, Real) and not isinstance(value, bool) and not math.isfinite(value):
        raise L2AError(f"{where} = {value!r} is not a finite number: give a real value or leave it out. Nothing "
                       "was sent.")


@dataclass(frozen=True)
class CostEstimate:
    usd: float
    formula: str  # how it was computed, shown to the user, e.g. "1280x704x121 = 109.1 MP x $0.0008/MP"


@dataclass(frozen=True)
class Prepared:
    """A validated request in the provider's own names and ranges, ready to submit."""

    provider: str
    endpoint: str  # the provider's model/endpoint id, e.g. "fal-ai/ltx-2-19b/image-to-video"
    payload: dict  # the JSON body, without the URLs of files still to upload
    uploads: dict[str, Path] = field(default_factory=dict)  # payload field -> local file to upload first
    notes: tuple[str, ...] = ()  # values snapped or dropped, said to the user
    cost: CostEstimate | None = None
    seed: int | None = None  # the request's resolved seed: part of its identity even where the payload has none
    max_bytes: int | None = None  # the largest video file the asked output can be (mapping.download_cap)


@dataclass(frozen=True)
class JobRef:
    """A submitted job: enough to poll, cancel, fetch or resume it later (also from another process)."""

    provider: str
    endpoint: str
    job_id: str
    urls: dict = field(default_factory=dict)  # status/result/cancel URLs the provider returned, if any
    submitted_at: float = 0.0
    max_bytes: int | None = None  # the download limit from what was asked (Prepared.max_bytes), when known


@dataclass(frozen=True)
class JobStatus:
    state: str  # one of STATES
    queue_position: int | None = None
    message: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    video_url: str | None  # None when the provider streams the file itself (fetch handles it)
    seed: int | None = None
    prompt: str | None = None  # the provider's (possibly expanded) prompt
    adjustments: dict = field(default_factory=dict)  # what the provider changed (size, duration, ...)
    raw: dict = field(default_factory=dict)
    declared_bytes: int | None = None  # the file size the provider declared for the video (fal: file_size)


class Provider(abc.ABC):
    """One hosted API. Network calls go through `self.http` (base.HttpClient): submits are sent once, status,
    result and download calls are retried there."""

    name: str = ""
    label: str = ""  # the name users know, for messages ("the LTX API", "WaveSpeed")
    key_env: str = ""
    default_base_url: str = ""
    modes: tuple[str, ...] = ()
    ENDPOINTS: dict[str, str] = {}  # endpoint -> mode
    FAMILY_ENDPOINTS: dict[str, dict[str, str]] = {}  # local model family ("2.0", ...) -> mode -> endpoint
    # The largest output any endpoint renders, (width, height, seconds, fps, codec): the download limit of a job
    # resumed by id alone, when neither the provider nor the request says more (mapping.download_cap).
    largest_output: tuple = (3840, 2160, 20.0, 60.0, "h264")

    def __init__(self, http: Any, key: str, base_url: str | None = None):
        self.http = http
        self.key = key
        self.base_url = (base_url or self.default_base_url).rstrip("/")

    def prepare(self, request: GenerationRequest, endpoint: str | None = None) -> Prepared:
        """Validate and map a request to this provider (no network): the shared check first (the same refusals
        for every provider, a mode this provider lacks among them), then the provider's own mapping; the seed
        travels with the result."""
        request.check()
        if request.mode not in self.modes:
            raise L2AError(lacks_mode(self.label or self.name, request.mode))
        if request.auto_duration:
            # No provider's API documents a length the model chooses (fal, WaveSpeed, vibedream, ByteCompute and the
            # LTX API all take seconds or frames), so there is no provider auto to map it to.
            raise L2AError(f"duration 'auto' (LTX-2.5's duration head) runs on a local LTX-2.5 model only: "
                           f"{self.label or self.name} takes a length in seconds and has no automatic duration. Set "
                           "a length in seconds or frames for a hosted backend. Nothing was sent.")
        return replace(self.map_request(request, endpoint), seed=request.seed)

    @abc.abstractmethod
    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        """The provider's own mapping of a checked request. Refuse a mode it lacks, naming providers that have
        it; snap values above its maximum with a note; set `max_bytes` from the output it will render."""

    @abc.abstractmethod
    def upload(self, path: Path) -> str:
        """Make a local file reachable by the provider and return the URL (or data URI) to put in the payload."""

    @abc.abstractmethod
    def submit(self, prepared: Prepared) -> JobRef:
        """Send the request exactly once (never retried: a lost answer must not bill twice)."""

    def synchronous(self, prepared: Prepared) -> bool:
        """True when the endpoint answers the submit with the video itself (no job to poll): run_job then calls
        `submit_sync` instead of `submit`."""
        return False

    def submit_sync(self, prepared: Prepared, dest: Path, wait_s: float) -> tuple[JobRef, JobResult, Path]:
        """Send a synchronous request exactly once and stream its answer to `dest`, waiting at most `wait_s`."""
        raise NotImplementedError(f"{self.name} has no synchronous endpoint")

    @abc.abstractmethod
    def status(self, job: JobRef) -> JobStatus:
        """Poll the job (retried on 408/429/5xx/connection errors)."""

    @abc.abstractmethod
    def result(self, job: JobRef) -> JobResult:
        """The finished job's outputs (retried)."""

    def cancel(self, job: JobRef) -> bool:
        """Ask the provider to stop the job; False where the provider has no cancel (the job may still bill)."""
        return False

    def download_limit(self, job: JobRef, result: JobResult) -> tuple[int, str]:
        """(bytes, why) the video may take: what the provider declared plus a little slack, else what the request
        asked for, else the largest output the provider renders."""
        if result.declared_bytes:
            return declared_cap(result.declared_bytes), f"{self.name} declared {result.declared_bytes:,} bytes"
        if job.max_bytes:
            return job.max_bytes, "the most the requested video can take"
        return download_cap(*self.largest_output), f"the most any {self.name} video can take"

    def fetch(self, job: JobRef, result: JobResult, dest: Path) -> Path:
        """Download the video to `dest` (streamed, capped, atomic); providers that serve bytes override this."""
        limit, why = self.download_limit(job, result)
        return self.http.download(result.video_url, dest, max_bytes=limit, limit_reason=why)
