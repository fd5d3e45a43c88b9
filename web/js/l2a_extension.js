// LTX-2 Anywhere in the ComfyUI frontend: a cost badge on the hosted nodes (Generate's job; per second of input
// on Audio to Video and Retake), size and frame snapping, key status.
//
// The prices come from the server (GET /ltx2_anywhere/prices = pipelines/hosted/prices.json plus the endpoint
// `auto` picks per mode), the estimate from ./pricing.js (the port of pipelines/hosted/pricing.py) and the size
// rules from ./geometry.js. Keys go to POST /ltx2_anywhere/keys and nowhere else: never a widget, a node
// property or a log line. Everything degrades to "no badge" when a route or a frontend API is missing.
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
const PRICED = [GENERATE, AUDIO_TO_VIDEO, RETAKE]; // the nodes a hosted backend runs, which show its cost
const SIZED = ["L2A_Sampler", AUDIO_TO_VIDEO, GENERATE, "L2A_VideoSize"]; // width/height/frames widgets
const familyAuto = (chosen) => chosen === "auto (match the local model's family)";
const MODE_NAMES = {
  t2v: "text-to-video", i2v: "image-to-video", extend: "video extension", a2v: "audio-to-video", retake: "retake",
};
// The job a lone hosted backend is priced for: LTX-2 Generate's defaults (720p 16:9, 5 s at 24 fps).
const EXAMPLE = { resolution: "720p", aspect_ratio: "16:9", duration_seconds: 5, frames: 121, fps: 24 };
const TAG = "[LTX-2 Anywhere]";

const state = { prices: undefined, pricesLoading: null, keys: undefined, keysLoading: null, warned: false };

function warnOnce(error) {
  // draw hooks run every frame: one warning, not a flood
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

function redraw() {
  app.graph?.setDirtyCanvas?.(true, true);
  app.canvas?.setDirty?.(true, true);
}

function loadPrices() {
  state.pricesLoading ??= request("/ltx2_anywhere/prices")
    .then((table) => { state.prices = table; })
    .catch((error) => { state.prices = null; console.warn(TAG, "no price table:", error.message); })
    .finally(redraw);
  return state.pricesLoading;
}

function loadKeys(force = false) {
  if (force) state.keysLoading = null;
  state.keysLoading ??= request("/ltx2_anywhere/keys")
    .then((status) => { state.keys = status; })
    .catch(() => { state.keys = null; })
    .finally(redraw);
  return state.keysLoading;
}

// ---- graph helpers ------------------------------------------------------------------------------------------

const classOf = (node) => node?.comfyClass ?? node?.type;
const widget = (node, name) => node?.widgets?.find((w) => w.name === name);
const value = (node, name, fallback) => widget(node, name)?.value ?? fallback;
const linked = (node, name) => Boolean(node?.inputs?.some((input) => input.name === name && input.link != null));

function inputNode(node, name) {
  const slot = node?.inputs?.findIndex((input) => input.name === name) ?? -1;
  if (slot < 0 || node.inputs[slot].link == null) return null;
  return node.getInputNode?.(slot) ?? null;
}

function outputNodes(node) {
  const graph = node.graph ?? app.graph;
  const links = (node.outputs ?? []).flatMap((output) => output.links ?? []);
  return links
    .map((id) => graph?.links?.get?.(id) ?? graph?.links?.[id])
    .map((link) => link && graph.getNodeById?.(link.target_id))
    .filter(Boolean);
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
function pricedFedBy(node, depth = 0) {
  for (const target of outputNodes(node)) {
    if (PRICED.includes(classOf(target))) return target;
    if (classOf(target) === FALLBACK && depth < 8) {
      const found = pricedFedBy(target, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

// ---- the cost badge -----------------------------------------------------------------------------------------

function jobOfNode(node, provider) {
  const names = ["resolution", "aspect_ratio", "width", "height", "duration_seconds", "frames", "fps",
    "generate_audio"];
  const values = Object.fromEntries(names.map((name) => [name, value(node, name)]));
  if (classOf(node) === AUDIO_TO_VIDEO) return perSecondJob(values, "a2v", provider);
  if (classOf(node) === RETAKE) return perSecondJob(values, "retake", provider);
  return generateJob(values, linked(node, "image") ? "i2v" : "t2v");
}

function costBadge(hosted, job, prefix) {
  if (state.prices === undefined) {
    loadPrices();
    return { text: `${prefix}pricing…` };
  }
  if (!state.prices) return null; // older pack without the route: no badge rather than a wrong one
  const provider = value(hosted, "provider", "fal");
  const chosen = value(hosted, "endpoint", "auto");
  const auto = chosen === "auto" || familyAuto(chosen);
  const endpoint = auto ? defaultEndpoint(state.prices, provider, job.mode) : chosen;
  if (!endpoint) return { text: `${prefix}${provider} has no ${MODE_NAMES[job.mode]}`, warn: true };
  let cost;
  try {
    cost = estimate(state.prices, provider, endpoint, job.args);
  } catch (error) {
    return { text: `${prefix}price: ${error.message}`, warn: true };
  }
  if (cost.unknown) {
    const why = cost.formula.split(" publishes no price for ")[1] ?? endpoint; // "<endpoint> <reason>"
    return { text: `${prefix}price unknown: ${provider} ${why}`, warn: true };
  }
  const family = familyAuto(chosen) ? "; its endpoint follows the local model's family" : "";
  const limit = Number(value(hosted, "max_cost_usd", 0)) || 0;
  if (job.perSecond) {
    // the input's length sets the duration: the rate, and how many seconds max_cost_usd allows
    const allows = limit > 0 && cost.usd > 0 ? `; max_cost_usd ${formatUsd(limit)} ≈ ${Math.floor(limit / cost.usd)} s` : "";
    return {
      text: `${prefix}≈ ${formatUsd(cost.usd)}/s of ${job.what} (${provider} ${endpoint}${family}${allows}); exact ` +
        "estimate before submit",
    };
  }
  const { width, height, num_frames: frames, duration } = job.args;
  const unit = findEntry(state.prices, provider, endpoint)?.[1]?.unit;
  const what = unit === "megapixel"
    ? `${width}x${height}x${frames} = ${Math.ceil((width * height * frames) / 1e6)} MP`
    : `${width}x${height}, ${Number(duration.toFixed(2))} s`;
  const over = limit > 0 && cost.usd > limit ? ` > max_cost_usd ${formatUsd(limit)}: refused` : "";
  const note = (job.note ? `; ${job.note}` : "") + family;
  return { text: `${prefix}≈ ${formatUsd(cost.usd)} (${provider}, ${what}${note})${over}`, warn: Boolean(over) };
}

function badgeFor(node) {
  if (PRICED.includes(classOf(node))) {
    const found = hostedBehind(inputNode(node, "backend"));
    const provider = found && value(found.hosted, "provider", "fal");
    return found && costBadge(found.hosted, jobOfNode(node, provider), found.viaFallback ? "if hosted: " : "");
  }
  const priced = pricedFedBy(node);
  if (priced) return costBadge(node, jobOfNode(priced, value(node, "provider", "fal")), "");
  const explicit = value(node, "endpoint", "auto") !== "auto";
  return costBadge(node, generateJob(EXAMPLE, "t2v"), explicit ? "5 s 720p job: " : "5 s 720p text-to-video: ");
}

function drawBadge(ctx, node, badge) {
  if (!badge || node.flags?.collapsed) return;
  ctx.save();
  ctx.font = "12px sans-serif";
  const pad = 6;
  const height = 18;
  const y = node.size[1] + 6;
  const width = ctx.measureText(badge.text).width + 2 * pad;
  ctx.fillStyle = badge.warn ? "#7a3b12" : "#24513a";
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(0, y, width, height, 4);
  else ctx.rect(0, y, width, height);
  ctx.fill();
  ctx.fillStyle = "#f0f0f0";
  ctx.textBaseline = "middle";
  ctx.fillText(badge.text, pad, y + height / 2);
  ctx.restore();
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

function snapFramesWidget(node) {
  const w = widget(node, "frames");
  if (typeof w?.value !== "number") return;
  let frames = snapFrames(w.value);
  const max = w.options?.max;
  if (typeof max === "number" && frames > max) frames = Math.max(9, Math.floor((max - 1) / 8) * 8 + 1);
  w.value = frames;
}

// "frames (5.04 s)" and "duration_seconds (121 frames)" next to the values they explain (labels only).
function updateHints(node) {
  const fps = Number(value(node, "fps", 0));
  const frames = widget(node, "frames");
  const seconds = widget(node, "duration_seconds");
  if (!(fps > 0)) return;
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
  button.label = keyLabel(node);
  loadKeys();
}

// ---- wiring -------------------------------------------------------------------------------------------------

function afterChange(node, name, then) {
  const w = widget(node, name);
  if (!w) return;
  const original = w.callback;
  w.callback = function (...args) {
    const result = original?.apply(this, args);
    try {
      then(w);
    } catch (error) {
      warnOnce(error);
    }
    redraw();
    return result;
  };
}

function wirePrototype(nodeType, name) {
  const proto = nodeType.prototype;
  const onDrawForeground = proto.onDrawForeground;
  proto.onDrawForeground = function (ctx, ...rest) {
    const result = onDrawForeground?.apply(this, [ctx, ...rest]);
    try {
      updateHints(this);
      const button = keyButton(this);
      if (button) button.label = keyLabel(this);
      if (name === HOSTED || PRICED.includes(name)) drawBadge(ctx, this, badgeFor(this));
    } catch (error) {
      warnOnce(error);
    }
    return result;
  };
  if (name === "L2A_Sampler") {
    const onConnectionsChange = proto.onConnectionsChange;
    proto.onConnectionsChange = function (type, slot, connected, ...rest) {
      const result = onConnectionsChange?.apply(this, [type, slot, connected, ...rest]);
      const input = type === (globalThis.LiteGraph?.INPUT ?? 1) ? this.inputs?.[slot] : null;
      if (connected && input?.name === "upsampler") snapSides(this); // multiscale: multiples of 64
      return result;
    };
  }
}

app.registerExtension({
  name: "ltx2_anywhere.ui",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if ([HOSTED, RETAKE, ...SIZED].includes(nodeData?.name)) wirePrototype(nodeType, nodeData.name);
  },
  async nodeCreated(node) {
    const name = classOf(node);
    if (SIZED.includes(name)) {
      afterChange(node, "width", () => snapSides(node));
      afterChange(node, "height", () => snapSides(node));
      afterChange(node, "multiscale", () => snapSides(node));
      afterChange(node, "frames", () => snapFramesWidget(node));
      for (const other of ["fps", "duration_seconds", "resolution", "aspect_ratio", "generate_audio"]) {
        afterChange(node, other, () => {});
      }
    }
    if (name === HOSTED) {
      for (const other of ["provider", "endpoint", "max_cost_usd"]) afterChange(node, other, () => {});
      addKeyButton(node);
    }
    if (name === HOSTED || PRICED.includes(name)) loadPrices();
  },
});
