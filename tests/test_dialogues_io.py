"""Your own dialogues: checked line by line, pairs built where the text allows, the rest counted."""

import json

import pytest

from diatool_utils.dialogues_io import (
    NOT_BUILDABLE_TYPE1,
    TYPE3_REASON,
    InvalidDialogue,
    load_dialogues,
    pairs_from_jsonl,
    read_jsonl,
    write_jsonl,
)
from diatool_utils.pairs import ROW_SHAPES, shape_matches
from diatool_utils.states import state_sequence

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city on a date.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "date": {"type": "string"}},
                   "required": ["city", "date"]}}},
    {"type": "function", "function": {
        "name": "set_timer", "description": "Start a timer.",
        "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]}}}]


def call(name, arguments):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def answer(name, content):
    return {"role": "tool", "tool_call_id": "call_0", "name": name, "content": content}


TYPE1 = {"tools": TOOLS, "messages": [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Oslo on 2025-03-01?"},
    call("get_weather", {"city": "Oslo", "date": "2025-03-01"}),
    answer("get_weather", '{"condition": "snowy"}'),
    {"role": "assistant", "content": "It will be snowy in Oslo."}]}
TYPE2 = {"tools": TOOLS, "messages": [
    {"role": "user", "content": "What's the weather in Oslo?"},
    {"role": "assistant", "content": "Which date?"},
    {"role": "user", "content": "2025-03-01"},
    call("get_weather", {"city": "Oslo", "date": "2025-03-01"}),
    answer("get_weather", '{"condition": "snowy"}'),
    {"role": "assistant", "content": "It will be snowy."}]}
TYPE3 = {"tools": TOOLS, "messages": [
    {"role": "user", "content": "Book me a flight."},
    {"role": "assistant", "content": "Sorry, I can't book flights."}]}
UNKNOWN_TOOL = {"tools": TOOLS, "messages": [
    {"role": "user", "content": "Play jazz."}, call("play_music", {"genre": "jazz"}),
    answer("play_music", "{}"), {"role": "assistant", "content": "Playing."}]}
TWO_REQUESTS = {"tools": TOOLS, "messages": TYPE1["messages"][1:] + TYPE3["messages"]}
UNFINISHED = {"tools": TOOLS, "messages": [{"role": "user", "content": "Weather?"},
                                          {"role": "assistant", "content": "Which city?"}]}


@pytest.fixture
def dialogue_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    lines = [json.dumps(d) for d in (TYPE1, TYPE2, TYPE3, UNKNOWN_TOOL, TWO_REQUESTS, UNFINISHED)]
    lines += ["", json.dumps({"messages": "hello"})]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_invalid_lines_are_skipped_and_counted_per_reason_with_line_numbers(dialogue_file):
    dialogues, report = load_dialogues(dialogue_file, on_error="skip")
    assert [d.line for d in dialogues] == [1, 2, 3]
    assert report.lines_read == 7 and report.dialogues_loaded == 3
    assert report.query_types == {1: 1, 2: 1, 3: 1}
    assert report.skipped_lines["invalid conversation"] == [4]
    assert report.skipped_lines["several user requests"] == [5]
    assert report.skipped_lines["unfinished"] == [6]
    assert report.skipped_lines["not a conversation"] == [8]
    assert sum(report.skipped.values()) == 4
    assert any("line 4" in e and "play_music" in e for e in report.errors)


def test_on_error_raise_names_the_line_and_the_problem(dialogue_file):
    with pytest.raises(InvalidDialogue, match=r"line 4: .*play_music"):
        load_dialogues(dialogue_file, on_error="raise")


def test_a_line_that_is_not_json_names_its_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(TYPE1) + "\n{not json\n")
    with pytest.raises(InvalidDialogue, match="line 2: not valid JSON"):
        list(read_jsonl(path))


def test_type1_dialogues_give_rows_1_to_4_and_9_and_count_the_rest(dialogue_file):
    pairs, report = pairs_from_jsonl(dialogue_file)
    from_type1 = {p["row"] for p in pairs if p["id"].startswith("line-00001")}
    assert from_type1 == {1, 2, 3, 4, 9}
    for row, reason in NOT_BUILDABLE_TYPE1.items():
        assert report.not_built[(row, reason)] >= 1
    for row in range(1, 11):
        assert report.not_built[(row, TYPE3_REASON)] == 1
    assert sum(report.pairs_per_row.values()) == len(pairs)
    assert "pairs per row" in str(report)


def test_pairs_from_your_dialogues_have_the_table_1_shapes(dialogue_file):
    pairs, _ = pairs_from_jsonl(dialogue_file)
    assert {p["row"] for p in pairs} == {1, 2, 3, 4, 8, 9, 10}
    for pair in pairs:
        chosen_shape, rejected_shape = ROW_SHAPES[pair["row"]]
        assert shape_matches(state_sequence(pair["chosen"]), chosen_shape), pair
        assert shape_matches(state_sequence(pair["rejected"]), rejected_shape), pair
        assert pair["prompt"][-1]["role"] == "user"


def test_your_system_message_stays_in_the_prompt_and_row_9_drops_the_called_tool(dialogue_file):
    pairs, _ = pairs_from_jsonl(dialogue_file)
    row9 = next(p for p in pairs if p["row"] == 9)
    assert row9["prompt"][0] == {"role": "system", "content": "You are helpful."}
    assert [t["function"]["name"] for t in row9["tools"]] == ["set_timer"]
    row8 = next(p for p in pairs if p["row"] == 8)
    assert row8["missing_arguments"] == ["date"] and row8["difficulty"] == "easy"


def test_redundant_questions_ask_for_a_given_value_and_the_user_repeats_it(dialogue_file):
    pairs, _ = pairs_from_jsonl(dialogue_file)
    row1 = next(p for p in pairs if p["row"] == 1)
    [name] = row1["arguments_asked"]["rejected"]
    assert name.replace("_", " ") in row1["rejected"][0]["content"]
    assert {"city": "Oslo", "date": "2025-03-01"}[name] in row1["rejected"][1]["content"]


def test_write_jsonl_is_compact_sorted_and_ends_with_a_newline(tmp_path):
    path = tmp_path / "out.jsonl"
    size = write_jsonl([{"b": "é", "a": 1}, {"c": [1, 2]}], path)
    assert path.read_bytes() == '{"a":1,"b":"é"}\n{"c":[1,2]}\n'.encode()
    assert size == len(path.read_bytes())


def test_a_dialogue_without_tools_is_skipped_as_no_tools(tmp_path):
    path = tmp_path / "no_tools.jsonl"
    without = {"messages": TYPE1["messages"]}
    path.write_text("\n".join(json.dumps(d) for d in (TYPE1, without, without | {"tools": []})) + "\n")
    dialogues, report = load_dialogues(path)
    assert [d.line for d in dialogues] == [1] and report.skipped_lines["no tools"] == [2, 3]
    assert "line 2: 'tools' is missing or empty" in report.errors[0]
    pairs, report = pairs_from_jsonl(path)
    assert {p["id"][:10] for p in pairs} == {"line-00001"} and "skipped 2: no tools" in str(report)
    with pytest.raises(InvalidDialogue, match=r"no_tools\.jsonl, line 2: 'tools' is missing or empty"):
        load_dialogues(path, on_error="raise")


def test_an_empty_dialogue_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(InvalidDialogue, match=r"empty\.jsonl: no dialogue in the file"):
        load_dialogues(path)


def test_a_dialogue_file_that_is_not_utf8_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(TYPE1).encode() + b"\n" + "Caf\u00e9?".encode("latin-1") + b"\n")
    with pytest.raises(InvalidDialogue, match=r"latin1\.jsonl, line 2: not UTF-8 text \(byte 0xe9 at column 4\)"):
        load_dialogues(path)
