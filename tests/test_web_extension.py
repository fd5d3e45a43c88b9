"""The web extension (web/js): the same rules as the Python, from the same data, and node's own tests in this suite.

- web/js/geometry.js and the Python size rules agree on web/tests/geometry_cases.json;
- web/js/pricing.js gives the Python estimate (usd, formula text, errors) on the shared cases and on every entry of
  the price table, and the cost badge's job matches what each provider's prepare() prices (where it can);
- GET /ltx2_anywhere/prices serves pipelines/hosted/prices.json plus the endpoint `auto` picks, from the provider
  classes; outside ComfyUI registering it does nothing;
- every .js under web/ is a harmless module (ComfyUI loads each one as an extension);
- node's test runner passes on web/tests/*.test.mjs (skipped without node; .ci/run installs it).
"""

import asyncio
import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.pipelines import geometry, sizing
from ltx2_anywhere.pipelines.backend import PROVIDER_CLASSES, HostedBackend, provider_class
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted import pricing
from ltx2_anywhere.pipelines.hosted.keys import KEY_ENVS
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
GEOMETRY = json.loads((WEB / "tests" / "geometry_cases.json").read_text(encoding="utf-8"))
PRICE_CASES = json.loads((ROOT / "tests" / "pricing_cases.json").read_text(encoding="utf-8"))["cases"]
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")


def run_node(script: str, stdin: object) -> object:
    """Run an ES module script with `stdin` as JSON on standard input; its last line of output, parsed."""
    done = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(stdin), cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def module_url(relative: str) -> str:
    return json.dumps((ROOT / relative).as_uri())


# ---- geometry -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", GEOMETRY["snap_side"], ids=str)
def test_snap_side_cases_are_the_python_rule(case):
    assert sizing.round_side(case["value"], case["multiple"]) == case["expect"]


@pytest.mark.parametrize("case", GEOMETRY["snap_frames"], ids=str)
def test_snap_frames_cases_are_the_python_rule(case):
    assert geometry.snap_frames(case["frames"]) == case["expect"]


@pytest.mark.parametrize("case", GEOMETRY["frames_for_seconds"], ids=str)
def test_frames_for_seconds_cases_are_the_python_rule(case):
    assert sizing.resolve_frames(case["seconds"], 0, case["fps"])[0] == case["expect"]


@pytest.mark.parametrize("case", GEOMETRY["seconds_for_frames"], ids=str)
def test_seconds_for_frames_cases_are_the_python_rule(case):
    assert geometry.Geometry(64, 64, case["frames"], case["fps"]).duration == pytest.approx(case["expect"], abs=1e-12)


@pytest.mark.parametrize("case", GEOMETRY["resolve_size"], ids=str)
def test_resolve_size_cases_are_the_python_rule(case):
    image = tuple(case["image_size"]) if "image_size" in case else None
    width, height, _note = sizing.resolve_size(case["resolution"], case["aspect_ratio"], case.get("width"),
                                               case.get("height"), image, case["multiple"])
    assert [width, height] == case["expect"]


def test_geometry_constants_match():
    text = (WEB / "js" / "geometry.js").read_text(encoding="utf-8")
    assert f"SPATIAL = {geometry.SPATIAL};" in text and f"TEMPORAL = {geometry.TEMPORAL};" in text
    assert f"MULTISCALE_MULTIPLE = {sizing.MULTISCALE_MULTIPLE};" in text
    tiers = json.loads(re.search(r"SIZE_TIERS = (\{[^}]*\})", text).group(1))
    assert tiers == sizing.TIERS


# ---- the price route ------------------------------------------------------------------------------------------

def test_price_route_is_a_noop_outside_comfyui(monkeypatch):
    monkeypatch.setitem(sys.modules, "server", None)  # importing it fails, as outside ComfyUI
    assert _comfy.register_price_route() is False


def _default_endpoint_of(provider: str, mode: str) -> str:
    """What the provider itself picks for endpoint=None (no network: prepare only)."""
    request = GenerationRequest(mode=mode, prompt="a cat", seed=1,
                                image_url="https://example.com/a.png" if mode == "i2v" else None,
                                video_url="https://example.com/a.mp4" if mode in ("extend", "retake") else None,
                                audio_url="https://example.com/a.mp3" if mode == "a2v" else None,
                                window_start=0.0, window_end=2.0)
    return HostedBackend(provider=provider).prepare(request).endpoint


@pytest.fixture
def served_prices(monkeypatch):
    """GET /ltx2_anywhere/prices registered on a stand-in PromptServer, and its answer."""
    handlers = {}

    class Routes:
        def get(self, path):
            def register(handler):
                handlers[("GET", path)] = handler
                return handler
            return register

    server = types.ModuleType("server")
    server.PromptServer = types.SimpleNamespace(instance=types.SimpleNamespace(routes=Routes()))
    aiohttp = types.ModuleType("aiohttp")
    aiohttp.web = types.SimpleNamespace(json_response=lambda data, status=200: {"status": status, "json": data})
    monkeypatch.setitem(sys.modules, "server", server)
    monkeypatch.setitem(sys.modules, "aiohttp", aiohttp)
    assert _comfy.register_price_route() is True
    answer = asyncio.run(handlers[("GET", "/ltx2_anywhere/prices")](None))
    assert answer["status"] == 200
    return json.loads(json.dumps(answer["json"]))  # what the browser gets


def test_price_route_serves_the_one_table(served_prices):
    table = pricing.price_table()
    assert {key: served_prices[key] for key in table} == table
    assert served_prices["key_envs"] == KEY_ENVS


def test_price_route_defaults_are_what_each_provider_picks(served_prices):
    defaults = served_prices["defaults"]
    assert set(defaults) == set(PROVIDER_CLASSES)
    for provider, modes in defaults.items():
        assert set(modes) == set(provider_class(provider).modes), provider
        for mode, endpoint in modes.items():
            assert endpoint == _default_endpoint_of(provider, mode), (provider, mode)


# ---- the web files are harmless modules -----------------------------------------------------------------------

JS_FILES = sorted((WEB / "js").glob("*.js"))
ALLOWED_TOP_LEVEL = re.compile(r"(import |export (const|function|class|async function) |const |let |function |"
                               r"async function |class |//|/\*| \*|[})\]])")


def test_only_extension_modules_are_js_files_under_web():
    assert {path.name for path in JS_FILES} >= {"l2a_extension.js", "pricing.js", "geometry.js"}
    for path in WEB.rglob("*.js"):  # ComfyUI imports every one of these in the browser
        assert path.parent == WEB / "js", f"{path}: only extension modules may end in .js under web/"
        assert ".test." not in path.name and "test" not in path.stem.lower(), path
    assert list((WEB / "tests").glob("*.test.mjs")), "the JS tests live in web/tests/*.test.mjs"


# An empty built-in collection is the one constructor call allowed at the top level: it runs no code of its own.
EMPTY_COLLECTION = re.compile(r"(export )?(const|let) \w+ = new (Set|Map|WeakSet|WeakMap)\(\);")


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_js_modules_have_no_top_level_side_effects(path):
    text = path.read_text(encoding="utf-8")
    statements = [line for line in text.splitlines() if line and not line[0].isspace()]
    for line in statements:
        if line.startswith("app.registerExtension(") and path.name == "l2a_extension.js":
            continue
        assert ALLOWED_TOP_LEVEL.match(line), f"{path.name}: top-level statement {line!r}"
        code = re.sub(r"\s//.*", "", line)
        if re.match(r"(export )?(const|let) ", code) and not EMPTY_COLLECTION.fullmatch(code):
            assert "(" not in code or "=>" in code, f"{path.name}: top-level call in {line!r}"
        assert not line.startswith("await"), line
    registrations = text.count("registerExtension(")
    assert registrations == (1 if path.name == "l2a_extension.js" else 0), path.name
    if path.name != "l2a_extension.js":  # pure modules: no DOM, no network, no ComfyUI
        assert not re.search(r"\b(document|window|fetch|localStorage|console)\b|scripts/", text), path.name
        assert all(re.fullmatch(r'import \{[^}]*\} from "\./\w+\.js";', statement) or not statement.startswith("import")
                   for statement in re.findall(r"^import[^;]*;", text, flags=re.M)), path.name


def test_extension_imports_comfyui_from_three_levels_up():
    text = (WEB / "js" / "l2a_extension.js").read_text(encoding="utf-8")
    assert 'from "../../../scripts/app.js"' in text  # /extensions/<pack>/js/ -> /scripts/app.js
    assert "ltx2_anywhere.ui" in text and "/ltx2_anywhere/prices" in text and "/ltx2_anywhere/keys" in text
    assert "prices.json" not in re.sub(r"//.*", "", text), "the badge reads the table through the route"


# ---- pricing.js against pricing.py ----------------------------------------------------------------------------

PORT_SCRIPT = """
import { readFileSync } from "node:fs";
const { ALIASES, EVIDENCE, TIERS, estimate, generateJob } = await import(%s);
const table = JSON.parse(readFileSync(new URL(%s), "utf8"));
const { jobs, badges } = JSON.parse(readFileSync(0, "utf8"));
const cost = ([provider, endpoint, args]) => {
  try { return estimate(table, provider, endpoint, args); } catch (error) { return { error: error.message }; }
};
const badge = ([provider, endpoint, values, mode]) => cost([provider, endpoint, generateJob(values, mode).args]);
console.log(JSON.stringify({ costs: jobs.map(cost), badges: badges.map(badge), ALIASES, EVIDENCE, TIERS }));
"""

ARG_SETS = [{}, {"width": 1280, "height": 704, "num_frames": 121}, {"resolution": "1080p", "duration": 6},
            {"width": 1920, "height": 1088, "duration": 7.5, "fps": 24}, {"resolution": "4k", "duration": 10},
            {"resolution": "1920x1080", "duration": 3}, {"width": 832, "height": 480, "duration": 5, "fps": 25},
            {"resolution": "2K", "duration": 4.25}, {"resolution": "720p", "width": 1000, "height": 1000},
            {"resolution": "huge", "duration": 6}, {"width": 4096, "height": 2304, "num_frames": 481}]


def _price_jobs() -> list:
    jobs = [(case["provider"], case["endpoint"], case["args"]) for case in PRICE_CASES]
    for provider, data in pricing.price_table()["providers"].items():
        for key in data["endpoints"]:
            for alternative in key.split("|"):
                jobs += [(provider, alternative.replace("*", "x"), args) for args in ARG_SETS]
    return jobs + [("fal", "not/an/endpoint", {}), ("nobody", "x", {})]


def _python_cost(provider, endpoint, args) -> dict:
    try:
        cost = pricing.estimate(provider, endpoint, **args)
    except L2AError as error:
        return {"error": str(error)}
    return {"usd": cost.usd, "formula": cost.formula, "unknown": pricing.is_unknown(cost)}


GENERATE_GRID = [
    {"resolution": resolution, "aspect_ratio": aspect, "width": 1024, "height": 576, "duration_seconds": seconds,
     "frames": frames, "fps": fps, "generate_audio": True}
    for resolution in ("480p", "720p", "1080p", "custom") for aspect in ("16:9", "9:16", "1:1")
    for seconds, frames in ((5, 121), (8, 121), (10, 121), (0, 121), (0, 241)) for fps in (24, 25)
]


def _provider_cost(provider: str, values: dict, mode: str) -> tuple[str, dict]:
    """The endpoint and cost LTX-2 Generate's request gets from the provider's own prepare()."""
    custom = values["resolution"] == "custom"
    request = GenerationRequest(
        mode=mode, prompt="a cat", seed=1, image_url="https://example.com/a.png" if mode == "i2v" else None,
        width=values["width"] if custom else None, height=values["height"] if custom else None,
        resolution=None if custom else values["resolution"], aspect_ratio=values["aspect_ratio"],
        duration=values["duration_seconds"] or None,
        num_frames=None if values["duration_seconds"] else values["frames"], fps=values["fps"])
    prepared = HostedBackend(provider=provider).prepare(request)
    return prepared.endpoint, {"usd": prepared.cost.usd, "unknown": pricing.is_unknown(prepared.cost)}


# The LTX API renders only 1080p and up, in 6/8/10... s steps: its badge is exact there and says "price unknown"
# for smaller tiers the API would render at 1080p (the run's report then has the real estimate).
EXACT_BADGE = {"fal": lambda v: True, "wavespeed": lambda v: True, "vibedream": lambda v: True,
               "bytecompute": lambda v: True,
               "ltx": lambda v: v["resolution"] == "1080p" and v["duration_seconds"] in (8, 10)}


def _badges() -> list:
    badges = []
    for provider in PROVIDER_CLASSES:
        for mode in ("t2v", "i2v"):
            if mode not in provider_class(provider).modes:
                continue
            for values in GENERATE_GRID:
                if EXACT_BADGE[provider](values):
                    endpoint, cost = _provider_cost(provider, values, mode)
                    badges.append(((provider, endpoint, values, mode), cost))
    return badges


@pytest.fixture(scope="module")
def port():
    jobs = _price_jobs()
    badges = _badges()
    script = PORT_SCRIPT % (module_url("web/js/pricing.js"), module_url("pipelines/hosted/prices.json"))
    answer = run_node(script, {"jobs": jobs, "badges": [job for job, _cost in badges]})
    return jobs, answer, badges


@needs_node
def test_js_estimate_equals_python_on_every_entry(port):
    jobs, answer, _badges = port
    assert len(jobs) > 400
    for job, js in zip(jobs, answer["costs"], strict=True):
        python = _python_cost(*job)
        if "usd" in python:
            assert js.get("usd") == pytest.approx(python["usd"], abs=1e-9), (job, js, python)
            js = {**js, "usd": python["usd"]}
        assert js == python, job


@needs_node
def test_js_constants_equal_python():
    answer = run_node(f"const m = await import({module_url('web/js/pricing.js')}); "
                      "console.log(JSON.stringify({T: m.TIERS, A: m.ALIASES, E: m.EVIDENCE, U: m.UNKNOWN}));", {})
    assert answer == {"T": list(pricing.TIERS), "A": pricing._ALIASES, "E": pricing._EVIDENCE, "U": pricing.UNKNOWN}


@needs_node
def test_badge_job_prices_as_the_provider_does(port):
    """The badge's cost for LTX-2 Generate's widgets (auto endpoint) is what the provider's prepare() estimates."""
    _jobs, answer, badges = port
    assert len(badges) > 300
    for (job, python), js in zip(badges, answer["badges"], strict=True):
        assert "error" not in js, (job, js)
        assert (js["usd"], js["unknown"]) == (pytest.approx(python["usd"], abs=1e-9), python["unknown"]), (job, js)


# ---- node's own tests -----------------------------------------------------------------------------------------

@needs_node
def test_node_test_runner_passes():
    # The files, not the folder: node 21+ reads `--test web/tests/` as a glob matching the folder itself.
    files = sorted(str(path.relative_to(ROOT)) for path in (WEB / "tests").glob("*.test.mjs"))
    done = subprocess.run([NODE, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert re.search(r"^# fail 0$", done.stdout, flags=re.M) and not re.search(r"^# pass 0$", done.stdout, flags=re.M)
