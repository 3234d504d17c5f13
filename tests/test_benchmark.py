"""Loading Dialog files: the original FunctionChat-Bench format as it is; odd turns skipped and listed."""

import json
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from diatool_utils.benchmark import (
    BenchmarkFormatError,
    SkippedTurnsWarning,
    cases_from_dialogs,
    load_dialog_benchmark,
)
from diatool_utils.evaluation import EvalReport, gold_generation, rejudge, score_replies
from diatool_utils.judge import completion_key_values, judge_case


def Reply(content):  # noqa: N802 (reads like the judge tests' Reply)
    return SimpleNamespace(content=content, tool_calls=[], valid=True, error=None)


DATA = Path(__file__).parent / "data"
ORIGINAL = DATA / "dialog_original_format.jsonl"  # written for these tests in the benchmark's own layout
SMALL = DATA / "dialog_small.jsonl"


def _load_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedTurnsWarning)  # a skip here would be a bug
        return load_dialog_benchmark(path)


@pytest.fixture(scope="module")
def original():
    return _load_quietly(ORIGINAL)


def test_the_original_format_loads_every_turn_korean_included(original):
    rows = [json.loads(line) for line in ORIGINAL.read_text(encoding="utf-8").splitlines()]
    assert all(set(row) == {"dialog_num", "tools_count", "tools", "turns"} for row in rows)
    assert original.skipped == [] and len(original) == sum(len(row["turns"]) for row in rows) == 28
    assert Counter(c.type_of_output for c in original) == {"completion": 10, "call": 9, "slot": 6, "relevance": 3}
    assert any("런던" in json.dumps(c.query, ensure_ascii=False) for c in original)


@pytest.mark.parametrize("path", [ORIGINAL, DATA / "judge_agreement" / "cases_ko.jsonl"], ids=lambda p: p.name)
def test_every_gold_answer_of_a_file_in_the_original_format_passes(path):
    cases = _load_quietly(path)
    results = score_replies(cases, [gold_generation(case) for case in cases])
    assert [(r.serial_num, r.reason) for r in results if not r.passed] == []


def _serial(cases, serial):
    return next(case for case in cases if case.serial_num == serial)


def test_a_completion_answered_from_tool_results_further_back_is_judged_on_them(original):
    follow_up = _serial(original, 5)  # "두 영화 감독이 같은 사람이지?": no tool message after the last answer
    assert follow_up.query[-1]["role"] == "user" and follow_up.query[-2]["role"] == "assistant"
    assert completion_key_values(follow_up) == ["봉준호"]  # the titles echo what the user asked about
    assert judge_case(follow_up, Reply(content="네, 기생충과 괴물 둘 다 봉준호 감독 작품이에요."))[0]
    passed, reason = judge_case(follow_up, Reply(content="네, 맞아요."))
    assert not passed and "'봉준호'" in reason


def test_slot_turns_get_missing_values_and_their_tool_from_the_next_call(original):
    deadline = _serial(original, 7)
    assert (deadline.missing_arguments, deadline.missing_source, deadline.slot_tool) == (
        ["deadline"], "inferred", "add_task")
    discount = _serial(original, 10)  # the user already gave 39000원
    assert discount.missing_arguments == ["discount_rate"]


def test_python_style_tool_results_and_korean_number_units_are_read(original):
    parasite = _serial(original, 2)  # its tool result holds "awards": None, as rows of the original do
    assert completion_key_values(parasite) == [2019, 8.5]
    price = _serial(original, 12)  # "3만 1,200원" reports 31200.0
    assert 31200.0 in completion_key_values(price)


# ------------------------------------------------------------------------------ odd turns


def _rows():
    return [json.loads(line) for line in SMALL.read_text().splitlines()]


def _write(tmp_path, rows, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "skipped"),
    [
        (lambda d: d.pop("turns"), "line 2: missing key 'turns'"),
        (lambda d: d["turns"][0].update(type_of_output="chat"), "line 2, turn 1: type_of_output 'chat' is not one of"),
        (lambda d: d["turns"][2]["ground_truth"].pop("tool_calls"), "line 2, turn 3: a 'call' turn needs"),
        (lambda d: d["turns"][2]["ground_truth"]["tool_calls"][0]["function"].update(arguments="{oops"),
         "line 2, turn 3: ground-truth arguments of send_email are not a JSON object"),
        (lambda d: d["turns"][2]["ground_truth"]["tool_calls"][0]["function"].update(name="send_sms"),
         "line 2, turn 3: the ground truth calls 'send_sms', which is not one of the row's tools (get_weather, send_email)"),
        (lambda d: d["turns"][0].update(query=[]), "line 2, turn 1: 'query' must be a non-empty list"),
        (lambda d: d["turns"][0].update(missing_arguments="subject"), "line 2, turn 1: 'missing_arguments' must be a list"),
        (lambda d: d["turns"][0].update(missing_arguments=[]), "line 2, turn 1: a 'slot' turn lists no missing_arguments"),
        (lambda d: d.update(tools=[{"type": "function"}]), "line 2: 'tools' must be a list of OpenAI-style tools"),
        (lambda d: d.update(tools=[]), "line 2: 'tools' is empty"),
        (lambda d: d["turns"][2]["query"].append({"role": "tool", "content": "{}"}),
         "line 2, turn 3: 'query' can't be rendered: message 5 (tool)"),
    ],
)
def test_an_odd_turn_is_skipped_and_reported_with_its_line_while_the_rest_loads(tmp_path, change, skipped):
    rows = _rows()
    change(rows[1])
    with pytest.warns(SkippedTurnsWarning, match="bad.jsonl: 1 turn"):
        cases = load_dialog_benchmark(_write(tmp_path, rows))
    assert [str(skip) for skip in cases.skipped][0].startswith(skipped)
    assert [c.serial_num for c in cases if c.line == 1] == [1, 2, 3]  # the first dialog is untouched
    assert skipped in cases.skip_report()


def test_a_line_that_is_not_json_is_skipped_and_reported(tmp_path):
    path = _write(tmp_path, [SMALL.read_text().splitlines()[0], "{not json"])
    with pytest.warns(SkippedTurnsWarning):
        cases = load_dialog_benchmark(path)
    assert len(cases) == 3 and str(cases.skipped[0]).startswith("line 2: not valid JSON")


def test_a_completion_turn_with_no_tool_result_at_all_is_skipped():
    rows = _rows()
    rows[0]["turns"][1]["query"] = rows[0]["turns"][1]["query"][:1]
    with pytest.warns(SkippedTurnsWarning):
        cases = cases_from_dialogs(rows)
    assert str(cases.skipped[0]) == "line 1, turn 2: a 'completion' turn needs a tool result in 'query' to report"


def test_a_slot_turn_infers_from_the_next_call_that_can_be_judged():
    rows = _rows()
    rows[1]["turns"][2]["ground_truth"]["tool_calls"][0]["function"]["name"] = "send_sms"
    with pytest.warns(SkippedTurnsWarning):
        cases = cases_from_dialogs(rows)
    slot = next(c for c in cases if c.serial_num == 5)
    assert (slot.missing_arguments, slot.missing_source, slot.slot_tool) == (None, "unknown", None)


def test_an_empty_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"empty\.jsonl: no dialogue in the file"):
        load_dialog_benchmark(path)


def test_a_file_that_is_not_utf8_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "cp949.jsonl"
    path.write_bytes(SMALL.read_bytes().splitlines()[0] + b"\n" + "한국어".encode("cp949") + b"\n")
    with pytest.raises(BenchmarkFormatError, match=r"cp949\.jsonl, line 2: not UTF-8 text \(byte 0x[0-9a-f]{2} at "
                                                   r"column 1\); save the file as UTF-8"):
        load_dialog_benchmark(path)


def test_a_file_with_no_turn_to_judge_is_an_error_listing_why(tmp_path):
    rows = _rows()
    for row in rows:
        row["tools"] = []
    with pytest.raises(BenchmarkFormatError, match=r"no turn can be judged\n(?s:.*)line 1: 'tools' is empty"):
        load_dialog_benchmark(_write(tmp_path, rows))


def test_a_report_lists_the_turns_its_benchmark_left_out(tmp_path):
    rows = _rows()
    rows[1]["turns"][2]["ground_truth"]["tool_calls"][0]["function"]["name"] = "send_sms"
    with pytest.warns(SkippedTurnsWarning):
        cases = load_dialog_benchmark(_write(tmp_path, rows))
    report = rejudge(EvalReport([]), cases)
    assert report.skipped == [str(cases.skipped[0])] and report.to_dict()["skipped"] == report.skipped
    assert "1 benchmark turn(s) could not be judged and were left out: line 2, turn 3" in report.to_markdown()
    report.write(tmp_path / "cases.jsonl")
    assert EvalReport.read(tmp_path / "cases.jsonl").skipped == report.skipped
