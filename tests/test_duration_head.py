"""LTX-2.5's duration head: the official file loads into diffusers' LTX2DurationHead and predicts what ltx-core's
head predicts, and seconds become frames by ltx-pipelines' rule (8k+1, within the bounds)."""

import json

import pytest
import torch
from torch import nn

from ltx2_anywhere.pipelines import duration as du
from ltx2_anywhere.pipelines import tiny_extras
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.weights import write_safetensors


class OfficialHead(nn.Module):
    """ltx-core `duration_head/duration_head.py` (1.2.0), written out: modality projections plus learned modality
    embeddings, one torch MultiheadAttention pooling learned queries over both streams, tanh-GELU MLP, exp."""

    def __init__(self, video_dim, audio_dim, pooler, queries, heads, mlp):
        super().__init__()
        self.video_input_proj, self.audio_input_proj = nn.Linear(video_dim, pooler), nn.Linear(audio_dim, pooler)
        self.video_modality_emb = nn.Parameter(torch.randn(pooler) * 0.02)
        self.audio_modality_emb = nn.Parameter(torch.randn(pooler) * 0.02)
        self.attention_pooler = nn.Module()
        self.attention_pooler.query_tokens = nn.Parameter(torch.randn(queries, pooler) * 0.02)
        self.attention_pooler.cross_attn = nn.MultiheadAttention(pooler, heads, batch_first=True)
        self.mlp_hidden, self.mlp_out = nn.Linear(pooler * queries, mlp), nn.Linear(mlp, 1)

    def forward(self, video, audio):
        tokens = torch.cat([self.video_input_proj(video) + self.video_modality_emb,
                            self.audio_input_proj(audio) + self.audio_modality_emb], dim=1)
        queries = self.attention_pooler.query_tokens.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        pooled, _ = self.attention_pooler.cross_attn(queries, tokens, tokens, need_weights=False)
        hidden = nn.functional.gelu(self.mlp_hidden(pooled.reshape(pooled.shape[0], -1)), approximate="tanh")
        return self.mlp_out(hidden).squeeze(-1).exp()


def test_the_official_file_predicts_what_ltx_core_predicts(tmp_path):
    torch.manual_seed(0)
    official = OfficialHead(16, 8, 16, 2, 4, 12).eval()
    with torch.no_grad():
        for parameter in official.parameters():
            parameter.normal_(0, 0.3)
    path = write_safetensors(tmp_path / du.OFFICIAL_FILE,
                             {du.PREFIX + k: v for k, v in official.state_dict().items()},
                             {"config": json.dumps({"duration_head": {"num_pooler_heads": 4}})})
    assert du.inspect_duration_head(path) == {
        "video_cross_attention_dim": 16, "audio_cross_attention_dim": 8, "pooler_hidden_dim": 16, "num_queries": 2,
        "num_pooler_heads": 4, "mlp_hidden_dim": 12}
    head = du.load_duration_head(path)
    video, audio = torch.randn(1, 9, 16), torch.randn(1, 5, 8)
    with torch.no_grad():
        assert torch.allclose(head.module(video, audio), official(video, audio), rtol=1e-5, atol=0)


def test_the_tiny_head_round_trips_through_the_official_layout(tmp_path):
    path = tiny_extras.write_duration_head(tmp_path / du.OFFICIAL_FILE)
    loaded = du.load_duration_head(path).module
    built = tiny_extras.build_duration_head()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in built.state_dict().items())
    built.save_pretrained(tmp_path / "diffusers" / du.FOLDER)
    folder = du.load_duration_head(tmp_path / "diffusers").module
    assert all(torch.equal(folder.state_dict()[k], v) for k, v in built.state_dict().items())


@pytest.mark.parametrize(("seconds", "fps", "frames"), [
    (5.0, 24, 113),     # round(120) floored to the grid
    (0.2, 24, 25),      # below 1 s: clamped to 24 frames, floored to 17 < 24, so one grid step up
    (1.0, 24, 25),
    (25.0, 24, 473),    # above 20 s: clamped to 480, floored
    (20.0, 25, 497),
    (3.3, 30, 97),      # round(99) floored
    (7.77, 23.976, 185),
])
def test_seconds_become_frames_as_ltx_pipelines_rounds_them(seconds, fps, frames):
    """ltx-pipelines `seconds_to_clamped_num_frames`: clamp round(s*fps) to [round(1*fps), round(20*fps)], floor to
    8k+1, one step up when that fell below the minimum."""
    assert du.seconds_to_frames(seconds, fps) == frames


def test_every_prediction_lands_on_the_grid_inside_the_bounds():
    for fps in (24, 25, 30, 50):
        for tenth in range(0, 300):
            frames = du.seconds_to_frames(tenth / 10, fps)
            assert (frames - 1) % 8 == 0 and fps <= frames <= 20 * fps + 1
    assert du.seconds_to_frames(1.0, 24, min_seconds=1.0, max_seconds=1.02) == 25  # no grid point inside: nearest


def test_predict_duration_reports_the_raw_prediction_and_the_clamp():
    head = du.DurationHead(tiny_extras.build_duration_head(), "tiny")
    with torch.no_grad():
        head.module.mlp_out.bias.fill_(float(torch.log(torch.tensor(42.0))))
        head.module.mlp_out.weight.zero_()
    result = du.predict_duration(head, torch.randn(1, 6, 16), torch.randn(1, 6, 8), 24.0)
    assert result.frames == 473 and result.clamped and abs(result.seconds - 42.0) < 1e-3
    assert "473 frames (19.71 s at 24 fps), clamped from 42.00 s" in result.describe()
    with pytest.raises(L2AError, match="bounds 5-2 s are invalid"):
        du.predict_duration(head, torch.randn(1, 6, 16), torch.randn(1, 6, 8), 24.0, 5, 2)


def test_a_file_of_another_kind_is_refused_with_the_file_to_use(tmp_path):
    other = write_safetensors(tmp_path / "other.safetensors", {"weight": torch.zeros(2)})
    with pytest.raises(L2AError, match=f"not LTX-2.5's duration head .*use {du.OFFICIAL_FILE}"):
        du.load_duration_head(other)
    with pytest.raises(L2AError, match="a folder without config.json"):
        du.load_duration_head(tmp_path)
