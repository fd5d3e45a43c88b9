"""LoRAs on the tiny models: camera presets, stacking, fused and unfused runs, exact restore of the shared base
with no adapter left behind, file checks."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.lora import L2A_CameraLoRA, L2A_LoRA
from ltx2_anywhere.pipelines import conditioning, loading, lora
from ltx2_anywhere.pipelines.components import LTX2Model
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B, LTX23_22B, Guidance
from ltx2_anywhere.pipelines.model_files import find_file, require_file
from ltx2_anywhere.pipelines.sampling import SamplerSettings, sample

SETTINGS = SamplerSettings(width=96, height=64, num_frames=17, steps=2, seed=1)
CAMERA_DOLLY_IN = LTX2_19B.camera_loras["dolly_in"].name
DISTILLED = LTX2_19B.distilled_lora.name


@pytest.fixture(scope="module")
def env(tiny_models):
    """The tiny models folder, one shared fp32 model, a prompt, and the base latents before any LoRA was loaded."""
    root, written = tiny_models.root, tiny_models.written
    _comfy.configure(models_dir=root)
    model = loading.load_model(written["checkpoint_dev"], dtype="fp32")
    encoder = loading.load_text_encoder(written["text_encoder"], dtype="fp32")
    cond = conditioning.encode_text(encoder, "a robot dancing in the rain, camera dolly in")
    base = sample(model, cond, SETTINGS)
    return SimpleNamespace(root=root, written=written, model=model, cond=cond, base=base)


def run(model, cond):
    with lora.active_loras(model):
        return sample(model, cond, SETTINGS)


def max_diff(a, b) -> float:
    return max((a.video - b.video).abs().max().item(), (a.audio - b.audio).abs().max().item())


def is_base(env, result) -> bool:
    return torch.equal(result.video, env.base.video) and torch.equal(result.audio, env.base.audio)


def camera(model, preset="dolly_in", scale=1.0, lora_name=""):
    return L2A_CameraLoRA().apply(model, preset, scale, lora_name)[0]


def weights(model) -> dict:
    """The base weights by their plain names (PEFT moves a wrapped layer's weight under `base_layer`)."""
    return {f"{name}.{k.replace('.base_layer.', '.')}": v.detach().clone() for name in ("transformer", "connectors")
            for k, v in getattr(model, name).state_dict().items() if "lora_" not in k}


def test_tiny_loras_are_written_under_the_official_names(env, tiny_models_23):
    names = sorted(p.name for p in (env.root / "loras").iterdir())
    expected = sorted([f.name for f in [*LTX2_19B.camera_loras.values(), *LTX2_19B.ic_loras.values()]] + [DISTILLED])
    assert names == expected
    assert sorted(p.name for p in (tiny_models_23.root / "loras").iterdir()) == sorted(
        [LTX23_22B.distilled_lora.name, *(f.name for f in LTX23_22B.ic_loras.values())])
    assert "ltx-2-19b-lora-camera-control-dolly-in.safetensors" in names
    info = lora.read_lora_header(env.written["lora_distilled"])
    assert "connectors.text_proj_in.lora_A.weight" in info.shapes
    assert info.sources["connectors.text_proj_in.lora_A.weight"] == "text_embedding_projection.aggregate_embed.lora_A.weight"


def test_camera_scale_zero_is_the_base_and_scale_one_changes_it(env):
    assert camera(env.model, scale=0.0) is env.model
    assert camera(env.model, preset="none") is env.model
    assert is_base(env, run(camera(env.model, scale=0.0), env.cond))
    changed = run(camera(env.model, scale=1.0), env.cond)
    assert max_diff(changed, env.base) > 1e-3
    assert torch.isfinite(changed.video).all() and torch.isfinite(changed.audio).all()


def test_lora_node_strength_zero_is_the_base(env):
    model = L2A_LoRA().apply(env.model, CAMERA_DOLLY_IN, 0.0, False)[0]
    assert is_base(env, run(model, env.cond))


def test_leaving_active_loras_restores_the_base_bit_exactly(env):
    with_lora = camera(env.model, "dolly_out")
    unfused = dataclasses.replace(with_lora, source_stamps=())  # its file cannot be read again: adapters
    before = weights(env.model)
    for chain in (with_lora, unfused):
        assert not is_base(env, run(chain, env.cond))
        with pytest.raises(RuntimeError, match="cancelled"):  # an error or Cancel inside the run also restores it
            with lora.active_loras(chain):
                raise RuntimeError("cancelled")
        assert all(torch.equal(before[k], v) for k, v in weights(env.model).items())
        assert lora.adapter_bytes(env.model) == 0 and not getattr(env.model.transformer, "peft_config", None)
    assert is_base(env, sample(env.model, env.cond, SETTINGS))


def test_the_node_does_not_change_the_model_it_receives(env):
    out = L2A_LoRA().apply(env.model, DISTILLED, 0.5, False)[0]
    cam = camera(out, "jib_up", 0.8)
    assert env.model.loras == [] and len(out.loras) == 1 and len(cam.loras) == 2
    assert cam.transformer is env.model.transformer and out is not env.model
    assert (cam.loras[1].strength, cam.loras[1].fuse) == (0.8, False)
    assert cam.loras[1].name == LTX2_19B.camera_loras["jib_up"].name


def test_loras_stack_and_each_run_is_the_chain_it_names(env):
    a = camera(env.model, "dolly_left")
    b = L2A_LoRA().apply(env.model, DISTILLED, 0.7, False)[0]
    ab = L2A_LoRA().apply(a, DISTILLED, 0.7, False)[0]
    ra, rb, rab = run(a, env.cond), run(b, env.cond), run(ab, env.cond)
    assert min(max_diff(rab, ra), max_diff(rab, rb), max_diff(ra, rb)) > 1e-3
    assert torch.equal(run(ab, env.cond).video, rab.video)
    assert is_base(env, sample(env.model, env.cond, SETTINGS))


@pytest.fixture(scope="module", params=["2.0", "2.3"])
def family_env(request):
    """Each tiny family's fp32 model, a prompt, and its distilled LoRA (the LoRA that touches the most layers)."""
    written = request.getfixturevalue("tiny_models" if request.param == "2.0" else "tiny_models_23").written
    model = loading.load_model(written["checkpoint_dev"], dtype="fp32")
    cond = conditioning.encode_text(loading.load_text_encoder(written["text_encoder"], dtype="fp32"), "a cat walks")
    return SimpleNamespace(model=model, cond=cond, lora=written["lora_distilled"])


def test_fused_and_unfused_runs_agree_and_leave_the_base_and_no_adapter(family_env):
    """Fused: the weights are merged and read back from the checkpoint; unfused (here: a model whose file cannot be
    read again): PEFT adapters, removed after the run. Either way the base comes back exactly, with no adapter."""
    model, settings = family_env.model, SamplerSettings(width=64, height=64, num_frames=9, steps=2, seed=1,
                                                          guidance=Guidance.off())
    fused = lora.add_lora(model, family_env.lora, 0.7)
    unfused = dataclasses.replace(fused, source_stamps=())
    assert lora.lora_note(fused).endswith("0.7 (fused)")
    assert "unfused: restoring fused weights would need a copy of them in memory" in lora.lora_note(unfused)
    before = weights(model)
    base = sample(model, family_env.cond, settings)
    seen = {}

    def during(chain, key):
        with lora.active_loras(chain):
            seen[key] = (lora.adapter_bytes(model), sum(not torch.equal(before[k], v) for k, v in weights(model).items()))
            return sample(chain, family_env.cond, settings)

    reference, result = during(unfused, "unfused"), during(fused, "fused")
    assert seen["unfused"][0] > 0 and seen["unfused"][1] == 0  # adapters beside untouched weights
    assert seen["fused"] == (0, seen["fused"][1]) and seen["fused"][1] > 0  # merged weights, no adapter at all
    assert max_diff(result, reference) <= 1e-5 and max_diff(result, base) > 1e-3
    assert all(torch.equal(before[k], v) for k, v in weights(model).items())
    assert lora.adapter_bytes(model) == 0 and not getattr(model.transformer, "peft_config", None)
    assert torch.equal(sample(model, family_env.cond, settings).video, base.video)


def test_fused_bf16_weights_come_back_bit_exact_from_the_file(env):
    """Unmerging in bf16 would not give the weights back; reading them again from the checkpoint does."""
    bf16 = loading.load_model(env.written["checkpoint_dev"], dtype="bf16")
    fused = L2A_LoRA().apply(camera(bf16, "jib_down"), DISTILLED, 1.0, True)[0]
    before = weights(bf16)
    with lora.active_loras(fused):
        during = weights(bf16)
    after = weights(bf16)
    assert any(not torch.equal(before[k], during[k]) for k in before)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_kohya_names_and_alpha_give_the_same_lora(env, tmp_path):
    from safetensors.torch import load_file

    state = load_file(str(env.written["lora_static"]))
    kohya = {}
    for key, value in state.items():
        if key.endswith(".lora_A.weight"):
            module = key.removesuffix(".lora_A.weight")
            kohya[f"{module}.lora_down.weight"] = value
            kohya[f"{module}.lora_up.weight"] = state[f"{module}.lora_B.weight"] * 2
            kohya[f"{module}.alpha"] = torch.tensor(value.shape[0] / 2)
    path = lora.save_lora(tmp_path / "static-kohya.safetensors", kohya)
    official = run(lora.add_lora(env.model, env.written["lora_static"]), env.cond)
    converted = run(lora.add_lora(env.model, path), env.cond)
    assert max_diff(official, converted) <= 1e-5


def test_fp8_weights_take_unfused_loras_but_refuse_fuse(env):
    fp8 = loading.load_model(env.written["checkpoint_dev"], dtype="fp32", fp8=True)
    one_step = SamplerSettings(width=96, height=64, num_frames=17, steps=1, seed=1)  # fp8 is slow on the CPU
    base = sample(fp8, env.cond, one_step)
    with lora.active_loras(camera(fp8)) as with_lora:  # PEFT would give the adapter the fp8 storage dtype
        changed = sample(with_lora, env.cond, one_step)
    assert torch.isfinite(changed.video).all() and max_diff(changed, base) > 1e-3
    assert "(unfused: the model stores its weights in fp8" in changed.report
    assert torch.equal(sample(fp8, env.cond, one_step).video, base.video) and lora.adapter_bytes(fp8) == 0
    with pytest.raises(L2AError, match="fp8"):
        L2A_LoRA().apply(fp8, CAMERA_DOLLY_IN, 1.0, True)


def test_no_loras_is_a_no_op_and_nesting_is_checked(env, monkeypatch):
    monkeypatch.setattr(lora, "_activate", lambda *a: pytest.fail("touched the modules"))
    with lora.active_loras(env.model) as model:
        assert model is env.model
    monkeypatch.undo()
    cam = camera(env.model)
    with lora.active_loras(cam):
        with lora.active_loras(cam):
            pass
        with pytest.raises(RuntimeError, match="different LoRA chain"):
            with lora.active_loras(camera(env.model, "static")):
                pass


def test_preset_files_are_found_case_insensitively_in_sub_folders(tmp_path):
    folder = tmp_path / "loras"
    (folder / "camera" / "ltx2").mkdir(parents=True)
    target = folder / "camera" / "ltx2" / "LTX-2-19B-LoRA-Camera-Control-Jib-Up.SafeTensors"
    target.write_bytes(b"")
    assert lora.camera_lora_file(LTX2_19B, "jib_up", [folder]) == target
    assert find_file("ltx-2-19b-lora-camera-control-jib-up.safetensors", [tmp_path / "none", folder]) == target
    with pytest.raises(L2AError) as error:
        lora.camera_lora_file(LTX2_19B, "jib_down", [folder])
    message = str(error.value)
    assert "ltx-2-19b-lora-camera-control-jib-down.safetensors" in message
    assert "https://huggingface.co/Lightricks/LTX-2-19b-LoRA-Camera-Control-Jib-Down" in message
    assert str(folder) in message
    with pytest.raises(L2AError, match="Stage 2 needs 'ltx-2-19b-distilled-lora-384.safetensors'.*Download it from "
                       "https://huggingface.co/Lightricks/LTX-2/resolve/main/ltx-2-19b-distilled-lora-384"):
        require_file(LTX2_19B.distilled_lora, [folder], "Stage 2")
    with pytest.raises(L2AError, match="camera-control LoRAs exist for LTX-2 19B only, but the loaded model is LTX-2.3"):
        lora.camera_lora_file(LTX23_22B, "jib_up", [folder])


def test_camera_node_finds_files_takes_an_explicit_file_and_names_the_download(env, tmp_path):
    assert Path(camera(env.model, "dolly_in").loras[0].path).name == CAMERA_DOLLY_IN
    explicit = camera(env.model, "dolly_in", lora_name="LTX-2-19B-LORA-CAMERA-CONTROL-STATIC.SAFETENSORS")
    assert explicit.loras[0].name == LTX2_19B.camera_loras["static"].name
    empty = tmp_path / "empty_models"
    (empty / "loras").mkdir(parents=True)
    _comfy.configure(models_dir=empty)
    try:
        with pytest.raises(L2AError, match="Lightricks/LTX-2-19b-LoRA-Camera-Control-Dolly-Out"):
            camera(env.model, "dolly_out")
        with pytest.raises(L2AError, match="not found"):
            L2A_LoRA().apply(env.model, "missing.safetensors", 1.0, False)
    finally:
        _comfy.configure(models_dir=env.root)
    family_23 = _meta_model(None, LTX23_22B)
    with pytest.raises(L2AError, match="exist for LTX-2 19B only"):
        camera(family_23, "static")


def _meta_model(kind, family):
    """An LTX2Model around meta modules of a real layout: enough for the header-only checks."""
    modules = lora.reference_modules(kind) if kind else {"transformer": None, "connectors": None}
    return LTX2Model(transformer=modules["transformer"], vae=None, audio_vae=None, vocoder=None,
                     connectors=modules["connectors"], scheduler_config={}, family=family, variant="dev",
                     dtype=torch.bfloat16, device="cpu", source="meta")


def test_a_lora_for_another_family_is_refused_with_a_clear_message(env, tmp_path):
    ref_19b = lora.reference_modules("2.0")
    for_19b = lora.save_lora(
        tmp_path / "19b" / CAMERA_DOLLY_IN,
        lora.random_lora(ref_19b, r"^transformer\.transformer_blocks\.47\.attn1\.to_(q|k)$", 1, 0),
    )
    with pytest.raises(L2AError) as error:
        lora.add_lora(env.model, for_19b)
    assert f"'{CAMERA_DOLLY_IN}' is a LoRA for LTX-2 19B but the loaded model is LTX-2 tiny" in str(error.value)

    # A 2.3 LoRA (gated attention) on the real 19B layout, checked against meta modules of the 19B.
    for_23 = lora.save_lora(
        tmp_path / "ltx-2.3-style.safetensors",
        lora.random_lora(lora.reference_modules("2.3"), r"^transformer\.transformer_blocks\.0\.attn1\.(to_q|to_gate_logits)$", 2, 0),
    )
    model_19b = _meta_model("2.0", LTX2_19B)
    with pytest.raises(L2AError) as error:
        lora.check_lora(for_23, model_19b)
    message = str(error.value)
    assert "'ltx-2.3-style.safetensors' is a LoRA for LTX-2.3 22B but the loaded model is LTX-2 19B" in message
    assert "camera-control LoRAs exist for LTX-2 19B only" in message
    assert lora.check_lora(for_19b, model_19b).adapter

    # Same shapes, but the official file name says 2.3: its layers fit, so it is accepted (the key fit decides, not
    # the name: Lightricks says 2.3 LoRAs work on 2.5), and the report says what its name states.
    named_23 = lora.save_lora(tmp_path / "ltx-2.3-22b-lora-x.safetensors", lora.random_lora(
        lora.reference_modules("2.3"), r"^transformer\.transformer_blocks\.0\.attn1\.to_q$", 1, 0))
    info = lora.check_lora(named_23, model_19b)
    assert lora.fit_notes(model_19b, [info]) == [
        "ltx-2.3-22b-lora-x.safetensors is named for LTX-2.3 22B; its layers fit LTX-2 19B"]

    # The tiny camera LoRA does not fit the real 19B either.
    with pytest.raises(L2AError, match="is a LoRA for LTX-2 tiny"):
        lora.check_lora(env.written["lora_dolly_in"], model_19b)


def test_files_that_are_not_ltx2_loras_are_refused(env, tmp_path):
    with pytest.raises(L2AError, match="is a full LTX-2 checkpoint, not a LoRA"):
        lora.add_lora(env.model, env.written["checkpoint_dev"])
    pickle = tmp_path / "style.pt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(L2AError, match="only .safetensors"):
        lora.add_lora(env.model, pickle)
    plain = lora.save_lora(tmp_path / "plain.safetensors", {"weight": torch.zeros(2, 2)})
    with pytest.raises(L2AError, match="is not a LoRA"):
        lora.add_lora(env.model, plain)
    kohya_sdxl = lora.save_lora(tmp_path / "sdxl.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320)})
    with pytest.raises(L2AError, match="not an LTX-2 LoRA"):
        lora.add_lora(env.model, kohya_sdxl)
    flux = lora.save_lora(tmp_path / "flux.safetensors", {
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": torch.zeros(4, 3072),
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": torch.zeros(9216, 4)})
    with pytest.raises(L2AError, match="does not fit the loaded LTX-2 tiny.*do not exist in the model"):
        lora.add_lora(env.model, flux)


def test_a_checkpoint_replaced_during_a_fused_run_is_reported(env, tmp_path):
    import shutil

    path = tmp_path / "ltx-2-19b-dev.safetensors"
    shutil.copyfile(env.written["checkpoint_dev"], path)
    model = loading.load_model(path, dtype="fp32")
    with pytest.raises(L2AError, match="changed on disk since the model was loaded.*stay merged.*load the model again"):
        with lora.active_loras(camera(model, "static")):
            path.write_bytes(path.read_bytes())
    assert "unfused: restoring fused weights would need a copy" in lora.lora_note(camera(model, "static"))
