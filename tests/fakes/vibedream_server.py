"""A local stand-in for vibedream's API (spec hosted-apis.md §5, §10.4), on 127.0.0.1 only.

vibedream: submit `POST /api/v1/models/ltx-2-19b/generate` answering camelCase `id`, `status: "processing"`,
`statusUrl`, `estimatedTime`, `costCents`, `createdAt`; poll `GET /api/v1/predictions/{id}` going `processing`
(`outputs: null`) → `completed` (`outputs` = one mp4 URL on an "assets" path, `completedAt`) | `failed` (the
content-moderation message). The image must be a public http(s) URL, the seed -1..999999, the resolution
480p/720p/1080p, the duration 5..20; unknown fields are refused (stricter than vibedream is known to be, so a
wrong field name fails here). Error bodies and 401 wording are [UNK]: `{"error": "..."}` is assumed.

Failure modes are chosen per job by a prompt keyword `[vd:<scenario>]`, the submit header `X-Fake-Scenario`, or
`fake.scenario` (the default for jobs without either); see SCENARIOS and fakes/server.py.
"""

from __future__ import annotations

import math
import re
import time

from fakes.server import COMMON_SCENARIOS, FakeApi, Handler, Recorded, iso_now

RESOLUTIONS = {"480p": 0.75, "720p": 1.0, "1080p": 1.5}  # WaveSpeed's multipliers, which vibedream resells [INF]
FIELDS = {"image", "prompt", "resolution", "duration", "seed"}


class VibedreamServer(FakeApi):
    tag = "vd"
    SCENARIOS = {**COMMON_SCENARIOS, "fail": "ends failed with vibedream's content-moderation message"}
    SUBMIT = ("POST", r"/api/v1/models/.+/generate")
    POLL = ("GET", r"/api/v1/predictions/.+")
    DOWNLOAD = ("GET", r"/assets/.+")

    def routes(self):
        return [
            ("POST", r"/api/v1/models/([\w.-]+)/generate", self._submit),
            ("GET", r"/api/v1/predictions/([\w-]+)", self._poll),
            ("GET", r"/assets/outputs/([\w-]+)/(\d+)-0\.mp4", self._asset),
        ]

    def _submit(self, h: Handler, rec: Recorded, model: str) -> None:
        if not h.authorized({"error": "Invalid API key"}):
            return
        if model != "ltx-2-19b":
            h.send_json(404, {"error": f"Model {model} not found"})
            return
        body = rec.json
        problem = _problem(body)
        if problem:
            h.send_json(400, {"error": problem})
            return
        scenario = self.pick_scenario(h, body["prompt"])
        if scenario is None:
            return
        if scenario == "submit-500":
            h.send_json(500, {"error": "Internal server error"})
            return
        job = self.new_job(model, body, scenario)
        resolution, duration = body.get("resolution", "720p"), body.get("duration", 5)
        job.extra["costCents"] = math.ceil(round(12 * RESOLUTIONS[resolution] * duration / 5, 6))
        if self.withhold_answer(h, job):
            return
        h.send_json(200, {"id": job.id, "status": "processing", "statusUrl": f"{self.url}/api/v1/predictions/{job.id}",
                          "estimatedTime": "5-20s", "costCents": job.extra["costCents"],
                          "createdAt": job.created_at})

    def _poll(self, h: Handler, rec: Recorded, job_id: str) -> None:
        if not h.authorized({"error": "Invalid API key"}):
            return
        job = self.find_job(job_id)
        if job is None:
            h.send_json(404, {"error": "Prediction not found"})
            return
        if self.poll_misbehaves(h, job, {"error": "Too many requests"}):
            return
        phase = self.phase(job)
        data = {"id": job.id, "modelId": "ltx-2-19b", "modelName": "LTX-2 19B", "status": "processing",
                "outputs": None, "error": None, "createdAt": job.created_at, "completedAt": None}
        if phase == "done" and job.scenario == "fail":
            data.update(status="failed", completedAt=iso_now(),
                        error="Your request was flagged by content moderation. Please modify your prompt.")
        elif phase == "done":
            millis = int(time.time() * 1000)
            data.update(status="completed", completedAt=iso_now(),
                        outputs=[f"{self.url}/assets/outputs/{job.id}/{millis}-0.mp4"])
        h.send_json(200, data)

    def _asset(self, h: Handler, rec: Recorded, job_id: str, _millis: str) -> None:
        self.serve_video(h, self.find_job(job_id))


def _problem(body) -> str | None:
    """The first problem with a submit body, as vibedream-style 400 text [UNK wording]; None when valid."""
    if not isinstance(body, dict):
        return "Request body must be JSON"
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}"
    for name in ("image", "prompt"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return f"{name} is required"
    if not re.match(r"https?://", body["image"]):
        return "image must be a public URL"
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        return f"resolution must be one of {', '.join(RESOLUTIONS)}"
    duration = body.get("duration", 5)
    if not isinstance(duration, (int, float)) or duration != int(duration) or not 5 <= duration <= 20:
        return "duration must be a whole number from 5 to 20"
    seed = body.get("seed", -1)
    if type(seed) is not int or not -1 <= seed <= 999999:
        return "seed must be an integer from -1 to 999999"
    return None
