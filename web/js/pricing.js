// The cost estimate of pipelines/hosted/pricing.py, ported line by line for the node badges.
//
// A pure module (ComfyUI loads every .js under web/ as an extension: importing this one does nothing). The price
// table is not copied here: the badge reads pipelines/hosted/prices.json through GET /ltx2_anywhere/prices, and
// web/tests/pricing.test.mjs checks this port on tests/pricing_cases.json, the cases tests/test_pricing.py checks.
// tests/test_web_extension.py also compares every formula text with the Python one.

import {
  framesForSeconds, pyFixed, pyRound, resolveSize, secondsForFrames, snapFrames,
} from "./geometry.js";

export const UNKNOWN = "unknown: ";
export const TIERS = [480, 720, 1080, 1440, 2160];
export const ALIASES = { "4k": "2160p", uhd: "2160p", "2k": "1440p", qhd: "1440p", fhd: "1080p", hd: "720p" };
export const EVIDENCE = {
  DOC: "published price",
  "2ND": "secondary source",
  INF: "inferred",
  "2ND+INF": "partly inferred",
};

export class PriceError extends Error {}

const none = (value) => value === undefined || value === null;

// ---- Python's number formats ---------------------------------------------------------------------------------

// format(x, "g"): 6 significant digits, trailing zeros dropped, exponent form below 1e-4 and from 1e6.
export function pyG(x) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mantissa, power] = x.toExponential(5).split("e");
  const exp = Number(power);
  if (exp < -4 || exp >= 6) {
    return `${mantissa.replace(/\.?0+$/, "")}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return pyFixed(x, 5 - exp).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

// format(n, ","): thousands separators.
export function pyThousands(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function pyRepr(text) {
  return text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replaceAll("'", "\\'")}'`;
}

// A price as the user sees it (pricing.format_usd): cents from ten cents up, below that two significant digits,
// so a small estimate keeps its precision ($0.0036, not $0.00).
export function formatUsd(usd) {
  if (usd <= 0 || pyRound(usd, 2) >= 0.1) return `$${pyFixed(usd, 2)}`;
  const decimals = Math.max(2, 1 - Math.floor(Math.log10(usd)));
  const text = pyFixed(usd, decimals).replace(/0+$/, "");
  return `$${text}${"0".repeat(Math.max(0, 2 - text.split(".")[1].length))}`;
}

// ---- the table ------------------------------------------------------------------------------------------------

function globToRegExp(pattern) {
  // fnmatch.fnmatchcase: * any run (slashes too), ? one character, [...] / [!...] a set
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) out += "\\[";
      else {
        let set = pattern.slice(i + 1, end).replaceAll("\\", "\\\\");
        if (set.startsWith("!")) set = `^${set.slice(1)}`;
        else if (set.startsWith("^")) set = `\\${set}`;
        out += `[${set}]`;
        i = end;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^(?:${out})$`, "s");
}

// [key, entry] that prices `endpoint`: the exact key, else the first glob key that matches (file order).
export function findEntry(table, provider, endpoint) {
  const entries = table?.providers?.[provider]?.endpoints ?? {};
  const wanted = String(endpoint).toLowerCase();
  for (const [key, entry] of Object.entries(entries)) {
    if (key.toLowerCase() === wanted) return [key, entry];
  }
  for (const [key, entry] of Object.entries(entries)) {
    if (key.split("|").some((alternative) => globToRegExp(alternative.toLowerCase()).test(wanted))) {
      return [key, entry];
    }
  }
  return null;
}

// '1080p'-style tier from a name, 'WxH', or a width and height (nearest standard short side).
function tierOf(resolution, width, height) {
  if (resolution) {
    const stripped = resolution.trim().toLowerCase();
    const name = Object.hasOwn(ALIASES, stripped) ? ALIASES[stripped] : stripped;
    if (/^\d+p$/.test(name)) return name;
    const size = /^(\d+)\s*[x*×]\s*(\d+)$/.exec(name);
    if (!size) {
      throw new PriceError(`resolution = ${pyRepr(resolution)} is not a size the price table knows: use e.g. ` +
        "720p, 1080p, 4k or 1920x1080.");
    }
    [width, height] = [Number(size[1]), Number(size[2])];
  }
  if (width && height) {
    const short = Math.min(width, height);
    let best = TIERS[0];
    for (const tier of TIERS) if (Math.abs(tier - short) < Math.abs(best - short)) best = tier;
    return `${best}p`;
  }
  return null;
}

function sizeOf(resolution, width, height) {
  if ((!width || !height) && resolution) {
    const size = /^\s*(\d+)\s*[x*×]\s*(\d+)\s*$/.exec(resolution);
    if (size) return [Number(size[1]), Number(size[2])];
  }
  return [width, height];
}

function unknownCost(provider, endpoint, why) {
  const formula = `${UNKNOWN}${provider} publishes no price for ${endpoint} ${why}`.trimEnd();
  return { usd: 0, formula, unknown: true };
}

function need(value, name, provider, endpoint) {
  if (none(value)) throw new PriceError(`Cannot estimate the cost of ${provider} ${endpoint}: ${name} is missing.`);
  return value;
}

// The bundled estimate for one job, as pricing.estimate: {usd, formula, unknown}. `args` takes pricing.estimate's
// keyword arguments (width, height, num_frames, fps, duration, resolution, generate_audio). Throws PriceError
// where the Python raises L2AError (an input the entry needs is missing, or an unreadable resolution).
export function estimate(table, provider, endpoint, args = {}) {
  let { width = null, height = null, num_frames: numFrames = null, fps = null } = args;
  let { duration = null, resolution = null } = args;
  const found = findEntry(table, provider, endpoint);
  if (!found) return unknownCost(provider, endpoint, "in the bundled price table");
  const entry = found[1];
  const rates = [entry.rate, ...Object.values(entry.rates ?? {}), ...(entry.tiers ?? []).map((t) => t.rate)];
  if (rates.every(none)) {
    return unknownCost(provider, endpoint, `(billed per ${entry.unit.replaceAll("_", " ")}, rate not published)`);
  }
  [width, height] = sizeOf(resolution, width, height);
  const defaults = entry.defaults ?? {};
  const assumed = [["resolution", resolution], ["duration", duration], ["width", width], ["height", height]]
    .filter(([name, given]) => none(given) && Object.hasOwn(defaults, name))
    .map(([name]) => `${name} ${defaults[name]}`);
  resolution = none(resolution) ? defaults.resolution ?? null : resolution;
  duration = none(duration) ? defaults.duration ?? null : duration;
  width = none(width) ? defaults.width ?? null : width;
  height = none(height) ? defaults.height ?? null : height;
  const unit = entry.unit;
  let usd;
  let text;

  if (unit === "megapixel") {
    need(width, "width", provider, endpoint);
    need(height, "height", provider, endpoint);
    if (none(numFrames) && !none(duration) && fps) {
      numFrames = pyRound(duration * fps) + 1;
      assumed.push(`${numFrames} frames = ${pyG(duration)} s x ${pyG(fps)} fps + 1`);
    }
    need(numFrames, "num_frames", provider, endpoint);
    const pixels = width * height * numFrames;
    const billed = Math.ceil(pixels / 1_000_000);
    usd = billed * entry.rate;
    text = `${width}x${height}x${numFrames} = ${pyFixed(pixels / 1e6, 1)} MP -> ${billed} MP x ` +
      `$${pyG(entry.rate)}/MP = $${pyG(pyRound(usd, 6))}`;
  } else if (unit === "second") {
    need(duration, "duration", provider, endpoint);
    let rate;
    let label = "";
    if ("rates" in entry) {
      const tier = need(tierOf(resolution, width, height), "resolution", provider, endpoint);
      rate = entry.rates[tier];
      if (none(rate) || !Object.hasOwn(entry.rates, tier)) {
        const published = Object.keys(entry.rates).join(", ") || "none";
        return unknownCost(provider, endpoint, `at ${tier} (published: ${published})`);
      }
      label = ` (${tier})`;
    } else {
      rate = entry.rate;
    }
    usd = rate * duration;
    text = `${pyG(duration)} s x $${pyG(rate)}/s${label} = $${pyG(pyRound(usd, 6))}`;
  } else if (unit === "block") {
    need(duration, "duration", provider, endpoint);
    const tier = need(tierOf(resolution, width, height), "resolution", provider, endpoint);
    const multiplier = Object.hasOwn(entry.multipliers, tier) ? entry.multipliers[tier] : null;
    if (none(multiplier)) {
      return unknownCost(provider, endpoint, `at ${tier} (published: ${Object.keys(entry.multipliers).join(", ")})`);
    }
    usd = entry.rate * multiplier * duration / entry.block_s;
    text = `$${pyG(entry.rate)} per ${pyG(entry.block_s)} s x ${pyG(multiplier)} (${tier}) x ${pyG(duration)} s ` +
      `= $${pyG(pyRound(usd, 6))}`;
  } else if (unit === "pixel_tier_second") {
    need(duration, "duration", provider, endpoint);
    const pixels = need(width, "width", provider, endpoint) * need(height, "height", provider, endpoint);
    const tier = entry.tiers.find((t) => none(t.max_pixels) || pixels <= t.max_pixels);
    if (none(tier.rate)) return unknownCost(provider, endpoint, `for the ${tier.name} tier`);
    usd = tier.rate * duration;
    const limit = none(tier.max_pixels) ? "" : ` <= ${pyThousands(tier.max_pixels)}`;
    text = `${width}x${height} = ${pyThousands(pixels)} px${limit} -> ${tier.name} $${pyG(tier.rate)}/s x ` +
      `${pyG(duration)} s = $${pyG(pyRound(usd, 6))}`;
  } else {
    throw new PriceError(`prices.json: unit '${unit}' of ${provider} ${endpoint} is not one pricing.py knows.`);
  }

  if (entry.rounding === "ceil_cent") {
    usd = Math.ceil(pyRound(usd * 100, 6)) / 100;
    text += ` -> ${pyRound(usd * 100)} cents (rounded up)`;
  }
  const notes = assumed.length ? [`assumed ${assumed.join(", ")}`] : [];
  notes.push(EVIDENCE[entry.evidence ?? ""] ?? "estimate");
  if (entry.note) notes.push(entry.note);
  return { usd: pyRound(usd, 6), formula: `${text} (${notes.join("; ")})`, unknown: false };
}

// The endpoint `auto` picks for a mode ("t2v" | "i2v" | "extend"), from the `defaults` that GET
// /ltx2_anywhere/prices computes from the provider classes (null: the provider lacks the mode).
export function defaultEndpoint(table, provider, mode) {
  return table?.defaults?.[provider]?.[mode] ?? null;
}

// What LTX-2 Generate's widgets ask for, in estimate()'s terms: {mode, args}. The size is the one the default
// (fal) mapping renders: a tier and ratio snapped to 32 (`auto` read as 16:9), or custom pixels snapped to 32
// (their tier for providers billing by tier); frames are 8k+1 from the duration (if > 0) or the frame count;
// seconds are whole, as the per-second providers take them. Providers that render only some sizes or lengths
// (the LTX API, fal's LTX-2.3 Pro/Fast) snap further: tests/test_web_extension.py compares this with each
// provider's own prepare() and says where the badge is only approximate.
export function generateJob(values, mode) {
  const fps = Number(values.fps) || 24;
  const seconds = Number(values.duration_seconds) || 0;
  const frames = seconds > 0 ? framesForSeconds(seconds, fps) : snapFrames(Number(values.frames) || 121);
  const custom = values.resolution === "custom";
  const ratio = values.aspect_ratio === "auto" || !values.aspect_ratio ? "16:9" : values.aspect_ratio;
  const [width, height] = resolveSize(custom ? "custom" : values.resolution || "720p", ratio,
    { width: Number(values.width) || 768, height: Number(values.height) || 512 });
  return {
    mode,
    // `auto` follows the input image, whose size the browser does not know: say the badge assumed 16:9.
    note: !custom && values.aspect_ratio === "auto" ? "auto aspect read as 16:9" : "",
    args: {
      width, height, num_frames: frames, fps,
      duration: Math.max(1, pyRound(seconds > 0 ? seconds : secondsForFrames(frames, fps))),
      resolution: custom ? `${width}x${height}` : values.resolution || "720p",
      generate_audio: values.generate_audio !== false,
    },
  };
}

// What LTX-2 Audio to Video and LTX-2 Retake cost per second of their input (the audio, the clip), whose length the
// browser does not know: {mode, perSecond, what, args} for one second of output at the size the provider renders
// (the LTX API renders both at 1080p; fal's audio-to-video at the node's size, 25 fps). The exact estimate of the
// real input is shown before anything is submitted.
export function perSecondJob(values, mode, provider) {
  const fps = mode === "a2v" ? 25 : Number(values.fps) || 24;
  const width = Number(values.width) || 1920;
  const height = Number(values.height) || 1080;
  return {
    mode,
    perSecond: true,
    what: mode === "a2v" ? "audio" : "clip",
    note: "",
    args: {
      width, height, num_frames: fps + 1, fps, duration: 1,
      resolution: provider === "ltx" ? "1080p" : `${width}x${height}`,
      generate_audio: true,
    },
  };
}
