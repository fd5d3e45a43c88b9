"""Pre-run cost estimates: every provider's published formula on hand-worked cases (tests/pricing_cases.json,
shared with the web cost badge's test), and the price table's shape (data the badge can read: a source per
entry, known units, no entry shadowed by an earlier pattern)."""

import json
import math
from pathlib import Path

import pytest

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted import pricing
from ltx2_anywhere.pipelines.hosted.keys import KEY_ENVS
from ltx2_anywhere.pipelines.hosted.types import CostEstimate

SHARED = json.loads((Path(__file__).with_name("pricing_cases.json")).read_text())
CASES, FORMATS = SHARED["cases"], SHARED["formats"]
TABLE = pricing.price_table()
ENTRIES = [(provider, key, entry) for provider, data in TABLE["providers"].items()
           for key, entry in data["endpoints"].items()]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['provider']}:{c['endpoint']}:{c['usd']}" for c in CASES])
def test_estimate_matches_the_hand_worked_case(case):
    cost = pricing.estimate(case["provider"], case["endpoint"], **case["args"])
    assert isinstance(cost, CostEstimate) and cost.formula
    assert pricing.is_unknown(cost) is (not case["known"]), cost.formula
    assert cost.usd == pytest.approx(case["usd"], abs=1e-9), (case["why"], cost.formula)


@pytest.mark.parametrize("case", FORMATS, ids=[str(c["usd"]) for c in FORMATS])
def test_prices_show_their_real_precision(case):
    assert pricing.format_usd(case["usd"]) == case["text"], case["why"]


def test_cases_cover_every_provider_and_unit():
    assert {c["provider"] for c in CASES} == set(KEY_ENVS)
    units = {pricing.find_entry(c["provider"], c["endpoint"])[1]["unit"] for c in CASES if c["known"]}
    assert units == set(TABLE["units"])


def test_formulas_say_how_the_number_was_made():
    fal = pricing.estimate("fal", "fal-ai/ltx-2-19b/image-to-video", width=1280, height=720, num_frames=121)
    assert fal.formula.startswith("1280x720x121 = 111.5 MP -> 112 MP x $0.0018/MP = $0.2016")
    assert "published price" in fal.formula
    ws = pricing.estimate("wavespeed", "wavespeed-ai/ltx-2-19b/text-to-video")
    assert "assumed resolution 720p, duration 5" in ws.formula and "inferred" in ws.formula
    vd = pricing.estimate("vibedream", "ltx-2-19b", resolution="480p", duration=5)
    assert "-> 9 cents (rounded up)" in vd.formula and "costCents" in vd.formula
    bc = pricing.estimate("bytecompute", "text-to-video", width=1280, height=704, duration=5)
    assert "901,120 px <= 921,600 -> sd $0.02/s x 5 s" in bc.formula and "$0.11/s" in bc.formula
    unknown = pricing.estimate("fal", "fal-ai/ltx-2.3-22b/image-to-video", width=64, height=64, num_frames=9)
    assert unknown.usd == 0.0 and unknown.formula.startswith("unknown: fal publishes no price for")
    assert pricing.is_unknown(None)


def test_missing_inputs_are_named():
    with pytest.raises(L2AError, match="num_frames is missing"):
        pricing.estimate("fal", "fal-ai/ltx-2-19b/image-to-video", width=1280, height=720)
    with pytest.raises(L2AError, match="duration is missing"):
        pricing.estimate("ltx", "ltx-2-pro/text-to-video", resolution="1080p")
    with pytest.raises(L2AError, match="resolution = 'huge'"):
        pricing.estimate("ltx", "ltx-2-pro/text-to-video", resolution="huge", duration=6)


def test_every_entry_is_documented_data():
    assert TABLE["currency"] == "USD" and set(TABLE["providers"]) == set(KEY_ENVS)
    for provider, key, entry in ENTRIES:
        where = f"{provider} {key}"
        assert isinstance(entry.get("source"), str) and len(entry["source"]) > 20, where
        assert entry["unit"] in TABLE["units"], where
        assert entry["evidence"] in ("DOC", "2ND", "INF", "2ND+INF", "UNK"), where
        tiers = [t["rate"] for t in entry.get("tiers", [])]
        rates = [entry.get("rate"), *entry.get("rates", {}).values(), *tiers]
        assert all(r is None or (isinstance(r, (int, float)) and r > 0 and math.isfinite(r)) for r in rates), where
        assert (entry["evidence"] == "UNK") == all(r is None for r in rates), where
        for tier in list(entry.get("rates", {})) + list(entry.get("multipliers", {})):
            assert tier.endswith("p") and int(tier[:-1]) in pricing.TIERS, where


def test_no_entry_is_shadowed_by_an_earlier_pattern():
    for provider, key, _entry in ENTRIES:
        for alternative in key.split("|"):
            sample = alternative.replace("*", "x")
            assert pricing.find_entry(provider, sample)[0] == key, f"{provider} {alternative} is unreachable"


def test_price_table_is_a_copy():
    TABLE["providers"]["fal"]["endpoints"].clear()
    assert pricing.price_table()["providers"]["fal"]["endpoints"]
