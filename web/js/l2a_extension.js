// LTX-2 Anywhere in the ComfyUI frontend: a cost line on the hosted nodes (Generate's job; per second of input on
// Audio to Video and Retake), size and frame snapping, key status.
//
// The prices come from the server (GET /ltx2_anywhere/prices = pipelines/hosted/prices.json plus the endpoint
// `auto` picks per mode), the estimate from ./pricing.js (the port of pipelines/hosted/pricing.py) and the size
// rules from ./geometry.js. Keys go to POST /ltx2_anywhere/keys and nowhere else: never a widget, a node
// property or a log line. Everything degrades to "no price" when a route or a frontend API is missing.
//
// Both renderers of the frontend show the same thing. "Nodes 2.0" (setting Comfy.VueNodes.Enabled) never calls
// onDrawForeground, so nothing here draws: the cost is the text of a DOM widget, which the canvas and the Vue
// renderer both mount, and the widget and button labels are set whenever a value, a link, the prices or the key
// status change. The DOM widget and the key button come after every value widget and do not serialize: the
// frontend writes widgets_values by widget index (LGraphNode.serialize), so saved workflows stay as they were.
// `serialize: false` in addDOMWidget's options only keeps a widget out of the queued prompt; widget.serialize =
// false keeps it out of widgets_values (frontend 1.49/1.58 src/scripts/domWidget.ts, extensions/core/uploadAudio.ts).
// Links are read through node.isInputConnected / getInputNode / getOutputNodes, which frontends have had since
// 1.27; input.link and output.links warn as deprecated from 1.58 on.
//
// This file sits in web/js/, so ComfyUI's scripts are three levels up (/extensions/<pack>/js/ -> /scripts/).

import { api } from "../../../scripts/api.js";
import { app } from "../../../scripts/app.js";

import {
  framesForSeconds, MULTISCALE_MULTIPLE, secondsForFrames, snapFrames, snapSideWithin, SPATIAL,
} from "./geometry.js";
import { defaultEndpoint, estimate, findEntry, formatUsd, generateJob, perSecondJob } from "./pricing.js";

const HOSTED = "L2A_HostedBackend";
const GENERATE = "L2A_Generate";
const FALLBACK = "L2A_Fallback";
const AUDIO_TO_VIDEO = "L2A_AudioToVideo";
const RETAKE = "L2A_Retake";
const RUNS = [GENERATE, AUDIO_TO_VIDEO, RETAKE]; // the nodes a hosted backend runs
const SIZED = ["L2A_Sampler", AUDIO_TO_VIDEO, GENERATE, "L2A_VideoSize"]; // width/height/frames widgets
const WATCHED = [HOSTED, FALLBACK, RETAKE, ...SIZED]; // nodes whose values or links change a label or a cost
const PRICED = [HOSTED, ...RUNS]; // nodes that show a cost
const familyAuto = (chosen) => chosen === "auto (match the local model's family)";
const MODE_NAMES = {
  t2v: "text-to-video", i2v: "image-to-video", extend: "video extension", a2v: "audio-to-video", retake: "retake",
};
// The job a lone hosted backend is priced for: LTX-2 Generate's defaults (720p 16:9, 5 s at 24 fps).
const EXAMPLE = { resolution: "720p", aspect_ratio: "16:9", duration_seconds: 5, frames: 121, fps: 24 };
const TAG = "[LTX-2 Anywhere]";
const COST_WIDGET = "l2a_cost";
const COST_COLORS = { ok: "#24513a", warn: "#7a3b12", info: "#3a3d42" };

const state = { prices: undefined, pricesLoading: null, keys: undefined, keysLoading: null, warned: false };
const live = new Set(); // the pack's watched nodes while they are in a graph: refreshed together
let refreshQueued = false;

function warnOnce(error) {
  if (!state.warned) console.warn(TAG, error);
  state.warned = true;
}

// ---- server -------------------------------------------------------------------------------------------------

async function request(route, init) {
  const response = api?.fetchApi ? await api.fetchApi(route, init) : await fetch(route, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body?.error || `${route}: HTTP ${response.status}`);
  return body;
}

function loadPrices() {
  state.pricesLoading ??= request("/ltx2_anywhere/prices")
    .then((table) => { state.prices = table; })
    .catch((error) => { state.prices = null; console.warn(TAG, "no price table:", error.message); })
    .finally(refreshAll);
  return state.pricesLoading;
}

function loadKeys(force = false) {
  if (force) state.keysLoading = null;
  state.keysLoading ??= request("/ltx2_anywhere/keys")
    .then((status) => { state.keys = status; })
    .catch(() => { state.keys = null; })
    .finally(refreshAll);
  return state.keysLoading;
}

// ---- graph helpers ------------------------------------------------------------------------------------------

const classOf = (node) => node?.comfyClass ?? node?.type;
const widget = (node, name) => node?.widgets?.find((w) => w.name === name);
const value = (node, name, fallback) => widget(node, name)?.value ?? fallback;
const slotOf = (node, name) => node?.inputs?.findIndex((input) => input.name === name) ?? -1;

function linked(node, name) {
  const slot = slotOf(node, name);
  return slot >= 0 && Boolean(node.graph) && Boolean(node.isInputConnected?.(slot));
}

function inputNode(node, name) {
  const slot = slotOf(node, name);
  if (slot < 0 || !node.graph) return null;
  return node.getInputNode?.(slot) ?? null;
}

function outputNodes(node) {
  if (!node?.graph) return [];
  return (node.outputs ?? []).flatMap((_output, slot) => node.getOutputNodes?.(slot) ?? []);
}

// The hosted backend a backend socket leads to; through LTX-2 Fallback it is the "if hosted" cost.
function hostedBehind(node, depth = 0) {
  if (!node || depth > 8) return null;
  if (classOf(node) === HOSTED) return { hosted: node, viaFallback: false };
  if (classOf(node) !== FALLBACK) return null;
  for (const name of ["fallback", "primary"]) {
    const found = hostedBehind(inputNode(node, name), depth + 1);
    if (found) return { hosted: found.hosted, viaFallback: true };
  }
  return null;
}

// The node a hosted backend runs (Generate, Audio to Video, Retake; directly or through fallbacks), if any.
function runFedBy(node, depth = 0) {
  for (const target of outputNodes(node)) {
    if (RUNS.includes(classOf(target))) return target;
    if (classOf(target) === FALLBACK && depth < 8) {
      const found = runFedBy(target, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

// ---- the cost -----------------------------------------------------------------------------------------------

function jobOfNode(node, provider) {
  const names = ["resolution", "aspect_ratio", "width", "height", "duration_seconds", "frames", "fps",
    "generate_audio"];
  const values = Object.fromEntries(names.map((name) => [name, value(node, name)]));
  if (classOf(node) === AUDIO_TO_VIDEO) return perSecondJob(values, "a2v", provider);
  if (classOf(node) === RETAKE) return perSecondJob(values, "retake", provider);
  return generateJob(values, linked(node, "image") ? "i2v" : "t2v");
}

// { text, kind }: kind "ok" (a price), "warn" (over the limit, unknown, unavailable) or "info" (nothing to pay).
function costOf(hosted, job, prefix) {
  if (state.prices === undefined) {
    loadPrices();
    return { text: `${prefix}pricing…`, kind: "info" };
  }
  if (!state.prices) return { text: `${prefix}no price table from the server`, kind: "warn" };
  const provider = value(hosted, "provider", "fal");
  const chosen = value(hosted, "endpoint", "auto");
  const auto = chosen === "auto" || familyAuto(chosen);
  const endpoint = auto ? defaultEndpoint(state.prices, provider, job.mode) : chosen;
  if (!endpoint) return { text: `${prefix}${provider} has no ${MODE_NAMES[job.mode]}`, kind: "warn" };
  let cost;
  try {
    cost = estimate(state.prices, provider, endpoint, job.args);
  } catch (error) {
    return { text: `${prefix}price: ${error.message}`, kind: "warn" };
  }
  if (cost.unknown) {
    const why = cost.formula.split(" publishes no price for ")[1] ?? endpoint; // "<endpoint> <reason>"
    return { text: `${prefix}price unknown: ${provider} ${why}`, kind: "warn" };
  }
  const family = familyAuto(chosen) ? "; its endpoint follows the local model's family" : "";
  const limit = Number(value(hosted, "max_cost_usd", 0)) || 0;
  if (job.perSecond) {
    // the input's length sets the duration: the rate, and how many seconds max_cost_usd allows
    const allows = limit > 0 && cost.usd > 0 ? `; max_cost_usd ${formatUsd(limit)} ≈ ${Math.floor(limit / cost.usd)} s` : "";
    return {
      text: `${prefix}≈ ${formatUsd(cost.usd)}/s of ${job.what} (${provider} ${endpoint}${family}${allows}); exact ` +
        "estimate before submit",
      kind: "ok",
    };
  }
  const { width, height, num_frames: frames, duration } = job.args;
  const unit = findEntry(state.prices, provider, endpoint)?.[1]?.unit;
  const what = unit === "megapixel"
    ? `${width}x${height}x${frames} = ${Math.ceil((width * height * frames) / 1e6)} MP`
    : `${width}x${height}, ${Number(duration.toFixed(2))} s`;
  const over = limit > 0 && cost.usd > limit ? ` > max_cost_usd ${formatUsd(limit)}: refused` : "";
  const note = (job.note ? `; ${job.note}` : "") + family;
  return { text: `${prefix}≈ ${formatUsd(cost.usd)} (${provider}, ${what}${note})${over}`, kind: over ? "warn" : "ok" };
}

function costFor(node) {
  if (RUNS.includes(classOf(node))) {
    const found = hostedBehind(inputNode(node, "backend"));
    if (found && autoDuration(node)) {
      const prefix = found.viaFallback ? "if hosted: " : "";
      return { text: `${prefix}duration auto: ${value(found.hosted, "provider", "fal")} has no automatic duration ` +
        "(refused before sending)", kind: "warn" };
    }
    if (found) {
      const job = jobOfNode(node, value(found.hosted, "provider", "fal"));
      return costOf(found.hosted, job, found.viaFallback ? "if hosted: " : "");
    }
    const text = linked(node, "backend") ? "local backend: no API cost" : "no backend connected";
    return { text, kind: "info" };
  }
  const runs = runFedBy(node);
  if (runs) return costOf(node, jobOfNode(runs, value(node, "provider", "fal")), "");
  const explicit = value(node, "endpoint", "auto") !== "auto";
  return costOf(node, generateJob(EXAMPLE, "t2v"), explicit ? "5 s 720p job: " : "5 s 720p text-to-video: ");
}

function addCostWidget(node) {
  if (widget(node, COST_WIDGET) || typeof node.addDOMWidget !== "function") return;
  const element = document.createElement("div");
  element.className = "l2a-cost";
  element.style.cssText = "box-sizing:border-box;padding:3px 8px;border-radius:4px;font:12px/15px sans-serif;" +
    "color:#f0f0f0;overflow:hidden;overflow-wrap:anywhere;";
  const cost = node.addDOMWidget(COST_WIDGET, COST_WIDGET, element, {
    serialize: false, hideOnZoom: false, getValue: () => element.textContent, setValue: () => {},
    margin: 4, getMinHeight: () => 44,
  });
  cost.serialize = false; // options.serialize only keeps it out of the prompt; this keeps it out of widgets_values
  growToFit(node);
}

// A node never shrinks here; it grows where its size (new, or saved before it had the cost line) leaves the line
// no room on the canvas.
function growToFit(node) {
  const [width, height] = node.computeSize?.() ?? node.size;
  if (width > node.size[0] || height > node.size[1]) {
    node.setSize?.([Math.max(node.size[0], width), Math.max(node.size[1], height)]);
  }
}

function showCost(node) {
  const element = widget(node, COST_WIDGET)?.element;
  if (!element) return;
  const { text, kind } = costFor(node);
  element.textContent = text;
  element.title = text;
  element.dataset.kind = kind;
  element.style.background = COST_COLORS[kind];
}

// ---- sizes and frames ---------------------------------------------------------------------------------------

function sideMultiple(node) {
  if (classOf(node) === "L2A_Sampler") return linked(node, "upsampler") ? MULTISCALE_MULTIPLE : SPATIAL;
  if (classOf(node) === "L2A_VideoSize") return value(node, "multiscale", false) ? MULTISCALE_MULTIPLE : SPATIAL;
  return SPATIAL;
}

function snapSides(node) {
  for (const name of ["width", "height"]) {
    const w = widget(node, name);
    if (typeof w?.value !== "number") continue;
    w.value = snapSideWithin(w.value, sideMultiple(node), w.options?.min, w.options?.max);
  }
}

// The sampler's frames = 0 asks for LTX-2.5's duration head (sampling.AUTO_FRAMES): kept, never snapped.
function autoFrames(node) {
  return classOf(node) === "L2A_Sampler" && value(node, "frames") === 0;
}

// Generate's duration "auto": the local LTX-2.5 model picks the length; no hosted provider has an automatic one.
function autoDuration(node) {
  return classOf(node) === GENERATE && value(node, "duration") === "auto";
}

function snapFramesWidget(node) {
  const w = widget(node, "frames");
  if (typeof w?.value !== "number" || autoFrames(node)) return;
  let frames = snapFrames(w.value);
  const max = w.options?.max;
  if (typeof max === "number" && frames > max) frames = Math.max(9, Math.floor((max - 1) / 8) * 8 + 1);
  w.value = frames;
}

// "frames (= 5.04 s)" and "duration_seconds (= 121 frames)" next to the values they explain (labels only).
function updateHints(node) {
  const fps = Number(value(node, "fps", 0));
  const frames = widget(node, "frames");
  const seconds = widget(node, "duration_seconds");
  if (!(fps > 0)) return;
  if (autoFrames(node)) {
    frames.label = "frames (0 = auto: LTX-2.5's duration head)";
    return;
  }
  if (autoDuration(node)) {
    if (frames) frames.label = "frames (unused: duration auto)";
    if (seconds) seconds.label = "duration_seconds (unused: duration auto)";
    return;
  }
  const byDuration = seconds && Number(seconds.value) > 0;
  if (frames && typeof frames.value === "number") {
    frames.label = byDuration ? "frames (unused)" : `frames (= ${secondsForFrames(frames.value, fps).toFixed(2)} s)`;
  }
  if (byDuration) seconds.label = `duration_seconds (= ${framesForSeconds(Number(seconds.value), fps)} frames)`;
  else if (seconds) seconds.label = undefined;
}

// ---- keys ---------------------------------------------------------------------------------------------------

function keyLabel(node) {
  const provider = value(node, "provider", "fal");
  const name = state.prices?.key_envs?.[provider] ?? `${provider} key`;
  const status = state.keys?.[provider];
  if (!status) return "Set API key…";
  const where = status === "env" ? "set ✓ (environment)" : status === "file" ? "set ✓" : "not set";
  return `Set API key… (${name}: ${where})`;
}

// A password field in a modal dialog (window.prompt where <dialog> is missing); resolves to the key or null.
function askKey(title) {
  const dialog = document.createElement("dialog");
  if (typeof dialog.showModal !== "function") return Promise.resolve(window.prompt(title));
  dialog.style.cssText = "padding:16px;border-radius:8px;background:#222;color:#eee;border:1px solid #555;";
  const form = document.createElement("form");
  form.method = "dialog";
  const text = document.createElement("p");
  text.textContent = title;
  const input = document.createElement("input");
  Object.assign(input, { type: "password", autocomplete: "off", spellcheck: false });
  input.style.cssText = "width:28em;margin-bottom:12px;";
  const buttons = document.createElement("div");
  for (const [label, val] of [["Save", "save"], ["Cancel", "cancel"]]) {
    const button = document.createElement("button");
    Object.assign(button, { textContent: label, value: val });
    button.style.marginRight = "8px";
    buttons.append(button);
  }
  form.append(text, input, buttons);
  dialog.append(form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const key = dialog.returnValue === "save" ? input.value : null;
      input.value = "";
      dialog.remove();
      resolve(key);
    });
    dialog.showModal();
    input.focus();
  });
}

async function setKey(node) {
  const provider = value(node, "provider", "fal");
  const name = state.prices?.key_envs?.[provider] ?? `${provider} API key`;
  const key = await askKey(`${name} for ${provider}: stored in ComfyUI's user directory on the server, never in ` +
    "the workflow. An environment variable of the same name takes precedence.");
  if (!key || !key.trim()) return;
  try {
    state.keys = await request("/ltx2_anywhere/keys", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ provider, key }),
    });
  } catch (error) {
    window.alert(`${TAG} The key was not stored: ${error.message}`);
  }
  await loadKeys(true);
}

const keyButton = (node) => node?.widgets?.find((w) => w.l2aKeyButton);

function addKeyButton(node) {
  if (keyButton(node)) return;
  const button = node.addWidget?.("button", "Set API key…", null, () => { setKey(node); }, { serialize: false });
  if (!button) return;
  button.serialize = false; // not a value: never in widgets_values nor in the prompt
  button.l2aKeyButton = true;
  loadKeys();
}

// ---- refreshing ---------------------------------------------------------------------------------------------

function refreshNode(node) {
  updateHints(node);
  const button = keyButton(node);
  if (button) button.label = keyLabel(node);
  if (PRICED.includes(classOf(node))) showCost(node);
}

// Every label and cost at once: a value or a link on one node changes the cost shown on the nodes it feeds and
// on the nodes that feed it.
function refreshAll() {
  refreshQueued = false;
  for (const node of live) {
    try {
      refreshNode(node);
    } catch (error) {
      warnOnce(error);
    }
  }
  app.canvas?.setDirty?.(true, true);
}

// Links arrive one by one while a graph loads or a selection is pasted: one refresh once they are all there.
function queueRefresh() {
  if (refreshQueued) return;
  refreshQueued = true;
  queueMicrotask(refreshAll);
}

// `after` runs once `target[method]` has (an error in it is reported once, never thrown into the frontend).
function chain(target, method, after) {
  const original = target[method];
  target[method] = function (...args) {
    const result = original?.apply(this, args);
    try {
      after.apply(this, args);
    } catch (error) {
      warnOnce(error);
    }
    return result;
  };
}

// A widget's callback runs on every edit, in the canvas and in Nodes 2.0 alike.
function afterChange(node, name, then) {
  const w = widget(node, name);
  if (w) chain(w, "callback", () => {
    then(w);
    refreshAll();
  });
}

function wirePrototype(nodeType, name) {
  const proto = nodeType.prototype;
  chain(proto, "onAdded", function () {
    live.add(this);
    queueRefresh();
  });
  chain(proto, "onRemoved", function () {
    live.delete(this);
    queueRefresh();
  });
  chain(proto, "onConfigure", function () {
    if (PRICED.includes(name)) growToFit(this);
    queueRefresh();
  });
  chain(proto, "onConnectionsChange", function (type, slot, connected) {
    const input = type === (globalThis.LiteGraph?.INPUT ?? 1) ? this.inputs?.[slot] : null;
    if (name === "L2A_Sampler" && connected && input?.name === "upsampler") snapSides(this); // multiples of 64
    queueRefresh();
  });
}

app.registerExtension({
  name: "ltx2_anywhere.ui",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (WATCHED.includes(nodeData?.name)) wirePrototype(nodeType, nodeData.name);
  },
  async nodeCreated(node) {
    const name = classOf(node);
    if (SIZED.includes(name)) {
      afterChange(node, "width", () => snapSides(node));
      afterChange(node, "height", () => snapSides(node));
      afterChange(node, "multiscale", () => snapSides(node));
      afterChange(node, "frames", () => snapFramesWidget(node));
      for (const other of ["fps", "duration_seconds", "resolution", "aspect_ratio", "generate_audio", "duration"]) {
        afterChange(node, other, () => {});
      }
    }
    if (name === HOSTED) {
      for (const other of ["provider", "endpoint", "max_cost_usd"]) afterChange(node, other, () => {});
      addKeyButton(node);
    }
    if (PRICED.includes(name)) {
      addCostWidget(node);
      loadPrices();
    }
    if (WATCHED.includes(name)) refreshNode(node);
  },
  async afterConfigureGraph() {
    refreshAll();
  },
});
