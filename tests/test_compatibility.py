"""Saved workflows keep loading: node ids, inputs and widget order are frozen in ``compat_snapshot.json``.

A UI-format workflow stores widget values by position and links by slot, so a release may add nodes and append
inputs, widgets and outputs, but never remove, rename, retype or reorder what a saved workflow relies on. Combo
inputs are recorded as ``COMBO``: their options (model files, endpoints) may grow.

Refresh the snapshot after an intended, compatible change: ``python tests/test_compatibility.py --update``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import workflow_validator as wv

SNAPSHOT = Path(__file__).with_name("compat_snapshot.json")
REFRESH = "python tests/test_compatibility.py --update"


def describe(node_id: str, node_def: dict) -> dict:
    """What a saved workflow depends on for one node."""
    inputs = {"required": [], "optional": []}
    for name, section, input_type, options in wv.iter_inputs(node_def):
        widget = wv.is_widget_type(input_type) and not options.get("forceInput")
        inputs[section].append({"name": name, "type": wv.socket_type(input_type), "widget": widget})
    widgets = [slot.name for slot in wv.widget_slots(node_id, node_def) if slot.kind in ("value", "control")]
    return {"return_types": list(node_def["output"]), "inputs": inputs, "widgets_values": widgets}


def current() -> dict:
    return {node_id: describe(node_id, node_def) for node_id, node_def in sorted(wv.pack_defs().items())}


def compare(frozen: dict, now: dict) -> tuple[list[str], list[str]]:
    """(breaking changes, compatible additions) from the frozen snapshot to the current nodes."""
    breaking, added = [], []
    for node_id in sorted(set(now) - set(frozen)):
        added.append(f"new node {node_id}")
    for node_id, old in frozen.items():
        new = now.get(node_id)
        if new is None:
            breaking.append(f"{node_id}: node id removed (saved workflows name it)")
            continue
        checks = [("output", old["return_types"], new["return_types"])]
        checks += [(f"{section} input", old["inputs"][section], new["inputs"][section])
                   for section in ("required", "optional")]
        checks.append(("widgets_values entry", old["widgets_values"], new["widgets_values"]))
        for what, before, after in checks:
            b, a = _prefix(node_id, what, before, after)
            breaking += b
            added += a
    return breaking, added


def _prefix(node_id: str, what: str, before: list, after: list) -> tuple[list[str], list[str]]:
    """``before`` must open ``after`` unchanged; anything past it is an addition."""
    breaking = [f"{node_id}: {what} {i} was {old!r}, is now {after[i] if i < len(after) else 'gone'!r}"
                for i, old in enumerate(before) if i >= len(after) or after[i] != old]
    added = [f"{node_id}: {what} appended: {item!r}" for item in after[len(before):]]
    return breaking[:1], added


def test_saved_workflows_keep_loading():
    frozen = json.loads(SNAPSHOT.read_text(encoding="utf-8"))["nodes"]
    breaking, added = compare(frozen, current())
    if added:
        print(f"compatible additions not yet in {SNAPSHOT.name} ({REFRESH} to record them):\n  " + "\n  ".join(added))
    assert not breaking, (
        "these changes break saved workflows:\n  " + "\n  ".join(breaking)
        + f"\nKeep old inputs and widgets where they are and append new ones at the end; if the change is "
        f"intended and compatible, refresh the snapshot with: {REFRESH}"
    )


def _node(required=(), optional=(), outputs=("IMAGE",)):
    def inputs(specs):
        return [{"name": name, "type": kind, "widget": kind in wv.WIDGET_TYPES} for name, kind in specs]

    widgets = [name for name, kind in (*required, *optional) if kind in wv.WIDGET_TYPES]
    return {"return_types": list(outputs), "inputs": {"required": inputs(required), "optional": inputs(optional)},
            "widgets_values": widgets}


BASE = {"A": _node(required=[("model", "L2A_MODEL"), ("steps", "INT")], optional=[("prompt", "STRING")])}


def test_new_nodes_and_appended_inputs_are_compatible():
    grown = {
        "A": _node(required=[("model", "L2A_MODEL"), ("steps", "INT")],
                   optional=[("prompt", "STRING"), ("image", "IMAGE"), ("cfg", "FLOAT")], outputs=("IMAGE", "INT")),
        "B": _node(),
    }
    breaking, added = compare(BASE, grown)
    assert breaking == [] and "new node B" in added and len(added) == 5


def test_removed_renamed_retyped_or_inserted_inputs_break():
    variants = {
        "node removed": {},
        "input renamed": {"A": _node(required=[("model", "L2A_MODEL"), ("num_steps", "INT")],
                                     optional=[("prompt", "STRING")])},
        "input retyped": {"A": _node(required=[("model", "L2A_MODEL"), ("steps", "FLOAT")],
                                     optional=[("prompt", "STRING")])},
        "input inserted": {"A": _node(required=[("model", "L2A_MODEL"), ("cfg", "FLOAT"), ("steps", "INT")],
                                      optional=[("prompt", "STRING")])},
        # appended to required, but it lands before the optional widget in widgets_values
        "widget order": {"A": _node(required=[("model", "L2A_MODEL"), ("steps", "INT"), ("cfg", "FLOAT")],
                                    optional=[("prompt", "STRING")])},
        "output changed": {"A": _node(required=[("model", "L2A_MODEL"), ("steps", "INT")],
                                      optional=[("prompt", "STRING")], outputs=("LATENT",))},
    }
    for what, now in variants.items():
        assert compare(BASE, now)[0], f"{what} was not caught"


def _dump(value, indent: str = "") -> str:
    """JSON with one line per input and per flat list, so a snapshot refresh reads as a short diff."""
    flat = not any(isinstance(item, (dict, list)) for item in (value.values() if isinstance(value, dict) else value))
    if not isinstance(value, (dict, list)) or flat:
        return json.dumps(value)
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {_dump(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    return "[\n" + ",\n".join(inner + _dump(item, inner) for item in value) + f"\n{indent}]"


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {REFRESH}")
    snapshot = {"about": f"What saved workflows rely on, per node (tests/test_compatibility.py). Refresh: {REFRESH}",
                "nodes": current()}
    SNAPSHOT.write_text(_dump(snapshot) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
