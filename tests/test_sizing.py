"""Video Size: tiers, ratios and seconds map to valid LTX-2 geometry, and every mapping is reported."""

import pytest
import torch

from ltx2_anywhere.nodes.size import L2A_VideoSize
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.geometry import make_geometry
from ltx2_anywhere.pipelines.sizing import RATIOS, TIERS, resolve_frames, resolve_size, round_side

# Rounding: nearest multiple, ties down (720 -> 704, as the LTX-2 services deliver 720p), never below one multiple.
EXPECTED_32 = {
    "480p": {"16:9": (864, 480), "1:1": (480, 480), "4:3": (640, 480), "21:9": (1120, 480)},
    "720p": {"16:9": (1280, 704), "1:1": (704, 704), "4:3": (960, 704), "21:9": (1664, 704)},
    "1080p": {"16:9": (1920, 1088), "1:1": (1088, 1088), "4:3": (1440, 1088), "21:9": (2528, 1088)},
}
EXPECTED_64 = {
    "480p": {"16:9": (832, 448), "1:1": (448, 448), "4:3": (640, 448), "21:9": (1088, 448)},
    "720p": {"16:9": (1280, 704), "1:1": (704, 704), "4:3": (960, 704), "21:9": (1664, 704)},
    "1080p": {"16:9": (1920, 1088), "1:1": (1088, 1088), "4:3": (1408, 1088), "21:9": (2496, 1088)},
}
PORTRAIT = {"9:16": "16:9", "3:4": "4:3"}


def _node(**overrides):
    values = dict(resolution="720p", aspect_ratio="16:9", width=768, height=512, duration_seconds=5.0, frames=121,
                  fps=24.0, multiscale=False)
    values.update(overrides)
    return L2A_VideoSize().resolve(**values)


@pytest.mark.parametrize(("multiple", "expected"), [(32, EXPECTED_32), (64, EXPECTED_64)])
@pytest.mark.parametrize("tier", list(TIERS))
@pytest.mark.parametrize("ratio", list(RATIOS))
def test_every_tier_and_ratio(multiple, expected, tier, ratio):
    width, height, note = resolve_size(tier, ratio, multiple=multiple)
    assert width % multiple == 0 and height % multiple == 0
    if ratio in PORTRAIT:
        assert (height, width) == expected[tier][PORTRAIT[ratio]]
    else:
        assert (width, height) == expected[tier][ratio]
    assert note.startswith(f"{tier} {ratio} → {width}x{height}")


def test_notes_name_the_rounding():
    assert resolve_size("720p", "16:9")[2] == "720p 16:9 → 1280x704 (720 rounded to 704: LTX-2 needs multiples of 32)"
    assert resolve_size("480p", "16:9")[2] == (
        "480p 16:9 → 864x480 (853.3 rounded to 864: LTX-2 needs multiples of 32)"
    )
    assert resolve_size("480p", "4:3")[2] == "480p 4:3 → 640x480"
    assert "multiples of 64 with multiscale" in resolve_size("1080p", "16:9", multiple=64)[2]


def test_rounding_rule():
    assert [round_side(v) for v in (720, 721, 736, 1080, 1680, 15, 0)] == [704, 736, 736, 1088, 1664, 32, 32]
    assert [round_side(v, 64) for v in (480, 481, 1440)] == [448, 512, 1408]


def test_auto_follows_the_image():
    width, height, note = resolve_size("720p", "auto", image_size=(1024, 1536))
    assert (width, height) == (704, 1088) and height > width
    assert "auto (image 1024x1536)" in note
    assert resolve_size("1080p", "auto", image_size=(1920, 1080))[:2] == (1920, 1088)


def test_auto_without_an_image_is_refused():
    with pytest.raises(L2AError, match="aspect ratio 'auto' follows the input image: connect an image or pick a ratio"):
        resolve_size("720p", "auto")


def test_custom_snaps_with_a_note_and_ignores_the_ratio():
    assert resolve_size("custom", "auto", 768, 512) == (768, 512, "custom 768x512 → 768x512")
    width, height, note = resolve_size("custom", "16:9", 1000, 500)
    assert (width, height) == (992, 512)
    assert note == "custom 1000x500 → 992x512 (1000 rounded to 992, 500 rounded to 512: LTX-2 needs multiples of 32)"
    assert resolve_size("custom", "1:1", 544, 800, multiple=64)[:2] == (512, 768)


@pytest.mark.parametrize(("args", "message"), [
    (("custom", "16:9", 5000, 512), "width = 5000 is out of range"),
    (("custom", "16:9", 768, 16), "height = 16 is out of range"),
    (("custom", "16:9", 768, None), "needs width and height"),
    (("1080p", "auto", None, None, (4000, 100)), "pick a lower resolution or a less extreme aspect ratio"),
    (("1440p", "16:9"), "resolution '1440p' is unknown"),
    (("720p", "2:1"), "aspect ratio '2:1' is unknown"),
])
def test_bad_sizes_are_refused(args, message):
    with pytest.raises(L2AError, match=message):
        resolve_size(*args)


@pytest.mark.parametrize(("seconds", "fps", "frames", "note"), [
    (5, 24, 121, "5.00 s at 24 fps → 121 frames (5.04 s)"),
    (2, 25, 49, "2.00 s at 25 fps → 49 frames (1.96 s)"),
    (10, 30, 297, "10.00 s at 30 fps → 297 frames (9.90 s)"),  # 300 is nearer 297 than 305
    (20, 24, 481, "20.00 s at 24 fps → 481 frames (20.04 s)"),
    (0.1, 24, 9, "0.10 s at 24 fps → 9 frames (0.38 s)"),
])
def test_durations_become_8k_plus_1_frames(seconds, fps, frames, note):
    assert resolve_frames(seconds, 57, fps) == (frames, note)


def test_duration_zero_uses_frames():
    assert resolve_frames(0, 121, 24) == (121, "121 frames at 24 fps (5.04 s)")
    assert resolve_frames(0, 120, 24) == (121, "frames 120 → 121 (LTX-2 needs 8k+1 frames; 5.04 s at 24 fps)")


@pytest.mark.parametrize("fps", [0, 61, 0.5])
def test_fps_out_of_range_is_refused(fps):
    with pytest.raises(L2AError, match=f"fps = {fps:g} is out of range: use 1 to 60"):
        resolve_frames(5, 121, fps)


def test_more_than_20_seconds_is_refused():
    with pytest.raises(L2AError, match="LTX-2 generates up to 20 s in one pass; use 20 or less, or LTX-2 Extend"):
        resolve_frames(20.5, 121, 24)
    with pytest.raises(L2AError, match="one pass takes at most 1025 frames"):
        resolve_frames(20, 121, 60)
    with pytest.raises(L2AError, match="frames = 121 at 2 fps is 60.50 s"):
        resolve_frames(0, 121, 2)
    with pytest.raises(L2AError, match="is not valid"):
        resolve_frames(-1, 121, 24)


def test_node_returns_five_values_and_shows_the_report():
    out = _node()
    width, height, frames, fps, report = out["result"]
    assert (width, height, frames, fps) == (1280, 704, 121, 24.0)
    assert isinstance(fps, float)
    assert report == ("720p 16:9 → 1280x704 (720 rounded to 704: LTX-2 needs multiples of 32) | "
                      "5.00 s at 24 fps → 121 frames (5.04 s)")
    assert out["ui"]["text"] == [report]


def test_node_reads_the_first_image_for_auto():
    portrait = torch.zeros(2, 1536, 1024, 3)
    width, height, *_ = _node(aspect_ratio="auto", image=portrait)["result"]
    assert (width, height) == (704, 1088)
    with pytest.raises(L2AError, match="connect an image"):
        _node(aspect_ratio="auto")


@pytest.mark.parametrize("overrides", [
    {},
    {"multiscale": True},
    {"resolution": "480p", "aspect_ratio": "21:9", "multiscale": True, "duration_seconds": 10.0, "fps": 30.0},
    {"resolution": "1080p", "aspect_ratio": "9:16", "duration_seconds": 0.0, "frames": 100, "fps": 25.0},
    {"resolution": "custom", "width": 1000, "height": 544, "multiscale": True, "fps": 23.976},
])
def test_node_outputs_are_already_valid_geometry(overrides):
    width, height, frames, fps, _ = _node(**overrides)["result"]
    geometry = make_geometry(width, height, frames, fps, 64 if overrides.get("multiscale") else 32)
    assert geometry.notes == ()
    assert (geometry.width, geometry.height, geometry.num_frames) == (width, height, frames)
