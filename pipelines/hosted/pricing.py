"""Pre-run cost estimates from the one bundled price table, `prices.json` (also read by the web cost badge).

The table is data, not code, so the badge and this module cannot drift apart: its "rules" and "units" say in
words what `estimate` does, and tests/pricing_cases.json pins both to the same cases. Where a provider publishes
no price, `estimate` does not guess and does not raise: it returns $0 with a formula that starts "unknown: "
(`is_unknown`), so the job can still run and a spend limit can refuse it explicitly.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import math
import re
from pathlib import Path

from ..errors import L2AError
from .types import CostEstimate

PRICES_PATH = Path(__file__).with_name("prices.json")
UNKNOWN = "unknown: "
TIERS = (480, 720, 1080, 1440, 2160)
_ALIASES = {"4k": "2160p", "uhd": "2160p", "2k": "1440p", "qhd": "1440p", "fhd": "1080p", "hd": "720p"}
_EVIDENCE = {"DOC": "published price", "2ND": "secondary source", "INF": "inferred", "2ND+INF": "partly inferred"}


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(PRICES_PATH.read_text(encoding="utf-8"))


def price_table() -> dict:
    """The parsed price table (a copy: callers may not change the shared one)."""
    return copy.deepcopy(_table())


def format_usd(usd: float) -> str:
    """A price as the user sees it (status text, reports, the web badge's `formatUsd`): cents from ten cents up,
    below that two significant digits, so a small estimate keeps its precision ($0.0036, not $0.00)."""
    if usd <= 0 or round(usd, 2) >= 0.1:
        return f"${usd:.2f}"
    decimals = max(2, 1 - math.floor(math.log10(usd)))
    text = f"{usd:.{decimals}f}".rstrip("0")
    return "$" + text + "0" * (2 - len(text.partition(".")[2]))


def is_unknown(cost: CostEstimate | None) -> bool:
    """True when there is no estimate or the provider publishes no price for the job."""
    return cost is None or cost.formula.startswith(UNKNOWN)


def find_entry(provider: str, endpoint: str) -> tuple[str, dict] | None:
    """(key, entry) that prices `endpoint`: the exact key, else the first glob key that matches (file order)."""
    entries = _table()["providers"].get(provider, {}).get("endpoints", {})
    wanted = endpoint.lower()
    for key, entry in entries.items():
        if key.lower() == wanted:
            return key, entry
    for key, entry in entries.items():
        if any(fnmatch.fnmatchcase(wanted, alternative.lower()) for alternative in key.split("|")):
            return key, entry
    return None


def _tier(resolution: str | None, width: int | None, height: int | None) -> str | None:
    """'1080p'-style tier from a name, 'WxH', or a width and height (nearest standard short side)."""
    if resolution:
        name = _ALIASES.get(resolution.strip().lower(), resolution.strip().lower())
        if re.fullmatch(r"\d+p", name):
            return name
        size = re.fullmatch(r"(\d+)\s*[x*×]\s*(\d+)", name)
        if not size:
            raise L2AError(f"resolution = {resolution!r} is not a size the price table knows: use e.g. 720p, 1080p, "
                           "4k or 1920x1080.")
        width, height = int(size.group(1)), int(size.group(2))
    if width and height:
        short = min(width, height)
        return f"{min(TIERS, key=lambda tier: abs(tier - short))}p"
    return None


def _size(resolution, width, height) -> tuple[int | None, int | None]:
    if (not width or not height) and resolution:
        size = re.fullmatch(r"\s*(\d+)\s*[x*×]\s*(\d+)\s*", resolution)
        if size:
            return int(size.group(1)), int(size.group(2))
    return width, height


def _unknown(provider: str, endpoint: str, why: str) -> CostEstimate:
    return CostEstimate(0.0, f"{UNKNOWN}{provider} publishes no price for {endpoint} {why}".rstrip())


def _need(value, name: str, provider: str, endpoint: str):
    if value is None:
        raise L2AError(f"Cannot estimate the cost of {provider} {endpoint}: {name} is missing.")
    return value


def estimate(provider: str, endpoint: str, *, width: int | None = None, height: int | None = None,
             num_frames: int | None = None, fps: float | None = None, duration: float | None = None,
             resolution: str | None = None, generate_audio: bool = True) -> CostEstimate:
    """The bundled estimate for one job. Pass the OUTPUT size (as the provider will render it) and the values the
    provider bills by; missing ones come from the entry's documented defaults (said in the formula).
    `generate_audio` changes no published price today; it is accepted so callers need not know that."""
    found = find_entry(provider, endpoint)
    if found is None:
        return _unknown(provider, endpoint, "in the bundled price table")
    _key, entry = found
    rates = [entry.get("rate")] + list(entry.get("rates", {}).values()) + [t["rate"] for t in entry.get("tiers", [])]
    if all(rate is None for rate in rates):
        return _unknown(provider, endpoint, f"(billed per {entry['unit'].replace('_', ' ')}, rate not published)")
    width, height = _size(resolution, width, height)
    defaults = entry.get("defaults", {})
    assumed = [f"{name} {defaults[name]}" for name, given in
               (("resolution", resolution), ("duration", duration), ("width", width), ("height", height))
               if given is None and name in defaults]
    resolution = resolution if resolution is not None else defaults.get("resolution")
    duration = duration if duration is not None else defaults.get("duration")
    width = width if width is not None else defaults.get("width")
    height = height if height is not None else defaults.get("height")
    unit = entry["unit"]

    if unit == "megapixel":
        _need(width, "width", provider, endpoint)
        _need(height, "height", provider, endpoint)
        if num_frames is None and duration is not None and fps:
            num_frames = round(duration * fps) + 1
            assumed.append(f"{num_frames} frames = {duration:g} s x {fps:g} fps + 1")
        _need(num_frames, "num_frames", provider, endpoint)
        pixels = width * height * num_frames
        billed = -(-pixels // 1_000_000)
        usd = billed * entry["rate"]
        text = (f"{width}x{height}x{num_frames} = {pixels / 1e6:.1f} MP -> {billed} MP x ${entry['rate']:g}/MP "
                f"= ${round(usd, 6):g}")
    elif unit == "second":
        _need(duration, "duration", provider, endpoint)
        if "rates" in entry:
            tier = _need(_tier(resolution, width, height), "resolution", provider, endpoint)
            rate = entry["rates"].get(tier)
            if rate is None:
                return _unknown(provider, endpoint, f"at {tier} (published: {', '.join(entry['rates']) or 'none'})")
            label = f" ({tier})"
        else:
            rate, label = entry["rate"], ""
        usd = rate * duration
        text = f"{duration:g} s x ${rate:g}/s{label} = ${round(usd, 6):g}"
    elif unit == "block":
        _need(duration, "duration", provider, endpoint)
        tier = _need(_tier(resolution, width, height), "resolution", provider, endpoint)
        multiplier = entry["multipliers"].get(tier)
        if multiplier is None:
            return _unknown(provider, endpoint, f"at {tier} (published: {', '.join(entry['multipliers'])})")
        usd = entry["rate"] * multiplier * duration / entry["block_s"]
        text = (f"${entry['rate']:g} per {entry['block_s']:g} s x {multiplier:g} ({tier}) x {duration:g} s "
                f"= ${round(usd, 6):g}")
    elif unit == "pixel_tier_second":
        _need(duration, "duration", provider, endpoint)
        pixels = _need(width, "width", provider, endpoint) * _need(height, "height", provider, endpoint)
        tier = next(t for t in entry["tiers"] if t["max_pixels"] is None or pixels <= t["max_pixels"])
        if tier["rate"] is None:
            return _unknown(provider, endpoint, f"for the {tier['name']} tier")
        usd = tier["rate"] * duration
        limit = f" <= {tier['max_pixels']:,}" if tier["max_pixels"] is not None else ""
        text = (f"{width}x{height} = {pixels:,} px{limit} -> {tier['name']} ${tier['rate']:g}/s x {duration:g} s "
                f"= ${round(usd, 6):g}")
    else:
        raise L2AError(f"prices.json: unit {unit!r} of {provider} {endpoint} is not one pricing.py knows.")

    if entry.get("rounding") == "ceil_cent":
        usd = math.ceil(round(usd * 100, 6)) / 100
        text += f" -> {round(usd * 100):d} cents (rounded up)"
    notes = [f"assumed {', '.join(assumed)}"] if assumed else []
    notes += [_EVIDENCE.get(entry.get("evidence", ""), "estimate")] + ([entry["note"]] if entry.get("note") else [])
    return CostEstimate(round(usd, 6), f"{text} ({'; '.join(notes)})")
