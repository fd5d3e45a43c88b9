"""Runs a UI-format workflow without ComfyUI: converted to an API prompt the way the frontend converts it, checked
the way the server checks a queued prompt, then executed node by node.

Conversion (the frontend's ``graphToPrompt``): widget values go by position into named inputs, lined up by
``workflow_validator.widget_values_by_name`` (control_after_generate values, combo filters and upload/player
widgets are frontend-only and dropped); a link into an input replaces the widget value of a widget converted to a
socket; a PrimitiveNode's value is written into the widgets it feeds; Reroutes pass links through; Notes are
skipped; a muted node (mode 2) is left out together with every input linked to it, and a bypassed node (mode 4)
hands its first input of the requested type to whatever it fed.

Execution (the server's ``execution.py``): only output nodes and what they depend on run, dependencies first.
Pack nodes come from ``ltx2_anywhere.NODE_CLASS_MAPPINGS`` and get their hidden inputs (UNIQUE_ID, PROMPT,
EXTRA_PNGINFO); core nodes come from ``core_standins``. A ``{"ui": …, "result": …}`` return is unwrapped.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import workflow_validator as wv

MODE_NEVER, MODE_BYPASS = wv.MUTED_MODES
VIRTUAL_NODES = wv.FRONTEND_ONLY_NODES

# overrides: {node type: {widget name: value}}; result hooks: {node type: hook(result tuple, inputs) -> tuple}
Overrides = dict[str, dict[str, Any]]
ResultHook = Callable[[tuple, dict], tuple]


class WorkflowError(AssertionError):
    """The workflow cannot be converted or queued (what ComfyUI would refuse with a message)."""


@dataclass
class Run:
    """What one execution left: the API prompt, each executed node's outputs and ui, and the order they ran in."""

    prompt: dict
    outputs: dict[str, tuple] = field(default_factory=dict)
    ui: dict[str, dict] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def pack_classes() -> dict[str, type]:
    return importlib.import_module(wv.PACK_MODULE).NODE_CLASS_MAPPINGS


# --- UI format -> API prompt ---------------------------------------------------------------------------------------


def to_prompt(workflow: dict, defs: dict, overrides: Overrides | None = None) -> dict:
    """The API-format prompt the frontend would queue for ``workflow``, with ``overrides`` put into widget values
    (an input fed by a link still takes the link, as it does in the frontend); widgets a saved workflow has no
    value for (appended since it was saved) take their defaults, as in the frontend."""
    overrides = overrides or {}
    nodes = {node["id"]: node for node in workflow["nodes"]}
    links, problems = wv._normalise_links(workflow)
    if problems:
        raise WorkflowError("; ".join(problems))
    links_by_id = {link["id"]: link for link in links}
    prompt = {}
    for node_id, node in nodes.items():
        node_type = node["type"]
        if node_type in VIRTUAL_NODES or node.get("mode", 0) in (MODE_NEVER, MODE_BYPASS):
            continue
        node_def = defs.get(node_type)
        if node_def is None:
            raise WorkflowError(f"node {node_id}: unknown node type '{node_type}'")
        inputs = _widget_inputs(node_id, node, node_def, overrides.get(node_type, {}))
        for slot, entry in enumerate(node.get("inputs") or []):
            if entry.get("link") is None:
                continue
            source = _resolve(nodes, links_by_id, links_by_id.get(entry["link"]), entry.get("type"))
            if isinstance(source, _Value):
                inputs[entry["name"]] = source.value
            elif source is not None:
                inputs[entry["name"]] = [str(source[0]), source[1]]
        title = node.get("title") or node_def.get("display_name") or node_type
        prompt[str(node_id)] = {"class_type": node_type, "inputs": inputs, "_meta": {"title": title}}
    for entry in prompt.values():  # links from nodes left out (muted, or a bypass with nothing to pass on)
        entry["inputs"] = {name: value for name, value in entry["inputs"].items()
                           if not (_is_link(value) and value[0] not in prompt)}
    return prompt


def _widget_inputs(node_id, node: dict, node_def: dict, overrides: dict) -> dict:
    node_type = node["type"]
    names = [slot.name for slot in wv.widget_slots(node_type, node_def) if slot.kind == "value"]
    values = wv.widget_values_by_name(node_type, node_def, node.get("widgets_values"))
    if set(values) != set(names):
        raise WorkflowError(f"node {node_id} ({node_type}): widgets_values {node.get('widgets_values')!r} do not "
                            f"line up with its widgets {names}")
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise WorkflowError(f"override for {node_type} names {unknown}, which are not its widgets ({names})")
    return {**values, **overrides}


@dataclass(frozen=True)
class _Value:
    """A literal that reaches an input through a link: a PrimitiveNode's value."""

    value: Any


def _resolve(nodes: dict, links_by_id: dict, link: dict | None, input_type: Any):
    """(origin id, slot) that really feeds an input, a _Value, or None (nothing: the input is left out)."""
    seen = set()
    while link is not None and link["id"] not in seen:
        seen.add(link["id"])
        parent = nodes.get(link["origin_id"])
        if parent is None:
            return None
        if parent["type"] == "PrimitiveNode":
            values = parent.get("widgets_values") or [None]
            return _Value(values[0])
        if parent["type"] == "Reroute":
            link = _input_link(parent, 0, links_by_id)
            continue
        if parent.get("mode", 0) == MODE_BYPASS:
            inputs = parent.get("inputs") or []
            candidates = [link["origin_slot"], *range(len(inputs))]
            match = next((i for i in candidates if isinstance(i, int) and 0 <= i < len(inputs)
                          and inputs[i].get("type") == input_type), None)
            if match is None:
                return None
            link = _input_link(parent, match, links_by_id)
            continue
        return link["origin_id"], link["origin_slot"]
    return None


def _input_link(node: dict, slot: int, links_by_id: dict) -> dict | None:
    inputs = node.get("inputs") or []
    return links_by_id.get(inputs[slot].get("link")) if slot < len(inputs) else None


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


# --- queue-time checks ---------------------------------------------------------------------------------------------


def executed_nodes(prompt: dict, defs: dict) -> list[str]:
    """Output nodes and everything they depend on, dependencies first (the order the server runs them)."""
    outputs = sorted((node_id for node_id, entry in prompt.items() if defs[entry["class_type"]].get("output_node")),
                     key=_node_key)
    if not outputs:
        raise WorkflowError("Prompt has no outputs")
    order: list[str] = []
    visiting: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        if node_id in visiting:
            raise WorkflowError(f"node {node_id} depends on itself")
        visiting.add(node_id)
        for value in prompt[node_id]["inputs"].values():
            if _is_link(value):
                visit(value[0])
        visiting.discard(node_id)
        order.append(node_id)

    for node_id in outputs:
        visit(node_id)
    return order


def _node_key(node_id: str):
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def check_prompt(prompt: dict, defs: dict, core_ids: set[str]) -> list[str]:
    """What the server's ``validate_inputs`` would refuse, for the nodes that run; values are converted in place
    (INT, FLOAT, STRING, BOOLEAN) as the server converts them.

    Combo values must be in the list the node offers now (the pack's lists are read from the configured model
    folders, as ComfyUI reads them); core file combos are left to the stand-ins, which need the file itself.
    """
    problems = []
    classes = pack_classes()
    for node_id in executed_nodes(prompt, defs):
        entry = prompt[node_id]
        node_type = entry["class_type"]
        node_def = defs[node_type]
        label = f"node {node_id} ({node_type})"
        cls = classes.get(node_type) if node_type not in core_ids else None
        validated = _validate_inputs_params(cls)
        values = {}
        for name, section, input_type, options in wv.iter_inputs(node_def):
            if name not in entry["inputs"]:
                if section == "required":
                    problems.append(f"{label}: Required input is missing: {name}")
                continue
            value = entry["inputs"][name]
            if _is_link(value):
                origin = prompt.get(value[0])
                outputs = (defs[origin["class_type"]].get("output") or []) if origin else []
                if not 0 <= value[1] < len(outputs):
                    problems.append(f"{label}: input '{name}' is linked to a missing output")
                elif not wv.types_compatible(wv.socket_type(outputs[value[1]]), wv.socket_type(input_type)):
                    problems.append(f"{label}: input '{name}' expects {wv.socket_type(input_type)}, gets "
                                    f"{outputs[value[1]]}")
                continue
            try:
                value = entry["inputs"][name] = _convert(input_type, value)
            except (TypeError, ValueError):
                problems.append(f"{label}: input '{name}' = {value!r} is not {input_type}")
                continue
            values[name] = value
            if name in validated:
                continue
            problems += _check_literal(label, node_type, name, input_type, options, value, node_type in core_ids)
        if validated:
            problems += _run_validate_inputs(label, cls, validated, values)
    return problems


def _convert(input_type: Any, value: Any) -> Any:
    converters = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
    return converters[input_type](value) if isinstance(input_type, str) and input_type in converters else value


def _check_literal(label, node_type, name, input_type, options, value, core: bool) -> list[str]:
    if input_type in ("INT", "FLOAT"):
        if options.get("min") is not None and value < options["min"]:
            return [f"{label}: Value {value} smaller than min of {options['min']}: {name}"]
        if options.get("max") is not None and value > options["max"]:
            return [f"{label}: Value {value} bigger than max of {options['max']}: {name}"]
        return []
    if not wv.is_combo(input_type) or (core and wv.is_file_combo(node_type, name, input_type, options)):
        return []
    allowed = wv.combo_values(input_type, options)
    return [] if value in allowed else [f"{label}: Value not in list: {name}: '{value}' not in {allowed}"]


def _validate_inputs_params(cls) -> set[str]:
    """Inputs a node checks itself in VALIDATE_INPUTS (the server then skips its own min/max/list checks)."""
    validate = getattr(cls, "VALIDATE_INPUTS", None)
    if validate is None:
        return set()
    return {name for name in inspect.signature(validate).parameters if name not in ("cls", "input_types")}


def _run_validate_inputs(label: str, cls, params: set[str], values: dict) -> list[str]:
    """VALIDATE_INPUTS gets widget values only; inputs fed by links come as None, as in the server."""
    answer = cls.VALIDATE_INPUTS(**{name: values.get(name) for name in params})
    return [] if answer is True else [f"{label}: {answer}"]


# --- execution -----------------------------------------------------------------------------------------------------


def execute(prompt: dict, defs: dict, standins: dict, *, workflow: dict | None = None,
            result_hooks: dict[str, ResultHook] | None = None) -> Run:
    """Check and run ``prompt``; ``result_hooks`` may replace a node type's outputs (e.g. point a hosted backend at a
    fake server) before anything downstream sees them."""
    core_ids = set(standins)
    problems = check_prompt(prompt, defs, core_ids)
    if problems:
        raise WorkflowError("prompt would be refused: " + "; ".join(problems))
    classes = pack_classes()
    extra_pnginfo = {"workflow": workflow} if workflow is not None else {}
    run = Run(prompt=prompt)
    for node_id in executed_nodes(prompt, defs):
        entry = prompt[node_id]
        node_type = entry["class_type"]
        node_def = defs[node_type]
        kwargs = {name: run.outputs[value[0]][value[1]] if _is_link(value) else value
                  for name, value in entry["inputs"].items()}
        hidden = {"UNIQUE_ID": node_id, "PROMPT": prompt, "EXTRA_PNGINFO": extra_pnginfo}
        for name, spec in ((node_def.get("input") or {}).get("hidden") or {}).items():
            kind = spec if isinstance(spec, str) else spec[0]
            if kind in hidden:
                kwargs[name] = hidden[kind]
        if node_type in core_ids:
            returned = standins[node_type].run(**kwargs)
        else:
            cls = classes[node_type]
            returned = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(returned, dict):
            run.ui[node_id] = returned.get("ui") or {}
            returned = returned.get("result", ())
        result = tuple(returned or ())
        if result_hooks and node_type in result_hooks:
            result = tuple(result_hooks[node_type](result, kwargs))
        expected = node_def.get("output") or []
        if len(result) != len(expected):
            raise WorkflowError(f"node {node_id} ({node_type}) returned {len(result)} outputs, its definition "
                                f"lists {len(expected)} ({expected})")
        run.outputs[node_id] = result
        run.order.append(node_id)
    return run


def run_workflow(workflow: dict, defs: dict, standins: dict, overrides: Overrides | None = None,
                 result_hooks: dict[str, ResultHook] | None = None) -> Run:
    """Convert and execute a UI-format workflow (see the module docstring)."""
    prompt = to_prompt(workflow, defs, overrides)
    return execute(prompt, defs, standins, workflow=workflow, result_hooks=result_hooks)
