"""The command line: demo, generate and tiny, run in-process on the tiny models."""

import shutil

import pytest

from ltx2_anywhere import cli
from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.families import FAMILIES


def check_mp4(path, frames, fps=24.0):
    info = media.probe_video(path)
    assert (info["video_streams"], info["audio_streams"]) == (1, 1)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    assert info["frames"] == frames
    assert abs(info["video_duration"] - info["audio_duration"]) < 1 / fps + 1024 / info["sample_rate"]
    return info


@pytest.mark.parametrize("name", ["2.0", "2.3", "2.5"])
def test_tiny_writes_the_familys_full_set_under_its_official_names(name, tmp_path, capsys):
    assert cli.main(["tiny", "--family", name, "--models-dir", str(tmp_path)]) == 0
    record = FAMILIES[name]
    for file in record.files():
        if file in record.text_encoder.files[2:]:
            continue  # one single-file Gemma is enough (the fp8 one is an alternative)
        assert (tmp_path / file.folder / file.name).exists(), file.name
    if record.text_encoder.folder is not None:
        assert (tmp_path / "text_encoders" / record.text_encoder.folder.name / "config.json").is_file()
    assert "checkpoint_dev" in capsys.readouterr().out
    assert cli.main(["doctor", "--family", name, "--models-dir", str(tmp_path)]) == 0
    assert "0 missing" in capsys.readouterr().out


def test_demo_writes_text_and_image_to_video(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    for name in ("demo_text_to_video.mp4", "demo_image_to_video.mp4"):
        info = check_mp4(tmp_path / name, 25)
        assert (info["width"], info["height"]) == (192, 128)
    assert "seed 42" in capsys.readouterr().out


@pytest.fixture(scope="module")
def models(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-models") / "models"
    shutil.copytree(tiny_models.root, root)
    return root / "checkpoints" / FAMILIES["2.0"].checkpoints["dev"].name, root / "text_encoders" / (
        FAMILIES["2.0"].text_encoder.folder.name)


def test_generate_image_to_video_with_explicit_model(tmp_path, models, capsys):
    model, encoder = models
    out = tmp_path / "clip.mp4"
    argv = ["generate", "--prompt", "a cat walks in the city", "--image", str(cli.ASSETS / "sample.png"),
            "--out", str(out), "--model", str(model), "--text-encoder", str(encoder), "--width", "96",
            "--height", "64", "--frames", "20", "--steps", "2", "--seed", "3", "--schedule", "diffusers"]
    assert cli.main(argv) == 0
    check_mp4(out, 17)
    printed = capsys.readouterr().out
    assert "seed 3" in printed and "snapped to 17" in printed and "2 steps (diffusers schedule)" in printed
    tags = media.probe_video(out)["tags"]
    assert "a cat walks in the city" in tags["l2a_settings"]


def test_generate_refuses_bad_size_before_loading(tmp_path, capsys, monkeypatch):
    def no_loading(*args):
        raise AssertionError("the model was loaded before the size was checked")

    monkeypatch.setattr(cli, "_load", no_loading)
    out = tmp_path / "bad.mp4"
    assert cli.main(["generate", "--prompt", "a dog", "--out", str(out), "--width", "500"]) == 2
    assert "width = 500 is not a multiple of 32" in capsys.readouterr().err
    assert not out.exists()


def test_generate_needs_a_text_encoder_with_a_model(tmp_path, models, capsys):
    assert cli.main(["generate", "--prompt", "a dog", "--out", str(tmp_path / "x.mp4"), "--model", str(models[0])]) == 2
    assert "--text-encoder is required" in capsys.readouterr().err


def test_generate_multiscale_camera_first_last_frame_and_sizes(tmp_path, capsys):
    out = tmp_path / "full.mp4"
    sample = str(cli.ASSETS / "sample.png")
    argv = ["generate", "--prompt", "a car drives in the city", "--out", str(out), "--image", sample,
            "--end-image", sample, "--end-image-strength", "0.8", "--direction", "backward", "--multiscale",
            "--camera", "dolly_in", "--camera-scale", "0.5", "--resolution", "custom", "--width", "200",
            "--height", "130", "--duration", "0.5", "--acceleration", "regular", "--seed", "9"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    info = check_mp4(out, 9)
    assert (info["width"], info["height"]) == (192, 128)
    assert "custom 200x130 → 192x128" in printed and "0.50 s at 24 fps → 9 frames" in printed
    assert "multiscale: stage 1 96x64" in printed and "acceleration regular" in printed


def test_generate_multiscale_without_the_upsampler_says_where_to_put_it(tmp_path, models, capsys):
    model, encoder = models
    folder = model.parent.parent / "latent_upscale_models"
    (folder / "ltx-2-spatial-upscaler-x2-1.0.safetensors").unlink()
    assert cli.main(["generate", "--prompt", "a dog", "--out", str(tmp_path / "x.mp4"), "--model", str(model),
                     "--text-encoder", str(encoder), "--width", "128", "--height", "128", "--frames", "9",
                     "--multiscale"]) == 2
    error = capsys.readouterr().err
    assert f"needs 'ltx-2-spatial-upscaler-x2-1.0.safetensors', which is not in {folder}" in error
    assert "https://huggingface.co/Lightricks/LTX-2/resolve/main/ltx-2-spatial-upscaler-x2-1.0.safetensors" in error


def test_generate_multiscale_refines_with_the_familys_distilled_lora(family_models, tmp_path, capsys, monkeypatch):
    """Without the family's distilled LoRA, --multiscale fails before anything is loaded, naming the file and the
    folder; with it, the report names the LoRA stage 2 ran with."""
    root = tmp_path / "models"
    shutil.copytree(family_models.root, root, ignore=lambda folder, _names: ["loras"] if folder == str(
        family_models.root) else [])
    (root / "loras").mkdir()
    record = family_models.family
    model = root / family_models.checkpoint_dev.relative_to(family_models.root)
    encoder = root / family_models.text_encoder.relative_to(family_models.root)
    argv = ["generate", "--prompt", "a dog", "--out", str(tmp_path / "x.mp4"), "--model", str(model),
            "--text-encoder", str(encoder), "--width", "128", "--height", "128", "--frames", "9", "--steps", "2",
            "--guidance", "off", "--seed", "1", "--multiscale"]
    loading = cli._load
    monkeypatch.setattr(cli, "_load", lambda *a: pytest.fail("loaded before the stage-2 LoRA was found"))
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert f"needs '{record.distilled_lora.name}', which is not in {root / 'loras'}" in error
    assert record.distilled_lora.url in error and "--distilled-lora-strength 0" in error
    monkeypatch.setattr(cli, "_load", loading)
    shutil.copyfile(family_models.lora_distilled, root / "loras" / record.distilled_lora.name)
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"with the distilled LoRA (the official recipe); LoRA {record.distilled_lora.name} 1 (fused)" in printed
    check_mp4(tmp_path / "x.mp4", 9)


def test_extend_audio_to_video_and_retake_commands(tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    assert cli.main(["generate", "--prompt", "a man speaks hello", "--out", str(clip), "--width", "96",
                     "--height", "64", "--frames", "25", "--steps", "2", "--seed", "1"]) == 0
    longer = tmp_path / "longer.mp4"
    assert cli.main(["extend", "--video", str(clip), "--prompt", "he walks away", "--frames", "32", "--overlap",
                     "9", "--steps", "2", "--guidance", "off", "--out", str(longer)]) == 0
    check_mp4(longer, 25 + 32)
    synced = tmp_path / "synced.mp4"
    assert cli.main(["audio-to-video", "--audio", str(longer), "--prompt", "a man speaks", "--image",
                     str(cli.ASSETS / "sample.png"), "--width", "96", "--height", "64", "--steps", "2",
                     "--guidance", "off", "--out", str(synced)]) == 0
    info = check_mp4(synced, 57)
    assert info["audio_duration"] == pytest.approx(57 / 24, abs=1024 / 24000)
    retaken = tmp_path / "retaken.mp4"
    assert cli.main(["retake", "--video", str(longer), "--start", "0.5", "--end", "1.0", "--prompt", "a dog barks",
                     "--steps", "2", "--guidance", "off", "--out", str(retaken)]) == 0
    check_mp4(retaken, 57)
    printed = capsys.readouterr().out
    assert "extended 25 → 57 frames" in printed and "audio-to-video" in printed and "retake of the video and audio" in printed
