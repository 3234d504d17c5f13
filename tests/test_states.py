"""States and query types read back from OpenAI messages."""

import pytest

from diatool_utils.states import (
    QueryType,
    State,
    classify_query_type,
    label_turns,
    request_query_types,
    state_sequence,
    text_kind,
)


def user(text="Book a table at Casa Verde for 2 on 2025-05-01 at 19:00."):
    return {"role": "user", "content": text}


def call(name="book_restaurant", call_id="call_0"):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}]}


def tool(name="book_restaurant", call_id="call_0"):
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": '{"confirmation": "R-1"}'}


def say(text):
    return {"role": "assistant", "content": text}


ASK = say("Sure, what is the date?")
DECLINE = say("Sorry, I can't book flights with the tools I have.")
REPORT = say("Your table is confirmed (R-1).")


def test_direct_call_reads_1_3_4_5():
    assert state_sequence([user(), call(), tool(), REPORT]) == [1, 3, 4, 5]


def test_two_slot_filling_rounds_read_1_2_2_3_4_5():
    messages = [user("Book a table."), ASK, user("2025-05-01"), say("Thanks! And what is the time?"),
                user("19:00"), call(), tool(), REPORT]
    assert state_sequence(messages) == [1, 2, 2, 3, 4, 5]


def test_decline_reads_1_1():
    assert state_sequence([user("Book me a flight."), DECLINE]) == [1, 1]


def test_rejected_type3_trajectory_that_stops_at_the_call_reads_1_3_4():
    assert state_sequence([user("Book me a flight."), call("book_flight")]) == [1, 3, 4]
    assert state_sequence([user("Book me a flight."), ASK, user("2025-05-01"), call("book_flight")]) == [1, 2, 3, 4]


def test_one_side_of_a_pair_without_the_user_message_reads_the_same():
    assert state_sequence([call(), tool(), REPORT]) == [1, 3, 4, 5]
    assert state_sequence([DECLINE]) == [1, 1]


def test_labels_give_each_assistant_turn_its_transition():
    messages = [{"role": "system", "content": "Be brief."}, user("Book a table."), ASK, user("2025-05-01"),
                call(), tool(), REPORT]
    labels = label_turns(messages)
    assert [(label.index, label.action) for label in labels] == [(2, "ask"), (4, "call"), (6, "complete")]
    assert [(label.from_state, label.states) for label in labels] == [
        (State.INITIAL, (State.SLOTS_INCOMPLETE,)),
        (State.SLOTS_INCOMPLETE, (State.SLOTS_COMPLETE, State.WAITING_FOR_TOOL)),
        (State.WAITING_FOR_TOOL, (State.COMPLETE,)),
    ]
    assert labels[-1].to_state == State.COMPLETE


@pytest.mark.parametrize("messages, expected", [
    ([user(), call(), tool(), REPORT], QueryType.DIRECT_CALL),
    ([user("Book a table."), ASK, user("2025-05-01"), call(), tool(), REPORT], QueryType.SLOT_FILLING),
    ([user("Book me a flight."), DECLINE], QueryType.OUT_OF_TOOLS),
])
def test_query_type_follows_from_the_states(messages, expected):
    assert classify_query_type(messages) == expected


def test_a_new_request_after_a_completion_starts_again_from_state_1():
    messages = [user(), call(), tool(), REPORT, user("And book me a flight."), DECLINE]
    assert state_sequence(messages) == [1, 3, 4, 5, 1, 1]
    assert request_query_types(messages) == [QueryType.DIRECT_CALL, QueryType.OUT_OF_TOOLS]


def test_a_decline_followed_by_a_served_request_is_two_requests_not_a_slot_question():
    messages = [user("Book me a flight."), DECLINE, user(), call(), tool(), REPORT]
    assert request_query_types(messages) == [QueryType.OUT_OF_TOOLS, QueryType.DIRECT_CALL]
    assert state_sequence(messages) == [1, 1, 3, 4, 5]


def test_a_question_without_question_mark_counts_as_slot_filling_when_a_call_follows():
    messages = [user("Book a table."), say("I need the date."), user("2025-05-01"), call(), tool(), REPORT]
    assert state_sequence(messages) == [1, 2, 3, 4, 5]


def test_text_kinds_override_the_guess():
    messages = [user("Hello"), say("Hi there! Nice to meet you.")]
    assert state_sequence(messages) == [1, 1]
    assert state_sequence([user("Book a table."), say("Noted.")], text_kinds={1: "ask"}) == [1, 2]
    with pytest.raises(ValueError, match="message 1"):
        label_turns(messages, text_kinds={1: "wave"})


@pytest.mark.parametrize("text, kind", [
    ("Sorry, I can't do that.", "decline"),
    ("Unfortunately, I'm not able to check tides here.", "decline"),
    ("Could you tell me the city?", "ask"),
    ("Please tell me the date.", "ask"),
    ("Hello!", None),
])
def test_text_kind_reads_declines_and_questions(text, kind):
    assert text_kind(text) == kind


def test_slot_questions_without_question_marks_in_a_row_stay_slot_questions():
    messages = [user("Convert money."), say("Please tell me the amount."), user("689"),
                say("Thank you. Please also give me the currency."), user("KRW"), say("Noted, and the target."),
                user("JPY"), call("convert_currency"), tool("convert_currency"), say("That is 695 JPY.")]
    assert state_sequence(messages) == [1, 2, 2, 2, 3, 4, 5]
