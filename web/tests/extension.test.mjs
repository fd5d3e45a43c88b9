// web/js/l2a_extension.js against a stand-in ComfyUI frontend (stubs/): snapping, hints, the cost line through a
// hosted backend or a fallback, the key button, a loaded workflow, saved widget values. No canvas and no draw call
// anywhere, as in "Nodes 2.0" (Comfy.VueNodes.Enabled), which never calls onDrawForeground: every label and cost
// must be current from widget callbacks, links, loads and server answers alone, and the deprecated link views
// (input.link, output.links) must stay unread. Run: node --test web/tests/*.test.mjs
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { test as nodeTest } from "node:test";

import { deprecations, Graph, makeDocument, makeNode, nodeMethods } from "./stubs/graph.mjs";

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

globalThis.document = makeDocument();
if (hooks) await import("../js/l2a_extension.js");
const [extension] = comfy.extensions;
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

// ---- nodes in a graph ---------------------------------------------------------------------------------------
const types = {};
const graph = new Graph();

async function nodeType(comfyClass) {
  if (!types[comfyClass]) {
    types[comfyClass] = function Node() {};
    Object.assign(types[comfyClass].prototype, nodeMethods);
    await extension.beforeRegisterNodeDef(types[comfyClass], { name: comfyClass });
  }
  return types[comfyClass];
}

// As the frontend adds a node: built, nodeCreated (not yet in a graph), then added to the graph.
async function addNode(comfyClass, widgetValues, inputNames = [], options = {}) {
  const node = makeNode(await nodeType(comfyClass), comfyClass, widgetValues, inputNames, options);
  await extension.nodeCreated(node);
  graph.add(node);
  await settle();
  return node;
}

async function connect(from, to, inputName) {
  const link = graph.connect(from, to, inputName);
  await settle();
  return link;
}

const change = (node, name, value) => node.widgets.find((w) => w.name === name).callback(value);
const get = (node, name) => node.widgets.find((w) => w.name === name);
const cost = (node) => get(node, "l2a_cost")?.element.textContent;

const GENERATE = {
  resolution: "720p", aspect_ratio: "16:9", width: 768, height: 512, duration_seconds: 5, frames: 121, fps: 24,
  generate_audio: true,
};
const GENERATE_INPUTS = ["backend", "image", "end_image"];

// ---- tests --------------------------------------------------------------------------------------------------

test("the extension registers under its name and never draws", async () => {
  assert.equal(comfy.extensions.length, 1);
  assert.equal(extension.name, "ltx2_anywhere.ui");
  for (const name of ["L2A_HostedBackend", "L2A_Generate", "L2A_Sampler", "L2A_Fallback", "L2A_VideoSize"]) {
    assert.equal((await nodeType(name)).prototype.onDrawForeground, undefined, name);
  }
});

test("sampler sizes snap to 32, to 64 with an upsampler; frames snap to 8k+1 with a seconds hint", async () => {
  const sampler = await addNode("L2A_Sampler", { width: 768, height: 512, frames: 121, fps: 24 }, ["upsampler"],
    { width: { min: 64, max: 4096 }, height: { min: 64, max: 4096 }, frames: { min: 9, max: 1025 } });
  assert.equal(get(sampler, "frames").label, "frames (= 5.04 s)", "set when the node is created");
  change(sampler, "width", 770);
  assert.equal(get(sampler, "width").value, 768);
  change(sampler, "height", 40);
  assert.equal(get(sampler, "height").value, 64);
  change(sampler, "frames", 120);
  assert.equal(get(sampler, "frames").value, 121);
  change(sampler, "frames", 2000);
  assert.equal(get(sampler, "frames").value, 1025);
  assert.equal(get(sampler, "frames").label, "frames (= 42.71 s)", "the hint follows the callback");
  change(sampler, "frames", 121);
  change(sampler, "fps", 25);
  assert.equal(get(sampler, "frames").label, "frames (= 4.84 s)");
  change(sampler, "height", 736);
  assert.equal(get(sampler, "height").value, 736);
  const upsampler = await addNode("L2A_UpsamplerLoader", {});
  await connect(upsampler, sampler, "upsampler");
  assert.equal(get(sampler, "height").value, 704, "736 is not a multiple of 64: nearest, ties down");
  change(sampler, "width", 800);
  assert.equal(get(sampler, "width").value, 768);
});

test("the sampler's frames 0 is auto and never snapped; Generate's duration auto marks the length unused and is " +
  "refused on a hosted backend", async () => {
  const sampler = await addNode("L2A_Sampler", { width: 768, height: 512, frames: 121, fps: 24 }, [],
    { frames: { min: 0, max: 1025 } });
  change(sampler, "frames", 0);
  assert.equal(get(sampler, "frames").value, 0);
  assert.equal(get(sampler, "frames").label, "frames (0 = auto: LTX-2.5's duration head)");
  change(sampler, "frames", 3);
  assert.equal(get(sampler, "frames").value, 9, "other counts still snap to 8k+1");

  const hosted = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  const generate = await addNode("L2A_Generate", { ...GENERATE, duration: "auto" }, GENERATE_INPUTS);
  await connect(hosted, generate, "backend");
  assert.equal(cost(generate), "duration auto: fal has no automatic duration (refused before sending)");
  assert.equal(get(generate, "l2a_cost").element.dataset.kind, "warn");
  assert.equal(get(generate, "frames").label, "frames (unused: duration auto)");
  assert.equal(get(generate, "duration_seconds").label, "duration_seconds (unused: duration auto)");
  change(generate, "duration", "as set");
  assert.equal(cost(generate), "≈ $0.20 (fal, 1280x704x121 = 110 MP)");
  assert.equal(get(generate, "duration_seconds").label, "duration_seconds (= 121 frames)");
});

test("the cost line is a DOM widget that is never saved", async () => {
  const hosted = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  const line = get(hosted, "l2a_cost");
  assert.equal(line.type, "l2a_cost");
  assert.equal(line.element.tagName, "div");
  assert.equal(line.serialize, false, "kept out of widgets_values");
  assert.equal(line.options.serialize, false, "kept out of the prompt");
  assert.equal(hosted.widgets.at(-1), line, "after every value widget");
  assert.deepEqual(hosted.serializeWidgets(), ["fal", "auto", 0], "the saved values are those of the node alone");
  const generate = await addNode("L2A_Generate", GENERATE, GENERATE_INPUTS);
  assert.deepEqual(generate.serializeWidgets(), Object.values(GENERATE));
  assert.ok(generate.size[1] >= generate.computeSize()[1], "the node grew to show it");
});

test("the generate cost prices the connected hosted backend, and 'if hosted' through a fallback", async () => {
  const hosted = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  const generate = await addNode("L2A_Generate", GENERATE, GENERATE_INPUTS);
  assert.equal(cost(generate), "no backend connected");
  await connect(hosted, generate, "backend");
  assert.equal(cost(generate), "≈ $0.20 (fal, 1280x704x121 = 110 MP)");
  assert.equal(cost(hosted), "≈ $0.20 (fal, 1280x704x121 = 110 MP)", "the backend prices what it feeds");
  assert.equal(get(generate, "l2a_cost").element.dataset.kind, "ok");
  change(generate, "resolution", "1080p");
  assert.equal(cost(generate), "≈ $0.46 (fal, 1920x1088x121 = 253 MP)");
  assert.equal(cost(hosted), "≈ $0.46 (fal, 1920x1088x121 = 253 MP)", "a change on Generate reprices the backend");
  change(hosted, "max_cost_usd", 0.25);
  assert.match(cost(generate), /> max_cost_usd \$0\.25: refused$/);
  assert.equal(get(generate, "l2a_cost").element.dataset.kind, "warn");
  change(hosted, "provider", "vibedream");
  assert.equal(cost(generate), "vibedream has no text-to-video");

  const local = await addNode("L2A_LocalBackend", {});
  const lone = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "fal-ai/ltx-2.3-22b/image-to-video" });
  const fallback = await addNode("L2A_Fallback", {}, ["primary", "fallback"]);
  const other = await addNode("L2A_Generate", GENERATE, GENERATE_INPUTS);
  await connect(local, fallback, "primary");
  await connect(fallback, other, "backend");
  assert.equal(cost(other), "local backend: no API cost");
  await connect(lone, fallback, "fallback");
  assert.equal(cost(other), "if hosted: price unknown: fal fal-ai/ltx-2.3-22b/image-to-video (billed per " +
    "megapixel, rate not published)");
  change(lone, "endpoint", "auto");
  assert.equal(cost(other), "if hosted: ≈ $0.20 (fal, 1280x704x121 = 110 MP)");
  graph.remove(lone);
  await settle();
  assert.equal(cost(other), "local backend: no API cost", "a removed backend is no longer priced");
});

test("a lone hosted backend prices Generate's default job", async () => {
  const hosted = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  assert.equal(cost(hosted), "5 s 720p text-to-video: ≈ $0.20 (fal, 1280x704x121 = 110 MP)");
});

test("a loaded workflow shows its costs and hints once the graph is configured", async () => {
  const hosted = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  const generate = await addNode("L2A_Generate", GENERATE, GENERATE_INPUTS);
  graph.connect(hosted, generate, "backend");
  generate.size = [320, 60]; // saved before the node had a cost line
  generate.configureWidgets(["1080p", "16:9", 768, 512, 0, 241, 24, true]); // no callbacks, as on load
  assert.deepEqual(generate.size, [320, generate.computeSize()[1]], "grown (never shrunk) to show the cost line");
  hosted.configureWidgets(["fal", "auto", 0.1]);
  await extension.afterConfigureGraph([]);
  assert.equal(cost(generate), "≈ $0.91 (fal, 1920x1088x241 = 504 MP) > max_cost_usd $0.10: refused");
  assert.equal(get(generate, "frames").label, "frames (= 10.04 s)");
  assert.equal(get(generate, "duration_seconds").label, undefined);
});

test("duration hint and frames marked unused when a duration is set", async () => {
  const size = await addNode("L2A_VideoSize", { ...GENERATE, multiscale: false });
  assert.equal(get(size, "duration_seconds").label, "duration_seconds (= 121 frames)");
  assert.equal(get(size, "frames").label, "frames (unused)");
  change(size, "duration_seconds", 0);
  assert.equal(get(size, "frames").label, "frames (= 5.04 s)");
  assert.equal(get(size, "duration_seconds").label, undefined);
  change(size, "width", 1000);
  assert.equal(get(size, "width").value, 992);
  change(size, "multiscale", true);
  assert.equal(get(size, "width").value, 960, "992 is a tie between 960 and 1024: down");
});

test("the key button is never serialized, shows the status and posts the key only to the keys route", async () => {
  const hosted = await addNode("L2A_HostedBackend", { provider: "fal", endpoint: "auto", max_cost_usd: 0 });
  await settle();
  const button = hosted.widgets.find((w) => w.type === "button");
  assert.equal(button.name, "Set API key…");
  assert.equal(button.serialize, false);
  assert.equal(button.options.serialize, false);
  assert.equal(button.label, "Set API key… (FAL_KEY: not set)", "set once the key status arrived");
  change(hosted, "provider", "vibedream");
  assert.equal(button.label, "Set API key… (vibedream key: not set)");
  change(hosted, "provider", "fal");
  const savedDocument = globalThis.document;
  globalThis.document = { createElement: () => ({}) }; // no <dialog>: the prompt fallback
  globalThis.window = { prompt: () => "fal-id:fal-secret", alert: () => assert.fail("no error expected") };
  button.callback();
  await settle();
  globalThis.document = savedDocument;
  const posts = comfy.requests.filter((r) => r.method === "POST");
  assert.deepEqual(posts.map((r) => [r.route, JSON.parse(r.body)]),
    [["/ltx2_anywhere/keys", { provider: "fal", key: "fal-id:fal-secret" }]]);
  assert.equal(button.label, "Set API key… (FAL_KEY: set ✓)", "updated after the keys reload");
  assert.ok(!JSON.stringify(hosted, (k, v) => (k === "graph" ? undefined : v)).includes("fal-secret"));
  assert.deepEqual(hosted.serializeWidgets(), ["fal", "auto", 0]);
});

test("the deprecated link views are never read", () => {
  assert.ok(graph.links.size > 0);
  assert.deepEqual(deprecations, []);
});

test("audio-to-video and retake show the rate per second of their input, and what max_cost_usd allows", async () => {
  const hosted = await addNode("L2A_HostedBackend", { provider: "ltx", endpoint: "auto", max_cost_usd: 1 });
  const a2v = await addNode("L2A_AudioToVideo", { width: 768, height: 512, fps: 24 }, ["audio", "backend"]);
  assert.equal(cost(a2v), "no backend connected");
  await connect(hosted, a2v, "backend");
  const rate = "≈ $0.13/s of audio (ltx ltx-2-5-fast/audio-to-video; max_cost_usd $1.00 ≈ 7 s); exact estimate " +
    "before submit";
  assert.equal(cost(a2v), rate);
  assert.equal(cost(hosted), rate, "the backend prices the node it feeds");
  change(hosted, "endpoint", "ltx-2-5-pro/audio-to-video");
  await settle();
  assert.match(cost(a2v), /^≈ \$0\.17\/s of audio \(ltx ltx-2-5-pro\/audio-to-video;/);
  change(hosted, "provider", "fal");
  change(hosted, "endpoint", "auto");
  await settle();
  assert.match(cost(a2v), /^≈ \$0\.0088\/s of audio \(fal fal-ai\/ltx-2-19b\/distilled\/audio-to-video;/);
  change(hosted, "provider", "vibedream");
  await settle();
  assert.equal(cost(a2v), "vibedream has no audio-to-video");

  const local = await addNode("L2A_LocalBackend", {});
  const family = await addNode("L2A_HostedBackend", { provider: "ltx", endpoint: "auto (match the local model's " +
    "family)", max_cost_usd: 0 });
  const fallback = await addNode("L2A_Fallback", {}, ["primary", "fallback"]);
  const retake = await addNode("L2A_Retake", { fps: 24 }, ["video", "backend"]);
  await connect(local, fallback, "primary");
  await connect(family, fallback, "fallback");
  await connect(fallback, retake, "backend");
  assert.equal(cost(retake), "if hosted: ≈ $0.10/s of clip (ltx retake; its endpoint follows the local model's " +
    "family); exact estimate before submit");
});
