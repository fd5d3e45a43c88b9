"""The workflow validator must accept real-looking workflows and catch each kind of defect.

Good workflows are written here by hand from two kinds of definitions: the core nodes copied into tests/data (the
ones the shipped workflows use, from stock ComfyUI 0.3.64 and 0.33.0) and small test nodes built with
``node_info`` the way ComfyUI's server builds a V1 node's entry, for the widget rules no copied node shows (seed
controls, combo controls, forceInput, step grids). Each file in ``workflows_bad/`` carries one defect and names the
problem it must produce in ``extra.expected_problem`` (checked against ``extra.comfyui``'s definitions, 0.3.64 by
default).
"""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BAD_DIR = HERE / "workflows_bad"
BAD_FILES = sorted(BAD_DIR.glob("*.json"))
OLD, NEW = "0.3.64", "0.33.0"


def _load_validator():
    """Load the sibling module by path: pytest's importlib mode puts no test folder on sys.path."""
    name = "l2a_workflow_validator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "workflow_validator.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


wv = _load_validator()
CORE = {version: wv.load_core_defs(version) for version in wv.CORE_VERSIONS}
CORE_PROPS = {"cnr_id": "comfy-core", "ver": OLD}


def _v1_node(node_id, required, optional=None, outputs=()):
    """A V1 node class with these inputs (each given a tooltip) and outputs, as its ``/object_info`` entry."""
    tip = {"tooltip": "test"}

    def specs(inputs):
        return {name: (kind, {**tip, **options}) for name, (kind, options) in inputs.items()}

    cls = type(node_id, (), {
        "DESCRIPTION": "A test node.", "CATEGORY": "tests", "FUNCTION": "run", "RETURN_TYPES": tuple(outputs),
        "INPUT_TYPES": classmethod(lambda cls: {"required": specs(required), "optional": specs(optional or {})}),
    })
    return wv.node_info(node_id, cls, {}, "custom_nodes.tests")


SIZE = {"default": 512, "min": 16, "max": 16384, "step": 8}
TEST_DEFS = {
    "TestLoader": _v1_node("TestLoader", {"ckpt_name": (["model.safetensors"], {})}, outputs=("MODEL", "VAE")),
    "TestEmptyLatent": _v1_node("TestEmptyLatent", {
        "width": ("INT", SIZE), "height": ("INT", SIZE),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}, outputs=("LATENT",)),
    "TestSampler": _v1_node("TestSampler", {
        "model": ("MODEL", {}),
        "seed": ("INT", {"default": 0, "min": 0, "max": 2**64 - 1}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}),
        "sampler_name": (["euler", "dpmpp_2m"], {}),
        "latent_image": ("LATENT", {}),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0})}, outputs=("LATENT",)),
    "TestDecode": _v1_node("TestDecode", {"samples": ("LATENT", {}), "vae": ("VAE", {})}, outputs=("IMAGE",)),
    "TestScale": _v1_node("TestScale", {
        "image": ("IMAGE", {}), "upscale_method": (["nearest-exact", "lanczos"], {}),
        "width": ("INT", SIZE), "height": ("INT", SIZE), "crop": (["disabled", "center"], {})}, outputs=("IMAGE",)),
    "TestAddNoise": _v1_node("TestAddNoise", {
        "image": ("IMAGE", {}), "seed": ("INT", {"default": 0, "min": 0, "max": 2**32}),
        "strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0})}, outputs=("IMAGE",)),
    "TestNoise": _v1_node("TestNoise", {
        "noise_seed": ("INT", {"default": 0, "min": 0, "max": 2**64 - 1}),
        "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0})}, outputs=("NOISE",)),
    "TestFixedSeed": _v1_node("TestFixedSeed", {"seed": ("INT", {"control_after_generate": False})}),
    "TestPickStyle": _v1_node("TestPickStyle", {"style": (["calm", "wild"], {"control_after_generate": True})}),
    "TestText": _v1_node("TestText", {"prefix": ("STRING", {}), "text": ("STRING", {"forceInput": True})}),
}
DEFS = {version: {**TEST_DEFS, **core} for version, core in CORE.items()}


def _node(node_id, node_type, inputs, outputs, widgets_values, order=0, mode=0, properties=None):
    return {
        "id": node_id,
        "type": node_type,
        "pos": [node_id * 50, node_id * 50],
        "size": [315, 120],
        "flags": {},
        "order": order,
        "mode": mode,
        "inputs": inputs,
        "outputs": outputs,
        "properties": dict(CORE_PROPS if properties is None else properties),
        "widgets_values": widgets_values,
    }


def _in(name, type_, link, widget=False):
    entry = {"name": name, "type": type_, "link": link}
    if widget:
        entry["widget"] = {"name": name}
    return entry


def _out(name, type_, links):
    return {"name": name, "type": type_, "links": links}


def txt2video_v04():
    """A text-to-video graph as frontends before 1.16 saved it (sockets only in ``inputs``), ending in core's
    CreateVideo and SaveVideo as ComfyUI 0.3.64 defines them."""
    nodes = [
        _node(4, "TestLoader", [], [_out("MODEL", "MODEL", [1]), _out("VAE", "VAE", [8])], ["model.safetensors"]),
        _node(5, "TestEmptyLatent", [], [_out("LATENT", "LATENT", [2])], [512, 512, 1]),
        _node(3, "TestSampler", [_in("model", "MODEL", 1), _in("latent_image", "LATENT", 2)],
              [_out("LATENT", "LATENT", [7])], [156680208700286, "randomize", 20, 8, "euler", 1]),
        _node(8, "TestDecode", [_in("samples", "LATENT", 7), _in("vae", "VAE", 8)], [_out("IMAGE", "IMAGE", [9])],
              []),
        _node(9, "CreateVideo", [_in("images", "IMAGE", 9), _in("audio", "AUDIO", None)],
              [_out("VIDEO", "VIDEO", [10])], [24.0]),
        _node(10, "SaveVideo", [_in("video", "VIDEO", 10)], [], ["video/ComfyUI", "auto", "auto"]),
    ]
    links = [
        [1, 4, 0, 3, 0, "MODEL"],
        [2, 5, 0, 3, 1, "LATENT"],
        [7, 3, 0, 8, 0, "LATENT"],
        [8, 4, 1, 8, 1, "VAE"],
        [9, 8, 0, 9, 0, "IMAGE"],
        [10, 9, 0, 10, 0, "VIDEO"],
    ]
    return {"last_node_id": 10, "last_link_id": 10, "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {}, "version": 0.4}


def image_edit_v1():
    """A version-1 graph as frontends since 1.16 save it: every widget input is listed in ``inputs`` with a
    ``widget`` key (and keeps its value in ``widgets_values`` even when a link feeds it), link objects, a Reroute,
    PrimitiveNodes, notes, an upload button's saved value and a muted node."""
    nodes = [
        _node(1, "LoadImage", [_in("image", "COMBO", None, widget=True)],
              [_out("IMAGE", "IMAGE", [1]), _out("MASK", "MASK", None)], ["portrait.png", "image"]),
        _node(2, "Reroute", [_in("", "*", 1)], [_out("", "IMAGE", [2])], None, properties={"showOutputText": False}),
        _node(3, "TestScale",
              [_in("image", "IMAGE", 2), _in("upscale_method", "COMBO", None, widget=True),
               _in("width", "INT", 3, widget=True), _in("height", "INT", None, widget=True),
               _in("crop", "COMBO", 6, widget=True)],
              [_out("IMAGE", "IMAGE", [4])], ["lanczos", 768, 512, "center"]),
        _node(4, "PrimitiveNode", [], [dict(_out("INT", "INT", [3]), widget={"name": "width"})], [768, "fixed"],
              properties={"Run widget replace on values": False}),
        _node(5, "TestAddNoise",
              [_in("image", "IMAGE", 4), _in("seed", "INT", None, widget=True),
               _in("strength", "FLOAT", None, widget=True)],
              [_out("IMAGE", "IMAGE", [5])], [42, "fixed", 0.25]),
        _node(6, "CreateVideo", [_in("images", "IMAGE", 5), _in("fps", "FLOAT", None, widget=True),
                                 _in("audio", "AUDIO", 7)],
              [_out("VIDEO", "VIDEO", [8])], [24.0]),
        _node(7, "PrimitiveNode", [], [dict(_out("COMBO", "COMBO", [6]), widget={"name": "crop"})],
              ["center", "fixed", ""], properties={"Run widget replace on values": False}),
        _node(8, "Note", [], [], ["Scale, then add a little noise."], properties={"text": ""}),
        _node(9, "MarkdownNote", [], [], ["**Tip:** set the width on the primitive."], properties={}),
        _node(10, "LoadAudio", [_in("audio", "COMBO", None, widget=True)], [_out("AUDIO", "AUDIO", [7])],
              ["song.wav", None, None]),
        _node(11, "PreviewAudio", [_in("audio", "AUDIO", None)], [], [], mode=2),
        _node(12, "SaveVideo", [_in("video", "VIDEO", 8),
                                _in("filename_prefix", "STRING", None, widget=True)], [],
              ["edit/ComfyUI", "auto", "auto"]),
    ]
    links = [
        {"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "*"},
        {"id": 2, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "IMAGE"},
        {"id": 3, "origin_id": 4, "origin_slot": 0, "target_id": 3, "target_slot": 2, "type": "INT"},
        {"id": 4, "origin_id": 3, "origin_slot": 0, "target_id": 5, "target_slot": 0, "type": "IMAGE"},
        {"id": 5, "origin_id": 5, "origin_slot": 0, "target_id": 6, "target_slot": 0, "type": "IMAGE"},
        {"id": 6, "origin_id": 7, "origin_slot": 0, "target_id": 3, "target_slot": 4, "type": "COMBO"},
        {"id": 7, "origin_id": 10, "origin_slot": 0, "target_id": 6, "target_slot": 2, "type": "AUDIO"},
        {"id": 8, "origin_id": 6, "origin_slot": 0, "target_id": 12, "target_slot": 0, "type": "VIDEO"},
    ]
    return {"id": "0b7e3f57-5d0c-4c36-9d38-2c3c1d7f6a10", "revision": 0, "version": 1,
            "state": {"lastGroupId": 0, "lastNodeId": 12, "lastLinkId": 8, "lastRerouteId": 0},
            "nodes": nodes, "links": links, "groups": [], "config": {}, "extra": {}}


def _find(workflow, node_type):
    return next(n for n in workflow["nodes"] if n["type"] == node_type)


class FakeSampler:
    """A pack-style V1 node, to check that ``node_info`` builds what the validator needs."""

    DESCRIPTION = "Samples a fake latent."
    CATEGORY = "LTX-2 Anywhere/sampling"
    RETURN_TYPES = ("L2A_LATENT",)
    RETURN_NAMES = ("latent",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("L2A_MODEL", {"tooltip": "model"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**64 - 1, "tooltip": "seed"}),
                "steps": ("INT", {"default": 30, "min": 1, "max": 200, "tooltip": "steps"}),
                "schedule": (["official", "linear"], {"tooltip": "schedule"}),
            },
            "optional": {"guidance": ("FLOAT", {"default": 3.0, "min": 1.0, "max": 20.0, "tooltip": "cfg"})},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }


class FakeLoader:
    DESCRIPTION = "Loads a fake model."
    CATEGORY = "LTX-2 Anywhere/loaders"
    RETURN_TYPES = ("L2A_MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (["ltx-2-19b-dev.safetensors"], {"tooltip": "checkpoint"})}}


def fake_defs():
    names = {"L2A_Sampler": "LTX-2 Sampler", "L2A_Loader": "LTX-2 Loader"}
    return {
        "L2A_Sampler": wv.node_info("L2A_Sampler", FakeSampler, names, "custom_nodes.ltx2_anywhere"),
        "L2A_Loader": wv.node_info("L2A_Loader", FakeLoader, names, "custom_nodes.ltx2_anywhere"),
    }


def pack_workflow(steps=30, ckpt="ltx-2-19b-distilled.safetensors"):
    nodes = [
        _node(2, "L2A_Loader", [], [_out("L2A_MODEL", "L2A_MODEL", [1])], [ckpt]),
        _node(7, "L2A_Sampler", [_in("model", "L2A_MODEL", 1)], [_out("latent", "L2A_LATENT", None)],
              [7, "randomize", steps, "official", 3.0]),
    ]
    return {"last_node_id": 7, "last_link_id": 1, "nodes": nodes, "links": [[1, 2, 0, 7, 0, "L2A_MODEL"]],
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


# ---- the copied core data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", wv.CORE_VERSIONS)
def test_core_data_says_where_it_came_from(version):
    data = wv.load_core_data(version)
    assert data["comfyui"] == version
    assert f"shared/comfyui/object_info-core-{version}.json" in data["source"]
    assert len(data["core_node_ids"]) > 400
    assert set(data["nodes"]) <= set(data["core_node_ids"])
    assert data["nodes"]["SaveVideo"]["input_order"]["required"][:2] == ["video", "filename_prefix"]


def test_missing_core_data_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match="shared/comfyui/object_info-core-0.3.64.json"):
        wv.load_core_defs(OLD, tmp_path / "object_info-core-0.3.64.json")


def test_a_core_node_without_a_copied_definition_is_named_with_its_source():
    messages = wv.missing_core_definitions({"ImageScale", "LoadImage", "L2A_Sampler", "Note"}, NEW)
    assert messages == [
        "core node 'ImageScale' (ComfyUI 0.33.0) has no definition in tests/data/object_info-core-0.33.0.json: "
        "copy its entry from shared/comfyui/object_info-core-0.33.0.json with `python tests/workflow_validator.py "
        "copy --source <path to shared/comfyui> ImageScale`"
    ]


def test_copy_core_definitions_copies_entries_unchanged(tmp_path, monkeypatch):
    source = tmp_path / "shared"
    source.mkdir()
    for version in wv.CORE_VERSIONS:
        full = {"GetVideoComponents": {"input": {"required": {"video": ["VIDEO"]}}, "output": ["IMAGE"]},
                "KSampler": {"input": {}}}
        if version == NEW:
            full["LTXVNew"] = {"input": {}}
        (source / f"object_info-core-{version}.json").write_text(json.dumps(full), encoding="utf-8")
    monkeypatch.setattr(wv, "DATA_DIR", tmp_path / "data")
    (tmp_path / "data").mkdir()
    wv.copy_core_definitions(source, ["GetVideoComponents", "LTXVNew"])
    old, new = wv.load_core_data(OLD), wv.load_core_data(NEW)
    assert old["nodes"] == {"GetVideoComponents": {"input": {"required": {"video": ["VIDEO"]}}, "output": ["IMAGE"]}}
    assert sorted(new["nodes"]) == ["GetVideoComponents", "LTXVNew"]
    assert old["core_node_ids"] == ["GetVideoComponents", "KSampler"]


# ---- good and bad workflows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", wv.CORE_VERSIONS)
@pytest.mark.parametrize("build", [txt2video_v04, image_edit_v1], ids=["txt2video_v0.4", "image_edit_v1"])
def test_good_workflows_pass(build, version):
    assert wv.validate_workflow(build(), DEFS[version]) == []


def test_upload_button_value_may_be_left_out():
    workflow = image_edit_v1()
    workflow["nodes"][0]["widgets_values"] = ["portrait.png"]
    assert wv.validate_workflow(workflow, DEFS[OLD]) == []


def test_bad_fixtures_exist():
    assert len(BAD_FILES) >= 6


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_workflow_gives_its_one_problem(path):
    workflow = json.loads(path.read_text(encoding="utf-8"))
    expected = workflow["extra"]["expected_problem"]
    problems = wv.validate_workflow(workflow, DEFS[workflow["extra"].get("comfyui", OLD)])
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


# ---- widgets as the frontend builds and loads them --------------------------------------------------------------


def test_widget_order_follows_the_frontend():
    names = [slot.name for slot in wv.widget_slots("TestSampler", TEST_DEFS["TestSampler"])]
    assert names == ["seed", "seed.control_after_generate", "steps", "cfg", "sampler_name", "denoise"]
    for version in wv.CORE_VERSIONS:
        load_image = wv.widget_slots("LoadImage", CORE[version]["LoadImage"])
        assert [(s.name, s.kind) for s in load_image] == [("image", "value"), ("upload", "extra")]
    assert [s.name for s in wv.widget_slots("CreateVideo", CORE[OLD]["CreateVideo"])] == ["fps"]
    assert [s.name for s in wv.widget_slots("CreateVideo", CORE[NEW]["CreateVideo"])] == ["fps", "bit_depth"]
    save = wv.widget_slots("SaveVideo", CORE[NEW]["SaveVideo"])
    assert [(s.name, s.type) for s in save] == [
        ("filename_prefix", "STRING"), ("format", wv.DYNAMIC_COMBO), ("codec", wv.DYNAMIC_COMBO)]


def test_control_widget_rule():
    """``control_after_generate ?? name in (seed, noise_seed)``: an explicit False wins over the name."""
    assert [s.name for s in wv.widget_slots("TestFixedSeed", TEST_DEFS["TestFixedSeed"])] == ["seed"]
    by_name = [s.name for s in wv.widget_slots("TestAddNoise", TEST_DEFS["TestAddNoise"])]
    assert by_name == ["seed", "seed.control_after_generate", "strength"]
    combo = [(s.name, s.kind) for s in wv.widget_slots("TestPickStyle", TEST_DEFS["TestPickStyle"])]
    assert combo == [("style", "value"), ("style.control_after_generate", "control"),
                     ("style.control_filter_list", "filter")]


def test_force_input_is_no_widget():
    assert [s.name for s in wv.widget_slots("TestText", TEST_DEFS["TestText"])] == ["prefix"]


def test_fewer_trailing_values_keep_their_defaults():
    """A workflow saved before an input was appended loads: the new widget keeps its default."""
    workflow = txt2video_v04()
    assert wv.validate_workflow(workflow, DEFS[NEW]) == []  # CreateVideo [24.0]: bit_depth stays 8
    _find(workflow, "TestEmptyLatent")["widgets_values"] = [512, 512]
    assert wv.validate_workflow(workflow, DEFS[OLD]) == []


def test_extra_trailing_values_are_ignored():
    """SaveVideo as frontend 1.49.6 saves it for ComfyUI 0.33.0 (format, format.codec, the hidden codec) still loads
    in 0.3.64, whose SaveVideo has one widget fewer."""
    workflow = txt2video_v04()
    _find(workflow, "SaveVideo")["widgets_values"] = ["video/ComfyUI", "auto", "auto", "auto"]
    for version in wv.CORE_VERSIONS:
        assert wv.validate_workflow(workflow, DEFS[version]) == []


def test_a_value_shifted_by_a_missing_one_is_caught_by_its_type():
    workflow = image_edit_v1()
    _find(workflow, "TestScale")["widgets_values"] = ["lanczos", 512, "center"]
    assert wv.validate_workflow(workflow, DEFS[OLD]) == [
        "node 3 (TestScale): widget 'height' = 'center' is not an integer"]


def test_dynamic_combo_nested_widgets_take_the_values_that_follow():
    save = CORE[NEW]["SaveVideo"]
    values = ["clips/x", "mp4", "h264", "re-encode", "HDR", 20.0, "auto"]
    assert wv.widget_values_by_name("SaveVideo", save, values) == {
        "filename_prefix": "clips/x", "format": "mp4", "format.codec": "h264", "format.codec.encoding": "re-encode",
        "format.codec.encoding.color_space": "HDR", "format.codec.encoding.crf": 20.0, "codec": "auto"}
    workflow = txt2video_v04()
    node = _find(workflow, "SaveVideo")
    node["widgets_values"] = values
    assert wv.validate_workflow(workflow, DEFS[NEW]) == []
    node["widgets_values"] = values[:5] + [99.0]
    assert wv.validate_workflow(workflow, DEFS[NEW]) == [
        "node 10 (SaveVideo): widget 'format.codec.encoding.crf' = 99.0 above max 51.0"]
    node["widgets_values"] = ["clips/x", "avi", "auto"]
    assert wv.validate_workflow(workflow, DEFS[NEW]) == [
        "node 10 (SaveVideo): widget 'format' = 'avi' is not one of the dynamic combo's options "
        "(auto, mp4, mkv, webm)"]


def test_dynamic_combo_values_saved_by_name():
    workflow = txt2video_v04()
    node = _find(workflow, "SaveVideo")
    node["widgets_values"] = {"filename_prefix": "x", "format": "webm", "format.codec": "av1"}
    assert wv.validate_workflow(workflow, DEFS[NEW]) == []
    node["widgets_values"] = {"filename_prefix": "x", "format": "webm", "format.codec": "vp9"}
    assert wv.validate_workflow(workflow, DEFS[NEW]) == [
        "node 10 (SaveVideo): widget 'format.codec' = 'vp9' is not one of the dynamic combo's options (auto, av1)"]


def test_file_combos_accept_any_file_name():
    workflow = txt2video_v04()
    workflow["nodes"][0]["widgets_values"] = ["some/other-model.safetensors"]
    assert wv.validate_workflow(workflow, DEFS[OLD]) == []
    workflow["nodes"][0]["widgets_values"] = [""]
    assert wv.validate_workflow(workflow, DEFS[OLD]) == [
        "node 4 (TestLoader): widget 'ckpt_name' = '' is not a file name (a non-empty string)"
    ]
    assert wv.model_file_inputs("TestLoader", TEST_DEFS["TestLoader"]) == ["ckpt_name"]
    assert wv.model_file_inputs("LoadImage", CORE[OLD]["LoadImage"]) == []
    assert wv.model_file_inputs("TestSampler", TEST_DEFS["TestSampler"]) == []


def test_sampler_combo_is_not_a_file_list():
    workflow = txt2video_v04()
    _find(workflow, "TestSampler")["widgets_values"][4] = "euler_turbo"
    problems = wv.validate_workflow(workflow, DEFS[OLD])
    assert len(problems) == 1 and problems[0].startswith(
        "node 3 (TestSampler): widget 'sampler_name' = 'euler_turbo' is not one of the combo's values")


# ---- the shipped workflows against ComfyUI 0.33.0 -----------------------------------------------------------------


def _shipped(name):
    return json.loads((ROOT / "workflows" / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shipped_defs():
    return {version: wv.all_defs(version) for version in wv.CORE_VERSIONS}


def test_a_shipped_workflow_with_an_unknown_codec_fails(shipped_defs):
    workflow = _shipped("ltx2_image_to_video.json")
    for version in wv.CORE_VERSIONS:
        assert wv.validate_workflow(workflow, shipped_defs[version]) == []
    save = _find(workflow, "SaveVideo")
    save["widgets_values"][2] = "prores"
    label = f"node {save['id']} (SaveVideo)"
    assert wv.validate_workflow(workflow, shipped_defs[NEW]) == [
        f"{label}: widget 'format.codec' = 'prores' is not one of the dynamic combo's options (auto, h264, av1)"]
    assert wv.validate_workflow(workflow, shipped_defs[OLD]) == [
        f"{label}: widget 'codec' = 'prores' is not one of the combo's values ('auto', 'h264')"]


def test_a_shipped_workflow_using_a_removed_input_fails(shipped_defs):
    workflow = _shipped("ltx2_image_to_video.json")
    defs = copy.deepcopy(shipped_defs[NEW])
    create = defs["CreateVideo"]
    del create["input"]["optional"]["audio"]
    create["input_order"]["optional"].remove("audio")
    node = _find(workflow, "CreateVideo")
    slot = [entry["name"] for entry in node["inputs"]].index("audio")
    link = node["inputs"][slot]["link"]
    assert wv.validate_workflow(workflow, defs) == [
        f"link {link} ends at input slot {slot} of node {node['id']} (CreateVideo): its input 'audio' is not in the "
        "node's definition"]


def test_a_value_only_0_33_checks_fails_there_alone(shipped_defs):
    """CreateVideo's bit_depth exists from 0.33.0 on: a value for it is ignored by 0.3.64 and checked by 0.33.0."""
    workflow = _shipped("ltx2_image_to_video.json")
    create = _find(workflow, "CreateVideo")
    create["widgets_values"] = [create["widgets_values"][0], 12]
    assert wv.validate_workflow(workflow, shipped_defs[OLD]) == []
    assert wv.validate_workflow(workflow, shipped_defs[NEW]) == [
        f"node {create['id']} (CreateVideo): widget 'bit_depth' = 12 above max 10"]


# ---- links, ids and formats ---------------------------------------------------------------------------------------


def test_link_bookkeeping_must_agree():
    workflow = txt2video_v04()
    _find(workflow, "SaveVideo")["inputs"][0]["link"] = None
    problems = wv.validate_workflow(workflow, DEFS[OLD])
    assert "link 10: node 10 (SaveVideo) input 'video' records link None instead" in problems


def test_last_ids_must_cover_the_graph():
    workflow = txt2video_v04()
    workflow["last_link_id"] = 3
    assert wv.validate_workflow(workflow, DEFS[OLD]) == [
        "last_link_id = 3 is below the highest id 10: new items would reuse ids"
    ]


def test_unknown_version_is_reported():
    workflow = txt2video_v04()
    workflow["version"] = 2
    assert wv.validate_workflow(workflow, DEFS[OLD]) == [
        "workflow version 2 is not a UI-format version this validator knows (0.4 or 1)"
    ]


def test_v1_links_are_checked_like_v04():
    workflow = txt2video_v04()
    as_v1 = copy.deepcopy(workflow)
    as_v1["links"] = [dict(zip(wv.LINK_KEYS, link)) for link in workflow["links"]]
    as_v1["version"] = 1
    as_v1["state"] = {"lastNodeId": 10, "lastLinkId": 10}
    assert wv.validate_workflow(as_v1, DEFS[OLD]) == []
    as_v1["links"][0]["type"] = "VAE"
    problems = wv.validate_workflow(as_v1, DEFS[OLD])
    assert problems == ["link 1 from node 4 (TestLoader) slot 0 to node 3 (TestSampler) input 'model': "
                        "link type 'VAE' does not match output type 'MODEL'"]


def test_types_compatible_follows_comfyui():
    assert wv.types_compatible("IMAGE", "IMAGE")
    assert wv.types_compatible("*", "LATENT")
    assert wv.types_compatible("MODEL_TASK_ID", "MODEL_TASK_ID,RIG_TASK_ID")
    assert not wv.types_compatible("IMAGE", "MASK")


def test_node_info_matches_the_server_format():
    info = fake_defs()["L2A_Sampler"]
    assert info["input_order"] == {"required": ["model", "seed", "steps", "schedule"], "optional": ["guidance"],
                                   "hidden": ["unique_id"]}
    assert info["output"] == ["L2A_LATENT"] and info["output_name"] == ["latent"]
    assert info["output_is_list"] == [False]
    assert info["input"]["required"]["schedule"][0] == ["official", "linear"]
    assert info["display_name"] == "LTX-2 Sampler" and info["output_node"] is False
    assert info["category"] == "LTX-2 Anywhere/sampling"


def test_pack_nodes_are_validated_with_their_own_defs():
    defs = {**fake_defs(), **CORE[OLD]}
    assert wv.validate_workflow(pack_workflow(), defs) == []
    assert wv.validate_workflow(pack_workflow(steps=500), defs) == [
        "node 7 (L2A_Sampler): widget 'steps' = 500 above max 200"
    ]
    assert wv.model_file_inputs("L2A_Loader", defs["L2A_Loader"]) == ["ckpt_name"]


def test_pack_defs_build_from_the_installed_pack():
    defs = wv.pack_defs()
    assert isinstance(defs, dict)
    for node_id, info in defs.items():
        assert info["name"] == node_id
        assert info["python_module"] == "custom_nodes.ltx2_anywhere"
