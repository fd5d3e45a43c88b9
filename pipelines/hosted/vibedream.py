"""vibedream: LTX-2 19B image-to-video from a public image URL (spec §5).

vibedream has no known upload endpoint, so a local image is refused in prepare(), before anything is sent or
billed. The price it quotes at submit (`costCents`) is the actual cost and is passed on in the result's raw data.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from ..errors import L2AError
from . import pricing
from .base import HostedError
from .mapping import ignored_fields, requested_short_side, tier_cap
from .types import GenerationRequest, JobRef, JobResult, JobStatus, Prepared, Provider

RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}
DURATION_RANGE = (5, 20)  # whole seconds
SEED_LIMIT = 1_000_000  # seeds run -1..999999
LOCAL_IMAGE = (
    "vibedream only takes a public image URL; this image is a local file: give an image URL, or use fal/wavespeed "
    "which upload local files"
)
STATES = {"processing": "running", "completed": "completed", "failed": "failed"}

# Assumptions, kept in this one place:
# [UNK] the output frame rate: a frame count is turned into seconds at this rate (vibedream takes seconds).
ASSUMED_FPS = 25.0
# [INF] audio is always generated (the model page has no switch), so generate_audio=False is reported as ignored.
# [UNK] statuses other than processing|completed|failed are read as "still running".


class VibedreamProvider(Provider):
    name = "vibedream"
    label = "vibedream"
    key_env = "VIBEDREAM_API_KEY"
    default_base_url = "https://api.vibedream.ai"
    modes = ("i2v",)
    largest_output = (1920, 1080, 20.0, 30.0, "h264")
    ENDPOINTS = {"ltx-2-19b": "i2v"}
    FAMILY_ENDPOINTS = {"2.0": {"i2v": "ltx-2-19b"}}

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def _prediction_url(self, job: JobRef) -> str:
        return f"{self.base_url}/api/v1/predictions/{quote(job.job_id, safe='')}"

    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        endpoint = endpoint or "ltx-2-19b"
        if self.ENDPOINTS.get(endpoint) != request.mode:
            raise L2AError(f"vibedream has no endpoint {endpoint!r} for this request; it has: ltx-2-19b.")
        if request.end_image is not None or request.end_image_url:
            raise L2AError("vibedream takes no end image: use fal for first-and-last-frame video.")
        image = _public_image_url(request)
        notes: list[str] = []
        resolution = _resolution(request, notes)
        duration = _duration(request, notes)
        seed = request.seed
        if not 0 <= seed < SEED_LIMIT:
            seed = seed % SEED_LIMIT
            notes.append(f"vibedream takes seeds 0-{SEED_LIMIT - 1}: seed {request.seed} was sent as {seed}.")
        ignored = ignored_fields(request, last={
            "frame-rate setting": request.fps,
            "aspect-ratio setting (it follows the image)": request.aspect_ratio not in (None, "auto"),
            "silent mode (audio is always generated)": not request.generate_audio,
        })
        if ignored:
            notes.append(f"vibedream has no {', '.join(ignored)}: not sent.")
        payload = {"image": image, "prompt": request.prompt, "resolution": resolution, "duration": duration,
                   "seed": seed}
        cost = pricing.estimate(self.name, endpoint, resolution=resolution, duration=duration)
        return Prepared(self.name, endpoint, payload, notes=tuple(notes), cost=cost,
                        max_bytes=tier_cap(RESOLUTIONS[resolution], duration))

    def upload(self, path: Path) -> str:
        raise L2AError(LOCAL_IMAGE)

    def submit(self, prepared: Prepared) -> JobRef:
        url = f"{self.base_url}/api/v1/models/{quote(prepared.endpoint, safe='')}/generate"
        data = self.http.json("POST", url, retry=False, headers=self._headers(), json=prepared.payload)
        job_id = data.get("id")
        if not job_id:
            raise HostedError("vibedream accepted the request but returned no job id; check your vibedream "
                              "dashboard before submitting again (the job may bill).",
                              maybe_accepted=True)
        # costCents is only in the submit answer; the JobRef is what survives until result(), so it travels there.
        return JobRef(self.name, prepared.endpoint, str(job_id), urls={"costCents": data.get("costCents")},
                      submitted_at=time.time())

    def status(self, job: JobRef) -> JobStatus:
        data = self.http.json("GET", self._prediction_url(job), retry=True, headers=self._headers())
        state = STATES.get(data.get("status"), "running")
        message = ""
        if state == "failed":
            message = str(data.get("error") or "vibedream reported the job failed without a reason")
        return JobStatus(state, message=message, raw=data)

    def result(self, job: JobRef) -> JobResult:
        data = self.http.json("GET", self._prediction_url(job), retry=True, headers=self._headers())
        outputs = [url for url in data.get("outputs") or () if isinstance(url, str) and url]
        if data.get("status") != "completed" or not outputs:
            raise HostedError(f"vibedream job {job.job_id} has no video (status {data.get('status')!r}); "
                              "poll it again later or check your vibedream dashboard.")
        raw = dict(data)
        cents = job.urls.get("costCents")
        if isinstance(cents, (int, float)):
            raw["costCents"] = cents
        return JobResult(outputs[0], raw=raw)


def _public_image_url(request: GenerationRequest) -> str:
    """The image as a public http(s) URL; anything else is refused here, before a job exists."""
    if request.image is not None:
        raise L2AError(LOCAL_IMAGE)
    url = request.image_url or ""
    if not url:
        raise L2AError("vibedream image-to-video needs an image: give a public image URL.")
    if not url.lower().startswith(("http://", "https://")):
        raise L2AError(f"vibedream only takes a public image URL (http or https); got {url[:40]!r}: give an image "
                       "URL, or use fal/wavespeed which upload local files")
    return url


def _resolution(request: GenerationRequest, notes: list[str]) -> str:
    short = requested_short_side(request, {"4k": 2160, "2160p": 2160}, "480p, 720p or 1080p")
    if short is None:
        return "720p"
    name = min(RESOLUTIONS, key=lambda key: abs(RESOLUTIONS[key] - short))
    if RESOLUTIONS[name] != short:
        notes.append(f"vibedream renders 480p, 720p or 1080p: {short}p was sent as {name}.")
    if request.width and request.height:
        notes.append("vibedream takes the aspect ratio from the image: width/height only chose the resolution.")
    return name


def _duration(request: GenerationRequest, notes: list[str]) -> int:
    seconds = request.duration
    if seconds is None and request.num_frames:
        seconds = request.num_frames / (request.fps or ASSUMED_FPS)
    if seconds is None:
        return DURATION_RANGE[0]
    low, high = DURATION_RANGE
    snapped = min(high, max(low, round(seconds)))
    if snapped != seconds:
        notes.append(f"vibedream renders {low}-{high} whole seconds: {round(seconds, 2):g} s was sent as {snapped} s.")
    return snapped


