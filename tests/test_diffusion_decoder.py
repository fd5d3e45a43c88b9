"""LTX-2.5's diffusion video decoder on tiny random weights: the attention equals diffusers' FlexAttention path, a
decode equals diffusers' LTX2VideoDiffusionDecodePipeline, tiles meet without a seam, the official file converts,
a conv VAE file is refused, progress and Cancel."""

import json
import math

import pytest
import torch

from ltx2_anywhere.pipelines import diffusion_decoder as dd
from ltx2_anywhere.pipelines import tiny_extras
from ltx2_anywhere.pipelines.decoding import Tiling
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.neighborhood import NeighborhoodSDPAProcessor, neighborhood_attention
from ltx2_anywhere.pipelines.weights import write_safetensors

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
# Tiled and untiled decodes agree to float rounding (the documented seam tolerance, README and Decode Video).
SEAM_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def decoder():
    return dd.DiffusionDecoder(tiny_extras.build_diffusion_decoder(), "tiny")


def _latent(*shape, seed=0):
    return torch.randn(1, 8, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("grid", "kernel"), [((5, 9, 11), (3, 7, 7)), ((11, 11, 12), (11, 11, 11))])
def test_neighborhood_attention_equals_diffusers_flex_processor(grid, kernel):
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttention

    torch.manual_seed(0)
    attn = LTX2VideoVaeNeighborhoodAttention(32, kernel, head_dim=8).eval()
    hidden = torch.randn(2, *grid, 32)
    with torch.no_grad():
        reference = attn(hidden)  # FlexAttention with NATTEN's window rule as a block mask
        attn.set_processor(NeighborhoodSDPAProcessor())
        ours = attn(hidden)
    assert torch.allclose(ours, reference, atol=1e-6, rtol=0)


def test_a_window_is_the_kernel_shifted_inside_the_grid():
    """Natten's rule, brute force: a query attends exactly the kernel-sized box centred on it, moved inward at the
    borders. One-hot values expose which keys each query mixed."""
    frames, height, width, kernel = 4, 5, 6, (3, 3, 5)
    tokens = frames * height * width
    value = torch.eye(tokens).view(1, frames, height, width, 1, tokens)
    query = torch.zeros(1, frames, height, width, 1, tokens)
    key = torch.zeros_like(query)
    weights = neighborhood_attention(query, key, value, kernel).view(tokens, tokens)
    for index in range(tokens):
        t, h, w = index // (height * width), index // width % height, index % width
        starts = [min(max(p - k // 2, 0), n - k) for p, k, n in zip((t, h, w), kernel, (frames, height, width))]
        box = torch.zeros(frames, height, width, dtype=torch.bool)
        box[starts[0]:starts[0] + 3, starts[1]:starts[1] + 3, starts[2]:starts[2] + 5] = True
        assert torch.equal(weights[index] > 0, box.flatten())
        assert torch.allclose(weights[index][box.flatten()], torch.full((45,), 1 / 45))


def test_attention_flops_are_the_work_sdpa_is_given(monkeypatch):
    """The cost formula (bench/diffusion_decode_cost.py, README) against the calls neighborhood_attention makes:
    4 x queries x keys x head_dim per head and batch row of every SDPA call."""
    import torch.nn.functional as F

    from ltx2_anywhere.pipelines.neighborhood import attention_flops

    calls = []
    sdpa = F.scaled_dot_product_attention

    def record(q, k, v, **kwargs):
        calls.append(4 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3])
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", record)
    for grid, kernel in (((5, 9, 11), (3, 7, 7)), ((11, 11, 12), (11, 11, 11)), ((4, 6, 13), (3, 5, 5))):
        calls.clear()
        q = torch.zeros(1, *grid, 2, 8)
        neighborhood_attention(q, q, q, kernel)
        boxes, windows = attention_flops(grid, kernel, 2, 8)
        assert sum(calls) == boxes and windows == 4 * q[..., 0, 0].numel() * math.prod(kernel) * 2 * 8 <= boxes


def test_decode_equals_diffusers_diffusion_decode_pipeline(decoder):
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2VideoDiffusionDecodePipeline
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttnProcessor

    latent = _latent(3, 3, 3)
    pipe = LTX2VideoDiffusionDecodePipeline(diffusion_decoder=decoder.module,
                                            scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    decoder.module.set_attn_processor(LTX2VideoVaeNeighborhoodAttnProcessor())  # diffusers' own
    reference = pipe(latent, generator=torch.Generator().manual_seed(7), output_type="pt",
                     denormalize=False).frames[0].permute(0, 2, 3, 1)
    frames = dd.decode_video_diffusion(decoder, latent, seed=7)
    assert frames.shape == (17, 96, 96, 3) == reference.shape
    assert (frames - reference).abs().max() <= 1e-5
    other_seed = dd.decode_video_diffusion(decoder, latent, seed=8)
    assert (other_seed - frames).abs().max() > 1e-3  # the decoder really denoises its own noise


@pytest.mark.parametrize("tiling", [Tiling(True, 64, 32, True, 16, 8), Tiling(False, temporal=True, tile_frames=8, frame_overlap=0)])
def test_tiles_meet_without_a_seam_and_progress_counts_every_block(decoder, tiling):
    latent = _latent(3, 3, 4, seed=1)
    untiled = dd.decode_video_diffusion(decoder, latent, seed=3)
    calls = []
    tiled = dd.decode_video_diffusion(decoder, latent, seed=3, tiling=tiling,
                                      on_progress=lambda done, total: calls.append((done, total)))
    assert tiled.shape == untiled.shape == (17, 96, 128, 3)
    assert (tiled - untiled).abs().max() <= SEAM_TOLERANCE
    total = calls[-1][1]
    assert total == dd.planned_blocks(decoder.module, latent.shape, tiling) > dd.planned_blocks(
        decoder.module, latent.shape)
    assert [done for done, _ in calls] == [*range(total), total]


def test_cancel_stops_the_decode_and_leaves_no_hooks(decoder):
    class Cancelled(Exception):
        pass

    def cancel_at_third(done, total):
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        dd.decode_video_diffusion(decoder, _latent(3, 3, 3), seed=0, tiling=Tiling(True, 64, 0),
                                  on_progress=cancel_at_third)
    blocks = [b for stage in decoder.module.decoder.det_stages for b in stage] + list(decoder.module.decoder.diff_blocks)
    assert all(not block._forward_pre_hooks for block in blocks)


def test_latents_smaller_than_the_kernels_are_padded_then_cropped(decoder):
    """ltx-core pads a latent below the decoder's minimum (time at the end, space on both sides) and crops the
    pixels: one latent frame gives one frame, a 2x2 latent 64x64 pixels."""
    assert dd.min_latent_shape(decoder.module.config) == (3, 3, 3)
    latent = _latent(1, 2, 2, seed=2)
    frames = dd.decode_video_diffusion(decoder, latent, seed=1)
    assert frames.shape == (1, 64, 64, 3)
    padded = torch.cat([latent, latent, latent], dim=2)
    padded = torch.cat([padded, padded[..., -1:, :]], dim=3)
    padded = torch.cat([padded, padded[..., -1:]], dim=4)
    whole = dd.decode_video_diffusion(decoder, padded, seed=1)
    assert torch.allclose(frames, whole[:1, :64, :64], atol=1e-6)


def test_official_file_converts_to_the_same_decoder(tmp_path, decoder):
    path = tiny_extras.write_diffusion_vae(tmp_path / dd.OFFICIAL_FILE)
    assert dd.video_vae_kind(path) == "diffusion"
    loaded = dd.load_diffusion_decoder(path, dtype="fp32")
    expected = decoder.module.state_dict()
    assert set(loaded.module.state_dict()) == set(expected)
    assert all(torch.equal(loaded.module.state_dict()[k], v) for k, v in expected.items())
    settings = lambda module: {k: v for k, v in module.config.items() if not k.startswith("_")}  # noqa: E731
    assert settings(loaded.module) == settings(decoder.module) and loaded.steps == 1


def test_gates_fold_qkv_splits_and_the_preview_head_is_dropped():
    """ltx-core's loader (video_vae/model_configurator.py): W <- g * W and b <- g * b for the linear after each static
    gate (gate_msa: attn.proj, gate_mlp: mlp.w_down, gate_ctx: context_proj), the fused qkv split in thirds, t_embedder
    mlp.0 / mlp.2 renamed, coarse_* dropped."""
    gate, weight, bias = torch.rand(4) + 0.5, torch.randn(4, 4), torch.randn(4)
    qkv = torch.randn(12, 4)
    state = {
        "vae.decoder.diff_blocks.0.gate_msa": gate, "vae.decoder.diff_blocks.0.attn.proj.weight": weight,
        "vae.decoder.diff_blocks.0.attn.proj.bias": bias, "decoder.diff_blocks.0.gate_ctx": gate,
        "decoder.diff_blocks.0.context_proj.weight": weight, "decoder.diff_blocks.0.gate_mlp": gate,
        "decoder.diff_blocks.0.mlp.w_down.weight": weight, "decoder.det_stages.0.0.attn.qkv.weight": qkv,
        "decoder.t_embedder.mlp.2.bias": bias, "decoder.coarse_head.weight": weight,
        "per_channel_statistics.mean-of-means": bias, "per_channel_statistics.channel": bias,
        "encoder.conv_in.weight": weight,
    }
    out = dd.convert_official(state)
    assert torch.allclose(out["decoder.diff_blocks.0.attn.to_out.0.weight"], gate[:, None] * weight)
    assert torch.allclose(out["decoder.diff_blocks.0.attn.to_out.0.bias"], gate * bias)
    assert torch.allclose(out["decoder.diff_blocks.0.context_proj.weight"], gate[:, None] * weight)
    assert torch.allclose(out["decoder.diff_blocks.0.mlp.w_down.weight"], gate[:, None] * weight)
    assert torch.equal(out["decoder.det_stages.0.0.attn.to_k.weight"], qkv[4:8])
    assert torch.equal(out["decoder.t_embedder.timestep_embedder.linear_2.bias"], bias)
    assert torch.equal(out["latents_mean"], bias)
    assert not any("coarse" in k or "gate" in k or "encoder" in k or "channel" in k for k in out)


def test_official_defaults_fill_a_sparse_configuration():
    """ltx-core DiffusionVideoDecoder's defaults (2 Euler steps, v prediction, timestep scale 1) for what the file
    leaves out; the released bundle states x0 in one step."""
    config = dd.diffusers_config({"decoder": {"head_dim": 64}})
    assert config["decoder_num_inference_steps"] == 2 and config["decoder_model_output_type"] == "v"
    assert config["decoder_stage5_kernel"] == (3, 7, 7) and config["decoder_timestep_scale_multiplier"] == 1.0
    assert len(config["decoder_stage_kernels"]) == 4 and config["latent_channels"] == 128


def test_a_diffusers_folder_loads_as_it_is(tmp_path, decoder):
    decoder.module.save_pretrained(tmp_path / "LTX-2.5-Diffusers" / dd.FOLDER)
    loaded = dd.load_diffusion_decoder(tmp_path / "LTX-2.5-Diffusers", dtype="fp32")
    assert all(torch.equal(loaded.module.state_dict()[k], v) for k, v in decoder.module.state_dict().items())
    with pytest.raises(L2AError, match="holds no diffusion decoder"):
        dd.load_diffusion_decoder(tmp_path)


def test_the_conv_vae_file_is_refused_with_the_file_to_use(tmp_path):
    conv = tmp_path / dd.CONV_FILE
    write_safetensors(conv, {"decoder.conv_in.conv.weight": torch.zeros(2, 2)},
                      {"config": json.dumps({"vae": {"_class_name": dd.CONV_CLASS}})})
    assert dd.video_vae_kind(conv) == "conv"
    with pytest.raises(L2AError, match=f"conv video VAE, which has no diffusion decoder: put {dd.OFFICIAL_FILE}"):
        dd.load_diffusion_decoder(conv)
    damaged = tmp_path / "damaged.safetensors"
    write_safetensors(damaged, {"decoder.conv_in.weight": torch.zeros(32, 8)},
                      {"config": json.dumps({"vae": dd.official_config(dict(tiny_extras.build_diffusion_decoder().config))})})
    with pytest.raises(L2AError, match="lacks .* tensors of the diffusion decoder"):
        dd.load_diffusion_decoder(damaged)
