"""Bad input, the way users give it, through the command line and the nodes: every case ends in success or one clear
line (exit 2, no traceback) before the model loads, and no output ever harms what was there.

Files are real: damaged mp4s and wavs made with PyAV, truncated and renamed safetensors, a FIFO, a device node (as
root), a full and a read-only file system (a tiny tmpfs where this machine may mount one)."""

import errno
import math
import os
import shutil
import stat
import subprocess
import sys
import wave

import numpy as np
import pytest
import torch
from fakes.fal_server import FalServer
from fakes.generic_server import no_outside_connections  # noqa: F401 (autouse)

from ltx2_anywhere import cli
from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.av_edit import L2A_AudioToVideo, L2A_Extend, L2A_Retake
from ltx2_anywhere.nodes.hosted import L2A_Fallback, L2A_Generate
from ltx2_anywhere.nodes.lora import L2A_LoRA
from ltx2_anywhere.nodes.media import L2A_SaveVideo
from ltx2_anywhere.nodes.sampling import L2A_Sampler
from ltx2_anywhere.pipelines import choices, doctor, media, outputs
from ltx2_anywhere.pipelines.backend import HostedBackend, LocalBackend, request_geometry
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest
from ltx2_anywhere.pipelines.loading import load_text_encoder, read_safetensors_header, write_safetensors

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
FAL_KEY = "fal-KEYID-hard:SECRET-hardening-1357"


# ---- files -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and damaged inputs, made for real."""
    root = tmp_path_factory.mktemp("bad-inputs")
    good = media.write_video(root / "good.mp4", torch.rand(17, 64, 96, 3), 24,
                             audio=torch.zeros(2, 17 * 1000), sample_rate=24000)
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "garbage.mp4").write_bytes(bytes(range(256)) * 20)
    (root / "empty.mp4").write_bytes(b"")
    (root / "not_an_image.png").write_text("hello")
    with wave.open(str(root / "sound.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(np.zeros(16000 * 3, np.int16).tobytes())
    (root / "truncated.wav").write_bytes((root / "sound.wav").read_bytes()[:30])
    media.write_video(root / "silent.mp4", torch.rand(9, 64, 96, 3), 24)
    from PIL import Image

    Image.new("RGB", (100, 80), (200, 10, 10)).save(root / "image.png")
    return root


def run(argv, capsys, printed=None):
    """cli.main's exit status and its stderr lines (argparse's own refusals exit through SystemExit); stdout goes
    to `printed` when given."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as done:
        status = done.code
    captured = capsys.readouterr()
    if printed is not None:
        printed.append(captured.out)
    return status, [line for line in captured.err.splitlines() if line.strip()]


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if the model would be loaded: every case here must be refused before."""
    def load(*_args):
        raise AssertionError("the model was loaded before the bad input was found")

    monkeypatch.setattr(cli, "_load", load)


# ---- the command line --------------------------------------------------------------------------------------------


def _bad_generate_cases(files, models, out):
    model = ["--model", models.checkpoint_dev, "--text-encoder", models.text_encoder]
    small = ["--prompt", "a cat", "--width", "96", "--height", "64", "--frames", "9", "--steps", "1"]
    g = ["generate", *small, *model]
    trunc = files / "trunc.safetensors"
    data = models.checkpoint_dev.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    (files / "pickle.safetensors").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    (files / "zip.safetensors").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    return [
        ([*g, "--image", files / "missing.png", "--out", out], "does not exist"),
        ([*g, "--image", files / "not_an_image.png", "--out", out], "cannot be read as an image"),
        ([*g, "--image", files / "good.mp4", "--out", out], "cannot be read as an image"),
        ([*g, "--image", files, "--out", out], "is a folder"),
        ([*g, "--lora", "x:abc", "--out", out], "'abc' is not a strength"),
        ([*g, "--lora", files / "missing.safetensors", "--out", out], "does not exist"),
        ([*g, "--cfg", "nan", "--out", out], "'nan' is not a finite number"),
        ([*g, "--audio-cfg", "inf", "--out", out], "'inf' is not a finite number"),
        ([*g, "--cfg", "-1", "--out", out], "video_cfg = -1.0 is out of range"),
        ([*g, "--fps", "nan", "--out", out], "not a finite number"),
        ([*g, "--duration", "inf", "--out", out], "not a finite number"),
        ([*g, "--image", files / "image.png", "--image-strength", "2", "--out", out], "--image-strength = 2.0"),
        ([*g, "--camera", "dolly_in", "--camera-scale", "5", "--out", out], "--camera-scale = 5.0"),
        ([*g, "--crf", "-1", "--out", out], "--crf = -1 is out of range"),
        (["generate", "--prompt", " ", *model, "--out", out], "--prompt is empty"),
        ([*g, "--out", out.with_suffix(".xyz")], "not a video format: name it clip.mp4"),
        ([*g, "--out", out.with_suffix("")], "has no suffix"),
        ([*g, "--format", "webm", "--out", out], "the format is webm"),
        ([*g, "--out", files], "is a folder, not a file"),
        ([*g, "--out", files / "image.png" / "clip.mp4"], "is a file, not a folder"),
        ([*g, "--frames", "0", "--out", out], "frames = 0 is out of range"),
        ([*g, "--frames", "1", "--out", out], "frames = 1 is out of range"),
        ([*g, "--frames", "2", "--out", out], "frames = 2 is out of range"),
        (["generate", *small, "--model", trunc, "--text-encoder", models.text_encoder, "--out", out], "truncated"),
        (["generate", *small, "--model", files / "pickle.safetensors", "--text-encoder", models.text_encoder,
          "--out", out], "is a Python pickle"),
        (["generate", *small, "--model", files / "zip.safetensors", "--text-encoder", models.text_encoder,
          "--out", out], "is a zip archive"),
        (["generate", *small, "--model", models.checkpoint_dev, "--text-encoder", models.checkpoint_dev,
          "--out", out], "not Gemma"),
        ([*g, "--multiscale", "--width", "128", "--height", "128", "--upsampler", files / "none.safetensors",
          "--out", out], "latent upsampler"),
        (["generate", *small, "--model", models.checkpoint_dev, "--out", out], "--text-encoder is required"),
    ]


def test_generate_refuses_bad_input_in_one_line_before_loading(files, tiny_models, no_loading, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    for argv, expected in _bad_generate_cases(files, tiny_models, out):
        status, lines = run(argv, capsys)
        assert status == 2, (argv, lines)
        assert len(lines) == 1 and expected in lines[0], (argv, lines)
        assert "Traceback" not in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_edit_commands_refuse_bad_input_before_loading(files, tiny_models, no_loading, tmp_path, capsys):
    model = ["--model", tiny_models.checkpoint_dev, "--text-encoder", tiny_models.text_encoder]
    e = ["--prompt", "go on", *model, "--out", tmp_path / "e.mp4"]
    cases = [
        (["extend", "--video", files / "good.mp4", *e, "--seconds", "0"], "adds no frame"),
        (["extend", "--video", files / "good.mp4", *e, "--seconds", "-1"], "seconds to add = -1.0 is out of range"),
        (["extend", "--video", files / "good.mp4", *e, "--seconds", "nan"], "not a finite number"),
        (["extend", "--video", files / "good.mp4", *e, "--frames", "-8"], "frames to add = -8"),
        (["extend", "--video", files / "missing.mp4", *e], "does not exist"),
        (["extend", "--video", files / "garbage.mp4", *e], "cannot be read as video"),
        (["extend", "--video", files / "empty.mp4", *e], "cannot be read as video"),
        (["extend", "--video", files / "truncated.mp4", *e, "--overlap", "9"], "is damaged"),
        (["extend", "--video", files / "sound.wav", *e], "has no video stream"),
        (["extend", "--video", files / "good.mp4", *e, "--overlap", "10"], "not 8k+1"),
        (["audio-to-video", "--audio", files / "truncated.wav", *e], "cannot be read as audio"),
        (["audio-to-video", "--audio", files / "silent.mp4", *e], "has no audio stream"),
        (["audio-to-video", "--audio", files / "sound.wav", *e, "--width", "100"], "not a multiple of 32"),
        (["audio-to-video", "--audio", files / "sound.wav", *e, "--image", files / "missing.png"], "does not exist"),
        (["retake", "--video", files / "good.mp4", *e, "--start", "0.6", "--end", "0.2"], "not after its start"),
        (["retake", "--video", files / "good.mp4", *e, "--start", "0.2", "--end", "9"], "is outside the"),
        (["retake", "--video", files / "good.mp4", *e, "--start", "nan", "--end", "0.5"], "not a finite number"),
    ]
    for argv, expected in cases:
        status, lines = run(argv, capsys)
        assert status == 2 and len(lines) == 1 and expected in lines[0], (argv, lines)
    assert list(tmp_path.iterdir()) == []


def test_version_help_and_debug(files, tiny_models, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("ltx2-anywhere ")
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["generate"].format_help()
    assert "no audio stream" in " ".join(help_text.split())
    argv = ["generate", "--prompt", "x", "--image", files / "not_an_image.png", "--out", files / "x.mp4", "--debug"]
    with pytest.raises(L2AError, match="cannot be read as an image"):
        cli.main([str(a) for a in argv])


def test_ctrl_c_exits_130_in_one_line_and_leaves_nothing(tiny_models, tmp_path, monkeypatch, capsys):
    """Ctrl-C while loading and while writing the file: exit 130, one line, no partial file (nor the folder the
    write made for it)."""
    out = tmp_path / "new" / "clip.mp4"
    argv = ["generate", "--prompt", "a cat", "--model", tiny_models.checkpoint_dev, "--text-encoder",
            tiny_models.text_encoder, "--width", "96", "--height", "64", "--frames", "9", "--steps", "1",
            "--out", out]

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(cli, "_load", interrupted)
        assert run(argv, capsys) == (130, ["interrupted: stopped before finishing; no partly written file was left."])
    real_encode = media._encode

    def encode_then_interrupt(temp, *args):
        real_encode(temp, *args)
        assert temp.exists()  # the whole clip was written to the temporary: now Ctrl-C before it is published
        raise KeyboardInterrupt

    monkeypatch.setattr(media, "_encode", encode_then_interrupt)
    status, lines = run(argv, capsys)
    assert status == 130 and len(lines) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_a_real_process(tiny_models, tmp_path):
    """A real SIGINT while the command runs ends in exit status 130, one line and no traceback."""
    import signal

    out = tmp_path / "clip.mp4"
    code = ("import sys, time; from ltx2_anywhere import cli; "
            "cli._load = lambda *a: (sys.stdout.write('loading\\n'), sys.stdout.flush(), time.sleep(60)); "
            "sys.exit(cli.main(sys.argv[1:]))")
    argv = ["generate", "--prompt", "a cat", "--model", tiny_models.checkpoint_dev, "--text-encoder",
            tiny_models.text_encoder, "--width", "96", "--height", "64", "--frames", "9", "--out", out]
    process = subprocess.Popen([sys.executable, "-c", code, *map(str, argv)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    while process.stdout.readline() not in ("loading\n", ""):  # past the checks, into the (sleeping) load
        pass
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err and err.strip().startswith("interrupted")
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_ctrl_c_landing_in_an_import_locks_clean_up_is_sent_again(monkeypatch):
    """CPython drops a KeyboardInterrupt raised inside importlib's module-lock callback ("Exception ignored in
    _get_module_lock.<locals>.cb"), so a Ctrl-C early in a command could be lost: the handler sends it again."""
    import signal
    import time

    def cb():
        cli.interrupt(signal.SIGINT, sys._getframe())

    cb.__code__ = cb.__code__.replace(co_filename="<frozen importlib._bootstrap>")  # where CPython's callback runs
    previous = signal.signal(signal.SIGINT, cli.interrupt)
    try:
        cb()  # inside the callback: no exception, the signal is sent again
        with pytest.raises(KeyboardInterrupt):
            time.sleep(5)
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- outputs never harm what is there ----------------------------------------------------------------------------


def _special_targets(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    targets = {"FIFO": fifo, "folder": tmp_path / "folder.mp4"}
    targets["folder"].mkdir()
    if ROOT:
        device = tmp_path / "null.mp4"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets["device"] = device
    return targets


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_writers_never_replace_a_fifo_a_device_or_a_folder(tmp_path):
    for kind, target in _special_targets(tmp_path).items():
        before = os.stat(target)
        with pytest.raises(L2AError, match="outputs only replace regular files"):
            media.write_video(target, torch.rand(2, 32, 32, 3), 24)
        with pytest.raises(L2AError, match="outputs only replace regular files"):
            write_safetensors(target.with_suffix(".mp4"), {"x": torch.zeros(2)})
        after = os.stat(target)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), kind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_publish_refuses_a_fifo_that_appears_while_encoding(tmp_path):
    target = tmp_path / "clip.mp4"
    real_encode = media._encode

    def encode_and_race(temp, *args):
        real_encode(temp, *args)
        os.mkfifo(target)

    media._encode, saved = encode_and_race, media._encode
    try:
        with pytest.raises(L2AError, match="FIFO"):
            media.write_video(target, torch.rand(2, 32, 32, 3), 24)
    finally:
        media._encode = saved
    assert stat.S_ISFIFO(os.stat(target).st_mode) and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_write_errors_are_one_clear_line():
    for code, words in ((errno.ENOSPC, "No space left"), (errno.EROFS, "read-only file system"),
                        (errno.EACCES, "no permission"), (errno.EFBIG, "too large")):
        assert words in str(outputs.write_error(OSError(code, os.strerror(code)), "/x/clip.mp4"))


def _mount_tmpfs(folder, options):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB file system: room for the checks, not for a 512x512 clip of noise."""
    folder = tmp_path / "small"
    _mount_tmpfs(folder, "size=2m")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_one_line_and_leaves_nothing(small_disk):
    frames = torch.rand(48, 512, 512, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(L2AError, match="No space left .* nothing was written"):
        media.write_video(small_disk / "clip.mp4", frames, 24, quality="maximum")
    assert list(small_disk.iterdir()) == []
    (small_disk / "fill").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 512 * 1024))
    with pytest.raises(L2AError, match="No space left"):
        outputs.check_output_file(small_disk / "next.mp4")


def test_a_file_size_limit_mid_write_is_one_line_and_leaves_nothing(tmp_path):
    """The same at the OS boundary without root: RLIMIT_FSIZE stops FFmpeg's writes with EFBIG."""
    code = (
        "import resource, signal, sys, torch\n"
        "from ltx2_anywhere.pipelines import media\n"
        "from ltx2_anywhere.pipelines.errors import L2AError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "try:\n"
        "    media.write_video(sys.argv[1], torch.rand(24, 256, 256, 3), 24, quality='maximum')\n"
        "except L2AError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "clip.mp4")], capture_output=True, text=True,
                          timeout=120)
    assert "too large" in done.stdout and "Traceback" not in done.stderr, done
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_file_system_is_refused_before_work(tmp_path):
    folder = tmp_path / "ro"
    _mount_tmpfs(folder, "ro,size=64k")
    try:
        with pytest.raises(L2AError, match="read-only file system"):
            outputs.check_output_file(folder / "clip.mp4")
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.skipif(ROOT, reason="root may write anywhere")
def test_a_folder_without_write_permission_is_refused_before_work(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    with pytest.raises(L2AError, match="no permission"):
        outputs.check_output_file(folder / "clip.mp4")


def test_tiny_never_replaces_a_real_model_file(tmp_path, capsys):
    real = tmp_path / "checkpoints" / LTX2_19B.checkpoints["dev"].name
    real.parent.mkdir()
    real.write_bytes(b"forty gigabytes of LTX-2 weights")
    status, lines = run(["tiny", "--models-dir", tmp_path], capsys)
    assert status == 2 and len(lines) == 1 and "not the tiny model's" in lines[0]
    assert real.read_bytes() == b"forty gigabytes of LTX-2 weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]
    real.unlink()
    assert run(["tiny", "--models-dir", tmp_path], capsys)[0] == 0
    assert run(["tiny", "--models-dir", tmp_path], capsys)[0] == 0  # the tiny model's own files are replaced


# ---- model files -------------------------------------------------------------------------------------------------


def test_renamed_and_truncated_safetensors_are_named_for_what_they_are(tmp_path, tiny_models):
    import pickle
    import zipfile

    with open(tmp_path / "pickled.safetensors", "wb") as out:
        pickle.dump({"weight": [1.0, 2.0]}, out)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "torch.safetensors")  # PyTorch's zip format
    with zipfile.ZipFile(tmp_path / "zipped.safetensors", "w") as archive:
        archive.writestr("model.safetensors", b"")
    (tmp_path / "page.safetensors").write_text("<!DOCTYPE html><html>Sign in</html>")
    (tmp_path / "pointer.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    # a real file whose 640-byte header length starts with the bytes of a pickle's PROTO 2 opcode
    write_safetensors(tmp_path / "real.safetensors", {"w": torch.zeros(1)}, {"pad": "x" * 539})
    assert (tmp_path / "real.safetensors").read_bytes()[:2] == b"\x80\x02"
    assert read_safetensors_header(tmp_path / "real.safetensors")[1]["pad"] == "x" * 539
    data = tiny_models.checkpoint_dev.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 3])
    expected = {"pickled": "is a Python pickle", "torch": "is a zip archive", "zipped": "is a zip archive",
                "page": "is a web page", "pointer": "is a Git LFS pointer", "cut": "is truncated"}
    for name, words in expected.items():
        with pytest.raises(L2AError, match=words):
            read_safetensors_header(tmp_path / f"{name}.safetensors")


def test_a_gemma_folder_without_tokenizer_files_is_refused(tmp_path, tiny_models):
    folder = tmp_path / "gemma"
    shutil.copytree(tiny_models.text_encoder, folder)
    for path in folder.iterdir():
        if path.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            path.unlink()
    with pytest.raises(L2AError, match="has no tokenizer"):
        load_text_encoder(folder, dtype="fp32")


# ---- nodes -------------------------------------------------------------------------------------------------------


def test_save_video_prefix_cannot_leave_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(_comfy._settings, "output_dir", tmp_path / "output")
    frames = torch.rand(2, 32, 32, 3)
    for prefix in ("../escape", "LTX-2/../../escape", str(tmp_path / "abs" / "video"), "/tmp/l2a-escape", ""):
        with pytest.raises(L2AError, match="filename_prefix"):
            L2A_SaveVideo().save(frames, 24.0, prefix)
    (tmp_path / "output").mkdir(exist_ok=True)
    (tmp_path / "output" / "link").symlink_to(tmp_path)
    with pytest.raises(L2AError, match="outside the output folder"):
        L2A_SaveVideo().save(frames, 24.0, "link/video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output"]
    with pytest.raises(L2AError, match="fps = nan"):
        L2A_SaveVideo().save(frames, math.nan, "LTX-2/video")
    saved = L2A_SaveVideo().save(frames, 24.0, "LTX-2/sub/video")
    assert saved["ui"]["images"][0]["subfolder"] == "LTX-2/sub"


def test_resume_job_ids_cannot_name_a_file_outside_the_output_folder(fal, tmp_path, monkeypatch):
    from ltx2_anywhere.nodes.hosted import L2A_ResumeJob
    from ltx2_anywhere.pipelines.hosted import jobs

    where = []

    def fetch_nothing(_provider, _job, dest, **_hooks):
        where.append(dest)
        raise L2AError("stop before the network")

    monkeypatch.setattr(jobs, "resume_job", fetch_nothing)
    with pytest.raises(L2AError, match="stop before the network"):
        L2A_ResumeJob().resume("fal", "fal-ai/ltx-2-19b/text-to-video", "../../../../../../escape")
    output = (tmp_path / "output").resolve()
    assert where and os.path.realpath(where[0]).startswith(str(output) + os.sep)


def test_nodes_refuse_nan_lengths_rates_and_windows(tiny_model, tiny_encoder, tiny_models):
    from ltx2_anywhere.nodes.conditioning import L2A_TextEncode

    with pytest.raises(L2AError, match="frame_rate = nan"):
        L2A_TextEncode().encode(tiny_encoder, "a dog barks", "", math.nan)
    (conditioning,) = L2A_TextEncode().encode(tiny_encoder, "a dog barks", "", 24.0)
    images = torch.rand(17, 64, 96, 3)
    fast = dict(seed=1, steps=1, guidance="off")
    with pytest.raises(L2AError, match="seconds to add = nan"):
        L2A_Extend().extend(math.nan, 0, 9, "crop", 24.0, model=tiny_model, conditioning=conditioning,
                            images=images, **fast)
    with pytest.raises(L2AError, match="seconds to add = 0"):
        L2A_Extend().extend(0.0, 0, 9, "crop", 24.0, model=tiny_model, conditioning=conditioning, images=images,
                            **fast)
    with pytest.raises(L2AError, match="sample rate is 0, not a positive"):
        L2A_AudioToVideo().generate({"waveform": torch.zeros(1, 2, 48000), "sample_rate": 0}, 96, 64, 24.0,
                                    model=tiny_model, conditioning=conditioning, **fast)
    with pytest.raises(L2AError, match="not after its start"):
        L2A_Retake().retake(0.5, 0.1, "both", "crop", 24.0, model=tiny_model, conditioning=conditioning,
                            images=images, **fast)
    with pytest.raises(L2AError, match="video_cfg = nan"):
        L2A_Sampler().sample(tiny_model, conditioning, 96, 64, 9, 24.0, 1, 1, "custom", math.nan, 7.0, 1.0, "",
                             3.0, 0.7, True, "official")
    with pytest.raises(L2AError, match="LoRA strength = nan"):
        L2A_LoRA().apply(tiny_model, str(tiny_models.lora_static), math.nan, False)


def test_sampler_report_names_loras_images_and_direction(tiny_model, tiny_encoder, tiny_models, monkeypatch):
    from ltx2_anywhere.nodes.conditioning import L2A_FirstLastFrame, L2A_TextEncode
    from ltx2_anywhere.nodes.lora import L2A_CameraLoRA

    monkeypatch.setitem(_comfy._settings, "models_dir", tiny_models.root)
    (model,) = L2A_CameraLoRA().apply(tiny_model, "jib_up", 0.5)
    (conditioning,) = L2A_TextEncode().encode(tiny_encoder, "a dog barks", "", 24.0)
    picture = torch.rand(1, 64, 96, 3)
    (conditioning,) = L2A_FirstLastFrame().apply(conditioning, 1.0, 0.8, "backward", 0, image=picture,
                                                 end_image=picture)
    report = L2A_Sampler().sample(model, conditioning, 96, 64, 9, 24.0, 1, 1, "off", 3.0, 7.0, 1.0, "", 3.0, 0.7,
                                  True, "official")["result"][2]
    assert "camera LoRA jib_up" in report and "x0.5" in report
    assert "start image (strength 0.8)" in report and "end image (strength 1)" in report
    assert "direction backward" in report


# ---- the fallback example ----------------------------------------------------------------------------------------


def test_aspect_auto_without_an_image_reads_16_9_like_hosted():
    request = GenerationRequest(mode="t2v", prompt="a dog", seed=1, resolution="720p", aspect_ratio="auto",
                                duration=5.0, fps=24.0)
    width, height, frames, fps, notes = request_geometry(request)
    assert (width, height, frames) == (1280, 704, 121) and "16:9" in notes[0]
    with_image = request_geometry(request, image_size=(600, 800))
    assert with_image[:2] == (704, 960)


@pytest.fixture
def fal(tmp_path, monkeypatch):
    monkeypatch.setitem(_comfy._settings, "output_dir", tmp_path / "output")
    monkeypatch.setitem(_comfy._settings, "user_dir", tmp_path / "user")
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    with FalServer(tmp_path / "fal", key=FAL_KEY) as server:
        yield server


def _fallback(fal, tmp_path, **local):
    local = LocalBackend(**{"checkpoint": tmp_path / "missing.safetensors", "text_encoder_path": tmp_path / "none",
                            "allow_cpu": True, **local})
    hosted = HostedBackend(provider="fal", base_url=fal.url, user_dir=tmp_path / "user", store_dir=tmp_path / "store",
                           allow_loopback=True, deadline_s=60, poll=(0.02, 0.05))
    return L2A_Fallback().make(local, hosted)[0]


def _generate(backend, **overrides):
    args = dict(prompt="a street musician plays", negative_prompt="", resolution="custom", aspect_ratio="auto",
                width=96, height=64, duration_seconds=0.0, frames=9, fps=24.0, seed=3, generate_audio=True,
                camera="none", camera_scale=1.0, guidance_scale=0.0, steps=0)
    args.update(overrides)
    return L2A_Generate().generate(backend, **args)


def test_a_users_mistake_never_becomes_a_paid_hosted_run(fal, tmp_path, files):
    backend = _fallback(fal, tmp_path)
    for overrides, words in (({"fps": math.nan}, "fps = nan"), ({"duration_seconds": math.inf}, "duration = inf"),
                             ({"guidance_scale": math.nan}, "video_cfg = nan"), ({"frames": 2}, "frames = 2"),
                             ({"camera_scale": 3.0}, "camera_scale = 3.0")):
        with pytest.raises(L2AError, match=words):
            _generate(backend, **overrides)
    assert fal.submits() == []


def test_the_fallback_names_why_local_was_skipped(fal, tmp_path, monkeypatch):
    report = _generate(_fallback(fal, tmp_path))["result"][4]
    assert "the local model file is missing" in report and "Using fal" in report and len(fal.submits()) == 1
    camera = _generate(_fallback(fal, tmp_path), camera="dolly_in", seed=5)["result"][4]  # no local camera LoRA
    assert "the local model file is missing" in camera and len(fal.submits()) == 2
    monkeypatch.delenv("FAL_KEY")
    with pytest.raises(L2AError, match="local model file is missing.*No API key for fal"):
        _generate(_fallback(fal, tmp_path), seed=4)


# ---- the doctor --------------------------------------------------------------------------------------------------


def test_doctor_names_a_missing_file_once_for_all_workflows(tmp_path):
    results = doctor.diagnose_workflows(choices.shipped_workflows(), doctor.folders_under(tmp_path))
    report = doctor.report_text(results)
    assert report.count(f"checkpoints/{LTX2_19B.checkpoints['dev'].name}:") == 1
    assert "needed by ltx2_audio_to_video, ltx2_camera_lora" in report


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_a_hosted_job_cancels_it_and_says_so(fal, tmp_path, monkeypatch, capsys):
    """Ctrl-C while a paid job runs: the job is cancelled at the provider, its id is said, exit status 130."""
    import signal
    import threading

    monkeypatch.setenv("LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("LTX2_ANYWHERE_CACHE", str(tmp_path / "cache"))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        printed = []
        status, lines = run(["generate", "--backend", "fal", "--base-url", fal.url, "--prompt",
                             "a cat walks [fal:never]", "--width", "96", "--height", "64", "--frames", "9",
                             "--out", tmp_path / "hosted.mp4"], capsys, printed)
    finally:
        timer.cancel()
    assert status == 130 and lines == ["interrupted: stopped before finishing; no partly written file was left."]
    assert "was cancelled at the provider" in printed[0] and FAL_KEY not in printed[0]
    assert any(call.method == "PUT" and call.path.endswith("/cancel") for call in fal.requests)
    assert not (tmp_path / "hosted.mp4").exists()
