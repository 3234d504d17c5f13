"""Table-1 pairs: every row's trajectory shapes, a shared prompt, and the lesson each row teaches."""

import json
import random
import re
from collections import Counter

import pytest

from diatool_utils.pairs import (
    ROW_QUERY_TYPE,
    ROW_SHAPES,
    ROWS,
    CannotBuild,
    build_pair,
    count_turns,
    plan_rounds,
    shape_matches,
)
from diatool_utils.states import classify_query_type, state_sequence
from diatool_utils.synthetic import generate_pairs, synthetic_dialogue
from diatool_utils.synthetic_tools import TOOLS_BY_NAME


@pytest.fixture(scope="module")
def pairs():
    """Pairs that start at their request (earlier requests are tested in test_synthetic.py)."""
    return generate_pairs(600, seed=11, history_rate=0.0)


def by_row(pairs, row):
    return [p for p in pairs if p["row"] == row]


def calls(messages):
    return [c["function"] for m in messages for c in m.get("tool_calls") or []]


def offered(pair):
    return {t["function"]["name"] for t in pair["tools"]}


@pytest.mark.parametrize("row", ROWS)
def test_each_row_has_the_trajectory_shapes_of_table_1(pairs, row):
    chosen_shape, rejected_shape = ROW_SHAPES[row]
    rows = by_row(pairs, row)
    assert len(rows) == 60
    for pair in rows:
        assert shape_matches(state_sequence(pair["chosen"]), chosen_shape), (pair["id"], pair["chosen"])
        assert shape_matches(state_sequence(pair["rejected"]), rejected_shape), (pair["id"], pair["rejected"])


def test_shape_patterns_read_2_star_as_one_or_more_slot_rounds():
    assert shape_matches([1, 2, 2, 3, 4, 5], "1-2*-3-4-5")
    assert shape_matches([1, 2, 3, 4], "1-2*-3-4")
    assert not shape_matches([1, 3, 4, 5], "1-2*-3-4-5")
    assert not shape_matches([1, 2, 3, 4, 5], "1-3-4-5")


def test_chosen_and_rejected_share_tools_and_prompt_and_part_right_after_it(pairs):
    for pair in pairs:
        assert [m["role"] for m in pair["prompt"]] == ["user"]
        assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
        assert pair["chosen"] != pair["rejected"], pair["id"]
        if pair["row"] != 7:  # row 7 may open both sides with the same question, then part
            assert pair["chosen"][0] != pair["rejected"][0], pair["id"]
        full_chosen, full_rejected = pair["prompt"] + pair["chosen"], pair["prompt"] + pair["rejected"]
        assert full_chosen[: len(pair["prompt"])] == full_rejected[: len(pair["prompt"])]


def test_labels_say_row_query_type_difficulty_and_turns(pairs):
    for pair in pairs:
        assert pair["query_type"] == ROW_QUERY_TYPE[pair["row"]]
        assert classify_query_type(pair["prompt"] + pair["chosen"]) == pair["query_type"]
        assert pair["turns_chosen"] == count_turns(pair["chosen"])
        assert pair["turns_rejected"] == count_turns(pair["rejected"])
        if pair["row"] in (1, 5):
            assert pair["difficulty"] == "easy"
        elif pair["row"] == 8:
            assert pair["difficulty"] == ("easy" if len(pair["missing_arguments"]) == 1 else "hard")
        elif pair["row"] != 4:
            assert pair["difficulty"] == "hard"
    assert {(p["row"], p["difficulty"]) for p in by_row(pairs, 4)} == {(4, "easy"), (4, "hard")}


def test_type1_rows_ask_again_for_values_the_request_gave(pairs):
    for row in (1, 2, 3):
        for pair in by_row(pairs, row):
            [call] = calls(pair["chosen"])
            required = TOOLS_BY_NAME[call["name"]].required
            asked = pair["arguments_asked"]["rejected"]
            assert pair["missing_arguments"] == [] and set(asked) <= set(required)
            assert len(asked) == {1: 1, 2: len(required), 3: len(asked)}[row]
            if row == 3:
                assert 0 < len(asked) < len(required)
            assert calls(pair["rejected"]) == calls(pair["chosen"])  # asking changed nothing


def test_a_missing_value_is_not_in_the_prompt_and_the_chosen_side_asks_for_it(pairs):
    for pair in [p for p in pairs if p["row"] in (5, 6, 7, 8)]:
        [call] = calls(pair["chosen"])
        arguments = json.loads(call["arguments"])
        request = pair["prompt"][-1]["content"]
        assert pair["arguments_asked"]["chosen"] == pair["missing_arguments"]
        for name in pair["missing_arguments"]:
            value = re.escape(str(arguments[name]))
            assert not re.search(rf"(?<![\w-]){value}(?![\w-])", request), (request, name)
    assert {len(p["missing_arguments"]) for p in by_row(pairs, 5)} == {1}
    assert min(len(p["missing_arguments"]) for p in by_row(pairs, 6) + by_row(pairs, 7)) >= 2


def test_hallucinating_rows_invent_exactly_the_missing_values(pairs):
    for row in (5, 6, 7):
        for pair in by_row(pairs, row):
            [good], [bad] = calls(pair["chosen"]), calls(pair["rejected"])
            good, bad = json.loads(good["arguments"]), json.loads(bad["arguments"])
            invented = {k for k in good if good[k] != bad[k]}
            asked = set(pair["arguments_asked"]["rejected"])
            assert invented == set(pair["missing_arguments"]) - asked, pair["id"]


def test_row_7_rejected_asks_for_a_strict_subset_of_the_missing_values(pairs):
    for pair in by_row(pairs, 7):
        asked = pair["arguments_asked"]
        assert set(asked["rejected"]) < set(asked["chosen"]) and asked["rejected"]


def test_type3_rows_offer_no_tool_for_the_request_and_the_rejected_call_uses_one(pairs):
    for row in (9, 10):
        for pair in by_row(pairs, row):
            [bad] = calls(pair["rejected"])
            assert bad["name"] not in offered(pair) and pair["tools"]
            assert pair["rejected"][-1].get("tool_calls")  # it stops at the call
            assert calls(pair["chosen"]) == []


def test_rows_that_accept_a_callable_request_use_an_offered_tool(pairs):
    for pair in [p for p in pairs if p["row"] <= 8]:
        assert {c["name"] for c in calls(pair["chosen"])} <= offered(pair)


def test_generate_pairs_covers_all_rows_and_both_subsets():
    pairs = generate_pairs(100, seed=3)
    assert Counter(p["row"] for p in pairs) == {row: 10 for row in ROWS}
    assert {p["difficulty"] for p in pairs} == {"easy", "hard"}
    weighted = generate_pairs(30, seed=3, row_weights={5: 2.0, 9: 1.0})
    assert Counter(p["row"] for p in weighted) == {5: 20, 9: 10}


def test_a_row_needing_several_required_values_refuses_a_tool_with_one():
    src = synthetic_dialogue(TOOLS_BY_NAME["get_air_quality"], [TOOLS_BY_NAME["get_air_quality"]], random.Random(0))
    with pytest.raises(CannotBuild, match="row 2 needs a tool with at least 2 required arguments"):
        build_pair(2, src, random.Random(0))
    with pytest.raises(ValueError, match="1..10"):
        build_pair(11, src, random.Random(0))
    with pytest.raises(ValueError, match="keeps every value"):
        build_pair(1, src, random.Random(0), missing=["city"])


def test_build_pair_leaves_out_the_values_you_name():
    tool = TOOLS_BY_NAME["book_restaurant"]
    src = synthetic_dialogue(tool, [tool], random.Random(4))
    pair = build_pair(8, src, random.Random(4), missing=["date", "time"])
    assert pair["missing_arguments"] == ["date", "time"] and pair["difficulty"] == "hard"
    assert src.arguments["date"] not in pair["prompt"][0]["content"]
    assert src.arguments["restaurant"] in pair["prompt"][0]["content"]


@pytest.mark.parametrize("style, expected", [
    ("together", [(("a", "b", "c"), ("a", "b", "c"))]),
    ("one_by_one", [(("a",), ("a",)), (("b",), ("b",)), (("c",), ("c",))]),
])
def test_plan_rounds_styles(style, expected):
    assert plan_rounds(["a", "b", "c"], random.Random(0), style) == expected


def test_partial_rounds_ask_for_everything_then_for_what_is_still_missing():
    [(asked1, given1), (asked2, given2)] = plan_rounds(["a", "b", "c"], random.Random(0), "partial")
    assert asked1 == ("a", "b", "c") and given1 + given2 == asked1 and asked2 == given2
    with pytest.raises(ValueError, match="unknown round style"):
        plan_rounds(["a", "b"], random.Random(0), "sideways")
