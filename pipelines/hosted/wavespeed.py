"""WaveSpeedAI v3: LTX-2 19B and LTX-2.3 text/image-to-video, and LTX-2.3 extend (spec §4).

The submit is sent once (each accepted prediction bills); polls and result reads go to
`/api/v3/predictions/{id}/result` and are retried; local files are uploaded with the media ticket flow (legacy
multipart where a gateway lacks it). Every answer is checked twice, HTTP status and envelope `code`, because
WaveSpeed reports some failures as HTTP 200 with `code != 200`. WaveSpeed has no cancel: an interrupted job runs on
and bills, so the job runner keeps its id for resume.
"""

from __future__ import annotations

import math
import mimetypes
import re
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..errors import L2AError
from . import pricing
from .base import HostedError
from .mapping import tier_cap
from .types import MODE_NAMES, GenerationRequest, JobRef, JobResult, JobStatus, Prepared, Provider

ENDPOINTS = {
    "wavespeed-ai/ltx-2-19b/text-to-video": "t2v",
    "wavespeed-ai/ltx-2-19b/image-to-video": "i2v",
    "wavespeed-ai/ltx-2.3/text-to-video": "t2v",
    "wavespeed-ai/ltx-2.3/image-to-video": "i2v",
    "wavespeed-ai/ltx-2.3/extend": "extend",
}
DEFAULT_ENDPOINTS = {  # the 19B ones have published prices; LTX-2.3 is the only extend
    "t2v": "wavespeed-ai/ltx-2-19b/text-to-video",
    "i2v": "wavespeed-ai/ltx-2-19b/image-to-video",
    "extend": "wavespeed-ai/ltx-2.3/extend",
}
# The endpoint "auto (match the local model's family)" picks per family and mode.
FAMILY_ENDPOINTS = {
    "2.0": {"t2v": "wavespeed-ai/ltx-2-19b/text-to-video", "i2v": "wavespeed-ai/ltx-2-19b/image-to-video"},
    "2.3": {"t2v": "wavespeed-ai/ltx-2.3/text-to-video", "i2v": "wavespeed-ai/ltx-2.3/image-to-video",
            "extend": "wavespeed-ai/ltx-2.3/extend"},
}
RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}  # tier -> short side
ASPECT_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16}
DURATIONS = {"t2v": (5, 20), "i2v": (5, 20), "extend": (1, 20)}  # whole seconds
DEFAULT_DURATION = 5
SEED_MAX = 2147483647  # seeds run -1..2147483647
STATES = {
    "created": "queued",
    "pending": "queued",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
    "timeout": "failed",
    "deleted": "failed",
    "cancelled": "cancelled",
}
KEY_HINT = "WaveSpeed keys only work after the account's first top-up (check WAVESPEED_API_KEY or the keys file)."
UNREADABLE_SUBMIT = ("The job may have been created and may bill, so it was not resent: check the history in your "
                     "WaveSpeed dashboard before submitting again.")

# Assumptions where spec §4 says [INF]/[UNK], kept in this one place:
# [INF] ltx-2.3 text-to-video takes `aspect_ratio` like the 19B one (its model page lists prompt, resolution,
#       duration, seed; a mirror of the page shows the same two aspect ratios).
# [INF] image-to-video takes its aspect ratio from the image, and extend its size and frame rate from the source
#       video; extend takes no seed (none is documented), so those values are reported as not sent.
# [INF] audio is always generated (no endpoint documents a switch): generate_audio=False is reported as ignored.
# [UNK] the output frame rate: a frame count is turned into seconds at this rate (WaveSpeed takes whole seconds).
ASSUMED_FPS = 24.0
# [UNK] statuses other than those in STATES are read as "queued", as the official SDK keeps polling on them.
# [UNK] a data: URI as `image`/`video` works on some models only, so such inputs are refused: pass the file.
# [UNK] cancel: none exists in the docs or the SDK, so cancel() keeps the base class's False.
FIELDS = {
    "wavespeed-ai/ltx-2-19b/text-to-video": ("prompt", "resolution", "aspect_ratio", "duration", "seed"),
    "wavespeed-ai/ltx-2-19b/image-to-video": ("image", "prompt", "resolution", "duration", "seed"),
    "wavespeed-ai/ltx-2.3/text-to-video": ("prompt", "resolution", "aspect_ratio", "duration", "seed"),
    "wavespeed-ai/ltx-2.3/image-to-video": ("image", "prompt", "resolution", "duration", "seed"),
    "wavespeed-ai/ltx-2.3/extend": ("video", "prompt", "duration"),
}


class WaveSpeedProvider(Provider):
    name = "wavespeed"
    label = "WaveSpeed"
    key_env = "WAVESPEED_API_KEY"
    default_base_url = "https://api.wavespeed.ai"
    modes = ("t2v", "i2v", "extend")
    largest_output = (1920, 1080, 40.0, 30.0, "h264")  # an extension: up to 20 s of source plus 20 s added
    ENDPOINTS = ENDPOINTS
    FAMILY_ENDPOINTS = FAMILY_ENDPOINTS

    # -- mapping (no network) --------------------------------------------------------------------------------------

    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        endpoint = endpoint or DEFAULT_ENDPOINTS[request.mode]
        if ENDPOINTS.get(endpoint) != request.mode:
            fitting = [name for name, mode in ENDPOINTS.items() if mode == request.mode]
            raise L2AError(f"WaveSpeed endpoint {endpoint!r} does not do {MODE_NAMES[request.mode]}; use "
                           f"{' or '.join(fitting)}.")
        if request.end_image is not None or request.end_image_url:
            raise L2AError("WaveSpeed's LTX-2 endpoints take no end image (last frame): use fal for "
                           "first-and-last-frame video.")
        fields = FIELDS[endpoint]
        notes: list[str] = []
        if request.options:  # e.g. fal's switches from a shared backend node; sync/base64 output never suit video
            notes.append(f"WaveSpeed has no extra options (sync mode and base64 output are never used for video), "
                         f"so these were not sent: {', '.join(sorted(request.options))}.")
        payload: dict = {}
        uploads: dict[str, Path] = {}
        for field, path, url in (("image", request.image, request.image_url),
                                 ("video", request.video, request.video_url)):
            if field in fields:
                _media(field, path, url, payload, uploads)
            elif path is not None or url:
                notes.append(f"WaveSpeed {MODE_NAMES[request.mode]} takes no {field}: the {field} was not sent.")
        prompt = (request.prompt or "").strip()
        if prompt:
            payload["prompt"] = request.prompt
        elif request.mode != "extend":
            raise L2AError(f"WaveSpeed {MODE_NAMES[request.mode]} needs a prompt: describe the video.")
        resolution = None
        if "resolution" in fields:
            resolution = payload["resolution"] = _resolution(request, notes)
        if "aspect_ratio" in fields:
            payload["aspect_ratio"] = _aspect_ratio(request, notes)
        if "seed" in fields:
            payload["seed"] = _seed(request.seed, notes)
        payload["duration"] = _duration(request, notes)
        ignored = _ignored(request, fields)
        if ignored:
            notes.append(f"Not offered by WaveSpeed {endpoint}, so not sent: {', '.join(ignored)}.")
        cost = pricing.estimate(self.name, endpoint, resolution=resolution, duration=payload["duration"])
        # An extension's length and size follow the source clip: the provider's largest output is its limit.
        cap = None if request.mode == "extend" else tier_cap(RESOLUTIONS[resolution], payload["duration"])
        return Prepared(self.name, endpoint, payload, uploads, tuple(notes), cost, max_bytes=cap)

    # -- network ---------------------------------------------------------------------------------------------------

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def _api(self, method: str, path: str, *, retry: bool, what: str, **kwargs) -> dict:
        """One authenticated call to the API; returns the envelope's `data` after checking HTTP and `code` (an
        unreadable answer is retried where `retry` allows; to the submit, it may hide an accepted, billing job)."""
        try:
            body = self.http.json(method, f"{self.base_url}{path}", retry=retry, headers=self._headers(), what=what,
                                  **kwargs)
        except HostedError as error:
            if error.status == 401:
                raise HostedError(f"{error} {KEY_HINT}", status=401) from error
            raise
        return _envelope_data(body, what)

    def upload(self, path: Path) -> str:
        """The ticket flow (spec §4.5): a presigned PUT without our key, then the public `download_url`; gateways
        without the ticket endpoint (404/405) get the legacy multipart upload instead."""
        path = Path(path)
        if not path.is_file():
            raise L2AError(f"{path} is not a file: give an existing image or video to upload to WaveSpeed.")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        what = f"WaveSpeed upload of {path.name}"
        try:
            ticket = self._api("POST", "/api/v3/media/uploads", retry=True, what=what,
                               json={"filename": path.name, "size": path.stat().st_size,
                                     "content_type": content_type})
        except HostedError as error:
            if error.status not in (404, 405):
                raise
            data = self._api("POST", "/api/v3/media/upload/binary", retry=True, what=what,
                             files={"file": (path.name, path.read_bytes(), content_type)})
            return _download_url(data, what)
        instruction = ticket.get("upload") if isinstance(ticket.get("upload"), dict) else {}
        target = instruction.get("url")
        if str(instruction.get("method", "")).upper() != "PUT" or not isinstance(target, str):
            raise HostedError(f"{what} failed: WaveSpeed's upload ticket has no PUT URL; try again later.")
        try:
            self.http.check_url(target)  # the user's file goes only to a public http(s) address
        except HostedError as error:
            raise HostedError(f"{what} refused: WaveSpeed's upload URL is not a public http(s) address ({error})") \
                from error
        given = instruction.get("headers") if isinstance(instruction.get("headers"), dict) else {}
        headers = {name: str(value) for name, value in given.items() if name.lower() != "authorization"}
        self.http.request("PUT", target, retry=True, headers=headers, data=path.read_bytes(), what=what)
        return _download_url(ticket, what)

    def submit(self, prepared: Prepared) -> JobRef:
        missing = [field for field in prepared.uploads if field not in prepared.payload]
        if missing:
            raise L2AError(f"WaveSpeed submit: upload the {', '.join(missing)} first (run_job does it).")
        data = self._api("POST", f"/api/v3/{prepared.endpoint}", retry=False, what="WaveSpeed submit",
                         json=prepared.payload)
        job_id = data.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise HostedError(f"WaveSpeed submit answered without a prediction id. {UNREADABLE_SUBMIT}",
                              maybe_accepted=True)
        urls = data.get("urls") if isinstance(data.get("urls"), dict) else {}
        kept = {"get": urls["get"]} if isinstance(urls.get("get"), str) else {}
        return JobRef(self.name, prepared.endpoint, job_id, urls=kept, submitted_at=time.time())

    def _prediction(self, job: JobRef) -> dict:
        return self._api("GET", self._result_path(job), retry=True, what=f"WaveSpeed poll of job {job.job_id}")

    def _result_path(self, job: JobRef) -> str:
        """`data.urls.get` when it is on our own API host (it carries our key), else the documented path."""
        given = job.urls.get("get")
        if isinstance(given, str):
            mine, theirs = urlsplit(self.base_url), urlsplit(given)
            if (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc) and theirs.path.startswith(
                    f"{mine.path}/api/"):
                return theirs.path[len(mine.path):] + (f"?{theirs.query}" if theirs.query else "")
        return f"/api/v3/predictions/{quote(job.job_id, safe='')}/result"

    def status(self, job: JobRef) -> JobStatus:
        data = self._prediction(job)
        raw_state = str(data.get("status") or "").lower()
        state = STATES.get(raw_state, "queued")
        message = "" if raw_state in STATES else f"WaveSpeed status {raw_state or 'missing'!r}"
        if state in ("failed", "cancelled"):
            reason = str(data.get("error") or "").strip() or "WaveSpeed gave no reason"
            refund = "; WaveSpeed refunds failed jobs within about 3 hours" if raw_state == "failed" else ""
            message = f"{reason} (WaveSpeed status {raw_state}{refund})"
        return JobStatus(state, message=message, raw=data)

    def result(self, job: JobRef) -> JobResult:
        data = self._prediction(job)
        outputs = [url for url in data.get("outputs") or () if isinstance(url, str) and url]
        if data.get("status") != "completed" or not outputs:
            raise HostedError(f"WaveSpeed job {job.job_id} has no video (status {data.get('status')!r}, "
                              f"{len(outputs)} outputs); poll it again later or check your WaveSpeed dashboard.")
        return JobResult(outputs[0], raw=data)


# -- helpers -------------------------------------------------------------------------------------------------------


def _envelope_data(body: dict, what: str) -> dict:
    """`data` of a `{code, message, data}` answer; `code != 200` (sent with HTTP 200 too) is a HostedError."""
    code = body.get("code", 200)
    if code != 200:
        message = str(body.get("message") or body.get("error") or "no message").strip()
        hint = f" {KEY_HINT}" if code == 401 else " Check the values, or try again later."
        raise HostedError(f"{what} failed: WaveSpeed answered code {code}: {message}.{hint}",
                          status=code if isinstance(code, int) else None)
    data = body.get("data")
    if not isinstance(data, dict):
        raise HostedError(f"{what} failed: WaveSpeed's answer has no data object; try again later.")
    return data


def _download_url(data: dict, what: str) -> str:
    url = data.get("download_url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise HostedError(f"{what} failed: WaveSpeed returned no download_url; try again later.")
    return url


def _media(field: str, path: Path | None, url: str | None, payload: dict, uploads: dict) -> None:
    """A local file goes to `uploads` (sent just before submit), a public URL straight into the payload."""
    if path is not None:
        if not Path(path).is_file():
            raise L2AError(f"The {field} {path} does not exist: give an existing file or an http(s) URL.")
        uploads[field] = Path(path)
    elif url:
        if not url.lower().startswith(("http://", "https://")):
            raise L2AError(f"WaveSpeed takes the {field} as a file or an http(s) URL; got {url[:40]!r}: pass the "
                           "file instead (it is uploaded).")
        payload[field] = url
    else:
        raise L2AError("WaveSpeed video extension needs a video." if field == "video"
                       else "WaveSpeed image-to-video needs an image.")


def _short_side(text: str) -> int:
    """Pixels of the short side from '720p', '2k'/'4k' or 'WxH'."""
    text = text.strip().lower()
    named = {"2k": 1440, "4k": 2160, "uhd": 2160, "fhd": 1080, "hd": 720}
    if text in named:
        return named[text]
    if re.fullmatch(r"\d+p", text):
        return int(text[:-1])
    size = re.fullmatch(r"(\d+)\s*[x×*]\s*(\d+)", text)
    if size:
        return min(int(size.group(1)), int(size.group(2)))
    raise L2AError(f"resolution = {text!r} is unknown: use 480p, 720p or 1080p (or a width x height).")


def _resolution(request: GenerationRequest, notes: list[str]) -> str:
    """The nearest of 480p/720p/1080p to the asked resolution tier, or to the short side of width x height."""
    if request.resolution:
        asked, short = request.resolution, _short_side(request.resolution)
    elif request.width and request.height:
        asked, short = f"{request.width}x{request.height}", min(request.width, request.height)
    else:
        return "720p"
    tier = min(RESOLUTIONS, key=lambda name: (abs(RESOLUTIONS[name] - short), RESOLUTIONS[name]))
    if asked.strip().lower() != tier:
        notes.append(f"WaveSpeed renders the tiers 480p, 720p and 1080p, not exact sizes: {asked} was sent as "
                     f"{tier}.")
    return tier


def _aspect_ratio(request: GenerationRequest, notes: list[str]) -> str:
    """16:9 or 9:16, the nearer to the asked ratio (or to width:height); 16:9 when nothing is asked."""
    asked = request.aspect_ratio if request.aspect_ratio not in (None, "", "auto") else None
    if asked is None and request.width and request.height:
        asked = f"{request.width}:{request.height}"
    if asked is None:
        return "16:9"
    parts = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*", asked)
    if not parts or not float(parts.group(1)) or not float(parts.group(2)):
        raise L2AError(f"aspect_ratio = {asked!r} is not a ratio: use 16:9 or 9:16.")
    ratio = float(parts.group(1)) / float(parts.group(2))
    name = min(ASPECT_RATIOS, key=lambda key: abs(math.log(ASPECT_RATIOS[key] / ratio)))
    if not math.isclose(ratio, ASPECT_RATIOS[name], rel_tol=1e-3):
        notes.append(f"WaveSpeed text-to-video offers 16:9 and 9:16: {asked} was sent as {name}.")
    return name


def _seed(seed: int, notes: list[str]) -> int:
    if -1 <= seed <= SEED_MAX:
        return seed
    folded = seed % (SEED_MAX + 1)
    notes.append(f"WaveSpeed takes seeds -1..{SEED_MAX}: seed {seed} was sent as {folded}.")
    return folded


def _duration(request: GenerationRequest, notes: list[str]) -> int:
    """Whole seconds in the endpoint's range, from `duration` or from `num_frames` / fps."""
    low, high = DURATIONS[request.mode]
    if request.duration is not None:
        seconds, asked = float(request.duration), f"{request.duration:g} s"
    elif request.num_frames:
        fps = request.fps or ASSUMED_FPS
        seconds = request.num_frames / fps
        asked = f"{request.num_frames} frames at {fps:g} fps ({seconds:.2f} s)"
    else:
        return DEFAULT_DURATION
    snapped = min(high, max(low, math.floor(seconds + 0.5)))
    if snapped != seconds:
        notes.append(f"WaveSpeed renders {low}-{high} whole seconds: {asked} was sent as {snapped} s.")
    return snapped


def _ignored(request: GenerationRequest, fields: tuple[str, ...]) -> list[str]:
    """Names of the set parameters this endpoint has no field for."""
    checks = {
        "negative prompt": request.negative_prompt,
        "guidance scale": request.guidance_scale is not None,
        "step count": request.num_inference_steps is not None,
        "camera motion": request.camera != "none",
        "image strength": request.image_strength != 1.0 and "image" in fields,
        "frame rate (WaveSpeed picks it)": request.fps is not None,
        "multiscale switch": request.multiscale is not None,
        "acceleration setting": request.acceleration,
        "prompt expansion switch": request.prompt_expansion is not None,
        "silent mode (audio is always generated)": not request.generate_audio,
        "aspect ratio (it follows the input)": "aspect_ratio" not in fields
        and request.aspect_ratio not in (None, "", "auto"),
        "size (it follows the source video)": "resolution" not in fields
        and bool(request.resolution or request.width or request.height),
        "seed (extend takes none)": "seed" not in fields,
    }
    return [name for name, present in checks.items() if present]
