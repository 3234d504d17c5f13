"""The dialogue as a Markov decision process: five states, three query types.

DiaTool-DPO models a tool-using assistant as moving through five hidden states:

    1 INITIAL           no tool chosen yet (also where it returns after declining)
    2 SLOTS_INCOMPLETE  the right tool is known but required values are missing: ask for them
    3 SLOTS_COMPLETE    every required value is known: call the tool
    4 WAITING_FOR_TOOL  the call was emitted
    5 COMPLETE          the tool answered; the assistant reports the result

Each assistant message moves the dialogue along, so the states can be read back from the
messages alone. A trajectory starts in state 1 and each assistant turn appends:

    a tool call                           -> 3, 4   (slots complete, then waiting)
    text right after a tool result        -> 5      (the completion)
    text that asks for values             -> 2      (a slot-filling round)
    text that declines                    -> 1      (back to the start)

so a direct call reads ``[1, 3, 4, 5]``, two slot-filling rounds ``[1, 2, 2, 3, 4, 5]`` and a
decline ``[1, 1]``. A rejected Type-3 trajectory that stops at its call reads ``[1, 3, 4]``.

Question or decline? A text turn that contains a decline phrase ("can't", "sorry",
"unable", ...) declines. Otherwise it is a slot question when a tool call follows later in
the same request (the structure says so) or when it asks (a question mark, "could you",
"please provide", ...); anything else counts as a decline (an answer without a tool returns
to state 1). Pass ``text_kinds`` to override the guess for your own data.

The query type of a request follows from its states: any 2 -> Type 2 (slot filling), a 3
without 2 -> Type 1 (direct call), only 1s -> Type 3 (no suitable tool).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum


class State(IntEnum):
    """The five dialogue states of the paper, numbered as in its Table 1."""

    INITIAL = 1
    SLOTS_INCOMPLETE = 2
    SLOTS_COMPLETE = 3
    WAITING_FOR_TOOL = 4
    COMPLETE = 5


class QueryType(IntEnum):
    """The three query types: how much of the request the available tools can serve."""

    DIRECT_CALL = 1  # every required value is in the request: 1 -> 3 -> 4 -> 5
    SLOT_FILLING = 2  # required values are missing: 1 -> (2 x N) -> 3 -> 4 -> 5
    OUT_OF_TOOLS = 3  # no available tool serves it: 1 -> 1


# What one assistant turn does, and the states it appends to the trajectory.
ACTION_STATES = {
    "call": (State.SLOTS_COMPLETE, State.WAITING_FOR_TOOL),
    "complete": (State.COMPLETE,),
    "ask": (State.SLOTS_INCOMPLETE,),
    "decline": (State.INITIAL,),
}

_DECLINE = re.compile(
    r"\b(can ?not|can't|unable|not able|don't have|do not have|sorry|unfortunately|i'm afraid|"
    r"not (possible|supported|available)|no (tool|function))\b",
    re.IGNORECASE,
)
_ASK = re.compile(
    r"\?|\b(please (also )?(provide|tell|share|give|let me know)|could you|can you|what is|what's|which|i need)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TurnLabel:
    """One assistant turn: its message index, what it does and the states it moves through."""

    index: int
    action: str  # "call" | "complete" | "ask" | "decline"
    from_state: State
    states: tuple[State, ...]  # states entered by this turn, e.g. (3, 4) for a call

    @property
    def to_state(self) -> State:
        return self.states[-1]


def text_kind(text: str | None) -> str | None:
    """Guess what an assistant text that makes no call does: "decline", "ask" or None (can't tell)."""
    text = text or ""
    if _DECLINE.search(text):
        return "decline"
    if _ASK.search(text):
        return "ask"
    return None


def _has_calls(message: dict) -> bool:
    return bool(message.get("tool_calls"))


def _call_follows_in_request(messages: list[dict], index: int) -> bool:
    """Whether a tool call comes after ``index`` before an assistant text declines."""
    for message in messages[index + 1:]:
        if message.get("role") == "assistant":
            if _has_calls(message):
                return True
            if text_kind(message.get("content")) == "decline":
                return False
    return False


def _text_action(messages: list[dict], index: int) -> str:
    """"ask" or "decline" for an assistant text that does not follow a tool result."""
    guess = text_kind(messages[index].get("content"))
    if guess == "decline":
        return "decline"
    if guess == "ask" or _call_follows_in_request(messages, index):
        return "ask"
    return "decline"


def label_turns(messages: list[dict], text_kinds: dict[int, str] | None = None) -> list[TurnLabel]:
    """Label every assistant message with its action and state transition.

    ``text_kinds`` maps a message index to "ask" or "decline" where you know better than
    the phrase guess and the structural rule (see the module docstring).
    """
    text_kinds = text_kinds or {}
    labels: list[TurnLabel] = []
    state = State.INITIAL
    previous_role = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "user" and state == State.COMPLETE:
            state = State.INITIAL  # a new request after a finished one starts again
        if role == "assistant":
            if _has_calls(message):
                action = "call"
            elif previous_role == "tool":
                action = "complete"
            else:
                action = text_kinds.get(i) or _text_action(messages, i)
            if action not in ACTION_STATES:
                raise ValueError(f"message {i}: unknown action {action!r}; use one of {sorted(ACTION_STATES)}")
            states = ACTION_STATES[action]
            labels.append(TurnLabel(i, action, state, states))
            state = states[-1]
        previous_role = role
    return labels


def state_sequence(messages: list[dict], text_kinds: dict[int, str] | None = None) -> list[int]:
    """The states a dialogue visits, starting in state 1: e.g. ``[1, 2, 2, 3, 4, 5]``.

    Works on a whole conversation or on one side of a preference pair (the messages after
    the prompt). When a new user request follows a completion, the trajectory passes
    through state 1 again: ``[1, 3, 4, 5, 1, 1]`` is a direct call followed by a decline.
    """
    sequence = [int(State.INITIAL)]
    previous = State.INITIAL
    for label in label_turns(messages, text_kinds):
        if label.from_state == State.INITIAL and previous == State.COMPLETE:
            sequence.append(int(State.INITIAL))
        sequence.extend(int(s) for s in label.states)
        previous = label.to_state
    return sequence


def query_type_of_states(states: list[int]) -> QueryType:
    """The query type a single request's trajectory follows: 2 if it asks, 1 if it calls, else 3."""
    if State.SLOTS_INCOMPLETE in states:
        return QueryType.SLOT_FILLING
    if State.SLOTS_COMPLETE in states:
        return QueryType.DIRECT_CALL
    return QueryType.OUT_OF_TOOLS


def classify_query_type(messages: list[dict], text_kinds: dict[int, str] | None = None) -> QueryType:
    """The query type of a single-request dialogue, read from the flow its assistant follows.

    For a dialogue with several requests use :func:`request_query_types`.
    """
    return query_type_of_states(state_sequence(messages, text_kinds))


def request_query_types(messages: list[dict], text_kinds: dict[int, str] | None = None) -> list[QueryType]:
    """One query type per user request of a (possibly multi-request) dialogue."""
    types, current = [], []
    for label in label_turns(messages, text_kinds):
        if label.from_state == State.INITIAL and current:  # the previous request was finished or declined
            types.append(query_type_of_states([1, *current]))
            current = []
        current.extend(label.states)
    if current:
        types.append(query_type_of_states([1, *current]))
    return types
