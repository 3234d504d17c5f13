"""Bring your own dialogues: read OpenAI-format JSONL, check it, and build Table-1 pairs from it.

Each line is one conversation, ``{"tools": [...], "messages": [...]}`` (extra keys are kept
out of the way). Your dialogues are plain text: nothing says where each value sits in the
user's request, so a value can't be left out of it safely. What can still be built:

| your dialogue                               | rows        | how                                                        |
|---------------------------------------------|-------------|------------------------------------------------------------|
| Type 1: request, call, tool result, reply   | 1, 2, 3     | rejected asks again for values the request gave            |
|                                             | 4           | rejected declines                                          |
|                                             | 9           | the called tool leaves the list; chosen declines, rejected |
|                                             |             | makes the original call                                    |
|                                             | 5-8, 10     | no: they leave values out of the request (needs a template)|
| Type 2: slot-filling rounds, then the call  | 8           | rejected declines                                          |
|                                             | 10          | the tool leaves the list; chosen declines, rejected asks   |
|                                             |             | and calls as the original did                              |
|                                             | 5, 6, 7     | no: the rejected side needs invented values and the tool's |
|                                             |             | answer to them (a tool simulator)                          |
| Type 3: a decline                           | none        | no: which tool would a wrong call use?                     |

Questions, answers and declines for your rows are written from the argument names
(``check_in`` -> "the check in"), so they read plainer than the synthetic ones.

Lines that are not valid conversations are either an error naming the line and the problem
(``on_error="raise"``) or skipped and counted per reason in the returned
:class:`BuildReport` (``on_error="skip"``); what can't be built is counted per row there too.
Nothing is silently dropped or turned into a wrong pair. A dialogue needs its ``tools`` (a line without
them is skipped as "no tools"); an empty file, or one that is not UTF-8, is an error naming the file.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diatool_utils.pairs import (
    ROWS,
    CannotBuild,
    Type1Dialogue,
    build_pair,
    decline_flow,
    pair_record,
    up_to_call,
)
from diatool_utils.states import QueryType, label_turns, request_query_types
from diatool_utils.templating import validate_conversation

GENERIC_ASK = ("Could you tell me {labels}?", "Sure, what {be} {labels}?", "Please tell me {labels}.",
               "Happy to help. What {be} {labels}?")
GENERIC_FOLLOW_UP = ("Thanks! And what {be} {labels}?", "Got it. Could you also tell me {labels}?")
GENERIC_DECLINE = ("Sorry, I can't help with that using the tools I have.",
                   "I'm sorry, but none of my tools can do that.",
                   "Unfortunately, I'm not able to do that with the available tools.",
                   "I'm afraid I can't help with that request; no available tool does it.")
NOT_BUILDABLE_TYPE1 = {r: "leaving values out of the request needs its template (a structured intent)"
                       for r in (5, 6, 7, 8, 10)}
NOT_BUILDABLE_TYPE2 = {r: "the rejected side needs invented values and the tool's answer to them"
                       for r in (5, 6, 7)} | {r: "the request already lacks values" for r in (1, 2, 3, 4, 9)}
TYPE3_REASON = "a Type-3 dialogue has no call to make a rejected flow from"


class InvalidDialogue(ValueError):
    """A line of a dialogue file is not a usable conversation (the message names the line)."""


# ------------------------------------------------------------------------------ JSONL


def write_jsonl(rows: list[dict], path) -> int:
    """Write one compact JSON object per line (keys sorted, UTF-8 kept), newline at the end.

    Returns the number of bytes written. The same rows always give the same bytes.
    """
    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
                   for row in rows)
    data = text.encode("utf-8")
    Path(path).write_bytes(data)
    return len(data)


def text_lines(path, error: type[Exception] = ValueError) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each non-blank line of a UTF-8 file (a leading byte-order mark is dropped).

    Bytes that are not UTF-8 raise ``error`` naming the file, the line and the column: a file saved in
    another encoding (cp949, latin-1) would otherwise fail with a bare UnicodeDecodeError.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise error(f"{path}, line {number}: not UTF-8 text (byte 0x{raw[bad.start]:02x} at column "
                            f"{bad.start + 1}); save the file as UTF-8") from None
            if number == 1:
                line = line.removeprefix("\ufeff")
            if line.strip():
                yield number, line


def read_jsonl(path) -> Iterator[tuple[int, Any]]:
    """``(line number, object)`` for each non-empty line; a line that is not JSON (or not UTF-8) raises, naming it."""
    for number, line in text_lines(path, InvalidDialogue):
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidDialogue(f"{path}, line {number}: not valid JSON ({error.msg} at column {error.colno})") \
                from None


# ----------------------------------------------------------------------------- report


@dataclass
class BuildReport:
    """What happened to every line: loaded, skipped (why, where), and which rows were built."""

    lines_read: int = 0
    dialogues_loaded: int = 0
    query_types: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    pairs_per_row: Counter = field(default_factory=Counter)
    not_built: Counter = field(default_factory=Counter)  # (row, reason) -> dialogues

    def skip(self, line: int, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        self.skipped_lines.setdefault(reason, []).append(line)
        self.errors.append(f"line {line}: {detail}")

    def __str__(self) -> str:
        lines = [f"{self.lines_read} lines read, {self.dialogues_loaded} dialogues loaded "
                 f"(types: {dict(sorted(self.query_types.items()))}), {sum(self.skipped.values())} skipped"]
        lines += [f"  skipped {n}: {reason} (lines {self.skipped_lines[reason][:5]}...)"
                  for reason, n in self.skipped.most_common()]
        lines.append(f"pairs per row: {dict(sorted(self.pairs_per_row.items()))}")
        lines += [f"  row {row} not built for {n} dialogues: {reason}"
                  for (row, reason), n in sorted(self.not_built.items())]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- loading


@dataclass
class UserDialogue:
    """A checked single-request conversation from your file."""

    line: int
    tools: list[dict]
    messages: list[dict]
    query_type: QueryType


def _problem(obj: Any) -> tuple[str, str] | None:
    """(reason, detail) when ``obj`` can't be used, else None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list) or \
            not isinstance(obj.get("tools", []), list):
        return "not a conversation", "expected an object with 'tools' (a list) and 'messages' (a list)"
    if not obj.get("tools"):
        return "no tools", "'tools' is missing or empty: list the tools the assistant could call"
    messages, tools = obj["messages"], obj["tools"]
    try:
        validate_conversation(messages, tools, require_final_assistant=True)
    except ValueError as error:
        return "invalid conversation", str(error)
    firsts = [m.get("role") for m in messages if m.get("role") != "system"][:1]
    if firsts != ["user"]:
        return "does not open with a user message", "the first non-system message must be the user's request"
    if len(request_query_types(messages)) != 1:
        return "several user requests", "only single-request dialogues can be paired; split it into one per request"
    calls = [m for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]
    if any(len(m["tool_calls"]) > 1 for m in calls) or len(calls) > 1:
        return "more than one tool call", "pairs are built from a request served by one tool call"
    query_type = request_query_types(messages)[0]
    if query_type != QueryType.OUT_OF_TOOLS and (not calls or label_turns(messages)[-1].action != "complete"):
        return "unfinished", "a dialogue that calls (or asks for values) must end with the report of the tool result"
    return None


def load_dialogues(path, on_error: str = "skip", report: BuildReport | None = None
                   ) -> tuple[list[UserDialogue], BuildReport]:
    """Read and check a JSONL file of conversations; ``on_error`` is "raise" or "skip"."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    report = report or BuildReport()
    dialogues, lines_before = [], report.lines_read
    for line, obj in read_jsonl(path):
        report.lines_read += 1
        problem = _problem(obj)
        if problem is not None:
            if on_error == "raise":
                raise InvalidDialogue(f"{path}, line {line}: {problem[1]}")
            report.skip(line, *problem)
            continue
        messages = obj["messages"]
        query_type = request_query_types(messages)[0]
        dialogues.append(UserDialogue(line, obj.get("tools", []), messages, query_type))
        report.dialogues_loaded += 1
        report.query_types[int(query_type)] += 1
    if report.lines_read == lines_before:
        raise InvalidDialogue(f"{path}: no dialogue in the file (it is empty or holds only blank lines)")
    return dialogues, report


# ------------------------------------------------------------------------------ pairs


def _label(name: str) -> str:
    return "the " + name.replace("_", " ")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class GenericWriter:
    """Words for your dialogues, written from argument names: it can't rewrite a request."""

    def request(self, omit):
        return None

    def ask(self, names, rng, follow_up=False):
        template = rng.choice(GENERIC_FOLLOW_UP if follow_up else GENERIC_ASK)
        return template.format(labels=_join([_label(n) for n in names]), be="is" if len(names) == 1 else "are")

    def answer(self, values, rng):
        text = _join([f"{_label(n)} is {_text(v)}" for n, v in values.items()]) + "."
        return text[:1].upper() + text[1:]

    def decline(self, rng):
        return rng.choice(GENERIC_DECLINE)

    def invent(self, name, avoid, rng):
        return None

    def result(self, arguments, rng):
        return None

    def completion(self, arguments, result, rng):
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _split(messages: list[dict]) -> tuple[list[dict], dict, list[dict]]:
    """(system messages, the first user message, everything after it)."""
    first = next(i for i, m in enumerate(messages) if m["role"] == "user")
    return messages[:first], messages[first], messages[first + 1:]


def _call(messages: list[dict]) -> tuple[str, dict]:
    function = next(m for m in messages if m.get("tool_calls"))["tool_calls"][0]["function"]
    arguments = function.get("arguments") or {}
    return function["name"], json.loads(arguments) if isinstance(arguments, str) else dict(arguments)


def _required(tools: list[dict], name: str) -> list[str]:
    for tool in tools:
        function = tool.get("function", tool)
        if function.get("name") == name:
            return list((function.get("parameters") or {}).get("required") or [])
    return []


def type1_source(dialogue: UserDialogue) -> Type1Dialogue:
    """Your Type-1 dialogue as the source of rows 1-4 and 9."""
    system, request, rest = _split(dialogue.messages)
    name, arguments = _call(rest)
    tool_answer = next(m for m in rest if m["role"] == "tool")
    return Type1Dialogue(tools=dialogue.tools, tool_name=name, arguments=arguments,
                         required=_required(dialogue.tools, name), request=request["content"],
                         result=tool_answer["content"], completion=rest[-1]["content"], writer=GenericWriter(),
                         system=system)


def _type2_pairs(dialogue: UserDialogue, rows, rng, pair_id: str, report: BuildReport) -> list[dict]:
    system, request, rest = _split(dialogue.messages)
    name, arguments = _call(rest)
    text = request["content"].casefold()
    missing = [n for n in _required(dialogue.tools, name) if _text(arguments.get(n, "")).casefold() not in text]
    asked = {"chosen": missing, "rejected": []}
    difficulty = "easy" if len(missing) <= 1 else "hard"
    prompt = [*system, request]
    src = Type1Dialogue(dialogue.tools, name, arguments, [], request["content"], "", "", GenericWriter(), system)
    pairs = []
    for row in rows:
        if row == 8:
            pairs.append(pair_record(f"{pair_id}-r8", 8, dialogue.tools, prompt, rest, decline_flow(src, rng),
                                     difficulty, missing, asked))
        elif row == 10:
            tools = [t for t in dialogue.tools if t.get("function", t).get("name") != name]
            pairs.append(pair_record(f"{pair_id}-r10", 10, tools, prompt, decline_flow(src, rng), up_to_call(rest),
                                     "hard", missing, {"chosen": [], "rejected": missing}))
        else:
            report.not_built[(row, NOT_BUILDABLE_TYPE2[row])] += 1
    return pairs


def pairs_from_dialogues(dialogues: list[UserDialogue], rows=ROWS, seed: int = 0,
                         report: BuildReport | None = None) -> tuple[list[dict], BuildReport]:
    """Every pair of ``rows`` that your dialogues allow; the report counts what could not be built."""
    rng = random.Random(seed)
    report = report or BuildReport()
    pairs: list[dict] = []
    for dialogue in dialogues:
        pair_id = f"line-{dialogue.line:05d}"
        if dialogue.query_type == QueryType.OUT_OF_TOOLS:
            for row in rows:
                report.not_built[(row, TYPE3_REASON)] += 1
            continue
        if dialogue.query_type == QueryType.SLOT_FILLING:
            pairs += _type2_pairs(dialogue, rows, rng, pair_id, report)
            continue
        src = type1_source(dialogue)
        for row in rows:
            if row in NOT_BUILDABLE_TYPE1:
                report.not_built[(row, NOT_BUILDABLE_TYPE1[row])] += 1
                continue
            try:
                pairs.append(build_pair(row, src, rng, pair_id=f"{pair_id}-r{row}"))
            except CannotBuild as why:
                report.not_built[(row, str(why))] += 1
    for pair in pairs:
        report.pairs_per_row[pair["row"]] += 1
    return pairs, report


def pairs_from_jsonl(path, rows=ROWS, seed: int = 0, on_error: str = "skip") -> tuple[list[dict], BuildReport]:
    """Load your conversations from ``path`` and build pairs: ``(pairs, report)``.

        pairs, report = pairs_from_jsonl("my_dialogues.jsonl")
        print(report)
    """
    dialogues, report = load_dialogues(path, on_error=on_error)
    return pairs_from_dialogues(dialogues, rows=rows, seed=seed, report=report)
