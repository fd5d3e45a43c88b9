// A stand-in for the parts of LiteGraph (ComfyUI frontend 1.58) the extension touches, for extension.test.mjs.
//
// Links live in the graph, as in 1.58's link store: nodes answer isInputConnected / getInputNode / getOutputNodes
// from it, while the deprecated slot views (input.link, output.links) record every read in `deprecations`. Widget
// values go in and out by index as LGraphNode.serialize / configure do it. Nothing here draws: a test passes only
// if the extension keeps its labels and its cost line current without a canvas.
export const INPUT = 1;
export const OUTPUT = 2;
export const deprecations = [];

export function makeDocument() {
  const element = (tagName) => ({ tagName, className: "", textContent: "", title: "", style: {}, dataset: {} });
  return { createElement: element, body: { append() {} } };
}

export class Graph {
  constructor() {
    this.nodes = new Map();
    this.links = new Map();
    this.lastNodeId = 0;
    this.lastLinkId = 0;
  }

  add(node) {
    node.id = ++this.lastNodeId;
    node.graph = this;
    this.nodes.set(node.id, node);
    node.onAdded?.(this);
  }

  remove(node) {
    for (const link of [...this.links.values()]) {
      if (link.origin_id === node.id || link.target_id === node.id) this.disconnect(link.id);
    }
    this.nodes.delete(node.id);
    node.onRemoved?.();
    node.graph = null;
  }

  getNodeById(id) {
    return this.nodes.get(id) ?? null;
  }

  connect(from, to, inputName, outputSlot = 0) {
    const slot = to.inputs.findIndex((input) => input.name === inputName);
    const link = { id: ++this.lastLinkId, origin_id: from.id, origin_slot: outputSlot, target_id: to.id, target_slot: slot };
    this.links.set(link.id, link);
    from.onConnectionsChange?.(OUTPUT, outputSlot, true, link, from.outputs[outputSlot]);
    to.onConnectionsChange?.(INPUT, slot, true, link, to.inputs[slot]);
    return link;
  }

  disconnect(linkId) {
    const link = this.links.get(linkId);
    this.links.delete(linkId);
    const from = this.nodes.get(link.origin_id);
    const to = this.nodes.get(link.target_id);
    from?.onConnectionsChange?.(OUTPUT, link.origin_slot, false, link, from.outputs[link.origin_slot]);
    to?.onConnectionsChange?.(INPUT, link.target_slot, false, link, to.inputs[link.target_slot]);
  }
}

// The deprecated view as a non-enumerable getter (a class accessor in LiteGraph): read only when code asks for it.
function slotWithDeprecatedView(name, view) {
  const slot = { name };
  Object.defineProperty(slot, view, {
    get() {
      deprecations.push(`${view === "link" ? "input" : "output"}.${view} (${name})`);
      return null;
    },
  });
  return slot;
}

const inputSlot = (name) => slotWithDeprecatedView(name, "link");
const outputSlot = (name) => slotWithDeprecatedView(name, "links");

// The methods and fields of LGraphNode the extension may use; `nodeType.prototype` gets them.
export const nodeMethods = {
  isInputConnected(slot) {
    return Boolean(this.getInputLink(slot));
  },
  getInputLink(slot) {
    if (!this.graph) throw new Error("NullGraphError");
    return [...this.graph.links.values()].find((l) => l.target_id === this.id && l.target_slot === slot) ?? null;
  },
  getInputNode(slot) {
    const link = this.getInputLink(slot);
    return link ? this.graph.getNodeById(link.origin_id) : null;
  },
  getOutputNodes(slot) {
    if (!this.graph) return null;
    const targets = [...this.graph.links.values()]
      .filter((l) => l.origin_id === this.id && l.origin_slot === slot)
      .map((l) => this.graph.getNodeById(l.target_id));
    return targets.length ? targets : null;
  },
  addWidget(type, name, value, callback, options) {
    const w = { type, name, value, callback, options: options ?? {} };
    this.widgets.push(w);
    return w;
  },
  // As 1.58's addDOMWidget: options.serialize is kept in options only, the value comes from options.getValue.
  addDOMWidget(name, type, element, options = {}) {
    const w = {
      name, type, element, options: { hideOnZoom: true, ...options },
      get value() {
        return this.options.getValue?.() ?? "";
      },
    };
    this.widgets.push(w);
    return w;
  },
  computeSize() {
    return [300, 30 + 24 * this.widgets.length];
  },
  setSize(size) {
    this.size = [...size];
  },
  // LGraphNode.serialize: each widget that serializes writes its value at its own index.
  serializeWidgets() {
    const values = [];
    this.widgets.forEach((w, i) => {
      if (w.serialize !== false) values[i] = w.value;
    });
    return JSON.parse(JSON.stringify(values));
  },
  // LGraphNode.configure: the values go to the widgets that serialize, in order, without their callbacks.
  configureWidgets(values) {
    const widgets = this.widgets.filter((w) => w.serialize !== false);
    values.forEach((v, i) => {
      if (widgets[i]) widgets[i].value = v;
    });
    this.onConfigure?.({ widgets_values: values });
  },
};

// A node as ComfyUI builds one: its widgets (each with a callback that sets the value), sockets and size.
export function makeNode(nodeType, comfyClass, widgetValues, inputNames = [], options = {}) {
  const node = Object.create(nodeType.prototype);
  Object.assign(node, {
    id: -1, comfyClass, graph: null, size: [320, 200], flags: {},
    inputs: inputNames.map(inputSlot),
    outputs: [outputSlot(comfyClass)],
    widgets: Object.entries(widgetValues).map(([name, value]) => ({ name, value, options: options[name] ?? {} })),
  });
  for (const w of node.widgets) w.callback = function (v) { this.value = v; };
  return node;
}
