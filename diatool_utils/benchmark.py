"""Read FunctionChat-Bench "Dialog" rows (or our data/eval_dialog.jsonl) into checked cases.

One row is one dialogue: its ``tools`` and its ``turns``. Each turn gives the gold history so
far (``query``), the ``type_of_output`` the next assistant turn should have (call,
completion, slot, relevance) and its ``ground_truth``. Every turn is checked before anything
runs. A turn that can't be judged (a gold call to a tool the row does not list, a history
that can't be rendered, a missing key) is skipped, and so is a line that is not a dialogue;
each skip is kept with its line and turn in :attr:`BenchmarkCases.skipped` and announced
in one warning, so the rest of the file still loads. Only a file that can't be read at all
(not UTF-8, or with no turn to judge) raises :class:`BenchmarkFormatError`.

    cases = load_dialog_benchmark("data/eval_dialog.jsonl")   # one EvalCase per turn
    cases.skipped                                              # [SkippedTurn(line, turn, problem)]

A completion turn is judged against the tool results in its history: those after the last
assistant message or, when the user asks a follow-up the assistant answers from results it
already has (the original benchmark does this), every earlier tool result.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diatool_utils import templating
from diatool_utils.dialogues_io import text_lines
from diatool_utils.judge import (
    OUTPUT_TYPES,
    EvalCase,
    infer_missing_arguments,
    message_calls,
    tool_schemas,
)


class BenchmarkFormatError(ValueError):
    """A benchmark file that can't be read at all (not UTF-8, or nothing in it to judge)."""


class SkippedTurnsWarning(UserWarning):
    """Some turns of a benchmark file can't be judged and were left out (each is listed)."""


@dataclass(frozen=True)
class SkippedTurn:
    """A turn (or, with ``turn=None``, a whole line) the loader left out, and why."""

    line: int
    turn: int | None
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}" + (f", turn {self.turn}" if self.turn is not None else "") + f": {self.problem}"


class BenchmarkCases(list):
    """The judged cases of a benchmark (a list of :class:`EvalCase`) and the turns left out."""

    def __init__(self, cases: Iterable[EvalCase] = (), skipped: Iterable[SkippedTurn] = (), source: str = ""):
        super().__init__(cases)
        self.skipped = list(skipped)
        self.source = source

    def skip_report(self) -> str:
        """One line per skipped turn, under a count ("" when nothing was skipped)."""
        if not self.skipped:
            return ""
        head = f"{self.source}: {len(self.skipped)} turn(s) or line(s) can't be judged and were left out"
        return "\n".join([head, *(f"  {skip}" for skip in self.skipped)])


def load_dialog_benchmark(path: str | Path) -> BenchmarkCases:
    """Read a Dialog JSONL file (one dialogue per line) into one :class:`EvalCase` per judgeable turn."""
    dialogs, skipped = [], []
    for line_number, line in text_lines(path, BenchmarkFormatError):
        try:
            dialogs.append((line_number, json.loads(line)))
        except json.JSONDecodeError as error:
            skipped.append(SkippedTurn(line_number, None, f"not valid JSON ({error.msg} at column {error.colno})"))
    if not dialogs and not skipped:
        raise BenchmarkFormatError(f"{path}: no dialogue in the file (it is empty or holds only blank lines)")
    return cases_from_dialogs(dialogs, source=str(path), skipped=skipped)


def cases_from_dialogs(
    dialogs: Iterable[dict | tuple[int, dict]], source: str = "<dialogs>", skipped: Iterable[SkippedTurn] = ()
) -> BenchmarkCases:
    """Turn Dialog rows (dicts, or ``(line_number, dict)`` pairs) into checked cases.

    A slot turn without ``missing_arguments`` (the original benchmark has none) gets them
    inferred from the dialog's next ground-truth call (:func:`judge.infer_missing_arguments`).
    Turns that can't be judged are left out and listed (see the module's docstring); when no
    turn is left, that is an error listing why.
    """
    cases, skipped = [], list(skipped)
    for index, item in enumerate(dialogs, start=1):
        line, dialog = item if isinstance(item, tuple) else (index, item)
        cases.extend(_dialog_cases(dialog, line, skipped))
    result = BenchmarkCases(cases, skipped, source)
    if not cases:
        raise BenchmarkFormatError(f"{source}: no turn can be judged\n{result.skip_report()}")
    if skipped:
        warnings.warn(result.skip_report(), SkippedTurnsWarning, stacklevel=3)
    return result


def _dialog_cases(dialog: Any, line: int, skipped: list[SkippedTurn]) -> list[EvalCase]:
    problem = _dialog_problem(dialog)
    if problem:
        skipped.append(SkippedTurn(line, None, problem))
        return []
    tools, turns = dialog["tools"], dialog["turns"]
    problems = [_turn_problem(turn, tools) for turn in turns]  # all turns first: slot turns look ahead
    cases = []
    for position, (turn, problem) in enumerate(zip(turns, problems, strict=True), start=1):
        if problem:
            skipped.append(SkippedTurn(line, position, problem))
            continue
        later_calls = [t for t, p in zip(turns[position:], problems[position:], strict=True)
                       if not p and t["type_of_output"] == "call"]
        missing, missing_source = _missing_arguments(turn, tools, later_calls)
        slot_tool = message_calls(later_calls[0]["ground_truth"])[0][0] if later_calls else None
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
                missing_source=missing_source,
                line=line,
                slot_tool=slot_tool if turn["type_of_output"] == "slot" else None,
            )
        )
    return cases


def _missing_arguments(turn: dict, tools: list[dict], later_calls: list[dict]) -> tuple[list[str] | None, str]:
    """The turn's ``missing_arguments`` and where they came from: "row", "inferred" or "unknown"."""
    listed = turn.get("missing_arguments")
    if listed is not None:
        return listed, "row"
    if turn["type_of_output"] != "slot":
        return None, "unknown"
    later_call = later_calls[0]["ground_truth"]["tool_calls"][0] if later_calls else None
    inferred = infer_missing_arguments(turn["query"], tools, later_call)
    return (inferred, "inferred") if inferred else (None, "unknown")


def _dialog_problem(dialog: Any) -> str | None:
    """What makes a whole line unusable (None when its dialog-level keys are fine)."""
    if not isinstance(dialog, dict):
        return f"expected a JSON object, got {type(dialog).__name__}"
    for key in ("dialog_num", "tools", "turns"):
        if key not in dialog:
            return f"missing key {key!r} (a Dialog row has dialog_num, tools and turns)"
    tools, turns = dialog["tools"], dialog["turns"]
    if not isinstance(tools, list) or not all(isinstance(t, dict) and "name" in t.get("function", t) for t in tools):
        return "'tools' must be a list of OpenAI-style tools, each with function.name"
    if not tools:
        return "'tools' is empty: a Dialog row lists the tools the assistant may call"
    if not isinstance(turns, list) or not turns:
        return "'turns' must be a non-empty list"
    return None


def _turn_problem(turn: Any, tools: list[dict]) -> str | None:
    """What is wrong with one turn of a Dialog row (None when it can be judged)."""
    if not isinstance(turn, dict):
        return f"expected a JSON object, got {type(turn).__name__}"
    for key in ("serial_num", "query", "ground_truth", "type_of_output"):
        if key not in turn:
            return f"missing key {key!r}"
    kind, query, truth = turn["type_of_output"], turn["query"], turn["ground_truth"]
    if kind not in OUTPUT_TYPES:
        return f"type_of_output {kind!r} is not one of {OUTPUT_TYPES}"
    if not isinstance(query, list) or not query or not all(isinstance(m, dict) and "role" in m for m in query):
        return "'query' must be a non-empty list of messages with a 'role'"
    if not isinstance(truth, dict):
        return "'ground_truth' must be a message object"
    if kind == "call":
        problem = _gold_call_problem(truth, tools)
        if problem:
            return problem
    try:
        templating.validate_conversation(query, tools)
    except templating.ConversationError as error:
        return f"'query' can't be rendered: {error}"
    if kind == "completion" and not any(m.get("role") == "tool" for m in query):
        return "a 'completion' turn needs a tool result in 'query' to report"
    missing = turn.get("missing_arguments")
    if missing is not None and (not isinstance(missing, list) or not all(isinstance(a, str) for a in missing)):
        return "'missing_arguments' must be a list of argument names"
    if kind == "slot" and missing == []:
        return "a 'slot' turn lists no missing_arguments (leave the key out if unknown)"
    return None


def _gold_call_problem(truth: dict, tools: list[dict]) -> str | None:
    """Why a call turn's ground truth can't be judged: no call, a tool not listed, arguments not an object."""
    if not truth.get("tool_calls"):
        return "a 'call' turn needs ground_truth.tool_calls"
    known = tool_schemas(tools)
    for name, arguments in message_calls(truth):
        if name not in known:
            return f"the ground truth calls {name!r}, which is not one of the row's tools ({', '.join(sorted(known))})"
        if not isinstance(arguments, dict):
            return f"ground-truth arguments of {name} are not a JSON object: {arguments!r}"
    return None
