// web/js/geometry.js on the fixed cases in geometry_cases.json (tests/test_web_extension.py checks the same cases
// against pipelines/sizing.py and pipelines/geometry.py). Run: node --test web/tests/*.test.mjs
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  framesForSeconds, pyFixed, pyRound, resolveSize, secondsForFrames, snapFrames, snapSide, snapSideWithin,
} from "../js/geometry.js";

const CASES = JSON.parse(readFileSync(new URL("./geometry_cases.json", import.meta.url), "utf8"));

test("snapSide: nearest multiple, ties down, at least one multiple", () => {
  for (const c of CASES.snap_side) assert.equal(snapSide(c.value, c.multiple), c.expect, JSON.stringify(c));
});

test("snapFrames: nearest 8k+1, ties up, at least 9", () => {
  for (const c of CASES.snap_frames) assert.equal(snapFrames(c.frames), c.expect, JSON.stringify(c));
});

test("framesForSeconds: as sizing.resolve_frames", () => {
  for (const c of CASES.frames_for_seconds) {
    assert.equal(framesForSeconds(c.seconds, c.fps), c.expect, JSON.stringify(c));
  }
});

test("secondsForFrames: frames / fps", () => {
  for (const c of CASES.seconds_for_frames) {
    assert.ok(Math.abs(secondsForFrames(c.frames, c.fps) - c.expect) < 1e-12, JSON.stringify(c));
  }
});

test("resolveSize: tiers, ratios, auto and custom, as sizing.resolve_size", () => {
  for (const c of CASES.resolve_size) {
    const got = resolveSize(c.resolution, c.aspect_ratio, {
      width: c.width, height: c.height, imageSize: c.image_size, multiple: c.multiple,
    });
    assert.deepEqual(got, c.expect, JSON.stringify(c));
  }
});

test("snapSideWithin keeps a multiple inside the widget's range", () => {
  assert.equal(snapSideWithin(40, 32, 64, 4096), 64);
  assert.equal(snapSideWithin(4100, 64, 64, 4096), 4096);
  assert.equal(snapSideWithin(730, 64, 64, 4096), 704);
  assert.equal(snapSideWithin(90, 64, 96, 4096), 128);
});

test("Python rounding: half to even on the exact value", () => {
  assert.equal(pyFixed(111.25, 1), "111.2");
  assert.equal(pyFixed(111.35, 1), "111.3"); // 111.35 is stored a little below .35
  assert.equal(pyFixed(0.0078125, 6), "0.007812");
  assert.equal(pyFixed(0.375, 2), "0.38");
  assert.equal(pyRound(2.5), 2);
  assert.equal(pyRound(3.5), 4);
  assert.equal(pyRound(120.96), 121);
  assert.equal(pyRound(126.00000000000001, 6), 126);
});
