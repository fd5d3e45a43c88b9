// web/js/pricing.js against the Python estimator: the same price table (pipelines/hosted/prices.json) and the same
// hand-worked cases (tests/pricing_cases.json) as tests/test_pricing.py. Run: node --test web/tests/*.test.mjs
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { estimate, findEntry, formatUsd, PriceError, pyG, UNKNOWN } from "../js/pricing.js";

const read = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const TABLE = read("../../pipelines/hosted/prices.json");
const { cases: CASES, formats: FORMATS } = read("../../tests/pricing_cases.json");

test("every shared case gives the Python usd and unknown flag", () => {
  assert.ok(CASES.length > 20);
  for (const c of CASES) {
    const where = `${c.provider} ${c.endpoint} ${JSON.stringify(c.args)}: ${c.why}`;
    const cost = estimate(TABLE, c.provider, c.endpoint, c.args);
    assert.ok(Math.abs(cost.usd - c.usd) <= 1e-9, `${where}: got ${cost.usd} (${cost.formula})`);
    assert.equal(cost.unknown, !c.known, `${where}: ${cost.formula}`);
    assert.equal(cost.unknown, cost.formula.startsWith(UNKNOWN), where);
  }
});

test("the cases cover every provider and unit of the table", () => {
  assert.deepEqual(new Set(CASES.map((c) => c.provider)), new Set(Object.keys(TABLE.providers)));
  const units = new Set(CASES.filter((c) => c.known).map((c) => findEntry(TABLE, c.provider, c.endpoint)[1].unit));
  assert.deepEqual(units, new Set(Object.keys(TABLE.units)));
});

test("formulas read as the Python ones", () => {
  const fal = estimate(TABLE, "fal", "fal-ai/ltx-2-19b/image-to-video", { width: 1280, height: 720, num_frames: 121 });
  assert.ok(fal.formula.startsWith("1280x720x121 = 111.5 MP -> 112 MP x $0.0018/MP = $0.2016"), fal.formula);
  assert.ok(fal.formula.includes("published price"));
  const ws = estimate(TABLE, "wavespeed", "wavespeed-ai/ltx-2-19b/text-to-video");
  assert.ok(ws.formula.includes("assumed resolution 720p, duration 5") && ws.formula.includes("inferred"));
  const vd = estimate(TABLE, "vibedream", "ltx-2-19b", { resolution: "480p", duration: 5 });
  assert.ok(vd.formula.includes("-> 9 cents (rounded up)") && vd.formula.includes("costCents"), vd.formula);
  const bc = estimate(TABLE, "bytecompute", "text-to-video", { width: 1280, height: 704, duration: 5 });
  assert.ok(bc.formula.includes("901,120 px <= 921,600 -> sd $0.02/s x 5 s"), bc.formula);
  const unknown = estimate(TABLE, "fal", "fal-ai/ltx-2.3-22b/image-to-video", { width: 64, height: 64, num_frames: 9 });
  assert.equal(unknown.usd, 0);
  assert.ok(unknown.formula.startsWith("unknown: fal publishes no price for"));
});

test("lookup: exact key first, then the first glob in file order, case-insensitive", () => {
  assert.equal(findEntry(TABLE, "fal", "FAL-AI/LTX-2-19B/Image-To-Video")[0], "fal-ai/ltx-2-19b/image-to-video");
  assert.equal(findEntry(TABLE, "fal", "fal-ai/ltx-2-19b/distilled/foo")[0], "fal-ai/ltx-2-19b/distilled/*");
  assert.equal(findEntry(TABLE, "fal", "fal-ai/ltx-2/retake-video")[0],
    "fal-ai/ltx-2/extend-video|fal-ai/ltx-2/retake-video|fal-ai/ltx-2/audio-to-video");
  assert.equal(findEntry(TABLE, "ltx", "ltx-2-pro/retake")[0], "*retake*");
  assert.equal(findEntry(TABLE, "fal", "other/model"), null);
  assert.equal(findEntry(TABLE, "nobody", "x"), null);
});

test("missing inputs are named, as the Python raises them", () => {
  assert.throws(() => estimate(TABLE, "fal", "fal-ai/ltx-2-19b/image-to-video", { width: 1280, height: 720 }),
    (e) => e instanceof PriceError && e.message.includes("num_frames is missing"));
  assert.throws(() => estimate(TABLE, "ltx", "ltx-2-pro/text-to-video", { resolution: "1080p" }),
    (e) => e instanceof PriceError && e.message.includes("duration is missing"));
  assert.throws(() => estimate(TABLE, "ltx", "ltx-2-pro/text-to-video", { resolution: "huge", duration: 6 }),
    (e) => e instanceof PriceError && e.message.includes("resolution = 'huge'"));
});

test("Python's g format", () => {
  const table = [[0.0018, "0.0018"], [0.2016, "0.2016"], [5, "5"], [7.5, "7.5"], [0.001605, "0.001605"],
    [1e-5, "1e-05"], [1234567, "1.23457e+06"], [100000, "100000"], [0.1 + 0.2, "0.3"], [112, "112"]];
  for (const [x, want] of table) assert.equal(pyG(x), want, String(x));
});

test("prices show their real precision, as pricing.format_usd shows them", () => {
  assert.ok(FORMATS.length > 5);
  for (const c of FORMATS) assert.equal(formatUsd(c.usd), c.text, `${c.usd}: ${c.why}`);
});
