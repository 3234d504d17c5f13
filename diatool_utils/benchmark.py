"""Read FunctionChat-Bench "Dialog" rows (or our data/eval_dialog.jsonl) into checked cases.

One row is one dialogue: its ``tools`` and its ``turns``. Each turn gives the gold history so
far (``query``), the ``type_of_output`` the next assistant turn should have (call,
completion, slot, relevance) and its ``ground_truth``. We check every row before anything
runs, so a malformed row stops loading with :class:`BenchmarkFormatError` naming the file,
line and turn, instead of failing halfway through an evaluation.

    cases = load_dialog_benchmark("data/eval_dialog.jsonl")   # one EvalCase per turn
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diatool_utils import templating
from diatool_utils.judge import (
    OUTPUT_TYPES,
    EvalCase,
    infer_missing_arguments,
    last_tool_results,
    message_calls,
)


class BenchmarkFormatError(ValueError):
    """A benchmark row that does not follow the FunctionChat-Bench Dialog format."""


def load_dialog_benchmark(path: str | Path) -> list[EvalCase]:
    """Read a Dialog JSONL file (one dialogue per line) into one :class:`EvalCase` per turn."""
    path = Path(path)
    dialogs = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                dialogs.append((line_number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise BenchmarkFormatError(f"{path}, line {line_number}: not valid JSON ({error})") from None
    return cases_from_dialogs(dialogs, source=str(path))


def cases_from_dialogs(
    dialogs: Iterable[dict | tuple[int, dict]], source: str = "<dialogs>"
) -> list[EvalCase]:
    """Turn Dialog rows (dicts, or ``(line_number, dict)`` pairs) into checked cases.

    A slot turn without ``missing_arguments`` (the original benchmark has none) gets them
    inferred from the dialog's next ground-truth call (:func:`judge.infer_missing_arguments`).
    """
    cases = []
    for index, item in enumerate(dialogs, start=1):
        line, dialog = item if isinstance(item, tuple) else (index, item)
        cases.extend(_dialog_cases(dialog, line, source))
    return cases


def _dialog_cases(dialog: Any, line: int, source: str) -> list[EvalCase]:
    def fail(problem: str, turn: int | None = None) -> BenchmarkFormatError:
        where = f"{source}, line {line}" + (f", turn {turn}" if turn is not None else "")
        return BenchmarkFormatError(f"{where}: {problem}")

    if not isinstance(dialog, dict):
        raise fail(f"expected a JSON object, got {type(dialog).__name__}")
    for key in ("dialog_num", "tools", "turns"):
        if key not in dialog:
            raise fail(f"missing key {key!r} (a Dialog row has dialog_num, tools and turns)")
    tools, turns = dialog["tools"], dialog["turns"]
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and "name" in t.get("function", t) for t in tools
    ):
        raise fail("'tools' must be a list of OpenAI-style tools, each with function.name")
    if not isinstance(turns, list) or not turns:
        raise fail("'turns' must be a non-empty list")
    for position, turn in enumerate(turns, start=1):  # all turns first: slot turns look ahead
        problem = _turn_problem(turn, tools)
        if problem:
            raise fail(problem, position)
    cases = []
    for position, turn in enumerate(turns, start=1):
        missing, missing_source = turn.get("missing_arguments"), "row"
        if turn["type_of_output"] == "slot" and missing is None:
            later = next((t for t in turns[position:] if t.get("type_of_output") == "call"), None)
            later_call = later["ground_truth"]["tool_calls"][0] if later else None
            missing = infer_missing_arguments(turn["query"], tools, later_call) or None
            missing_source = "inferred" if missing else "unknown"
        cases.append(
            EvalCase(
                dialog_num=dialog["dialog_num"],
                serial_num=turn["serial_num"],
                turn_num=turn.get("turn_num", position),
                type_of_output=turn["type_of_output"],
                tools=tools,
                query=turn["query"],
                ground_truth=turn["ground_truth"],
                acceptable_arguments=turn.get("acceptable_arguments"),
                missing_arguments=missing,
                missing_source=missing_source if missing else "unknown",
                line=line,
            )
        )
    return cases


def _turn_problem(turn: Any, tools: list[dict]) -> str | None:
    """What is wrong with one turn of a Dialog row (None when it is well formed)."""
    if not isinstance(turn, dict):
        return f"expected a JSON object, got {type(turn).__name__}"
    for key in ("serial_num", "query", "ground_truth", "type_of_output"):
        if key not in turn:
            return f"missing key {key!r}"
    kind, query, truth = turn["type_of_output"], turn["query"], turn["ground_truth"]
    if kind not in OUTPUT_TYPES:
        return f"type_of_output {kind!r} is not one of {OUTPUT_TYPES}"
    if (
        not isinstance(query, list)
        or not query
        or not all(isinstance(m, dict) and "role" in m for m in query)
    ):
        return "'query' must be a non-empty list of messages with a 'role'"
    if not isinstance(truth, dict):
        return "'ground_truth' must be a message object"
    if kind == "call":
        calls = truth.get("tool_calls")
        if not calls:
            return "a 'call' turn needs ground_truth.tool_calls"
        for name, arguments in message_calls(truth):
            if not isinstance(arguments, dict):
                return f"ground-truth arguments of {name} are not a JSON object: {arguments!r}"
    try:
        templating.validate_conversation(query, tools)
    except templating.ConversationError as error:
        return f"'query' can't be rendered: {error}"
    if kind == "completion" and not last_tool_results(query):
        return "a 'completion' turn needs a tool message after the last assistant message of 'query'"
    missing = turn.get("missing_arguments")
    if missing is not None and (
        not isinstance(missing, list) or not all(isinstance(a, str) for a in missing)
    ):
        return "'missing_arguments' must be a list of argument names"
    if kind == "slot" and missing == []:
        return "a 'slot' turn lists no missing_arguments (leave the key out if unknown)"
    return None
