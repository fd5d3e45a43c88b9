"""Static validator for ComfyUI UI-format (LiteGraph) workflow JSON, versions 0.4 and 1.

CI has no ComfyUI checkout, so example workflows are checked against node definitions in the server's
``/object_info`` format instead: core nodes from ``tests/data/object_info-core-<version>.json`` (the entries of the
core nodes the shipped workflows use, copied from stock ComfyUI 0.3.64 and 0.33.0 servers), pack nodes built from
``NODE_CLASS_MAPPINGS`` the way ComfyUI's ``server.py`` builds them. A workflow that passes loads in the frontend
with every widget value where its node expects it and every link joining sockets of compatible types.

Widget values are positional (``widgets_values``), so the validator rebuilds the widget list the frontend creates
for each node (see ``widget_slots``) and lines the values up against it as the frontend does when it loads a
workflow (see ``_assign``).

Run as a script to copy more core definitions into tests/data (see tests/data/README.md):
``python tests/workflow_validator.py copy --source ../shared/comfyui NodeType ...``.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
CORE_VERSIONS = ("0.3.64", "0.33.0")  # the oldest ComfyUI the pack supports, and a current one
CORE_SOURCE_HINT = "shared/comfyui/object_info-core-{version}.json"  # where the copies come from (not in the repo)
PACK_MODULE = "ltx2_anywhere"

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
# A combo's control widget also offers wrap-around stepping through the list.
COMBO_CONTROL_VALUES = (*CONTROL_VALUES, "increment-wrap")
SEED_NAMES = ("seed", "noise_seed")
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "file_upload")
# Nodes that the frontend's audio extension gives an extra player widget (not a value the backend reads).
AUDIO_UI_NODES = frozenset({"LoadAudio", "PreviewAudio", "SaveAudio", "SaveAudioMP3", "SaveAudioOpus"})
MODEL_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".gguf")
FRONTEND_ONLY_NODES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
NOTE_NODES = frozenset({"Note", "MarkdownNote"})
SUPPORTED_VERSIONS = (0.4, 1)
MUTED_MODES = (2, 4)  # "never" and "bypass": ComfyUI does not run these nodes
LINK_KEYS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


class DefinitionsMissing(FileNotFoundError):
    """The core node definitions are absent: the workflow checks cannot run and must not pass by skipping."""


def core_defs_path(version: str) -> Path:
    return DATA_DIR / f"object_info-core-{version}.json"


def load_core_data(version: str = CORE_VERSIONS[0], path: Path | None = None) -> dict:
    """The copied data of one ComfyUI version: ``nodes`` (definitions by node id), ``core_node_ids`` (every core
    node of that server), ``source``, ``comfyui`` and ``frontend``."""
    path = path or core_defs_path(version)
    if not path.is_file():
        raise DefinitionsMissing(
            f"core node definitions not found at {path}: it is part of the repository "
            f"(copied from {CORE_SOURCE_HINT.format(version=version)}, see tests/data/README.md)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_core_defs(version: str = CORE_VERSIONS[0], path: Path | None = None) -> dict:
    """Core node definitions of a stock ComfyUI server of ``version``, in the ``/object_info`` format (only the
    nodes the shipped workflows use)."""
    return load_core_data(version, path)["nodes"]


def core_node_ids(version: str = CORE_VERSIONS[0]) -> frozenset[str]:
    """Every core node id of that ComfyUI version (a custom node with one of these ids is dropped by ComfyUI)."""
    return frozenset(load_core_data(version)["core_node_ids"])


def missing_core_definitions(node_types, version: str) -> list[str]:
    """One message per core node in ``node_types`` whose definition is not copied into tests/data for ``version``,
    saying where to copy it from."""
    data = load_core_data(version)
    missing = sorted(t for t in set(node_types) if t in data["core_node_ids"] and t not in data["nodes"])
    return [
        f"core node '{node_type}' (ComfyUI {version}) has no definition in "
        f"tests/data/{core_defs_path(version).name}: copy its entry from "
        f"{CORE_SOURCE_HINT.format(version=version)} with `python tests/workflow_validator.py copy "
        f"--source <path to shared/comfyui> {node_type}`"
        for node_type in missing
    ]


def copy_core_definitions(source_dir: Path, node_types: list[str], versions=CORE_VERSIONS) -> None:
    """Copy the ``/object_info`` entries of ``node_types`` from ``source_dir/object_info-core-<version>.json`` into
    tests/data, unchanged; a node a version does not have is left out of that version (and reported)."""
    for version in versions:
        full = json.loads((source_dir / f"object_info-core-{version}.json").read_text(encoding="utf-8"))
        path = core_defs_path(version)
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        nodes = data.get("nodes", {})
        for node_type in node_types:
            if node_type in full:
                nodes[node_type] = full[node_type]
            else:
                print(f"{node_type}: not a core node of ComfyUI {version}")
        data["core_node_ids"] = sorted(full)
        data["nodes"] = dict(sorted(nodes.items()))
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def node_info(node_id: str, cls: type, display_names: dict, python_module: str) -> dict:
    """One node's ``/object_info`` entry, built as ``server.py``'s ``node_info`` builds it for a V1 class.

    The result goes through JSON as the server's answer does, so tuples become lists and anything that is not
    JSON-serialisable fails here rather than in a user's browser.
    """
    input_types = cls.INPUT_TYPES()
    return_types = list(cls.RETURN_TYPES)
    info = {
        "input": input_types,
        "input_order": {section: list(specs) for section, specs in input_types.items()},
        "output": return_types,
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(return_types))),
        "output_name": list(getattr(cls, "RETURN_NAMES", return_types)),
        "name": node_id,
        "display_name": display_names.get(node_id, node_id),
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": python_module,
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    if getattr(cls, "DEPRECATED", False):
        info["deprecated"] = True
    if getattr(cls, "EXPERIMENTAL", False):
        info["experimental"] = True
    if hasattr(cls, "API_NODE"):
        info["api_node"] = cls.API_NODE
    return json.loads(json.dumps(info))


def pack_defs() -> dict:
    """The pack's own nodes in the ``/object_info`` format, from ``ltx2_anywhere.NODE_CLASS_MAPPINGS``."""
    pack = importlib.import_module(PACK_MODULE)
    display_names = getattr(pack, "NODE_DISPLAY_NAME_MAPPINGS", {})
    return {
        node_id: node_info(node_id, cls, display_names, f"custom_nodes.{PACK_MODULE}")
        for node_id, cls in pack.NODE_CLASS_MAPPINGS.items()
    }


def all_defs(version: str = CORE_VERSIONS[0]) -> dict:
    """Core and pack definitions together; on an id clash core wins, as in ComfyUI (which drops the custom node)."""
    return {**pack_defs(), **load_core_defs(version)}


# --- widgets -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One entry of a node's ``widgets_values``.

    kind: ``value`` (a backend input), ``control`` (control_after_generate), ``filter`` (a combo control's filter
    text) or ``extra`` (a frontend-only widget such as an upload button). ``filter`` and ``extra`` are optional:
    some frontend versions save their values and others leave them out.
    """

    name: str
    kind: str
    type: Any = None
    options: dict = field(default_factory=dict)
    file_list: bool = False

    @property
    def optional(self) -> bool:
        return self.kind in ("extra", "filter")


def iter_inputs(node_def: dict):
    """(name, section, type, options) of the required then optional inputs, in ``input_order``; hidden ones skipped."""
    inputs = node_def.get("input") or {}
    order = node_def.get("input_order") or {}
    for section in ("required", "optional"):
        specs = inputs.get(section) or {}
        for name in order.get(section) or list(specs):
            spec = specs.get(name)
            if spec is None:
                continue
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            yield name, section, spec[0], options


def is_widget_type(input_type: Any) -> bool:
    return isinstance(input_type, list) or input_type in WIDGET_TYPES or input_type == DYNAMIC_COMBO


def is_combo(input_type: Any) -> bool:
    return isinstance(input_type, list) or input_type == "COMBO"


def combo_values(input_type: Any, options: dict) -> list:
    return input_type if isinstance(input_type, list) else list(options.get("options") or [])


def is_file_combo(node_type: str, name: str, input_type: Any, options: dict) -> bool:
    """Whether a combo lists files (or remote values) that exist only on the user's machine.

    Such lists are filled at run time, so any non-empty string is accepted: an empty list (the stock server that
    wrote the core definitions had no models), an upload or remote combo, a ``*_name`` input of a loader node
    (``ckpt_name``, ``text_encoder_name``, ...), or a list made only of model file names.
    """
    if not is_combo(input_type):
        return False
    values = combo_values(input_type, options)
    if not values or options.get("remote") or any(options.get(flag) for flag in UPLOAD_FLAGS):
        return True
    if name.endswith("_name") and ("load" in node_type.lower() or (node_type, name) in _pack_file_widgets()):
        return True
    return all(isinstance(v, str) and v.lower().endswith(MODEL_EXTENSIONS) for v in values)


def _pack_file_widgets() -> set[tuple[str, str]]:
    """(node type, widget) of the pack's widgets that name model files, as the model doctor reads them (e.g. LTX-2
    Local Backend's ckpt_name and text_encoder_name, whose lists hold files and Gemma folders)."""
    from ltx2_anywhere.pipelines.doctor import LOADER_WIDGETS

    return {(node, name) for node, widgets in LOADER_WIDGETS.items() for name, _index, _folder in widgets}


def model_file_inputs(node_type: str, node_def: dict) -> list[str]:
    """Widget inputs that name a model file (file combos that are not user uploads): the marks of a loader node."""
    return [
        name
        for name, _section, input_type, options in iter_inputs(node_def)
        if is_widget_type(input_type)
        and not options.get("forceInput")
        and not any(options.get(flag) for flag in UPLOAD_FLAGS)
        and not options.get("remote")
        and is_file_combo(node_type, name, input_type, options)
    ]


def _control_slots(name: str, input_type: Any, options: dict) -> list[Slot]:
    """The control widgets the frontend adds after a widget.

    INT: ``control_after_generate ?? name in ("seed", "noise_seed")`` (``useIntWidget``), so an explicit ``False``
    switches the legacy name rule off. A combo with ``control_after_generate`` gets the control and a filter text.
    """
    if input_type == "INT":
        flag = options.get("control_after_generate")
        if flag is None:
            flag = name in SEED_NAMES
        return [Slot(f"{name}.control_after_generate", "control", "INT")] if flag else []
    if is_combo(input_type) and options.get("control_after_generate"):
        return [
            Slot(f"{name}.control_after_generate", "control", "COMBO"),
            Slot(f"{name}.control_filter_list", "filter"),
        ]
    return []


def _input_slots(node_type: str, name: str, input_type: Any, options: dict) -> list[Slot]:
    """The widget of one input followed by its control widgets; nothing for a socket or a ``forceInput``."""
    if not is_widget_type(input_type) or options.get("forceInput"):
        return []
    file_list = is_file_combo(node_type, name, input_type, options)
    return [Slot(name, "value", input_type, options, file_list), *_control_slots(name, input_type, options)]


def widget_slots(node_type: str, node_def: dict) -> list[Slot]:
    """The widgets, in order, whose values a node of this type saves in ``widgets_values``.

    Rule: walk required then optional inputs in ``input_order``; each input whose type is a widget type (INT, FLOAT,
    STRING, BOOLEAN, a combo list, COMBO or a dynamic combo) and is not ``forceInput`` gives one value, whether or not
    a link feeds it (a widget converted to a socket keeps its value); control widgets follow (``_control_slots``).
    Frontend-only widgets come after the required inputs: the upload button of an upload combo and the audio player.
    A hidden input (``hidden: true``, such as 0.33.0 SaveVideo's old top-level ``codec``) still has a widget that
    saves its value: frontend 1.49.6 ``litegraphService.addInputWidget`` only hides it. A dynamic combo's nested
    widgets depend on its value: ``_assign`` inserts them (``_nested_slots``).
    """
    slots: list[Slot] = []
    needs_upload = False
    extras_placed = False
    for name, section, input_type, options in iter_inputs(node_def):
        if section == "optional" and not extras_placed:
            slots.extend(_extra_slots(node_type, needs_upload))
            extras_placed = True
        if section == "required" and any(options.get(flag) for flag in UPLOAD_FLAGS):
            needs_upload = True
        slots.extend(_input_slots(node_type, name, input_type, options))
    if not extras_placed:
        slots.extend(_extra_slots(node_type, needs_upload))
    return slots


def dynamic_options(options: dict) -> dict[str, dict]:
    """A dynamic combo's choices: option key -> its nested ``inputs`` (``required`` / ``optional`` specs)."""
    return {choice["key"]: choice.get("inputs") or {} for choice in options.get("options") or []}


def _nested_slots(slot: Slot, key: str) -> list[Slot]:
    """The widgets a dynamic combo set to ``key`` adds right after itself, named ``<combo>.<input>``.

    Frontend 1.49.6 ``dynamicWidgets.ts`` (``dynamicComboWidget``): setting the value removes the widgets named
    ``<combo>.*`` and adds the chosen option's required then optional inputs, in the order the server lists them,
    each as a widget of its own kind (a nested dynamic combo expands the same way), spliced in after the combo.
    Checked in frontends 1.49.6 and 1.58.1 on 0.33.0's SaveVideo: a new node saves [prefix, format, format.codec,
    codec]; ``["x", "mp4", "h264", "re-encode", "HDR", 20, "auto"]`` loads into format.codec.encoding.crf = 20.
    """
    nested = dynamic_options(slot.options).get(key) or {}
    slots = []
    for section in ("required", "optional"):
        for name, spec in (nested.get(section) or {}).items():
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            slots.extend(_input_slots("", f"{slot.name}.{name}", spec[0], options))
    return slots


def _extra_slots(node_type: str, needs_upload: bool) -> list[Slot]:
    extras = []
    if node_type in AUDIO_UI_NODES:
        extras.append(Slot("audioUI", "extra"))
    if needs_upload:
        extras.append(Slot("upload", "extra"))
    return extras


def _check_value(label: str, slot: Slot, value: Any) -> list[str]:
    """Problems with one widget value."""
    where = f"{label}: widget '{slot.name}' = {value!r}"
    if slot.kind == "control":
        allowed = COMBO_CONTROL_VALUES if slot.type == "COMBO" else CONTROL_VALUES
        return [] if value in allowed else [f"{where} is not a control value ({', '.join(allowed)})"]
    if slot.kind in ("filter", "extra"):
        return [] if value is None or isinstance(value, str) else [f"{where} should be a string or null"]
    input_type, options = slot.type, slot.options
    if input_type in ("INT", "FLOAT"):
        number_types = (int,) if input_type == "INT" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number_types):
            return [f"{where} is not {'an integer' if input_type == 'INT' else 'a number'}"]
        if options.get("min") is not None and value < options["min"]:
            return [f"{where} below min {options['min']}"]
        if options.get("max") is not None and value > options["max"]:
            return [f"{where} above max {options['max']}"]
        return _check_int_step(where, input_type, options, value)
    if input_type == "STRING":
        return [] if isinstance(value, str) else [f"{where} is not a string"]
    if input_type == "BOOLEAN":
        return [] if isinstance(value, bool) else [f"{where} is not a boolean"]
    if input_type == DYNAMIC_COMBO:
        # The server expands only a known key (comfy_api/latest/_io.py, DynamicCombo._expand_schema_for_dynamic):
        # with any other value the input is left out of the prompt and the node fails for lack of it.
        keys = list(dynamic_options(options))
        return [] if value in keys else [f"{where} is not one of the dynamic combo's options ({', '.join(keys)})"]
    chosen = value if options.get("multiselect") and isinstance(value, list) else [value]
    if slot.file_list:
        bad = [v for v in chosen if not isinstance(v, str) or not v]
        return [f"{where} is not a file name (a non-empty string)"] if bad or not chosen else []
    allowed = combo_values(input_type, options)
    bad = [v for v in chosen if v not in allowed]
    if bad:
        shown = ", ".join(repr(v) for v in allowed[:12]) + (", ..." if len(allowed) > 12 else "")
        return [f"{where} is not one of the combo's values ({shown})"]
    return []


def _check_int_step(where: str, input_type: str, options: dict, value: int) -> list[str]:
    """An INT widget snaps every edit to ``min + k * step`` (``useIntWidget``), so a value off that grid is one the
    user could not set, and for the pack's sizes and frame counts one the model rejects."""
    step, low = options.get("step"), options.get("min") or 0
    if input_type != "INT" or not isinstance(step, int) or step <= 1 or not isinstance(low, int):
        return []
    if (value - low) % step:
        return [f"{where} is off the widget's step: expected {low} plus a multiple of {step}"]
    return []


def _check_widget_values(label: str, slots: list[Slot], values: Any) -> list[str]:
    """Line ``widgets_values`` up against the expected slots and check each value."""
    if values is None:
        values = []
    if isinstance(values, dict):
        return _check_named_values(label, slots, values)
    if not isinstance(values, list):
        return [f"{label}: widgets_values is {type(values).__name__}, not a list"]
    problems = _best_assignment(label, slots, values).problems
    controls = [s.name for s in slots if s.kind == "control"]
    if problems and controls:
        without_controls = [s for s in slots if s.kind not in ("control", "filter")]
        if not _best_assignment(label, without_controls, values).problems:
            return [
                f"{label}: widgets_values has {len(values)} values but lacks {', '.join(controls)}: "
                f"each needs one of {', '.join(CONTROL_VALUES)} right after its widget's value"
            ]
    return problems


def _check_named_values(label: str, slots: list[Slot], values: dict) -> list[str]:
    """Values saved by name (a dict): each must name a widget, a dynamic combo's nested ones included."""
    named = {slot.name: slot for slot in slots if slot.kind == "value"}
    problems = []
    for key, value in values.items():
        slot = named.get(key)
        if slot is None:
            problems.append(f"{label}: widgets_values names unknown widget '{key}'")
            continue
        found = _check_value(label, slot, value)
        problems += found
        if slot.type == DYNAMIC_COMBO and not found:
            named.update({s.name: s for s in _nested_slots(slot, value) if s.kind == "value"})
    return problems


def widget_values_by_name(node_type: str, node_def: dict, values: Any) -> dict:
    """The backend inputs' widget values of one node, by input name, lined up as ``validate_workflow`` does;
    widgets the saved values stop before take their defaults."""
    if isinstance(values, dict):
        return dict(values)
    if not isinstance(values, list):
        return {}
    slots = widget_slots(node_type, node_def)
    best = _best_assignment("", slots, values)
    named = {slot.name: value for slot, value in best.pairs if slot.kind == "value"}
    # Widgets past the saved values (appended since the workflow was saved) load with their defaults.
    defaults = {slot.name: slot.options.get("default") for slot in slots if slot.kind == "value"}
    return {**defaults, **named}


@dataclass
class _Assignment:
    pairs: list[tuple[Slot, Any]]
    problems: list[str]
    unmatched: int  # values past the last widget plus widgets past the last value


def _assign(label: str, slots: list[Slot], values: list) -> _Assignment:
    """Give the values to the widgets in order, as the frontend does when it loads a saved workflow.

    Frontend 1.27.10 and 1.49.6 ``LGraphNode.configure``: each widget that serializes takes the next value; once
    the values run out the remaining widgets keep their defaults, and values past the last widget are ignored, so
    a workflow saved before an input was appended still loads. In 1.49.6 the loop walks the live widget list, so
    the widgets a dynamic combo adds when it gets its value take the values that follow it (``_nested_slots``).
    """
    pending = list(slots)
    pairs, problems = [], []
    for value in values:
        if not pending:
            break
        slot = pending.pop(0)
        found = _check_value(label, slot, value)
        problems += found
        pairs.append((slot, value))
        if slot.type == DYNAMIC_COMBO and not found:
            pending[:0] = _nested_slots(slot, value)
    return _Assignment(pairs, problems, len(values) - len(pairs) + len(pending))


def _best_assignment(label: str, slots: list[Slot], values: list) -> _Assignment:
    """The assignment with the fewest problems over the ways of keeping or dropping the optional slots (frontend
    versions differ in which frontend-only widgets they save); among equals, the one that lines up exactly."""
    candidates = [_assign(label, chosen, values) for chosen in _all_alignments(slots)]
    return min(candidates, key=lambda a: (len(a.problems), a.unmatched))


def _all_alignments(slots: list[Slot]):
    optional = [i for i, slot in enumerate(slots) if slot.optional]
    for keep in itertools.product((True, False), repeat=len(optional)):
        dropped = {i for i, kept in zip(optional, keep) if not kept}
        yield [slot for i, slot in enumerate(slots) if i not in dropped]


# --- types and links -----------------------------------------------------------------------------------------------


def types_compatible(received: Any, expected: Any) -> bool:
    """ComfyUI's ``validate_node_input`` (non-strict): ``*`` matches anything, comma lists need one type in common."""
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    if received == expected or "*" in (received, expected):
        return True
    received_set = {t.strip() for t in received.split(",")}
    expected_set = {t.strip() for t in expected.split(",")}
    return bool(received_set & expected_set)


def socket_type(input_type: Any) -> str:
    """The link type an input accepts: a combo list travels as ``COMBO``."""
    return "COMBO" if isinstance(input_type, list) else input_type


def _normalise_links(workflow: dict) -> tuple[list[dict], list[str]]:
    links, problems = [], []
    for raw in workflow.get("links") or []:
        if isinstance(raw, list) and len(raw) >= len(LINK_KEYS):
            links.append(dict(zip(LINK_KEYS, raw)))
        elif isinstance(raw, dict) and all(key in raw for key in LINK_KEYS):
            links.append({key: raw[key] for key in LINK_KEYS})
        else:
            problems.append(f"malformed link {raw!r}: expected [id, origin_id, origin_slot, target_id, target_slot, type]")
    return links, problems


class _Graph:
    """Nodes and links of one workflow, with the look-ups the checks share."""

    def __init__(self, workflow: dict, defs: dict):
        self.defs = defs
        self.nodes: dict[Any, dict] = {}
        self.problems: list[str] = []
        for node in workflow.get("nodes") or []:
            node_id = node.get("id")
            if node_id in self.nodes:
                self.problems.append(f"node id {node_id} is used twice")
            self.nodes[node_id] = node
        self.links, link_problems = _normalise_links(workflow)
        self.problems += link_problems
        self.links_by_id: dict[Any, dict] = {}
        for link in self.links:
            if link["id"] in self.links_by_id:
                self.problems.append(f"link id {link['id']} is used twice")
            self.links_by_id[link["id"]] = link
        subgraphs = (workflow.get("definitions") or {}).get("subgraphs") or []
        self.subgraph_ids = {sg.get("id") for sg in subgraphs if isinstance(sg, dict)}

    def label(self, node_id: Any) -> str:
        node = self.nodes.get(node_id) or {}
        return f"node {node_id} ({node.get('type')})"

    def input_entry(self, node: dict, slot: Any) -> dict | None:
        inputs = node.get("inputs") or []
        return inputs[slot] if isinstance(slot, int) and 0 <= slot < len(inputs) else None

    def output_type(self, link: dict, seen: frozenset = frozenset()) -> tuple[Any, str | None]:
        """(type, problem) of what a link carries from its origin; a Reroute passes on what reaches it."""
        node = self.nodes[link["origin_id"]]
        node_type = node.get("type")
        slot = link["origin_slot"]
        if node_type == "Reroute":
            upstream = [
                other for other in self.links
                if other["target_id"] == link["origin_id"] and other["origin_id"] in self.nodes
            ]
            if not upstream or link["origin_id"] in seen:
                return "*", None
            return self.output_type(upstream[0], seen | {link["origin_id"]})
        if node_type == "PrimitiveNode":
            outputs = node.get("outputs") or []
            return (outputs[0].get("type", "*") if outputs else "*"), None
        if node_type in NOTE_NODES:
            return None, f"link {link['id']} starts at {self.label(link['origin_id'])}, which has no outputs"
        node_def = self.defs.get(node_type)
        if node_def is None:
            return None, None
        outputs = node_def.get("output") or []
        if not isinstance(slot, int) or not 0 <= slot < len(outputs):
            return None, (
                f"link {link['id']} starts at output slot {slot} of {self.label(link['origin_id'])}, "
                f"which has {len(outputs)} outputs"
            )
        return socket_type(outputs[slot]), None

    def target_spec(self, link: dict) -> tuple[str | None, Any, dict, str | None]:
        """(input name, accepted type, options, problem) of the input a link feeds."""
        node = self.nodes[link["target_id"]]
        node_type = node.get("type")
        where = f"link {link['id']} ends at input slot {link['target_slot']} of {self.label(link['target_id'])}"
        if node_type == "Reroute":
            return "", "*", {}, None
        if node_type in ("PrimitiveNode", *NOTE_NODES):
            return None, None, {}, f"{where}, which has no inputs"
        entry = self.input_entry(node, link["target_slot"])
        if entry is None:
            count = len(node.get("inputs") or [])
            return None, None, {}, f"{where}, which lists {count} inputs"
        node_def = self.defs.get(node_type)
        if node_def is None:
            return entry.get("name"), None, {}, None
        for name, _section, input_type, options in iter_inputs(node_def):
            if name == entry.get("name"):
                return name, socket_type(input_type), options, None
        return None, None, {}, f"{where}: its input '{entry.get('name')}' is not in the node's definition"


def _check_version(workflow: dict, graph: _Graph) -> list[str]:
    version = workflow.get("version")
    if version not in SUPPORTED_VERSIONS:
        return [f"workflow version {version!r} is not a UI-format version this validator knows (0.4 or 1)"]
    if version == 1:
        state = workflow.get("state") or {}
        last_node, last_link = state.get("lastNodeId"), state.get("lastLinkId")
        names = ("state.lastNodeId", "state.lastLinkId")
    else:
        last_node, last_link = workflow.get("last_node_id"), workflow.get("last_link_id")
        names = ("last_node_id", "last_link_id")
    problems = []
    for name, last, ids in ((names[0], last_node, graph.nodes), (names[1], last_link, graph.links_by_id)):
        numeric = [i for i in ids if isinstance(i, int)]
        if numeric and (not isinstance(last, int) or last < max(numeric)):
            problems.append(f"{name} = {last!r} is below the highest id {max(numeric)}: new items would reuse ids")
    return problems


def _check_links(graph: _Graph) -> list[str]:
    problems = []
    for link in graph.links:
        ends_missing = False
        for end in ("origin_id", "target_id"):
            if link[end] not in graph.nodes:
                problems.append(f"link {link['id']}: {end.split('_')[0]} node {link[end]} does not exist")
                ends_missing = True
        if ends_missing:
            continue
        origin_type, origin_problem = graph.output_type(link)
        name, target_type, _options, target_problem = graph.target_spec(link)
        problems += [p for p in (origin_problem, target_problem) if p]
        if origin_problem or target_problem:
            continue
        link_type = link["type"]
        pairs = (("link type", link_type, "output type", origin_type), ("link type", link_type, "input type", target_type))
        if origin_type is not None and target_type is not None:
            pairs += (("output type", origin_type, "input type", target_type),)
        for first_name, first, second_name, second in pairs:
            if first is not None and second is not None and not types_compatible(first, second):
                problems.append(
                    f"link {link['id']} from {graph.label(link['origin_id'])} slot {link['origin_slot']} "
                    f"to {graph.label(link['target_id'])} input '{name}': {first_name} {first!r} does not match "
                    f"{second_name} {second!r}"
                )
                break
        problems += _check_link_bookkeeping(graph, link)
    for node_id, node in graph.nodes.items():
        for slot, entry in enumerate(node.get("inputs") or []):
            link_id = entry.get("link")
            if link_id is None:
                continue
            link = graph.links_by_id.get(link_id)
            if link is None or link["target_id"] != node_id or link["target_slot"] != slot:
                problems.append(f"{graph.label(node_id)}: input '{entry.get('name')}' records link {link_id}, "
                                "which does not end there")
        for slot, entry in enumerate(node.get("outputs") or []):
            for link_id in entry.get("links") or []:
                link = graph.links_by_id.get(link_id)
                if link is None or link["origin_id"] != node_id or link["origin_slot"] != slot:
                    problems.append(f"{graph.label(node_id)}: output '{entry.get('name')}' records link {link_id}, "
                                    "which does not start there")
    return problems


def _check_link_bookkeeping(graph: _Graph, link: dict) -> list[str]:
    """Both ends must record the link: the frontend draws and runs connections from the nodes' slot lists."""
    problems = []
    target = graph.nodes[link["target_id"]]
    entry = graph.input_entry(target, link["target_slot"])
    if entry is not None and entry.get("link") != link["id"]:
        problems.append(f"link {link['id']}: {graph.label(link['target_id'])} input '{entry.get('name')}' records "
                        f"link {entry.get('link')!r} instead")
    origin = graph.nodes[link["origin_id"]]
    outputs = origin.get("outputs") or []
    slot = link["origin_slot"]
    if not isinstance(slot, int) or not 0 <= slot < len(outputs):
        problems.append(f"link {link['id']}: {graph.label(link['origin_id'])} lists no output slot {slot}")
    elif link["id"] not in (outputs[slot].get("links") or []):
        problems.append(f"link {link['id']}: {graph.label(link['origin_id'])} output '{outputs[slot].get('name')}' "
                        "does not record it")
    return problems


# --- nodes ---------------------------------------------------------------------------------------------------------


def _check_frontend_node(graph: _Graph, node_id: Any, node: dict) -> list[str]:
    label = graph.label(node_id)
    node_type = node["type"]
    values = node.get("widgets_values")
    if node_type in NOTE_NODES:
        if not (isinstance(values, list) and len(values) == 1 and isinstance(values[0], str)):
            return [f"{label}: widgets_values must hold exactly the note text (one string), got {values!r}"]
        return []
    if node_type == "Reroute":
        return [] if not values else [f"{label}: a Reroute has no widgets, got widgets_values {values!r}"]
    # PrimitiveNode: its one output takes the type of the widget inputs it feeds, and its widgets mirror theirs.
    targets = [link for link in graph.links if link["origin_id"] == node_id and link["target_id"] in graph.nodes]
    if not targets:
        return [f"{label}: feeds no widget input, so its value goes nowhere"]
    specs = []
    problems = []
    for link in targets:
        name, input_type, options, problem = graph.target_spec(link)
        if problem:
            continue
        target_node = graph.nodes[link["target_id"]]
        node_def = graph.defs.get(target_node.get("type"))
        if node_def is None:
            continue
        original = next((t for n, _s, t, _o in iter_inputs(node_def) if n == name), None)
        if not is_widget_type(original):
            problems.append(f"{label}: feeds input '{name}' of {graph.label(link['target_id'])}, which is not a widget")
            continue
        specs.append((target_node.get("type"), name, original, options))
    if problems or not specs:
        return problems
    target_type, name, input_type, options = specs[0]
    for other in specs[1:]:
        if socket_type(other[2]) != socket_type(input_type):
            problems.append(f"{label}: feeds widgets of different types ({socket_type(input_type)}, {socket_type(other[2])})")
    slots = [Slot(name, "value", input_type, options, is_file_combo(target_type, name, input_type, options))]
    if input_type in ("INT", "FLOAT") or is_combo(input_type):
        # The primitive gives every number and combo a control widget of its own (a combo's with a filter).
        control_type = input_type if is_combo(input_type) else "INT"
        slots += _control_slots(name, control_type, {"control_after_generate": True})
    return problems + _check_widget_values(label, slots, values)


def _check_required_inputs(graph: _Graph, node_id: Any, node: dict, node_def: dict) -> list[str]:
    """A required socket (not a widget) without a link stops the whole prompt with "Required input is missing"."""
    linked = {entry.get("name") for entry in node.get("inputs") or [] if entry.get("link") is not None}
    return [
        f"{graph.label(node_id)}: required input '{name}' is not connected"
        for name, section, input_type, options in iter_inputs(node_def)
        if section == "required"
        and (not is_widget_type(input_type) or options.get("forceInput"))
        and name not in linked
    ]


def validate_workflow(workflow: dict, node_defs: dict) -> list[str]:
    """Problems found in a UI-format workflow (versions 0.4 and 1); an empty list means it is valid.

    ``node_defs`` maps node type to its ``/object_info`` entry (core and pack together: see ``all_defs``).
    """
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return ["not a UI-format workflow: no 'nodes' list"]
    graph = _Graph(workflow, node_defs)
    problems = list(graph.problems)
    problems += _check_version(workflow, graph)
    for node_id, node in graph.nodes.items():
        node_type = node.get("type")
        label = graph.label(node_id)
        if node_type in FRONTEND_ONLY_NODES:
            problems += _check_frontend_node(graph, node_id, node)
            continue
        node_def = node_defs.get(node_type)
        if node_def is None:
            if node_type in graph.subgraph_ids:
                problems.append(f"{label}: subgraph nodes are not supported by this validator")
            else:
                problems.append(f"{label}: unknown node type '{node_type}' (neither a core node nor a pack node)")
            continue
        problems += _check_widget_values(label, widget_slots(node_type, node_def), node.get("widgets_values"))
        if node.get("mode", 0) not in MUTED_MODES:
            problems += _check_required_inputs(graph, node_id, node, node_def)
    problems += _check_links(graph)
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Copy core node definitions into tests/data.")
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy the /object_info entries of these core nodes, for every version")
    copy.add_argument("--source", type=Path, required=True,
                      help="folder with object_info-core-<version>.json (shared/comfyui)")
    copy.add_argument("node_types", nargs="+")
    args = parser.parse_args(argv)
    copy_core_definitions(args.source, args.node_types)


if __name__ == "__main__":
    main()
