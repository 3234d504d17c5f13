"""The synthetic generator: a varied catalogue, clean templates, and words a judge can read."""

import itertools
import json
import random
import re
from collections import Counter

import pytest

from diatool_utils import judge
from diatool_utils.states import classify_query_type, request_query_types, text_kind
from diatool_utils.synthetic import (
    ASK,
    DECLINE,
    FOLLOW_UP,
    TWINS,
    completion_text,
    decline_text,
    generate_eval,
    generate_pairs,
    generate_sft,
    generate_twin_pairs,
    render_template,
    sample_intent,
    slot_answer,
    slot_question,
    template_slots,
    tool_result,
)
from diatool_utils.synthetic_tools import PARAMS, TOOLS, tools_in

TRAIN = tools_in("train")
DEV = tools_in("dev")
SERVED = tools_in("train") + tools_in("eval") + DEV


def test_catalogue_has_at_least_30_training_tools_over_8_domains_and_8_held_out_tools():
    assert len(TRAIN) >= 30
    assert len({t.domain for t in TRAIN}) >= 8
    assert len(tools_in("eval")) >= 8
    assert tools_in("phantom_train") and tools_in("phantom_eval")
    assert len({t.name for t in TOOLS}) == len(TOOLS), "tool names must be unique across splits"


def test_dev_split_has_eleven_tools_of_three_phrasings_with_one_to_three_required_values_and_four_phantoms():
    assert len(DEV) == len(tools_in("eval")) == 11
    assert all(len(t.requests) == 3 and t.completions and t.result for t in DEV)
    assert {len(t.required) for t in DEV} == {1, 2, 3}
    assert sum(len(t.required) >= 2 for t in DEV) >= 6, "two-round slot filling needs two or more required values"
    assert len(tools_in("phantom_dev")) == 4


def _bare(template):  # the words a phrasing always says, whatever values it is given
    return render_template(template, {}).lower()


def test_dev_tools_share_no_name_domain_capability_or_phrasing_with_train_or_eval_tools():
    seen = tools_in("train") + tools_in("eval")
    for attribute in ("name", "domain", "capability", "description"):
        shared = {getattr(t, attribute) for t in DEV} & {getattr(t, attribute) for t in seen}
        assert not shared, f"dev tools share {attribute} {shared} with train or eval tools"
    phrasings = {r for t in seen for r in t.requests}
    bare = {_bare(r) for r in phrasings}
    for tool in DEV:
        for request in tool.requests:
            assert request not in phrasings and _bare(request) not in bare, (tool.name, request)


def test_phantom_dev_tools_are_unlike_every_other_tool():
    others = [t for t in TOOLS if t.split != "phantom_dev"]
    for tool in tools_in("phantom_dev"):
        assert tool.capability not in {t.capability for t in others}, tool.name
        assert not {_bare(r) for r in tool.requests} & {_bare(r) for t in others for r in t.requests}, tool.name


def test_asking_for_an_unknown_split_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown tool split 'test'.*phantom_dev"):
        tools_in("test")
    with pytest.raises(ValueError, match="split must be one of.*'dev'.*got 'phantom_dev'"):
        generate_eval(seed=0, split="phantom_dev")


def test_parameters_cover_strings_numbers_enums_dates_booleans_optional_and_required():
    schemas = [p for t in TRAIN for p in t.openai_schema()["function"]["parameters"]["properties"].values()]
    types = Counter(s["type"] for s in schemas)
    assert {"string", "integer", "number", "boolean"} <= set(types)
    assert any("enum" in s for s in schemas) and any(s.get("format") == "date" for s in schemas)
    assert sum(len(t.optional) for t in TRAIN) >= 8 and all(t.required for t in TRAIN)


def test_every_training_tool_has_four_phrasings_with_different_slot_orders():
    for tool in TRAIN:
        assert len(tool.requests) >= 4, tool.name
        orders = {tuple(n for n in template_slots(r) if n in tool.required) for r in tool.requests}
        if len(tool.required) >= 2:
            assert len(orders) >= 2, f"{tool.name}: every phrasing puts the values in the same order"


@pytest.mark.parametrize("tool", [t for t in TOOLS], ids=lambda t: t.name)
def test_each_template_renders_cleanly_without_any_subset_of_required_values(tool):
    for template in tool.requests:
        slots = template_slots(template)
        assert set(tool.required) <= set(slots), f"{template!r} misses a required value"
        assert set(slots) <= set(tool.params), f"{template!r} names an unknown parameter"
        texts = {n: "VALUE" for n in slots}
        for k in range(len(tool.required) + 1):
            for omitted in itertools.combinations(tool.required, k):
                text = render_template(template, {n: t for n, t in texts.items() if n not in omitted})
                assert text.count("VALUE") == len(slots) - k, text
                assert not any(c in text for c in "[]{}|"), text
                assert "  " not in text and " ," not in text and " ." not in text and " ?" not in text, text
                assert text[-1] in ".?!" and text[0].isupper(), text


def _says(text: str, value: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", text) is not None


def test_a_value_left_out_of_the_request_is_not_in_its_text():
    rng = random.Random(0)
    for tool in TRAIN + DEV:
        for _ in range(5):
            intent = sample_intent(tool, rng)
            for name in tool.required:
                value = intent.texts()[name]
                assert _says(intent.text(), value)
                assert not _says(intent.text(omit=(name,)), value), (tool.name, intent.text(omit=(name,)))


def test_optional_values_are_only_arguments_when_the_request_says_them():
    rng = random.Random(1)
    for tool in TRAIN:
        for _ in range(10):
            intent = sample_intent(tool, rng)
            text = intent.text()
            for name in intent.arguments():
                assert intent.texts()[name] in text


@pytest.mark.parametrize("tool", SERVED, ids=lambda t: t.name)
def test_completions_report_the_key_values_of_the_tool_result(tool):
    rng = random.Random(2)
    assert tool.completions
    for template in tool.completions:
        fields = set(template_slots(template))
        assert fields <= set(tool.required) | set(tool.result), f"{template!r} names an optional value"
        assert fields & set(tool.result), f"{template!r} reports nothing from the result"
    for _ in range(10):
        arguments = sample_intent(tool, rng).arguments()
        result = tool_result(tool, arguments, rng)
        text = completion_text(tool, arguments, result, rng)
        reported = [v for k, v in result.items() if k in tool.result and judge.mentions_value(text, v)]
        assert reported, f"{tool.name}: {text!r} mentions none of {result}"


@pytest.mark.parametrize("tool", SERVED + tools_in("phantom_train"), ids=lambda t: t.name)
def test_slot_questions_ask_and_name_every_missing_value_the_way_the_judge_reads_them(tool):
    rng = random.Random(3)
    schema = [tool.openai_schema()]
    for k in range(1, len(tool.required) + 1):
        for names in itertools.combinations(tool.required, k):
            for template in ASK + FOLLOW_UP:
                question = slot_question(tool, names, rng, template=template)
                assert judge.asks_question(question) and text_kind(question) == "ask", question
                assert not judge.declines(question) and not judge.claims_action(question), question
                for name in names:
                    assert judge.mentions_argument(question, judge.argument_synonyms(schema, name)), \
                        f"{question!r} does not name {name}"


@pytest.mark.parametrize("template", DECLINE)
def test_declines_are_polite_one_sentence_refusals_without_claims(template):
    for tool in TOOLS:
        text = decline_text(tool, random.Random(template))
        assert judge.declines(text) and text_kind(text) == "decline" and not judge.claims_action(text)
    assert template.count(".") == 1


def test_slot_answers_contain_the_values_asked_for():
    rng = random.Random(4)
    for tool in TRAIN:
        intent = sample_intent(tool, rng)
        values = {n: intent.values[n] for n in tool.required}
        answer = slot_answer(tool, values, rng)
        for name in values:
            assert intent.texts()[name] in answer, (answer, values)


def test_one_parameter_name_means_one_json_type_everywhere():
    seen = {}
    for tool in TOOLS:
        for name, schema in tool.openai_schema()["function"]["parameters"]["properties"].items():
            assert seen.setdefault(name, schema) == schema, name
    assert set(seen) <= set(PARAMS)


def test_same_seed_same_data_and_another_seed_other_data():
    assert generate_sft(40, seed=5) == generate_sft(40, seed=5)
    assert generate_pairs(40, seed=5) == generate_pairs(40, seed=5)
    assert generate_sft(40, seed=5) != generate_sft(40, seed=6)


def test_sft_mix_follows_the_requested_proportions():
    rows = generate_sft(1000, seed=0, mix={1: 0.7, 2: 0.15, 3: 0.15})
    shares = Counter(r["query_type"] for r in rows)
    assert 0.65 < shares[1] / 1000 < 0.75 and 0.11 < shares[2] / 1000 < 0.19 and 0.11 < shares[3] / 1000 < 0.19
    only_calls = generate_sft(50, seed=0, mix={1: 1.0, 2: 0.0, 3: 0.0}, requests={1: 1.0})
    assert {r["query_type"] for r in only_calls} == {1}


def test_sft_query_types_are_what_the_messages_show():
    for row in generate_sft(300, seed=1):
        assert [int(t) for t in request_query_types(row["messages"])] == row["query_types"], row["id"]
        if len(row["query_types"]) == 1:
            assert classify_query_type(row["messages"]) == row["query_type"]


def test_sft_declines_name_a_tool_that_is_not_offered_and_calls_use_offered_tools():
    for row in generate_sft(300, seed=2):
        offered = {t["function"]["name"] for t in row["tools"]}
        for message in row["messages"]:
            for call in message.get("tool_calls") or []:
                assert call["function"]["name"] in offered
                json.loads(call["function"]["arguments"])


def test_sft_conversations_hold_one_to_three_requests_in_any_order_of_types():
    rows = generate_sft(1000, seed=3)
    counts = Counter(len(r["query_types"]) for r in rows)
    assert 0.40 < counts[1] / 1000 < 0.50 and 0.30 < counts[2] / 1000 < 0.40 and 0.15 < counts[3] / 1000 < 0.25
    assert set(counts) == {1, 2, 3}
    # the evaluation's hardest turns: a request the model must serve after one it declined
    decline_then_serve = [r for r in rows
                          if any(a == 3 and b in (1, 2) for a, b in itertools.pairwise(r["query_types"]))]
    assert len(decline_then_serve) > 50


def user_turns(messages):
    return sum(m["role"] == "user" for m in messages)


def test_about_half_the_pairs_start_after_an_earlier_finished_request():
    pairs = generate_pairs(400, seed=4)
    later = [p for p in pairs if user_turns(p["prompt"]) > 1]
    assert 0.4 < len(later) / 400 < 0.6
    assert all(user_turns(p["prompt"]) == 1 for p in generate_pairs(100, seed=4, history_rate=0.0))
    kinds = Counter()
    for pair in later:
        offered = {t["function"]["name"] for t in pair["tools"]}
        *earlier, request = pair["prompt"]
        assert request["role"] == "user" and earlier[0]["role"] == "user", pair["id"]
        assert earlier[-1]["role"] == "assistant" and not earlier[-1].get("tool_calls"), pair["id"]  # finished
        calls = [c["function"]["name"] for m in earlier for c in m.get("tool_calls") or []]
        assert set(calls) <= offered, pair["id"]  # an earlier call used a tool of the pair's list
        kinds["served" if calls else "asked or declined"] += 1
        assert [int(t) for t in request_query_types(earlier)] in ([1], [2], [3]), pair["id"]
    assert kinds["served"] > 0 and kinds["asked or declined"] > 0


def test_eval_set_has_the_benchmark_mix_of_judged_turns():
    rows = generate_eval(seed=0)
    kinds = Counter(t["type_of_output"] for r in rows for t in r["turns"])
    assert len(rows) == 45
    assert kinds == {"call": 70, "completion": 70, "slot": 36, "relevance": 23}
    serials = [t["serial_num"] for r in rows for t in r["turns"]]
    assert serials == list(range(1, len(serials) + 1))


@pytest.mark.parametrize("split", ["dev", "train"])
def test_a_split_benchmark_has_the_eval_plan_on_its_own_tools_and_declines_its_phantom_requests(split):
    rows = generate_eval(seed=0, split=split)
    kinds = Counter(t["type_of_output"] for r in rows for t in r["turns"])
    assert len(rows) == 45 and kinds == {"call": 70, "completion": 70, "slot": 36, "relevance": 23}
    own = {t.name for t in tools_in(split)}
    offered = {t["function"]["name"] for r in rows for t in r["tools"]}
    truths = [t["ground_truth"] for r in rows for t in r["turns"]]
    assert offered <= own and {c["function"]["name"] for m in truths for c in m.get("tool_calls") or []} <= own
    phantoms = tools_in("phantom_" + split)
    declined = {t.capability for t in phantoms for m in truths if t.capability in (m["content"] or "")}
    assert declined, f"no out-of-scope request asks for a phantom_{split} tool"


def test_the_dev_split_leaves_the_evaluation_set_as_it_was():
    assert generate_eval(seed=2) == generate_eval(seed=2, split="eval")
    assert generate_eval(seed=2, split="dev") != generate_eval(seed=2)


def test_twin_pairs_share_a_dialogue_and_differ_in_the_one_fact_to_read():
    pairs = generate_twin_pairs(200, seed=6)
    assert len(pairs) == 200 and Counter(p["row"] for p in pairs) == {row: 20 for row in range(1, 11)}
    assert len({p["id"] for p in pairs}) == 200
    later = 0
    for a, b in zip(pairs[::2], pairs[1::2], strict=True):
        assert a["twin"] == b["twin"] and (a["row"], b["row"]) in TWINS, a["id"]
        assert a["prompt"][:-1] == b["prompt"][:-1], a["id"]  # system prompt and any earlier request
        later += user_turns(a["prompt"]) > 1
        needed = {c["function"]["name"] for m in a["chosen"] + a["rejected"] for c in m.get("tool_calls") or []}
        assert len(needed) == 1, a["id"]
        names_a = {t["function"]["name"] for t in a["tools"]}
        names_b = {t["function"]["name"] for t in b["tools"]}
        if b["row"] in (9, 10):  # same request; the second pair's list lacks the needed tool and keeps another
            assert a["prompt"][-1] == b["prompt"][-1] and names_b == names_a - needed and names_b, a["id"]
            assert a["missing_arguments"] == b["missing_arguments"], a["id"]
        else:  # same list; the second request leaves required values out
            assert a["tools"] == b["tools"] and not a["missing_arguments"] and b["missing_arguments"], a["id"]
            left_out = [m for m in a["prompt"][-1]["content"].split() if m not in b["prompt"][-1]["content"]]
            assert left_out, a["id"]
        earlier_calls = {c["function"]["name"] for m in a["prompt"] for c in m.get("tool_calls") or []}
        assert not earlier_calls & needed, a["id"]  # an earlier request never used the needed tool
    assert 0.35 < later / 100 < 0.65
    assert generate_twin_pairs(20, seed=6) == generate_twin_pairs(20, seed=6)
