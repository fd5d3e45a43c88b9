"""One graph, local or hosted: the backend nodes and the CLI against the fake provider servers and the tiny model."""

import os
import re

import pytest
import torch
from fakes.fal_server import FalServer
from fakes.generic_server import no_outside_connections  # noqa: F401 (autouse)
from fakes.wavespeed_server import WaveSpeedServer

from ltx2_anywhere import cli
from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.av_edit import L2A_Extend
from ltx2_anywhere.nodes.hosted import L2A_Fallback, L2A_Generate, L2A_HostedBackend
from ltx2_anywhere.pipelines.backend import BackendUnavailable, Hooks, HostedBackend, LocalBackend
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest
from ltx2_anywhere.pipelines.media import probe_video

FAL_KEY = "fal-KEYID-5d6e7f:SECRET-backend-8642"
WS_KEY = "ws-KEY-backend-97531"
FAST_POLL = (0.02, 0.05)


@pytest.fixture
def status(tmp_path, monkeypatch):
    seen = []
    _comfy.configure(output_dir=tmp_path / "output", user_dir=tmp_path / "user", status=seen.append)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("WAVESPEED_API_KEY", WS_KEY)
    return seen


@pytest.fixture
def fal(tmp_path):
    with FalServer(tmp_path / "fal", key=FAL_KEY) as server:
        yield server


def fal_backend(fal, tmp_path, **extra):
    return HostedBackend(provider="fal", base_url=fal.url, user_dir=tmp_path / "user", store_dir=tmp_path / "store",
                         allow_loopback=True, deadline_s=60, poll=FAST_POLL, **extra)


def generate(backend, seed=5, image=None, **overrides):
    args = dict(prompt="a woman says hello in the city", negative_prompt="", resolution="custom", aspect_ratio="16:9",
                width=96, height=64, duration_seconds=0.0, frames=9, fps=24.0, seed=seed, generate_audio=True,
                camera="none", camera_scale=1.0, guidance_scale=0.0, steps=0)
    args.update(overrides)
    return L2A_Generate().generate(backend, **args, image=image)


def test_generate_on_fal_reports_cost_and_never_shows_the_key(fal, tmp_path, status):
    out = generate(fal_backend(fal, tmp_path), image=torch.rand(1, 64, 96, 3))
    video, images, audio, fps, report = out["result"]
    assert probe_video(video.get_stream_source())["video_codec"] == "h264"
    assert images.shape[-1] == 3 and audio["sample_rate"] > 0 and fps > 0
    assert "fal" in report and "estimated cost $" in report
    assert len(fal.submits()) == 1
    assert any("queue" in text for text in status)
    for text in [report, *status, *(call.path for call in fal.requests)]:
        assert FAL_KEY not in text and "SECRET" not in text


def test_an_identical_request_reuses_the_stored_result(fal, tmp_path, status):
    backend = fal_backend(fal, tmp_path)
    first = generate(backend)["result"][4]
    second = generate(backend)["result"][4]
    assert len(fal.submits()) == 1 and "reused" in second and "reused" not in first
    generate(fal_backend(fal, tmp_path, reuse=False))
    assert len(fal.submits()) == 2


def test_fallback_uses_hosted_when_local_files_are_missing(fal, tmp_path, status):
    local = LocalBackend(checkpoint=tmp_path / "missing.safetensors", text_encoder_path=tmp_path / "missing",
                         allow_cpu=True)
    (backend,) = L2A_Fallback().make(local, fal_backend(fal, tmp_path))
    report = generate(backend)["result"][4]
    assert "unavailable: the local model file is missing" in report and "Using fal" in report
    assert any("unavailable" in text for text in status)


def test_local_backend_runs_the_tiny_model(tiny_models, status):
    local = LocalBackend(checkpoint=tiny_models.checkpoint_dev, text_encoder_path=tiny_models.text_encoder,
                         dtype="fp32", allow_cpu=True)
    video, images, audio, _, report = generate(local, steps=2)["result"]
    assert images.shape == (9, 64, 96, 3) and "local LTX-2 tiny" in report
    assert probe_video(video.get_stream_source())["audio_streams"] == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_no_gpu_makes_the_local_backend_unavailable(tiny_models):
    local = LocalBackend(checkpoint=tiny_models.checkpoint_dev, text_encoder_path=tiny_models.text_encoder)
    with pytest.raises(BackendUnavailable, match="needs a GPU"):
        local.load()


def test_a_mode_the_provider_lacks_is_refused_before_anything_is_sent(tmp_path):
    request = GenerationRequest(mode="t2v", prompt="a dog", seed=1)
    with pytest.raises(L2AError, match="vibedream has no text-to-video"):
        HostedBackend(provider="vibedream").prepare(request)


def test_hosted_backend_node_has_no_key_input_and_keeps_the_graph_free_of_secrets(status):
    import ltx2_anywhere

    for node in ltx2_anywhere.NODE_CLASS_MAPPINGS.values():
        names = [name for section in node.INPUT_TYPES().values() for name in section]
        assert not [n for n in names if re.search(r"key|secret|password|token$|auth", n.lower())]
    (backend,) = L2A_HostedBackend().make("fal", "auto", 0.5, True, 30, "on", "provider default")
    assert backend.options == {"multiscale": True} and backend.max_cost_usd == 0.5
    assert FAL_KEY not in repr(backend)


def test_extend_node_on_wavespeed_uploads_the_clip(tmp_path, status):
    with WaveSpeedServer(tmp_path / "ws", key=WS_KEY) as ws:
        backend = HostedBackend(provider="wavespeed", endpoint="wavespeed-ai/ltx-2.3/extend", base_url=ws.url,
                                user_dir=tmp_path / "user", allow_loopback=True, deadline_s=60, poll=FAST_POLL)
        frames = torch.rand(17, 64, 96, 3)
        images, audio, fps, report = L2A_Extend().extend(2.0, 0, 9, "crop", 24.0, -1, 0, "auto", images=frames,
                                                         backend=backend, prompt="she waves")["result"]
        assert images.shape[0] > 0 and "wavespeed" in report
        assert len(ws.submits()) == 1


def test_cli_generate_on_fal_and_resume(fal, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("LTX2_ANYWHERE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "hosted.mp4"
    assert cli.main(["generate", "--backend", "fal", "--base-url", fal.url, "--prompt", "a cat walks", "--width",
                     "96", "--height", "64", "--frames", "9", "--seed", "7", "--out", str(out)]) == 0
    assert probe_video(out)["video_streams"] == 1
    printed = capsys.readouterr().out
    assert "fal: estimated $" in printed and FAL_KEY not in printed
    job_id = next(iter(fal.jobs))
    again = tmp_path / "resumed.mp4"
    assert cli.main(["resume", "--backend", "fal", "--base-url", fal.url, "--endpoint",
                     "fal-ai/ltx-2-19b/text-to-video", "--job-id", job_id, "--out", str(again)]) == 0
    assert again.exists() and len(fal.submits()) == 1
    assert os.environ["FAL_KEY"] not in capsys.readouterr().out


def test_hooks_carry_status_without_keys(fal, tmp_path, status):
    seen = []
    request = GenerationRequest(mode="t2v", prompt="a dog", seed=3, width=96, height=64, num_frames=9)
    outcome = fal_backend(fal, tmp_path).generate(request, tmp_path / "out", Hooks(on_status=seen.append))
    assert outcome.path.exists() and seen and all(FAL_KEY not in text for text in seen)


def test_local_multiscale_is_the_official_recipe_of_the_models_family(family_models, tmp_path, status):
    """Generate on the local backend with multiscale on: the family's upsampler and (dev) distilled LoRA are found
    through its record in the model folders; without the LoRA the backend is unavailable, naming the file."""
    record = family_models.family
    local = LocalBackend(checkpoint=family_models.checkpoint_dev, text_encoder_path=family_models.text_encoder,
                         dtype="fp32", allow_cpu=True, multiscale=True)
    _video, images, _audio, _fps, report = generate(local, width=128, height=128, steps=2)["result"]
    assert images.shape == (9, 128, 128, 3) and "multiscale: stage 1 64x64" in report
    assert f"with the distilled LoRA (the official recipe); LoRA {record.distilled_lora.name} 1" in report
    bare = LocalBackend(checkpoint=family_models.checkpoint_dev, text_encoder_path=family_models.text_encoder,
                        dtype="fp32", allow_cpu=True, multiscale=True, model=local.model,
                        text_encoder=local.text_encoder, folders={"loras": [tmp_path]})
    with pytest.raises(BackendUnavailable, match=f"needs '{re.escape(record.distilled_lora.name)}', which is not in"):
        generate(bare, width=128, height=128, steps=2)
