"""Every example workflow runs: validated as shipped, converted as the frontend converts it, and executed on the tiny
model (core loaders/savers replaced by ``core_standins``), with hosted providers played by the fake servers.

Sizes, lengths and steps are shrunk by widget overrides so each run takes seconds on a CPU; the hosted-only
workflows run exactly as shipped, so their settings meet the fakes' request checks.
"""

import copy
import json
import math
import shutil
import socket
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import workflow_runner as runner
import workflow_validator as wv
from core_standins import CreateVideo, Folders, GetVideoComponents, StandInDrift, build
from fakes.fal_server import FalServer
from fakes.ltx_server import LtxServer
from fakes.wavespeed_server import WaveSpeedServer
from PIL import Image

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.pipelines.media import probe_video, write_video

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = sorted((ROOT / "workflows").glob("*.json"))
FAL_KEY = "fal-KEYID-1a2b3c:SECRET-workflows-1357"
WS_KEY = "ws-KEY-workflows-2468"
LTX_KEY = "ltx-KEY-workflows-8642"
FAST_POLL = (0.02, 0.05)
VIDEO_SAVERS = frozenset({"SaveVideo", "L2A_SaveVideo"})

SMALL = {
    "L2A_Sampler": {"width": 96, "height": 64, "frames": 9, "steps": 2},
    "L2A_VideoSize": {"resolution": "custom", "width": 96, "height": 64, "duration_seconds": 0.5},
    "L2A_AudioToVideo": {"width": 96, "height": 64, "steps": 2},
    "L2A_Extend": {"add_frames": 8, "overlap_frames": 9, "steps": 2},
    "L2A_Retake": {"start_seconds": 0.25, "end_seconds": 0.5, "steps": 2},
    "L2A_Generate": {"resolution": "custom", "width": 96, "height": 64, "duration_seconds": 0.0, "frames": 9,
                     "steps": 2},
    "L2A_LocalBackend": {"allow_cpu": True},
}
LOCAL_25 = "ltx2_local_25_with_hosted_25_fallback"
OVERRIDES = {
    "ltx2_multiscale": {**SMALL, "L2A_Sampler": {**SMALL["L2A_Sampler"], "width": 128, "height": 128}},
    # a distilled model samples its own 8 + 3 sigmas: steps stay 0
    "ltx25_distilled_multiscale": {**SMALL, "L2A_Sampler": {**SMALL["L2A_Sampler"], "width": 128, "height": 128,
                                                            "steps": 0}},
    # its own 720p / auto aspect, smaller: auto without an image reads 16:9 locally, as hosted and the badge read it
    "ltx2_local_with_hosted_fallback": {**SMALL, "L2A_Generate": {"resolution": "480p", "duration_seconds": 0.0,
                                                                  "frames": 9, "steps": 1}},
    "ltx2_hosted_fal_image_to_video": {},
    "ltx2_hosted_wavespeed_extend": {},
    "ltx2_hosted_ltx_audio_to_video": {},
    "ltx2_hosted_ltx_retake": {},
    # a distilled model samples its own 8 sigmas: steps stay 0
    LOCAL_25: {**SMALL, "L2A_Generate": {**SMALL["L2A_Generate"], "steps": 0}},
}
FALLBACK = "ltx2_local_with_hosted_fallback"
NO_GPU = {**SMALL, "L2A_LocalBackend": {"allow_cpu": False}}

CASES = [pytest.param(path, OVERRIDES.get(path.stem, SMALL), id=path.stem) for path in WORKFLOW_FILES]
CASES += [pytest.param(ROOT / "workflows" / f"{stem}.json", overrides, id=f"{stem}-no-gpu",
                       marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"))
          for stem, overrides in ((FALLBACK, NO_GPU), (LOCAL_25, {"L2A_LocalBackend": {"allow_cpu": False}}))]


def test_the_workflow_folder_has_every_example_with_a_thumbnail():
    """The template browser requests <stem>.jpg beside each workflow."""
    assert len(WORKFLOW_FILES) >= 11
    for path in WORKFLOW_FILES:
        thumbnail = path.with_suffix(".jpg")
        assert thumbnail.is_file() and thumbnail.stat().st_size <= 30_000, thumbnail.name
        with Image.open(thumbnail) as image:
            assert image.format == "JPEG"


def test_a_stand_in_that_drifts_from_core_is_refused(tmp_path):
    core = wv.load_core_defs()
    renamed = copy.deepcopy(core["CreateVideo"])
    renamed["input_order"]["optional"] = ["sound"]
    with pytest.raises(StandInDrift, match="optional inputs"):
        CreateVideo(renamed, Folders(tmp_path, tmp_path))
    fewer_outputs = {"input_order": {"required": ["video"]}, "output": ["IMAGE", "AUDIO"]}
    with pytest.raises(StandInDrift, match="outputs"):
        GetVideoComponents(fewer_outputs, Folders(tmp_path, tmp_path))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """The hosted nodes reach the fakes only: any other address fails the test."""
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"connection to {address} attempted")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory):
    """ComfyUI's input folder with the files the workflows name."""
    folder = tmp_path_factory.mktemp("input")
    shutil.copy(ROOT / "assets" / "sample.png", folder / "ltx2_sample.png")
    t = torch.arange(25)[:, None, None, None] / 25
    frames = (torch.linspace(0, 1, 96)[None, None, :, None] + t).remainder(1.0).expand(25, 64, 96, 3)
    seconds = torch.arange(round(24000 * 25 / 24)) / 24000
    write_video(folder / "ltx2_clip.mp4", frames, 24.0, audio=0.3 * torch.sin(2 * math.pi * 330 * seconds)[None],
                sample_rate=24000)
    t = torch.arange(97)[:, None, None, None] / 97
    take = (torch.linspace(0, 1, 96)[None, None, :, None] + t).remainder(1.0).expand(97, 64, 96, 3)
    seconds = torch.arange(round(24000 * 97 / 24)) / 24000
    write_video(folder / "ltx2_take.mp4", take, 24.0, audio=0.3 * torch.sin(2 * math.pi * 220 * seconds)[None],
                sample_rate=24000)  # 4 s: the LTX API retakes clips of 73 frames or more
    depth = torch.linspace(0, 1, 64)[None, :, None, None].expand(25, 64, 96, 3)
    write_video(folder / "ltx2_depth_maps.mp4", depth, 24.0)
    long_frames = (torch.linspace(0, 1, 96)[None, None, :, None] + torch.arange(49)[:, None, None, None] / 49)
    seconds = torch.arange(round(24000 * 49 / 24)) / 24000
    write_video(folder / "ltx2_to_refine.mp4", long_frames.remainder(1.0).expand(49, 64, 96, 3), 24.0,
                audio=0.3 * torch.sin(2 * math.pi * 220 * seconds)[None], sample_rate=24000)
    rate = 44100
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(2.5 * rate)) / rate)
    with wave.open(str(folder / "ltx2_song.wav"), "wb") as song:
        song.setnchannels(2)
        song.setsampwidth(2)
        song.setframerate(rate)
        song.writeframes((np.repeat(tone[:, None], 2, axis=1) * 32767).astype("<i2").tobytes())
    return folder


@pytest.fixture
def env(tiny_models_20_25, input_dir, tmp_path, monkeypatch):
    """The tiny models folder (2.0 and 2.5), fresh output/temp/user folders, provider keys and the two fake
    providers."""
    for key in ("models_dir", "output_dir", "user_dir", "status"):
        monkeypatch.setitem(_comfy._settings, key, _comfy._settings[key])
    status = []
    _comfy.configure(models_dir=tiny_models_20_25, output_dir=tmp_path / "output", user_dir=tmp_path / "user",
                     status=status.append)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("WAVESPEED_API_KEY", WS_KEY)
    monkeypatch.setenv("LTX_API_KEY", LTX_KEY)
    defs = wv.all_defs()  # after configure: the pack's file lists come from the tiny models folder
    folders = Folders(input=input_dir, temp=tmp_path / "temp")
    with FalServer(tmp_path / "fal", key=FAL_KEY) as fal, WaveSpeedServer(tmp_path / "ws", key=WS_KEY) as ws, \
            LtxServer(LTX_KEY) as ltx:
        urls = {"fal": fal.url, "wavespeed": ws.url, "ltx": ltx.url}

        def point_at_fake(result, _inputs):
            (backend,) = result
            return (replace(backend, base_url=urls[backend.provider], allow_loopback=True, poll=FAST_POLL),)

        yield {"defs": defs, "standins": build(wv.load_core_defs(), folders), "folders": folders,
               "output": tmp_path / "output", "fal": fal, "ws": ws, "ltx": ltx, "status": status,
               "hooks": {"L2A_HostedBackend": point_at_fake}}
        assert fal.errors == [] and ws.errors == [] and ltx.errors == []


def _saved_files(run, env) -> dict[str, list[Path]]:
    """The files each output node reports in its ui, by node id."""
    roots = {"output": env["output"], "temp": env["folders"].temp}
    saved = {}
    for node_id, ui in run.ui.items():
        entries = [item for value in ui.values() if isinstance(value, list) for item in value
                   if isinstance(item, dict) and "filename" in item]
        saved[node_id] = [roots[item["type"]] / item.get("subfolder", "") / item["filename"] for item in entries]
    return saved


@pytest.mark.parametrize(("path", "overrides"), CASES)
def test_workflow_runs_on_the_tiny_model(path, overrides, env):
    workflow = json.loads(path.read_text(encoding="utf-8"))
    assert wv.validate_workflow(workflow, env["defs"]) == []
    run = runner.run_workflow(workflow, env["defs"], env["standins"], overrides, env["hooks"])

    executed = {node_id: run.prompt[node_id]["class_type"] for node_id in run.order}
    has_audio = any("AUDIO" in env["defs"][node_type]["output"] for node_type in executed.values())
    saved = _saved_files(run, env)
    for node_id, node_type in executed.items():
        if not env["defs"][node_type]["output_node"]:
            continue
        files = saved.get(node_id) or []
        assert files and all(f.is_file() for f in files), f"output node {node_id} ({node_type}) saved nothing"
        if node_type in VIDEO_SAVERS:
            for file in files:
                assert file.is_relative_to(env["output"])
                info = probe_video(file)
                assert info["video_streams"] == 1, f"{file.name}: {info}"
                assert info["audio_streams"] == (1 if has_audio else 0), f"{file.name}: {info}"
                if path.stem.startswith("ltx25"):  # LTX-2.5: 48 kHz stereo, as long as the video
                    assert (info["sample_rate"], info["channels"]) == (48000, 2), info
                    assert abs(info["audio_duration"] - info["video_duration"]) < 1 / 24 + 1024 / 48000, info
                assert json.loads(info["tags"]["workflow"]) == workflow, "the workflow is not in the file's metadata"
    assert not list(env["output"].rglob("*.part")), "a half-written file was left in the output folder"
    _check_backends(path.stem, overrides, run, executed, env)
    _check_controls(path.stem, run, executed)


def _check_controls(stem, run, executed):
    """IC-LoRA workflows report their IC-LoRA; the detailer's output audio is the source clip's, sample for sample."""
    if not stem.startswith("ltx2_ic_lora"):
        return
    reports = [run.outputs[node_id][-1] for node_id, node_type in executed.items()
               if node_type in ("L2A_Sampler", "L2A_AudioToVideo")]
    assert reports and all("-ic-lora-" in report for report in reports), reports
    if stem == "ltx2_ic_lora_detailer":
        (a2v,) = [node_id for node_id, node_type in executed.items() if node_type == "L2A_AudioToVideo"]
        (parts,) = [node_id for node_id, node_type in executed.items() if node_type == "GetVideoComponents"]
        source, output = run.outputs[parts][1], run.outputs[a2v][1]
        assert output["sample_rate"] == source["sample_rate"]
        assert torch.equal(output["waveform"], source["waveform"].float())


def _check_backends(stem, overrides, run, executed, env):
    """Hosted workflows submit exactly one job to their provider; the fallback workflow says which backend ran."""
    submits = {"fal": len(env["fal"].submits()), "wavespeed": len(env["ws"].submits()),
               "ltx": len(env["ltx"].submits())}
    reports = [run.outputs[node_id][-1] for node_id, node_type in executed.items()
               if node_type in ("L2A_Generate", "L2A_Extend", "L2A_AudioToVideo", "L2A_Retake")]
    if stem == "ltx2_hosted_fal_image_to_video":
        assert submits == {"fal": 1, "wavespeed": 0, "ltx": 0}
    elif stem == "ltx2_hosted_wavespeed_extend":
        assert submits == {"fal": 0, "wavespeed": 1, "ltx": 0}
    elif stem == "ltx2_hosted_ltx_audio_to_video":
        assert submits == {"fal": 0, "wavespeed": 0, "ltx": 1}
        assert env["ltx"].submits()[0].path == "/v2/audio-to-video" and "ltx-2-5-fast/audio-to-video" in reports[0]
        (node_id,) = [n for n, t in executed.items() if t == "L2A_AudioToVideo"]
        frames, audio, fps = run.outputs[node_id][:3]
        with wave.open(str(env["folders"].input / "ltx2_song.wav")) as song:  # the AUDIO output is the song itself
            given = np.frombuffer(song.readframes(song.getnframes()), "<i2").reshape(-1, 2).T / 32767
        samples = audio["waveform"].shape[-1]
        assert audio["sample_rate"] == 44100 and samples == min(given.shape[1], round(len(frames) / fps * 44100))
        assert np.allclose(audio["waveform"][0].numpy(), given[:, :samples], atol=1e-4)
    elif stem == "ltx2_hosted_ltx_retake":
        assert submits == {"fal": 0, "wavespeed": 0, "ltx": 1} and env["ltx"].submits()[0].path == "/v1/retake"
        assert any("cannot be resumed" in text for text in env["status"])
    elif stem == LOCAL_25 and overrides["L2A_LocalBackend"]["allow_cpu"]:
        assert submits == {"fal": 0, "wavespeed": 0, "ltx": 0} and "local LTX-2.5 tiny" in reports[0]
    elif stem == LOCAL_25:
        assert submits == {"fal": 0, "wavespeed": 0, "ltx": 1}
        assert env["ltx"].submits()[0].json["model"] == "ltx-2-5-fast"
        assert "unavailable: local generation needs a GPU" in reports[0]
        assert "ltx ltx-2-5-fast/text-to-video (matched the local LTX-2.5 22B model)" in reports[0]
    elif stem == FALLBACK and overrides["L2A_LocalBackend"]["allow_cpu"]:
        assert submits == {"fal": 0, "wavespeed": 0, "ltx": 0} and "local LTX-2 tiny" in reports[0]
        assert "aspect ratio auto without an image: 16:9" in reports[0] and "864x480" in reports[0]
    elif stem == FALLBACK:
        assert submits == {"fal": 1, "wavespeed": 0, "ltx": 0}
        assert "unavailable: local generation needs a GPU" in reports[0] and "Using fal" in reports[0]
    else:
        assert submits == {"fal": 0, "wavespeed": 0, "ltx": 0}
    for text in [*reports, *env["status"]]:
        assert FAL_KEY not in text and WS_KEY not in text and LTX_KEY not in text


def test_conversion_follows_the_frontend():
    """Reroutes pass links on, a bypassed node hands over its input of the same type, a muted node and the inputs it
    fed drop out, a PrimitiveNode's value reaches the widget it feeds, and Notes vanish."""
    link_rows = [[1, 1, 0, 2, 0, "L2A_MODEL"], [2, 2, 0, 3, 0, "L2A_MODEL"], [3, 3, 0, 4, 0, "L2A_MODEL"],
                 [4, 5, 0, 4, 1, "L2A_LATENT"], [5, 6, 0, 7, 0, "FLOAT"], [6, 4, 0, 7, 1, "AUDIO"]]

    def node(node_id, node_type, widgets=None, inputs=(), mode=0):
        return {"id": node_id, "type": node_type, "mode": mode, "widgets_values": widgets,
                "inputs": [{"name": name, "type": kind, "link": link, **extra} for name, kind, link, extra in inputs]}

    workflow = {"links": link_rows, "nodes": [
        node(1, "L2A_ModelLoader", ["ltx-2-19b-dev.safetensors", "fp32", False, "auto", "auto", "auto"]),
        node(2, "Reroute", inputs=[("", "*", 1, {})]),
        node(3, "L2A_LoRA", ["x.safetensors", 1.0, False], [("model", "L2A_MODEL", 2, {})], mode=4),
        node(4, "L2A_DecodeAudio", [], [("model", "L2A_MODEL", 3, {}), ("latent", "L2A_LATENT", 4, {})]),
        node(5, "L2A_Sampler", [96, 64, 9, 24.0, 2, 7, "fixed", "auto", 3.0, 7.0, 1.0, "", 3.0, 0.7, True,
                                "official", "none"], mode=2),
        node(6, "PrimitiveNode", [12.0, "fixed"]),
        node(7, "L2A_SaveVideo", [24.0, "clip", "mp4", "high", "balanced"],
             [("fps", "FLOAT", 5, {"widget": {"name": "fps"}}), ("audio", "AUDIO", 6, {})]),
        node(8, "Note", ["a note"]),
    ]}
    prompt = runner.to_prompt(workflow, wv.all_defs(), {"L2A_SaveVideo": {"quality": "low"}})
    assert sorted(prompt) == ["1", "4", "7"]
    assert prompt["4"]["inputs"] == {"model": ["1", 0]}
    assert prompt["7"]["inputs"] == {"fps": 12.0, "filename_prefix": "clip", "format": "mp4", "quality": "low",
                                     "write_mode": "balanced", "audio": ["4", 0]}
    with pytest.raises(runner.WorkflowError, match="not its widgets"):
        runner.to_prompt(workflow, wv.all_defs(), {"L2A_SaveVideo": {"qualty": "low"}})


SAVED_BEFORE = {  # workflows saved with the definitions before the backend inputs, and what their nodes hold
    "audio_to_video_before_backends": ("L2A_AudioToVideo", {
        "width": 768, "height": 512, "fps": 24.0, "seed": -1, "steps": 0, "guidance": "auto", "prompt": ""},
        {"model": ["1", 0], "conditioning": ["5", 0], "audio": ["6", 0]}),
    "retake_before_backends": ("L2A_Retake", {
        "start_seconds": 1.0, "end_seconds": 2.0, "regenerate": "both", "size_mode": "crop", "fps": 24.0, "seed": -1,
        "steps": 0, "guidance": "auto", "prompt": ""}, {"model": ["1", 0], "conditioning": ["3", 0], "video": ["4", 0]}),
}


@pytest.mark.parametrize("stem", sorted(SAVED_BEFORE))
def test_a_workflow_saved_before_the_backend_inputs_loads_with_its_links_and_values(stem, env):
    """model and conditioning became optional and backend, prompt (and image) were appended: a workflow saved with
    the earlier definitions keeps every link and widget value, the new prompt widget takes its default, and it runs."""
    workflow = json.loads((ROOT / "tests" / "saved_workflows" / f"{stem}.json").read_text(encoding="utf-8"))
    node_type, values, links = SAVED_BEFORE[stem]
    assert wv.validate_workflow(workflow, env["defs"]) == []  # the frontend loads fewer values: defaults after them
    prompt = runner.to_prompt(workflow, env["defs"])
    (node,) = [entry for entry in prompt.values() if entry["class_type"] == node_type]
    assert node["inputs"] == {**values, **links}
    run = runner.run_workflow(workflow, env["defs"], env["standins"], SMALL, env["hooks"])
    saved = [file for files in _saved_files(run, env).values() for file in files]
    assert saved and all(probe_video(file)["audio_streams"] == 1 for file in saved)
    assert len(env["ltx"].submits()) + len(env["fal"].submits()) == 0
