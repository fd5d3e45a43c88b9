// LTX-2 sizes and lengths for the node UI: the same rules as pipelines/sizing.py and pipelines/geometry.py.
//
// A pure module (ComfyUI loads every .js under web/ as an extension: importing this one does nothing). The rules
// are pinned by web/tests/geometry_cases.json, which tests/test_web_extension.py also checks against the Python.

export const SPATIAL = 32; // width/height multiple (geometry.SPATIAL)
export const MULTISCALE_MULTIPLE = 64; // two-stage sampling (sizing.MULTISCALE_MULTIPLE)
export const TEMPORAL = 8; // frames are 8k+1 (geometry.TEMPORAL)
export const SIZE_TIERS = { "480p": 480, "720p": 720, "1080p": 1080 }; // sizing.TIERS: the short side

// ---- Python's rounding, for ports that must give the very same numbers --------------------------------------

// `x` rounded to `digits` decimals as Python's round()/format do it: half to even on the exact binary value.
export function pyFixed(x, digits = 0) {
  const extra = Math.min(25, 100 - digits);
  const exact = x.toFixed(digits + extra); // exact at this length for the magnitudes used here
  const cut = exact.length - extra;
  const up = x.toFixed(digits); // JavaScript: exact ties go away from zero
  if (!/^50*$/.test(exact.slice(cut))) return up;
  const kept = exact.slice(0, digits === 0 ? cut - 1 : cut);
  return Number(kept.slice(-1)) % 2 === 0 ? kept : up;
}

export function pyRound(x, digits = 0) {
  return Number(pyFixed(x, digits));
}

function ceilDiv(a, b) {
  // exact ceil(a / b) for integers, b > 0
  let q = Math.floor(a / b);
  if (q * b < a) q += 1;
  if ((q - 1) * b >= a) q -= 1;
  return q;
}

// ---- sizes --------------------------------------------------------------------------------------------------

// The nearest multiple of `multiple`, ties down, at least one multiple (sizing.round_side): 720 -> 704.
// `value` may be a number or an exact fraction [numerator, denominator] of integers.
export function snapSide(value, multiple = SPATIAL) {
  const [num, den] = Array.isArray(value) ? value : [value, 1];
  let steps;
  if (Number.isInteger(num) && Number.isInteger(den)) {
    steps = ceilDiv(2 * num - den * multiple, 2 * den * multiple); // ceil(num / (den * multiple) - 1/2), exactly
  } else {
    steps = Math.ceil(num / den / multiple - 0.5);
  }
  return Math.max(multiple, steps * multiple);
}

// snapSide within a widget's [min, max], staying a multiple.
export function snapSideWithin(value, multiple = SPATIAL, min = multiple, max = 4096) {
  const low = Math.ceil(min / multiple) * multiple;
  const high = Math.floor(max / multiple) * multiple;
  return Math.min(Math.max(snapSide(value, multiple), low), Math.max(low, high));
}

function ratioOf(aspectRatio, imageSize) {
  if (aspectRatio === "auto") {
    if (!imageSize) throw new Error("aspect ratio 'auto' follows the input image: connect an image or pick a ratio.");
    return [Math.trunc(imageSize[0]), Math.trunc(imageSize[1])];
  }
  const match = /^(\d+):(\d+)$/.exec(String(aspectRatio));
  if (!match) throw new Error(`aspect ratio ${aspectRatio} is unknown.`);
  return [Number(match[1]), Number(match[2])];
}

// [width, height] for a tier ("480p" | "720p" | "1080p") and an aspect ratio, or custom pixels, snapped to
// `multiple` (sizing.resolve_size without its note and range checks): 720p 16:9 -> [1280, 704].
export function resolveSize(resolution, aspectRatio, { width, height, imageSize, multiple = SPATIAL } = {}) {
  if (resolution === "custom") return [snapSide(width, multiple), snapSide(height, multiple)];
  if (!Object.hasOwn(SIZE_TIERS, resolution)) throw new Error(`resolution ${resolution} is unknown.`);
  const short = SIZE_TIERS[resolution];
  const [rw, rh] = ratioOf(aspectRatio, imageSize);
  return rw >= rh
    ? [snapSide([short * rw, rh], multiple), snapSide(short, multiple)]
    : [snapSide(short, multiple), snapSide([short * rh, rw], multiple)];
}

// ---- frames -------------------------------------------------------------------------------------------------

// The nearest 8k+1 frame count, ties up, at least 9 (geometry.snap_frames): 120 -> 121, 125 -> 129.
export function snapFrames(frames) {
  const k = Math.max(1, Math.round((frames - 1) / TEMPORAL + 1e-9));
  return k * TEMPORAL + 1;
}

// Frames for a duration (sizing.resolve_frames): the 8k+1 count nearest to seconds x fps, ties up, at least 9.
export function framesForSeconds(seconds, fps) {
  const count = pyRound(seconds * fps, 6); // 4.2 * 30 is 126, not 126.00000000000001
  return Math.max(1, Math.floor((count - 1) / TEMPORAL + 0.5)) * TEMPORAL + 1;
}

// The clip length in seconds (Geometry.duration).
export function secondsForFrames(frames, fps) {
  return frames / fps;
}
