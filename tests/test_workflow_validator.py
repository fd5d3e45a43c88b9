"""The workflow validator must accept real-looking workflows and catch each kind of defect.

Good workflows are written here by hand from the core definitions; each file in ``workflows_bad/`` carries one
defect and names the problem it must produce in ``extra.expected_problem``.
"""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BAD_DIR = HERE / "workflows_bad"
BAD_FILES = sorted(BAD_DIR.glob("*.json"))


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
CORE = wv.load_core_defs()
CORE_PROPS = {"cnr_id": "comfy-core", "ver": "0.3.64"}


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


def txt2img_v04():
    """ComfyUI's default text-to-image graph, as frontends before 1.16 saved it (sockets only in ``inputs``)."""
    nodes = [
        _node(4, "CheckpointLoaderSimple", [],
              [_out("MODEL", "MODEL", [1]), _out("CLIP", "CLIP", [3, 5]), _out("VAE", "VAE", [8])],
              ["v1-5-pruned-emaonly.safetensors"]),
        _node(6, "CLIPTextEncode", [_in("clip", "CLIP", 3)], [_out("CONDITIONING", "CONDITIONING", [4])],
              ["a lighthouse at dusk, waves"]),
        _node(7, "CLIPTextEncode", [_in("clip", "CLIP", 5)], [_out("CONDITIONING", "CONDITIONING", [6])],
              ["blurry, watermark"]),
        _node(5, "EmptyLatentImage", [], [_out("LATENT", "LATENT", [2])], [512, 512, 1]),
        _node(3, "KSampler",
              [_in("model", "MODEL", 1), _in("positive", "CONDITIONING", 4), _in("negative", "CONDITIONING", 6),
               _in("latent_image", "LATENT", 2)],
              [_out("LATENT", "LATENT", [7])],
              [156680208700286, "randomize", 20, 8, "euler", "normal", 1]),
        _node(8, "VAEDecode", [_in("samples", "LATENT", 7), _in("vae", "VAE", 8)], [_out("IMAGE", "IMAGE", [9])], []),
        _node(9, "SaveImage", [_in("images", "IMAGE", 9)], [], ["ComfyUI"]),
    ]
    links = [
        [1, 4, 0, 3, 0, "MODEL"],
        [2, 5, 0, 3, 3, "LATENT"],
        [3, 4, 1, 6, 0, "CLIP"],
        [4, 6, 0, 3, 1, "CONDITIONING"],
        [5, 4, 1, 7, 0, "CLIP"],
        [6, 7, 0, 3, 2, "CONDITIONING"],
        [7, 3, 0, 8, 0, "LATENT"],
        [8, 4, 2, 8, 1, "VAE"],
        [9, 8, 0, 9, 0, "IMAGE"],
    ]
    return {"last_node_id": 9, "last_link_id": 9, "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {}, "version": 0.4}


def image_edit_v1():
    """A version-1 graph as frontends since 1.16 save it: every widget input is listed in ``inputs`` with a
    ``widget`` key (and keeps its value in ``widgets_values`` even when a link feeds it), link objects, a Reroute,
    PrimitiveNodes, notes, an upload button's saved value and a muted node."""
    nodes = [
        _node(1, "LoadImage", [_in("image", "COMBO", None, widget=True)],
              [_out("IMAGE", "IMAGE", [1]), _out("MASK", "MASK", None)], ["portrait.png", "image"]),
        _node(2, "Reroute", [_in("", "*", 1)], [_out("", "IMAGE", [2])], None, properties={"showOutputText": False}),
        _node(3, "ImageScale",
              [_in("image", "IMAGE", 2), _in("upscale_method", "COMBO", None, widget=True),
               _in("width", "INT", 3, widget=True), _in("height", "INT", None, widget=True),
               _in("crop", "COMBO", 6, widget=True)],
              [_out("IMAGE", "IMAGE", [4])], ["lanczos", 768, 512, "center"]),
        _node(4, "PrimitiveNode", [], [dict(_out("INT", "INT", [3]), widget={"name": "width"})], [768, "fixed"],
              properties={"Run widget replace on values": False}),
        _node(5, "ImageAddNoise",
              [_in("image", "IMAGE", 4), _in("seed", "INT", None, widget=True),
               _in("strength", "FLOAT", None, widget=True)],
              [_out("IMAGE", "IMAGE", [5])], [42, "fixed", 0.25]),
        _node(6, "SaveImage", [_in("images", "IMAGE", 5), _in("filename_prefix", "STRING", None, widget=True)], [],
              ["edit/ComfyUI"]),
        _node(7, "PrimitiveNode", [], [dict(_out("COMBO", "COMBO", [6]), widget={"name": "crop"})],
              ["center", "fixed", ""], properties={"Run widget replace on values": False}),
        _node(8, "Note", [], [], ["Scale, then add a little noise."], properties={"text": ""}),
        _node(9, "MarkdownNote", [], [], ["**Tip:** set the width on the primitive."], properties={}),
        _node(10, "LoadImageMask", [_in("image", "COMBO", None, widget=True),
                                    _in("channel", "COMBO", None, widget=True)],
              [_out("MASK", "MASK", None)], ["mask.png", "alpha"]),
        _node(11, "PreviewImage", [_in("images", "IMAGE", None)], [], [], mode=2),
    ]
    links = [
        {"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "*"},
        {"id": 2, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "IMAGE"},
        {"id": 3, "origin_id": 4, "origin_slot": 0, "target_id": 3, "target_slot": 2, "type": "INT"},
        {"id": 4, "origin_id": 3, "origin_slot": 0, "target_id": 5, "target_slot": 0, "type": "IMAGE"},
        {"id": 5, "origin_id": 5, "origin_slot": 0, "target_id": 6, "target_slot": 0, "type": "IMAGE"},
        {"id": 6, "origin_id": 7, "origin_slot": 0, "target_id": 3, "target_slot": 4, "type": "COMBO"},
    ]
    return {"id": "0b7e3f57-5d0c-4c36-9d38-2c3c1d7f6a10", "revision": 0, "version": 1,
            "state": {"lastGroupId": 0, "lastNodeId": 11, "lastLinkId": 6, "lastRerouteId": 0},
            "nodes": nodes, "links": links, "groups": [], "config": {}, "extra": {}}


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


def test_core_defs_are_the_stock_server_answer():
    assert len(CORE) > 400
    assert CORE["KSampler"]["input_order"]["required"][1] == "seed"


def test_missing_core_defs_fail_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match="object_info-core-0.3.64.json"):
        wv.load_core_defs(tmp_path / "object_info-core-0.3.64.json")


@pytest.mark.parametrize("build", [txt2img_v04, image_edit_v1], ids=["txt2img_v0.4", "image_edit_v1"])
def test_good_core_workflows_pass(build):
    assert wv.validate_workflow(build(), CORE) == []


def test_upload_button_value_may_be_left_out():
    workflow = image_edit_v1()
    workflow["nodes"][0]["widgets_values"] = ["portrait.png"]
    assert wv.validate_workflow(workflow, CORE) == []


def test_bad_fixtures_exist():
    assert len(BAD_FILES) >= 6


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_workflow_gives_its_one_problem(path):
    workflow = json.loads(path.read_text(encoding="utf-8"))
    expected = workflow["extra"]["expected_problem"]
    problems = wv.validate_workflow(workflow, CORE)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_widget_order_follows_the_frontend():
    names = [slot.name for slot in wv.widget_slots("KSampler", CORE["KSampler"])]
    assert names == ["seed", "seed.control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"]
    load_image = wv.widget_slots("LoadImage", CORE["LoadImage"])
    assert [(s.name, s.kind) for s in load_image] == [("image", "value"), ("upload", "extra")]
    create_video = wv.widget_slots("CreateVideo", CORE["CreateVideo"])
    assert [s.name for s in create_video] == ["fps"]


def test_control_widget_rule():
    """``control_after_generate ?? name in (seed, noise_seed)``: an explicit False wins over the name."""
    seed_false = [s.name for s in wv.widget_slots("MoonvalleyVideo2VideoNode", CORE["MoonvalleyVideo2VideoNode"])]
    assert "seed" in seed_false and "seed.control_after_generate" not in seed_false
    by_name = [s.name for s in wv.widget_slots("TrainLoraNode", CORE["TrainLoraNode"])]
    assert "seed.control_after_generate" in by_name
    flagged = [s.name for s in wv.widget_slots("PrimitiveInt", CORE["PrimitiveInt"])]
    assert flagged == ["value", "value.control_after_generate"]


def test_force_input_is_no_widget():
    names = [s.name for s in wv.widget_slots("RecraftTextToImageNode", CORE["RecraftTextToImageNode"])]
    assert "negative_prompt" not in names


def test_widget_converted_to_socket_keeps_its_value():
    workflow = image_edit_v1()
    scale = next(n for n in workflow["nodes"] if n["type"] == "ImageScale")
    scale["widgets_values"] = ["lanczos", 512, "center"]
    problems = wv.validate_workflow(workflow, CORE)
    assert problems == ["node 3 (ImageScale): widgets_values has 3 values, expected 4 "
                        "(upscale_method, width, height, crop)"]


def test_file_combos_accept_any_file_name():
    workflow = txt2img_v04()
    workflow["nodes"][0]["widgets_values"] = ["some/other-model.safetensors"]
    assert wv.validate_workflow(workflow, CORE) == []
    workflow["nodes"][0]["widgets_values"] = [""]
    assert wv.validate_workflow(workflow, CORE) == [
        "node 4 (CheckpointLoaderSimple): widget 'ckpt_name' = '' is not a file name (a non-empty string)"
    ]
    assert wv.model_file_inputs("CheckpointLoaderSimple", CORE["CheckpointLoaderSimple"]) == ["ckpt_name"]
    assert wv.model_file_inputs("LoadImage", CORE["LoadImage"]) == []
    assert wv.model_file_inputs("KSampler", CORE["KSampler"]) == []


def test_sampler_combo_is_not_a_file_list():
    workflow = txt2img_v04()
    sampler = next(n for n in workflow["nodes"] if n["type"] == "KSampler")
    sampler["widgets_values"][4] = "euler_turbo"
    problems = wv.validate_workflow(workflow, CORE)
    assert len(problems) == 1 and problems[0].startswith(
        "node 3 (KSampler): widget 'sampler_name' = 'euler_turbo' is not one of the combo's values")


def test_link_bookkeeping_must_agree():
    workflow = txt2img_v04()
    save = next(n for n in workflow["nodes"] if n["type"] == "SaveImage")
    save["inputs"][0]["link"] = None
    problems = wv.validate_workflow(workflow, CORE)
    assert "link 9: node 9 (SaveImage) input 'images' records link None instead" in problems


def test_last_ids_must_cover_the_graph():
    workflow = txt2img_v04()
    workflow["last_link_id"] = 3
    assert wv.validate_workflow(workflow, CORE) == [
        "last_link_id = 3 is below the highest id 9: new items would reuse ids"
    ]


def test_unknown_version_is_reported():
    workflow = txt2img_v04()
    workflow["version"] = 2
    assert wv.validate_workflow(workflow, CORE) == [
        "workflow version 2 is not a UI-format version this validator knows (0.4 or 1)"
    ]


def test_v1_links_are_checked_like_v04():
    workflow = txt2img_v04()
    as_v1 = copy.deepcopy(workflow)
    as_v1["links"] = [dict(zip(wv.LINK_KEYS, link)) for link in workflow["links"]]
    as_v1["version"] = 1
    as_v1["state"] = {"lastNodeId": 9, "lastLinkId": 9}
    assert wv.validate_workflow(as_v1, CORE) == []
    as_v1["links"][0]["type"] = "CLIP"
    problems = wv.validate_workflow(as_v1, CORE)
    assert problems == ["link 1 from node 4 (CheckpointLoaderSimple) slot 0 to node 3 (KSampler) input 'model': "
                        "link type 'CLIP' does not match output type 'MODEL'"]


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
    defs = {**fake_defs(), **CORE}
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
