// web/js/l2a_extension.js against a stand-in ComfyUI frontend (stubs/): snapping, hints, the cost badge through
// a hosted backend or a fallback, and the key button. Run: node --test web/tests/*.test.mjs
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { test as nodeTest } from "node:test";

// Module hooks (node 18.19 / 20.6 and later) map ComfyUI's scripts to the stand-in; older nodes skip this file.
const hooks = typeof nodeModule.register === "function";
if (hooks) nodeModule.register("./stubs/comfy_loader.mjs", import.meta.url);
const test = hooks ? nodeTest : (name) => nodeTest.skip(`${name} (this node has no module.register)`);
const comfy = await import("./stubs/comfy.mjs");

const TABLE = JSON.parse(readFileSync(new URL("../../pipelines/hosted/prices.json", import.meta.url), "utf8"));
const DEFAULTS = {
  fal: { t2v: "fal-ai/ltx-2-19b/text-to-video", i2v: "fal-ai/ltx-2-19b/image-to-video",
    a2v: "fal-ai/ltx-2-19b/distilled/audio-to-video" },
  vibedream: { i2v: "ltx-2-19b" },
  ltx: { t2v: "ltx-2-fast/text-to-video", i2v: "ltx-2-fast/image-to-video", a2v: "ltx-2-5-fast/audio-to-video",
    retake: "retake" },
};
comfy.routes["GET /ltx2_anywhere/prices"] = () => [200, { ...TABLE, defaults: DEFAULTS, key_envs: { fal: "FAL_KEY" } }];
let keyStatus = { fal: "missing", vibedream: "missing" };
comfy.routes["GET /ltx2_anywhere/keys"] = () => [200, keyStatus];
comfy.routes["POST /ltx2_anywhere/keys"] = () => {
  keyStatus = { ...keyStatus, fal: "file" };
  return [200, keyStatus];
};

if (hooks) await import("../js/l2a_extension.js");
const [extension] = comfy.extensions;
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

// ---- a tiny graph in LiteGraph's shape ----------------------------------------------------------------------
const types = {};
const links = new Map();
const nodes = new Map();
comfy.app.graph = { links, getNodeById: (id) => nodes.get(id), setDirtyCanvas() {} };

async function makeNode(comfyClass, widgetValues, inputNames = [], options = {}) {
  if (!types[comfyClass]) {
    types[comfyClass] = function Node() {};
    await extension.beforeRegisterNodeDef(types[comfyClass], { name: comfyClass });
  }
  const node = Object.create(types[comfyClass].prototype);
  Object.assign(node, {
    id: nodes.size + 1, comfyClass, size: [320, 200], flags: {}, graph: comfy.app.graph, outputs: [{ links: [] }],
    inputs: inputNames.map((name) => ({ name, link: null })),
    widgets: Object.entries(widgetValues).map(([name, value]) => ({ name, value, options: options[name] ?? {} })),
    addWidget(type, name, value, callback, opts) {
      const w = { type, name, value, callback, options: opts ?? {} };
      this.widgets.push(w);
      return w;
    },
    getInputNode(slot) {
      const link = links.get(this.inputs[slot].link);
      return link ? nodes.get(link.origin_id) : null;
    },
  });
  for (const w of node.widgets) w.callback = function (v) { this.value = v; };
  nodes.set(node.id, node);
  await extension.nodeCreated(node);
  return node;
}

function connect(from, to, inputName) {
  const id = links.size + 1;
  links.set(id, { id, origin_id: from.id, target_id: to.id });
  from.outputs[0].links.push(id);
  const slot = to.inputs.findIndex((input) => input.name === inputName);
  to.inputs[slot].link = id;
  to.onConnectionsChange?.(1, slot, true);
}

const change = (node, name, value) => node.widgets.find((w) => w.name === name).callback(value);
const get = (node, name) => node.widgets.find((w) => w.name === name);

function draw(node) {
  const texts = [];
  const ctx = {
    save() {}, restore() {}, beginPath() {}, roundRect() {}, rect() {}, fill() {},
    measureText: (text) => ({ width: text.length * 6 }), fillText: (text) => texts.push(text),
  };
  node.onDrawForeground(ctx);
  return texts;
}

const GENERATE = {
  resolution: "720p", aspect_ratio: "16:9", width: 768, height: 512, duration_seconds: 5, frames: 121, fps: 24,
  generate_audio: true,
};

// ---- tests --------------------------------------------------------------------------------------------------

test("the extension registers under its name and wraps only its own nodes", () => {
  assert.equal(comfy.extensions.length, 1);
  assert.equal(extension.name, "ltx2_anywhere.ui");
});

test("sampler sizes snap to 32, to 64 with an upsampler; frames snap to 8k+1 with a seconds hint", async () => {
  const sampler = await makeNode("L2A_Sampler", { width: 768, height: 512, frames: 121, fps: 24 }, ["upsampler"],
    { width: { min: 64, max: 4096 }, height: { min: 64, max: 4096 }, frames: { min: 9, max: 1025 } });
  change(sampler, "width", 770);
  assert.equal(get(sampler, "width").value, 768);
  change(sampler, "height", 40);
  assert.equal(get(sampler, "height").value, 64);
  change(sampler, "frames", 120);
  assert.equal(get(sampler, "frames").value, 121);
  change(sampler, "frames", 2000);
  assert.equal(get(sampler, "frames").value, 1025);
  change(sampler, "frames", 121);
  draw(sampler);
  assert.equal(get(sampler, "frames").label, "frames (= 5.04 s)");
  change(sampler, "height", 736);
  assert.equal(get(sampler, "height").value, 736);
  const upsampler = await makeNode("L2A_UpsamplerLoader", {});
  connect(upsampler, sampler, "upsampler");
  assert.equal(get(sampler, "height").value, 704, "736 is not a multiple of 64: nearest, ties down");
  change(sampler, "width", 800);
  assert.equal(get(sampler, "width").value, 768);
});

test("the generate badge prices the connected hosted backend, and 'if hosted' through a fallback", async () => {
  const hosted = await makeNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  const generate = await makeNode("L2A_Generate", GENERATE, ["backend", "image", "end_image"]);
  await settle();
  assert.deepEqual(draw(generate), [], "no backend: no badge");
  connect(hosted, generate, "backend");
  assert.deepEqual(draw(generate), ["≈ $0.20 (fal, 1280x704x121 = 110 MP)"]);
  assert.deepEqual(draw(hosted), ["≈ $0.20 (fal, 1280x704x121 = 110 MP)"], "the backend prices what it feeds");
  change(generate, "resolution", "1080p");
  assert.deepEqual(draw(generate), ["≈ $0.46 (fal, 1920x1088x121 = 253 MP)"]);
  change(hosted, "max_cost_usd", 0.25);
  assert.match(draw(generate)[0], /> max_cost_usd \$0\.25: refused$/);
  change(hosted, "provider", "vibedream");
  assert.deepEqual(draw(generate), ["vibedream has no text-to-video"]);

  const local = await makeNode("L2A_LocalBackend", {});
  const lone = await makeNode("L2A_HostedBackend", { provider: "fal", endpoint: "fal-ai/ltx-2.3-22b/image-to-video" });
  const fallback = await makeNode("L2A_Fallback", {}, ["primary", "fallback"]);
  const other = await makeNode("L2A_Generate", GENERATE, ["backend", "image", "end_image"]);
  connect(local, fallback, "primary");
  connect(lone, fallback, "fallback");
  connect(fallback, other, "backend");
  assert.deepEqual(draw(other), ["if hosted: price unknown: fal fal-ai/ltx-2.3-22b/image-to-video (billed per " +
    "megapixel, rate not published)"]);
  change(lone, "endpoint", "auto");
  assert.deepEqual(draw(other), ["if hosted: ≈ $0.20 (fal, 1280x704x121 = 110 MP)"]);
});

test("a lone hosted backend prices Generate's default job", async () => {
  const hosted = await makeNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  assert.deepEqual(draw(hosted), ["5 s 720p text-to-video: ≈ $0.20 (fal, 1280x704x121 = 110 MP)"]);
});

test("duration hint and frames marked unused when a duration is set", async () => {
  const size = await makeNode("L2A_VideoSize", { ...GENERATE, multiscale: false });
  draw(size);
  assert.equal(get(size, "duration_seconds").label, "duration_seconds (= 121 frames)");
  assert.equal(get(size, "frames").label, "frames (unused)");
  change(size, "width", 1000);
  assert.equal(get(size, "width").value, 992);
  change(size, "multiscale", true);
  assert.equal(get(size, "width").value, 960, "992 is a tie between 960 and 1024: down");
});

test("the key button is never serialized, shows the status and posts the key only to the keys route", async () => {
  const hosted = await makeNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  await settle();
  const button = hosted.widgets.find((w) => w.type === "button");
  assert.equal(button.name, "Set API key…");
  assert.equal(button.serialize, false);
  assert.equal(button.options.serialize, false);
  draw(hosted);
  assert.equal(button.label, "Set API key… (FAL_KEY: not set)");
  globalThis.document = { createElement: () => ({}) }; // no <dialog>: the prompt fallback
  globalThis.window = { prompt: () => "fal-id:fal-secret", alert: () => assert.fail("no error expected") };
  button.callback();
  await settle();
  const posts = comfy.requests.filter((r) => r.method === "POST");
  assert.deepEqual(posts.map((r) => [r.route, JSON.parse(r.body)]),
    [["/ltx2_anywhere/keys", { provider: "fal", key: "fal-id:fal-secret" }]]);
  draw(hosted);
  assert.equal(button.label, "Set API key… (FAL_KEY: set ✓)");
  assert.ok(!JSON.stringify(hosted, (k, v) => (k === "graph" ? undefined : v)).includes("fal-secret"));
});

test("audio-to-video and retake show the rate per second of their input, and what max_cost_usd allows", async () => {
  const hosted = await makeNode("L2A_HostedBackend", { provider: "ltx", endpoint: "auto", max_cost_usd: 1 });
  const a2v = await makeNode("L2A_AudioToVideo", { width: 768, height: 512, fps: 24 }, ["audio", "backend"]);
  await settle();
  assert.deepEqual(draw(a2v), [], "no backend: no badge");
  connect(hosted, a2v, "backend");
  const rate = "≈ $0.13/s of audio (ltx ltx-2-5-fast/audio-to-video; max_cost_usd $1.00 ≈ 7 s); exact estimate " +
    "before submit";
  assert.deepEqual(draw(a2v), [rate]);
  assert.deepEqual(draw(hosted), [rate], "the backend prices the node it feeds");
  change(hosted, "endpoint", "ltx-2-5-pro/audio-to-video");
  assert.match(draw(a2v)[0], /^≈ \$0\.17\/s of audio \(ltx ltx-2-5-pro\/audio-to-video;/);
  change(hosted, "provider", "fal");
  change(hosted, "endpoint", "auto");
  assert.match(draw(a2v)[0], /^≈ \$0\.0088\/s of audio \(fal fal-ai\/ltx-2-19b\/distilled\/audio-to-video;/);
  change(hosted, "provider", "vibedream");
  assert.deepEqual(draw(a2v), ["vibedream has no audio-to-video"]);

  const local = await makeNode("L2A_LocalBackend", {});
  const family = await makeNode("L2A_HostedBackend", { provider: "ltx", endpoint: "auto (match the local model's " +
    "family)", max_cost_usd: 0 });
  const fallback = await makeNode("L2A_Fallback", {}, ["primary", "fallback"]);
  const retake = await makeNode("L2A_Retake", { fps: 24 }, ["video", "backend"]);
  connect(local, fallback, "primary");
  connect(family, fallback, "fallback");
  connect(fallback, retake, "backend");
  assert.deepEqual(draw(retake), ["if hosted: ≈ $0.10/s of clip (ltx retake; its endpoint follows the local model's " +
    "family); exact estimate before submit"]);
});
