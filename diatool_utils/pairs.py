"""Multi-turn preference pairs: every row of the paper's Table 1, built from one Type-1 dialogue.

A Type-1 dialogue is a request that gives every required value, the tool call, the tool's
answer and the completion. From it we make the other two query types:

- **Type 2** (slot filling): leave the values of k required arguments out of the request and
  add slot-filling rounds (the assistant asks, the user answers) before the call.
- **Type 3** (out of tools): take the needed tool out of the tool list; the right answer is
  a polite decline.

A *rejected* trajectory answers the same query with another type's flow (ask for values the
user already gave, invent a missing value, decline a servable request, call a tool that is
not offered). Rejected Type-3 trajectories stop at the tool call: no tool would answer.

| row | query type | chosen            | rejected          | difficulty |
|-----|------------|-------------------|-------------------|------------|
| 1   | 1          | 1-3-4-5           | 1-2-3-4-5         | easy       |
| 2   | 1          | 1-3-4-5           | 1-(2xN)-3-4-5     | hard       |
| 3   | 1          | 1-3-4-5           | 1-(2xM)-3-4-5     | hard       |
| 4   | 1          | 1-3-4-5           | 1-1               | easy/hard  |
| 5   | 2          | 1-2-3-4-5         | 1-3-4-5           | easy       |
| 6   | 2          | 1-(2xN)-3-4-5     | 1-3-4-5           | hard       |
| 7   | 2          | 1-(2xN)-3-4-5     | 1-(2xM)-3-4-5     | hard       |
| 8   | 2          | 1-(2xN)-3-4-5     | 1-1               | easy/hard  |
| 9   | 3          | 1-1               | 1-3-4             | hard       |
| 10  | 3          | 1-1               | 1-(2xN)-3-4       | hard       |

Rows 1-3 ask for values that *were* given (row 1 one of them, row 2 all of them, row 3 a
strict subset); rows 6-7 leave several values out and the rejected side invents all of them
(row 6) or asks for only a strict subset M and invents the rest (row 7).

The words come from a :class:`DialogueWriter`: the synthetic generator's writer knows each
request's template and can regenerate it without a value; a writer for your own dialogues
may not, and then the rows that need it raise :class:`CannotBuild` with the reason.

Both sides of a pair share ``prompt`` (any system messages plus the first user message);
``chosen`` and ``rejected`` hold the messages after it. ``turns_*`` count assistant messages.
"""

from __future__ import annotations

import json
import random
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Protocol

from diatool_utils.states import QueryType

ROWS = tuple(range(1, 11))
ROW_QUERY_TYPE = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3}
ROW_LESSON = {
    1: "no redundant slot question",
    2: "no redundant slot questions",
    3: "no redundant slot questions",
    4: "accept a callable request",
    5: "no hallucinated slot values",
    6: "no hallucinated slot values",
    7: "ask for every missing value",
    8: "accept a callable request",
    9: "decline, do not call",
    10: "decline, do not ask for slots",
}
# The paper's Table 1 as state sequences; "2*" means one or more 2s.
ROW_SHAPES = {
    1: ("1-3-4-5", "1-2-3-4-5"),
    2: ("1-3-4-5", "1-2*-3-4-5"),
    3: ("1-3-4-5", "1-2*-3-4-5"),
    4: ("1-3-4-5", "1-1"),
    5: ("1-2-3-4-5", "1-3-4-5"),
    6: ("1-2*-3-4-5", "1-3-4-5"),
    7: ("1-2*-3-4-5", "1-2*-3-4-5"),
    8: ("1-2*-3-4-5", "1-1"),
    9: ("1-1", "1-3-4"),
    10: ("1-1", "1-2*-3-4"),
}


def shape_matches(states: list[int], shape: str) -> bool:
    """Whether a state sequence has a Table-1 shape, e.g. ``[1, 2, 2, 3, 4, 5]`` and "1-2*-3-4-5"."""
    pattern = "-".join("2(?:-2)*" if part == "2*" else re.escape(part) for part in shape.split("-"))
    return re.fullmatch(pattern, "-".join(map(str, states))) is not None


# How many required values a row needs: (given in the request, left out of it).
ROW_NEEDS = {1: (1, 0), 2: (2, 0), 3: (2, 0), 4: (1, 0), 5: (1, 1), 6: (2, 2), 7: (2, 2), 8: (1, 1),
             9: (0, 0), 10: (1, 1)}

# A slot-filling round: the names the assistant asks for, and the names the user answers.
Round = tuple[tuple[str, ...], tuple[str, ...]]


class CannotBuild(ValueError):
    """This row can't be built from this dialogue (the message says why)."""


class DialogueWriter(Protocol):
    """The words a pair needs beyond the source dialogue. ``rng`` is a ``random.Random``."""

    def request(self, omit: tuple[str, ...]) -> str | None:
        """The first user message without the values of ``omit`` (None if it can't be rewritten)."""

    def ask(self, names: tuple[str, ...], rng, follow_up: bool = False) -> str:
        """A one-sentence slot question naming ``names`` (``follow_up``: after a partial answer)."""

    def answer(self, values: dict[str, Any], rng) -> str:
        """The user's reply giving ``values``."""

    def decline(self, rng) -> str:
        """A one-sentence polite decline of the request."""

    def invent(self, name: str, avoid: Any, rng) -> Any | None:
        """A plausible value for ``name`` other than ``avoid`` (None if none can be made up)."""

    def result(self, arguments: dict[str, Any], rng) -> str | None:
        """The tool's answer (JSON text) to a call with ``arguments`` (None if unknown)."""

    def completion(self, arguments: dict[str, Any], result: str, rng) -> str | None:
        """A one-sentence report of ``result`` (None if unknown)."""


@dataclass
class Type1Dialogue:
    """A Type-1 dialogue and the means to rewrite it: the source of every Table-1 row."""

    tools: list[dict]
    tool_name: str
    arguments: dict[str, Any]
    required: list[str]
    request: str
    result: str
    completion: str
    writer: DialogueWriter
    system: list[dict] = field(default_factory=list)

    def messages(self) -> list[dict]:
        """The whole Type-1 conversation."""
        return [*self.system, user_message(self.request),
                call_message(self.tool_name, self.arguments), tool_message(self.tool_name, self.result),
                assistant_message(self.completion)]


# ------------------------------------------------------------------------- messages


def user_message(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant_message(text: str) -> dict:
    return {"role": "assistant", "content": text}


def call_message(name: str, arguments: dict, call_id: str = "call_0") -> dict:
    """An assistant turn that calls one tool; arguments as JSON text, as OpenAI sends them."""
    return {"role": "assistant", "content": None, "tool_calls": [{
        "id": call_id, "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}]}


def tool_message(name: str, content: str, call_id: str = "call_0") -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def count_turns(messages: list[dict]) -> int:
    """Turns in the paper's sense: assistant messages (a text reply or a tool-call message)."""
    return sum(m["role"] == "assistant" for m in messages)


# ---------------------------------------------------------------------------- flows
# Each flow returns the messages that follow the first user message.


def call_flow(src: Type1Dialogue, rng, arguments: dict | None = None, call_id: str = "call_0") -> list[dict]:
    """States 3-4-5: call, tool answer, completion. Other ``arguments`` get a fresh answer."""
    if arguments is None or arguments == src.arguments:
        arguments, result, completion = src.arguments, src.result, src.completion
    else:
        result = src.writer.result(arguments, rng)
        completion = None if result is None else src.writer.completion(arguments, result, rng)
        if completion is None:
            raise CannotBuild("the tool's answer to a call with other values is unknown (needs a tool simulator)")
    return [call_message(src.tool_name, arguments, call_id), tool_message(src.tool_name, result, call_id),
            assistant_message(completion)]


def slot_filling_rounds(src: Type1Dialogue, rounds: list[Round], rng) -> list[dict]:
    """States 2 x N: for each round the assistant asks and the user answers."""
    messages, answered = [], set()
    for asked, given in rounds:
        follow_up = bool(answered)  # "Thanks! And ...?" after the first answer
        messages.append(assistant_message(src.writer.ask(asked, rng, follow_up=follow_up)))
        messages.append(user_message(src.writer.answer({n: src.arguments[n] for n in given}, rng)))
        answered.update(given)
    return messages


def slot_filling_flow(src: Type1Dialogue, rounds: list[Round], rng, arguments: dict | None = None,
                      call_id: str = "call_0") -> list[dict]:
    """States 2 x N then 3-4-5: the slot-filling rounds, then the call and its completion."""
    return slot_filling_rounds(src, rounds, rng) + call_flow(src, rng, arguments, call_id)


def decline_flow(src: Type1Dialogue, rng) -> list[dict]:
    """State 1 -> 1: a polite decline."""
    return [assistant_message(src.writer.decline(rng))]


def up_to_call(messages: list[dict]) -> list[dict]:
    """The messages up to and including the first tool call (rejected Type-3 trajectories stop there)."""
    for i, message in enumerate(messages):
        if message.get("tool_calls"):
            return messages[: i + 1]
    raise ValueError("the trajectory has no tool call")


# How often each way of collecting several values is used. The benchmark's slot rubric wants
# every missing value asked for, so asking for all of them at once is the most common.
ROUND_STYLES = {"together": 0.5, "partial": 0.35, "one_by_one": 0.15}


def plan_rounds(names: list[str], rng, style: str | None = None) -> list[Round]:
    """How the assistant collects ``names``: "together", "one_by_one" or "partial".

    together = one question for all of them; one_by_one = a round per value; partial = ask
    for all of them, the user gives only some, then ask for the rest. ``style=None`` draws
    one with the weights of :data:`ROUND_STYLES`.
    """
    names = tuple(names)
    if style is None:
        style = rng.choices(list(ROUND_STYLES), weights=list(ROUND_STYLES.values()))[0]
    if style == "together" or len(names) == 1:
        return [(names, names)]
    if style == "one_by_one":
        return [((n,), (n,)) for n in names]
    if style == "partial":
        cut = rng.randint(1, len(names) - 1)
        return [(names, names[:cut]), (names[cut:], names[cut:])]
    raise ValueError(f"unknown round style {style!r}; use together, one_by_one or partial")


def asked_names(rounds: list[Round]) -> list[str]:
    """Every name asked for at least once, in order."""
    seen: list[str] = []
    for asked, _ in rounds:
        seen.extend(n for n in asked if n not in seen)
    return seen


# ----------------------------------------------------------------------------- rows


def _strict_subset(names: list[str], rng) -> list[str]:
    k = rng.randint(1, len(names) - 1)
    keep = set(rng.sample(names, k))
    return [n for n in names if n in keep]


def _invented(src: Type1Dialogue, names: list[str], rng) -> dict:
    arguments = dict(src.arguments)
    for name in names:
        value = src.writer.invent(name, src.arguments[name], rng)
        if value is None:
            raise CannotBuild(f"no plausible value can be invented for {name!r}")
        arguments[name] = value
    return arguments


def _without_tool(tools: list[dict], name: str) -> list[dict]:
    return [t for t in tools if t.get("function", t).get("name") != name]


def build_pair(row: int, src: Type1Dialogue, rng: random.Random, *, missing: list[str] | None = None,
               difficulty: str | None = None, pair_id: str = "") -> dict:
    """The preference pair of Table-1 ``row`` made from ``src`` (a dict in the shared pair format).

    ``missing`` chooses which required values rows 5-8 and 10 leave out of the request
    (default: chosen at random, one for "easy" rows, two or more for "hard" ones).
    ``difficulty`` labels rows 4 and 8, which the paper uses in both subsets (default: row 8
    by the number of missing values, row 4 at random). Raises :class:`CannotBuild` when the
    tool has too few required arguments for the row or the writer can't supply the words.
    """
    if row not in ROWS:
        raise ValueError(f"row must be one of 1..10 (the paper's Table 1), got {row!r}")
    given_needed, missing_needed = ROW_NEEDS[row]
    required = [n for n in src.required if n in src.arguments]
    if len(required) < max(given_needed, missing_needed):
        raise CannotBuild(f"row {row} needs a tool with at least {max(given_needed, missing_needed)} "
                          f"required arguments; {src.tool_name} has {len(required)}")
    if missing and not missing_needed:
        raise ValueError(f"row {row} keeps every value in the request; do not pass missing={missing}")
    if missing is None and missing_needed:
        k = 1 if row == 5 else rng.randint(missing_needed, len(required)) if row in (6, 7) else \
            rng.randint(1, len(required))
        keep = set(rng.sample(required, k))
        missing = [n for n in required if n in keep]
    missing = list(missing or [])
    request = src.request
    if missing:
        request = src.writer.request(tuple(missing))
        if request is None:
            raise CannotBuild("leaving values out of the request needs its template (a structured intent)")
    tools = src.tools
    asked = {"chosen": [], "rejected": []}

    if row in (1, 2, 3):  # chosen: call at once; rejected: ask for values already given
        names = [rng.choice(required)] if row == 1 else required if row == 2 else _strict_subset(required, rng)
        rounds = plan_rounds(names, rng)
        chosen, rejected = call_flow(src, rng), slot_filling_flow(src, rounds, rng)
        asked["rejected"] = asked_names(rounds)
    elif row == 4:
        chosen, rejected = call_flow(src, rng), decline_flow(src, rng)
    elif row in (5, 6, 7, 8):  # chosen: ask for what is missing; rejected: invent / ask less / decline
        rounds = plan_rounds(missing, rng)
        chosen = slot_filling_flow(src, rounds, rng)
        asked["chosen"] = asked_names(rounds)
        if row in (5, 6):
            rejected = call_flow(src, rng, _invented(src, missing, rng))
        elif row == 7:
            subset = _strict_subset(missing, rng)
            some_rounds = plan_rounds(subset, rng)
            invented = _invented(src, [n for n in missing if n not in subset], rng)
            rejected = slot_filling_flow(src, some_rounds, rng, invented)
            asked["rejected"] = asked_names(some_rounds)
        else:
            rejected = decline_flow(src, rng)
    else:  # rows 9, 10: the needed tool is not offered
        tools = _without_tool(src.tools, src.tool_name)
        chosen = decline_flow(src, rng)
        if row == 9:
            rejected = up_to_call(call_flow(src, rng))
        else:
            rounds = plan_rounds(missing, rng)
            rejected = up_to_call(slot_filling_flow(src, rounds, rng))
            asked["rejected"] = asked_names(rounds)

    if difficulty is None:
        difficulty = ("easy" if row in (1, 5) else "hard" if row not in (4, 8)
                      else "easy" if (row == 8 and len(missing) == 1) or (row == 4 and rng.random() < 0.5)
                      else "hard")
    return pair_record(pair_id, row, tools, [*src.system, user_message(request)], chosen, rejected, difficulty,
                       missing, asked)


def pair_record(pair_id: str, row: int, tools: list[dict], prompt: list[dict], chosen: list[dict],
                rejected: list[dict], difficulty: str, missing: list[str] | None = None,
                asked: dict[str, list[str]] | None = None) -> dict:
    """One row of data/dpo_pairs.jsonl (the shared pair format, plus what was left out and asked)."""
    if difficulty not in ("easy", "hard"):
        raise ValueError(f"difficulty must be 'easy' or 'hard', got {difficulty!r}")
    return {
        "id": pair_id,
        "tools": tools,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "row": row,
        "query_type": int(QueryType(ROW_QUERY_TYPE[row])),
        "difficulty": difficulty,
        "turns_chosen": count_turns(chosen),
        "turns_rejected": count_turns(rejected),
        "missing_arguments": list(missing or []),
        "arguments_asked": asked or {"chosen": [], "rejected": []},
    }


def average_turns(pairs: list[dict]) -> dict[int, tuple[float, float]]:
    """Mean (turns_chosen, turns_rejected) per query type, like the paper's Table 2.

    The paper's "slot pairs" are query type 2 and its "relevance pairs" query type 3.
    """
    out = {}
    for query_type in sorted({p["query_type"] for p in pairs}):
        group = [p for p in pairs if p["query_type"] == query_type]
        out[query_type] = (sum(p["turns_chosen"] for p in group) / len(group),
                           sum(p["turns_rejected"] for p in group) / len(group))
    return out


# --------------------------------------------------------------------------- reading


def message_lines(messages: list[dict]) -> list[str]:
    """One short line per message: ``user: ...``, ``assistant -> get_weather({...})``, ``tool: ...``."""
    lines = []
    for m in messages:
        if m.get("tool_calls"):
            for call in m["tool_calls"]:
                function = call["function"]
                arguments = function["arguments"]
                arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
                lines.append(f"assistant -> {function['name']}({arguments})")
        else:
            lines.append(f"{m.get('name') if m['role'] == 'tool' else m['role']}: {m.get('content')}")
    return lines


def side_by_side(pair: dict, width: int = 58) -> str:
    """The prompt, then chosen and rejected in two columns with their state sequences (plain text)."""
    from diatool_utils.states import state_sequence

    def wrap(lines):
        return [piece for line in lines for piece in textwrap.wrap(line, width, subsequent_indent="  ") or [""]]

    left = wrap([f"CHOSEN {state_sequence(pair['chosen'])}", *message_lines(pair["chosen"])])
    right = wrap([f"REJECTED {state_sequence(pair['rejected'])}", *message_lines(pair["rejected"])])
    head = [f"row {pair['row']} | query type {pair['query_type']} | {pair['difficulty']} | "
            f"tools: {', '.join(t['function']['name'] for t in pair['tools']) or '(none)'}",
            *message_lines(pair["prompt"]), ""]
    rows = [f"{a:<{width}} | {b}" for a, b in zip(left + [""] * (len(right) - len(left)),
                                                  right + [""] * (len(left) - len(right)), strict=True)]
    return "\n".join(head + rows)
