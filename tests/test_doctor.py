"""The model doctor on the tiny model written under the real file names: present, missing, misplaced and wrong files,
the node and the command line. The doctor reads headers only, so each test works on its own copy of the folder."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from ltx2_anywhere import cli
from ltx2_anywhere.nodes import NODE_CLASS_MAPPINGS, _comfy
from ltx2_anywhere.pipelines import doctor
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B, LTX23_22B, LTX25_22B
from ltx2_anywhere.pipelines.gemma_single_file import COMFY_FILE
from ltx2_anywhere.pipelines.loading import inspect_checkpoint

CHECKPOINT = LTX2_19B.checkpoints["dev"].name
DOLLY_IN = LTX2_19B.camera_loras["dolly_in"].name
CANNY_IC_LORA = LTX2_19B.ic_loras["canny"].name
DISTILLED_LORA = LTX2_19B.distilled_lora.name
UPSAMPLER_FILE = LTX2_19B.upsampler.name
TEXT_ENCODER_NAME = LTX2_19B.text_encoder.folder.name
HOSTED = ("ltx2_hosted_fal_image_to_video", "ltx2_hosted_wavespeed_extend", "ltx2_hosted_ltx_audio_to_video",
          "ltx2_hosted_ltx_retake")
# Its local side is LTX-2.5, which the tiny models (LTX-2 19B family) do not stand in for: the doctor names its files.
LOCAL_25 = "ltx2_local_25_with_hosted_25_fallback"


@pytest.fixture
def models(tiny_models, tmp_path):
    """A copy of the tiny models folder that a test may change."""
    root = tmp_path / "models"
    shutil.copytree(tiny_models.root, root)
    return root


def diagnose_one(workflow_name, root):
    results = doctor.diagnose_workflows([doctor.WORKFLOWS_DIR / f"{workflow_name}.json"], doctor.folders_under(root))
    return {f.requirement.name: f for f in results[workflow_name]}


def loader(node_type, *values, node_id=1, mode=0):
    return {"id": node_id, "type": node_type, "mode": mode, "widgets_values": list(values), "properties": {}}


def test_every_shipped_workflow_is_right_on_the_tiny_model(tiny_models_20_25):
    results = doctor.diagnose_workflows(doctor.shipped_workflows(), doctor.folders_under(tiny_models_20_25))
    assert set(results) == {p.stem for p in doctor.WORKFLOWS_DIR.glob("*.json")}
    for name, findings in results.items():
        if name in HOSTED:
            assert findings == []
            continue
        kinds = {f.requirement.directory: f for f in findings}
        for finding in findings:
            assert finding.status == "present", (name, finding)
            assert finding.fix == ""
        if name.startswith("ltx25") or name == LOCAL_25:  # the split release: transformer, VAE files, Gemma 4 encoder
            variant = "distilled" if "distilled" in name or name == LOCAL_25 else "dev"
            assert kinds["diffusion_models"].requirement.name == LTX25_22B.checkpoints[variant].name
            assert kinds["diffusion_models"].family == "2.5"
            assert {f.requirement.name for f in findings if f.requirement.directory == "vae"} == {
                f.name for f in LTX25_22B.parts.values()}
            assert kinds["text_encoders"].requirement.name == LTX25_22B.text_encoder.files[0].name
            continue
        assert kinds["checkpoints"].requirement.name == CHECKPOINT
        assert kinds["text_encoders"].requirement.name == TEXT_ENCODER_NAME
        assert kinds["checkpoints"].family == "2.0"
    multiscale = {f.requirement.name: f for f in results["ltx2_multiscale"]}
    assert multiscale[UPSAMPLER_FILE].family == multiscale[DISTILLED_LORA].family == "2.0"
    camera = {f.requirement.name: f for f in results["ltx2_camera_lora"]}
    assert camera[DOLLY_IN].family == "2.0" and CHECKPOINT in camera[DOLLY_IN].message
    canny = {f.requirement.name: f for f in results["ltx2_ic_lora_canny"]}
    assert canny[CANNY_IC_LORA].family == "2.0" and canny[CANNY_IC_LORA].requirement.url.endswith(CANNY_IC_LORA)
    assert doctor.all_right(results)
    report = doctor.report_text(results)
    assert "(no local model files: hosted backends only)" in report and "✗" not in report
    assert report.splitlines()[-1] == "14 present, 0 missing, 0 in the wrong folder"


def test_the_doctor_knows_ltx25s_wrong_encoder_and_a_missing_vae(tiny_models_20_25, tmp_path):
    """Gemma 3 picked for LTX-2.5 (same feature shape: noise) is the wrong family's encoder; a VAE file the "auto"
    widget needs is named with its folder and download."""
    workflow = json.loads((doctor.WORKFLOWS_DIR / "ltx25_text_to_video.json").read_text())
    encoder = next(n for n in workflow["nodes"] if n["type"] == "L2A_TextEncoderLoader")
    encoder["widgets_values"][0], encoder["properties"]["models"] = COMFY_FILE, []
    path = tmp_path / "gemma3_for_25.json"
    path.write_text(json.dumps(workflow))
    root = tmp_path / "models"
    shutil.copytree(tiny_models_20_25, root, symlinks=True)
    (root / "vae" / LTX25_22B.parts["audio_vae"].name).unlink()
    findings = {f.requirement.name: f for f in doctor.diagnose_workflows([path], doctor.folders_under(root))[path.stem]}
    wrong = findings[COMFY_FILE]
    assert wrong.status == "wrong_family" and "cannot encode prompts for 'ltx-2.5-22b-dev-transformer-bf16" in (
        wrong.message) and "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors" in wrong.fix
    missing = findings[LTX25_22B.parts["audio_vae"].name]
    assert missing.status == "missing" and missing.fix == (
        f"download {missing.requirement.name} from {LTX25_22B.parts['audio_vae'].url} into models/vae/")


def test_requirements_come_from_properties_and_widgets():
    camera = json.loads((doctor.WORKFLOWS_DIR / "ltx2_camera_lora.json").read_text())
    lora = next(r for r in doctor.required_models(camera) if r.directory == "loras")
    assert (lora.name, lora.node_type, lora.node_id) == (DOLLY_IN, "L2A_CameraLoRA", "4")
    assert lora.url.endswith("/Lightricks/LTX-2-19b-LoRA-Camera-Control-Dolly-In/resolve/main/" + DOLLY_IN)
    fallback = json.loads((doctor.WORKFLOWS_DIR / "ltx2_local_with_hosted_fallback.json").read_text())
    assert [(r.directory, r.name) for r in doctor.required_models(fallback)] == [
        ("checkpoints", CHECKPOINT), ("text_encoders", TEXT_ENCODER_NAME)]

    workflow = {"nodes": [
        loader("L2A_CameraLoRA", "jib_up", 1.0, "", node_id=1),
        loader("L2A_CameraLoRA", "static", 0.0, "", node_id=2),  # scale 0: no LoRA is loaded
        loader("L2A_CameraLoRA", "none", 1.0, "", node_id=3),
        loader("L2A_CameraLoRA", "dolly_out", 1.0, "my/camera.safetensors", node_id=4),
        loader("L2A_ModelLoader", "diffusers/ltx-2-folder", "bf16", False, node_id=5),
        loader("L2A_LoRA", "muted.safetensors", 1.0, False, node_id=6, mode=4),
        loader("L2A_LocalBackend", CHECKPOINT, COMFY_FILE, "bf16", False, UPSAMPLER_FILE, node_id=7),
    ]}
    found = [(r.directory, r.name, r.node_id) for r in doctor.required_models(workflow)]
    assert found == [
        ("loras", LTX2_19B.camera_loras["jib_up"].name, "1"), ("loras", "my/camera.safetensors", "4"),
        ("diffusers", "ltx-2-folder", "5"), ("checkpoints", CHECKPOINT, "7"), ("text_encoders", COMFY_FILE, "7"),
        ("latent_upscale_models", UPSAMPLER_FILE, "7"),
    ]
    urls = {r.name: r.url for r in doctor.required_models(workflow)}
    jib_up = LTX2_19B.camera_loras["jib_up"].name
    assert urls[jib_up].endswith(f"/resolve/main/{jib_up}")
    assert urls["my/camera.safetensors"] == "" and "Comfy-Org/ltx-2" in urls[COMFY_FILE]

    api = {"7": {"class_type": "L2A_UpsamplerLoader", "inputs": {"upsampler_name": UPSAMPLER_FILE, "dtype": "bf16"}},
           "8": {"class_type": "L2A_LoRA", "inputs": {"lora_name": ["9", 0], "model": ["1", 0]}}}
    assert [(r.directory, r.name) for r in doctor.required_models(api)] == [("latent_upscale_models", UPSAMPLER_FILE)]


def test_upsampler_in_upscale_models_is_the_wrong_folder(models):
    (models / "upscale_models").mkdir()
    shutil.move(models / "latent_upscale_models" / UPSAMPLER_FILE, models / "upscale_models" / UPSAMPLER_FILE)
    finding = diagnose_one("ltx2_multiscale", models)[UPSAMPLER_FILE]
    assert finding.status == "wrong_folder"
    assert finding.found_at == models / "upscale_models" / UPSAMPLER_FILE
    assert finding.fix == f"move {models / 'upscale_models' / UPSAMPLER_FILE} to {models / 'latent_upscale_models'}/"
    assert "upscale_models" in finding.message


def test_lora_in_checkpoints_is_the_wrong_folder_and_lookups_ignore_case_and_sub_folders(models):
    shutil.move(models / "loras" / DISTILLED_LORA, models / "checkpoints" / DISTILLED_LORA)
    assert diagnose_one("ltx2_multiscale", models)[DISTILLED_LORA].status == "wrong_folder"
    (models / "loras" / "camera").mkdir()
    shutil.move(models / "loras" / DOLLY_IN, models / "loras" / "camera" / DOLLY_IN.upper())
    finding = diagnose_one("ltx2_camera_lora", models)[DOLLY_IN]
    assert finding.status == "present" and finding.found_at == models / "loras" / "camera" / DOLLY_IN.upper()


def test_missing_camera_lora_says_what_to_download_from_where(models):
    (models / "loras" / DOLLY_IN).unlink()
    finding = diagnose_one("ltx2_camera_lora", models)[DOLLY_IN]
    assert finding.status == "missing" and finding.found_at is None
    repo = LTX2_19B.camera_loras["dolly_in"].repo
    assert finding.fix == f"download {DOLLY_IN} from https://huggingface.co/{repo}/resolve/main/{DOLLY_IN} into models/loras/"
    report = doctor.report_text({"ltx2_camera_lora": list(diagnose_one("ltx2_camera_lora", models).values())})
    assert f"✗ loras/{DOLLY_IN}" in report and report.splitlines()[-1] == "2 present, 1 missing, 0 in the wrong folder"


def test_sdxl_file_under_the_checkpoint_name_is_not_ltx2(models):
    path = models / "checkpoints" / CHECKPOINT
    save_file({
        "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(4, 4),
    }, str(path))
    with pytest.raises(L2AError) as loader_error:
        inspect_checkpoint(path)
    findings = diagnose_one("ltx2_camera_lora", models)
    assert findings[CHECKPOINT].status == "not_ltx2"
    assert findings[CHECKPOINT].message == str(loader_error.value)
    assert "Stable Diffusion / SDXL" in findings[CHECKPOINT].message and "download" in findings[CHECKPOINT].fix
    lora = findings[DOLLY_IN]  # no usable checkpoint: the LoRA is checked from its own header and name only
    assert lora.status == "present" and "by its name" in lora.message and lora.family == "2.0"


def test_a_checkpoint_under_a_lora_name_is_not_ltx2(models):
    shutil.copy(models / "checkpoints" / CHECKPOINT, models / "loras" / DOLLY_IN)
    finding = diagnose_one("ltx2_camera_lora", models)[DOLLY_IN]
    assert finding.status == "not_ltx2" and "not a LoRA" in finding.message


def test_wrong_family(models):
    shutil.copy(models / "checkpoints" / CHECKPOINT, models / "checkpoints" / "ltx-2.3-22b-dev.safetensors")
    save_file({  # an LTX-2 LoRA by its keys whose shapes fit no layer of the tiny model
        "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 999),
        "diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.zeros(999, 4),
    }, str(models / "loras" / "other-model.safetensors"))
    workflow = {"nodes": [loader("L2A_ModelLoader", CHECKPOINT, "bf16", False, node_id=1),
                          loader("L2A_LoRA", "other-model.safetensors", 1.0, False, node_id=2)]}
    lora = doctor.diagnose(doctor.required_models(workflow), doctor.folders_under(models))[1]
    assert lora.status == "wrong_family" and "does not fit" in lora.message and CHECKPOINT in lora.message
    renamed = doctor.Requirement("ltx-2.3-22b-dev.safetensors", "checkpoints", "", "L2A_ModelLoader", "1")
    finding = doctor.diagnose([renamed], doctor.folders_under(models))[0]
    assert finding.status == "wrong_family" and finding.family == "2.0" and "LTX-2.3 22B" in finding.message


def test_text_encoder_folder_and_single_file(models):
    folder = doctor.Requirement(TEXT_ENCODER_NAME, "text_encoders", "", "L2A_TextEncoderLoader", "1")
    single = doctor.Requirement(COMFY_FILE, "text_encoders", "", "L2A_TextEncoderLoader", "2")
    found = doctor.diagnose([folder, single], doctor.folders_under(models))
    assert [f.status for f in found] == ["present", "present"]
    assert found[0].message == "Gemma 3 transformers folder" and found[1].message.startswith("Gemma 3 single file")
    shutil.rmtree(models / "text_encoders" / TEXT_ENCODER_NAME)
    missing = doctor.diagnose([folder], doctor.folders_under(models))[0]
    assert missing.status == "missing" and missing.fix.startswith(f"pick {COMFY_FILE}")
    (models / "text_encoders" / "not-gemma").mkdir()
    (models / "text_encoders" / "not-gemma" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    other = doctor.Requirement("not-gemma", "text_encoders", "", "L2A_TextEncoderLoader", "3")
    finding = doctor.diagnose([other], doctor.folders_under(models))[0]
    assert finding.status == "not_ltx2" and "'llama' model, not Gemma 3" in finding.message


def test_node_reports_on_the_comfy_model_folders(models, monkeypatch):
    monkeypatch.setitem(_comfy._settings, "models_dir", models)
    node = NODE_CLASS_MAPPINGS["L2A_ModelDoctor"]
    choices = node.INPUT_TYPES()["required"]["workflow"][0]
    assert choices[0] == doctor.ALL_WORKFLOWS and "ltx2_multiscale" in choices
    (models / "loras" / DISTILLED_LORA).unlink()
    out = node().check("ltx2_multiscale")
    report = out["result"][0]
    assert out["ui"]["text"] == [report]
    assert report.startswith("ltx2_multiscale\n") and f"✗ loras/{DISTILLED_LORA}" in report
    assert report.splitlines()[-1] == "3 present, 1 missing, 0 in the wrong folder"
    assert "ltx2_camera_lora" in node().check(doctor.ALL_WORKFLOWS)["result"][0]


def test_cli_exit_codes(models, tiny_models_20_25, tmp_path, monkeypatch, capsys):
    assert cli.main(["doctor", "--models-dir", str(tiny_models_20_25)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("14 present, 0 missing, 0 in the wrong folder")
    (models / "loras" / DOLLY_IN).unlink()
    monkeypatch.setenv("LTX2_ANYWHERE_MODELS_DIR", str(models))
    assert cli.main(["doctor"]) == 1
    assert f"download {DOLLY_IN}" in capsys.readouterr().out
    multiscale = str(doctor.WORKFLOWS_DIR / "ltx2_multiscale.json")
    assert cli.main(["doctor", "--workflow", multiscale]) == 0
    assert "ltx2_camera_lora" not in capsys.readouterr().out
    assert cli.main(["doctor", "--models-dir", str(tmp_path / "nowhere"), "--workflow", multiscale]) == 1
    assert "does not exist" in capsys.readouterr().out
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert cli.main(["doctor", "--workflow", str(broken)]) == 2


def test_a_multiscale_workflow_needs_the_distilled_lora_of_its_checkpoints_family(tiny_models_23, tmp_path):
    """The sampler finds the stage-2 LoRA itself, so the doctor derives it from the checkpoint's family record."""
    workflow = {"nodes": [loader("L2A_ModelLoader", LTX23_22B.checkpoints["dev"].name, "bf16", False, node_id=1),
                          loader("L2A_UpsamplerLoader", LTX23_22B.upsampler.name, "bf16", node_id=2)]}
    assert doctor.runs_multiscale(workflow)
    found = doctor.diagnose(doctor.required_models(workflow), doctor.folders_under(tiny_models_23.root),
                            doctor.runs_multiscale(workflow))
    assert [(f.requirement.name, f.status, f.family) for f in found][1:] == [
        (LTX23_22B.upsampler.name, "present", "2.3"), (LTX23_22B.distilled_lora.name, "present", "2.3")]
    without = {"nodes": [*workflow["nodes"], loader("L2A_Sampler", *([0] * 17), "without LoRA", node_id=3)]}
    assert not doctor.runs_multiscale(without)


@pytest.mark.parametrize("name", ["2.0", "2.3"])
def test_the_doctor_checks_a_familys_full_set(name, tiny_models, tiny_models_23, tmp_path, capsys):
    models = tiny_models if name == "2.0" else tiny_models_23
    assert cli.main(["doctor", "--family", name, "--models-dir", str(models.root)]) == 0
    out = capsys.readouterr().out
    count = 5 + len(models.family.camera_loras)
    real = LTX2_19B if name == "2.0" else LTX23_22B
    assert f"{real.label}: the full set" in out and f"({models.family.label})" in out
    assert out.rstrip().endswith(f"{count} present, 0 missing, 0 in the wrong folder")
    assert cli.main(["doctor", "--family", "2.3" if name == "2.0" else "2.0", "--models-dir", str(models.root)]) == 1
    copy = tmp_path / "models"
    shutil.copytree(models.root, copy)
    (copy / "loras" / models.family.distilled_lora.name).unlink()
    assert cli.main(["doctor", "--family", name, "--models-dir", str(copy)]) == 1
    assert f"download {models.family.distilled_lora.name} from {models.family.distilled_lora.url}" in (
        capsys.readouterr().out)
