"""The rule-based judge of FunctionChat-Bench Dialog turns, one rule at a time."""

import json
from dataclasses import dataclass, field

import pytest

from diatool_utils.judge import (
    ASKS_EVERY_MISSING,
    EvalCase,
    argument_synonyms,
    completion_key_values,
    infer_missing_arguments,
    judge_case,
    mentions_value,
    parse_acceptable_arguments,
    reply_action,
    tool_result_values,
    values_equal,
)


@dataclass
class Reply:
    """Stands in for templating.ParsedReply: the judge only reads these four fields."""

    content: str | None = None
    tool_calls: list = field(default_factory=list)
    valid: bool = True
    error: str | None = None


def call(name, **arguments):
    return {
        "id": "call_0",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def tool(name, properties, required, description=""):
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOLS = [
    tool(
        "get_weather",
        {
            "city": {"type": "string", "description": "City name, e.g. Seoul"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        ["city"],
    ),
    tool(
        "calculate_bmi",
        {
            "height": {"type": "number", "description": "Height in centimetres"},
            "weight": {"type": "number", "description": "Body mass in kilograms"},
        },
        ["height", "weight"],
    ),
    tool(
        "book_table",
        {
            "people": {"type": "integer", "description": "Party size"},
            "date": {"type": "string", "description": "Day of the reservation"},
            "window_seat": {"type": "boolean", "description": "Seat by the window"},
        },
        ["people", "date"],
    ),
    tool(
        "send_email",
        {
            "recipient_email": {"type": "string", "description": "E-mail address of the recipient"},
            "subject": {"type": "string", "description": "Subject line"},
        },
        ["recipient_email", "subject"],
    ),
    tool(
        "book_hotel",
        {
            "start_date": {"type": "string", "description": "Check-in date"},
            "end_date": {"type": "string", "description": "Check-out date"},
        },
        ["start_date", "end_date"],
    ),
]


def case(type_of_output, ground_truth, query=None, **extra):
    return EvalCase(
        dialog_num=1,
        serial_num=1,
        turn_num=1,
        type_of_output=type_of_output,
        tools=TOOLS,
        query=query or [{"role": "user", "content": "hello"}],
        ground_truth=ground_truth,
        **extra,
    )


def call_case(gold_call, acceptable=None):
    return case(
        "call",
        {"role": "assistant", "content": None, "tool_calls": [gold_call]},
        acceptable_arguments=acceptable,
    )


# ------------------------------------------------------------------------------ call

BMI = call_case(call("calculate_bmi", height=175, weight=68))


def test_call_with_the_ground_truth_arguments_passes():
    passed, reason = judge_case(BMI, Reply(tool_calls=[call("calculate_bmi", height=175, weight=68)]))
    assert passed, reason


def test_call_numbers_compare_numerically_so_175_equals_175_point_0():
    passed, _ = judge_case(BMI, Reply(tool_calls=[call("calculate_bmi", height=175.0, weight=68)]))
    assert passed


def test_call_string_values_ignore_case_and_whitespace():
    gold = call_case(call("get_weather", city="New York"))
    passed, _ = judge_case(gold, Reply(tool_calls=[call("get_weather", city="  new   york ")]))
    assert passed


def test_call_to_the_wrong_function_fails():
    passed, reason = judge_case(BMI, Reply(tool_calls=[call("get_weather", city="Seoul")]))
    assert not passed and "wrong function" in reason and "calculate_bmi" in reason


def test_call_to_a_tool_that_does_not_exist_fails():
    passed, reason = judge_case(BMI, Reply(tool_calls=[call("calculate_body_mass", height=175, weight=68)]))
    assert not passed and "unknown tool 'calculate_body_mass'" in reason


def test_call_with_an_extra_argument_key_fails():
    gold = call_case(call("get_weather", city="Seoul"))
    passed, reason = judge_case(gold, Reply(tool_calls=[call("get_weather", city="Seoul", unit="celsius")]))
    assert not passed and "unexpected ['unit']" in reason


def test_call_with_a_missing_argument_key_fails():
    passed, reason = judge_case(BMI, Reply(tool_calls=[call("calculate_bmi", height=175)]))
    assert not passed and "missing ['weight']" in reason


def test_call_with_a_string_where_a_number_is_declared_fails():
    passed, reason = judge_case(BMI, Reply(tool_calls=[call("calculate_bmi", height="175", weight=68)]))
    assert not passed and "not of type number" in reason


def test_call_with_a_float_where_an_integer_is_declared_fails_as_in_the_rubric():
    gold = call_case(call("book_table", people=4, date="Friday"))
    passed, reason = judge_case(gold, Reply(tool_calls=[call("book_table", people=4.0, date="Friday")]))
    assert not passed and "not of type integer" in reason


def test_call_booleans_only_equal_booleans():
    gold = call_case(call("book_table", people=2, date="Friday", window_seat=True))
    as_string = Reply(tool_calls=[call("book_table", people=2, date="Friday", window_seat="true")])
    as_number = Reply(tool_calls=[call("book_table", people=2, date="Friday", window_seat=1)])
    as_bool = Reply(tool_calls=[call("book_table", people=2, date="friday", window_seat=True)])
    assert not judge_case(gold, as_string)[0]
    assert not judge_case(gold, as_number)[0]
    assert judge_case(gold, as_bool)[0]


def test_call_with_a_value_outside_the_enum_fails():
    gold = call_case(call("get_weather", city="Seoul", unit="celsius"))
    passed, reason = judge_case(gold, Reply(tool_calls=[call("get_weather", city="Seoul", unit="kelvin")]))
    assert not passed and "not one of" in reason


def test_call_with_a_different_value_fails_and_names_the_argument():
    passed, reason = judge_case(BMI, Reply(tool_calls=[call("calculate_bmi", height=175, weight=70)]))
    assert not passed and reason.startswith("argument 'weight'")


def test_call_accepts_a_listed_acceptable_alternative():
    gold = call_case(call("get_weather", city="뉴욕"), acceptable={"city": "New York"})
    assert judge_case(gold, Reply(tool_calls=[call("get_weather", city="new york")]))[0]
    assert not judge_case(gold, Reply(tool_calls=[call("get_weather", city="Boston")]))[0]


def test_call_accepts_alternatives_given_as_json_text_or_a_list():
    as_text = call_case(call("get_weather", city="NYC"), acceptable='{"city": "New York"}')
    as_list = call_case(call("get_weather", city="NYC"), acceptable={"city": ["New York", "New York City"]})
    assert judge_case(as_text, Reply(tool_calls=[call("get_weather", city="New York")]))[0]
    assert judge_case(as_list, Reply(tool_calls=[call("get_weather", city="New York City")]))[0]


def test_call_only_ground_truth_allowed_turns_off_string_normalisation():
    gold = call_case(call("get_weather", city="Seoul"), acceptable="Only ground truth is allowed.")
    assert judge_case(gold, Reply(tool_calls=[call("get_weather", city="Seoul")]))[0]
    assert not judge_case(gold, Reply(tool_calls=[call("get_weather", city="seoul")]))[0]


def test_call_free_text_acceptable_arguments_are_ignored_and_said_so():
    gold = call_case(call("get_weather", city="Seoul"), acceptable="any spelling of the capital is fine")
    passed, reason = judge_case(gold, Reply(tool_calls=[call("get_weather", city="Seoul")]))
    assert passed and "free text, ignored" in reason


def test_call_replaced_by_text_fails():
    passed, reason = judge_case(BMI, Reply(content="What is your weight?"))
    assert not passed and reason.startswith("no tool call")


def test_call_with_arguments_that_are_not_json_fails():
    broken = {"type": "function", "function": {"name": "calculate_bmi", "arguments": '{"height": 175, '}}
    passed, reason = judge_case(BMI, Reply(tool_calls=[broken]))
    assert not passed and "not a JSON object" in reason


def test_call_from_a_reply_the_parser_rejected_fails_with_the_parser_error():
    passed, reason = judge_case(BMI, Reply(valid=False, error="content of calculate_bmi is not JSON"))
    assert not passed and reason == "malformed reply: content of calculate_bmi is not JSON"


def test_call_with_one_call_too_many_fails():
    twice = [call("calculate_bmi", height=175, weight=68)] * 2
    passed, reason = judge_case(BMI, Reply(tool_calls=twice))
    assert not passed and "made 2 call(s), expected 1" in reason


def test_values_equal_recurses_into_lists_and_objects():
    assert values_equal([1, "A b"], [1.0, "a  B"])
    assert not values_equal([1, 2], [1])
    assert values_equal({"x": {"y": True}}, {"x": {"y": True}})
    assert not values_equal({"x": 1}, {"x": 1, "z": 2})


def test_parse_acceptable_arguments_reads_every_form_of_the_benchmark():
    assert parse_acceptable_arguments(None) == ({}, False, None)
    assert parse_acceptable_arguments("Only ground truth is allowed.") == ({}, True, None)
    assert parse_acceptable_arguments('{"bill_total": 61500.0}') == ({"bill_total": 61500.0}, False, None)
    assert parse_acceptable_arguments({"origin": "New York"}) == ({"origin": "New York"}, False, None)


# ------------------------------------------------------------------------ completion

BMI_HISTORY = [
    {"role": "user", "content": "My height is 175 and I weigh 68 kg. How am I doing?"},
    {"role": "assistant", "content": None, "tool_calls": [call("calculate_bmi", height=175, weight=68)]},
    {
        "role": "tool",
        "tool_call_id": "call_0",
        "name": "calculate_bmi",
        "content": '{"bmi": 22.2, "status": "Normal weight", "ok": true}',
    },
]
BMI_DONE = case(
    "completion",
    {"role": "assistant", "content": "Your BMI is 22.2, which is in the normal weight range."},
    query=BMI_HISTORY,
)


def test_completion_values_are_the_result_leaves_the_reference_reports():
    assert completion_key_values(BMI_DONE) == [22.2, "Normal weight"]


def test_completion_that_reports_every_value_passes():
    passed, reason = judge_case(BMI_DONE, Reply(content="BMI: 22.2 - normal weight. Nice!"))
    assert passed, reason


def test_completion_missing_a_value_fails_and_names_it():
    passed, reason = judge_case(BMI_DONE, Reply(content="Your BMI is 22.2."))
    assert not passed and "'Normal weight'" in reason


def test_completion_with_a_changed_number_fails():
    passed, _ = judge_case(BMI_DONE, Reply(content="Your BMI is 22.8, normal weight."))
    assert not passed


def test_completion_that_calls_a_tool_again_fails():
    passed, reason = judge_case(BMI_DONE, Reply(tool_calls=[call("calculate_bmi", height=175, weight=68)]))
    assert not passed and "instead of reporting" in reason


def test_completion_empty_reply_fails():
    assert judge_case(BMI_DONE, Reply(content="   ")) == (False, "empty reply")


def test_completion_numbers_match_with_thousands_separators():
    query = BMI_HISTORY[:2] + [{"role": "tool", "name": "split", "content": '{"result": 12300}'}]
    gold = case(
        "completion", {"role": "assistant", "content": "5명이 각각 12,300원씩 내면 됩니다."}, query=query
    )
    assert judge_case(gold, Reply(content="Each pays 12300 won."))[0]
    assert judge_case(gold, Reply(content="한 사람당 12,300원입니다."))[0]


def test_completion_status_words_the_reference_does_not_report_are_not_required():
    query = BMI_HISTORY[:2] + [{"role": "tool", "name": "set_alarm", "content": '{"status": "success"}'}]
    gold = case(
        "completion",
        {"role": "assistant", "content": "The alarm was set successfully for 7 am."},
        query=query,
    )
    assert completion_key_values(gold) == []  # "success" is not a word of "successfully"
    passed, reason = judge_case(gold, Reply(content="Done, your alarm is on."))
    assert passed and reason.startswith("nothing checked")


def test_tool_result_values_keep_short_scalars_only():
    content = json.dumps(
        {
            "a": 3,
            "b": True,
            "c": None,
            "d": "Paris",
            "e": "a sentence of far more than three words",
            "f": [1, 2],
        }
    )
    assert tool_result_values(content) == [3, "Paris", 1, 2]
    assert tool_result_values("plain text result") == ["plain text result"]


def test_mentions_value_needs_whole_ascii_words_but_not_for_korean():
    assert not mentions_value("it went successfully", "success")
    assert mentions_value("뉴욕과 시카고", "뉴욕")
    assert mentions_value("dated 2024-05-19", 19)
    assert not mentions_value("dated 2024-05-19", -19)


# ------------------------------------------------------------------------------ slot

EMAIL_SLOT = case(
    "slot",
    {"role": "assistant", "content": "Who should receive it, and what is the subject?"},
    missing_arguments=["recipient_email", "subject"],
    missing_source="row",
)


def test_slot_asking_for_every_missing_value_passes():
    reply = Reply(content="Sure! What is the recipient's email address and the subject?")
    passed, reason = judge_case(EMAIL_SLOT, reply)
    assert passed, reason


def test_slot_recognises_an_argument_by_its_description_words():
    passed, _ = judge_case(EMAIL_SLOT, Reply(content="Which address should I use, and what subject line?"))
    assert passed


def test_slot_asking_for_one_of_two_values_passes_but_not_the_stricter_figure():
    passed, reason = judge_case(EMAIL_SLOT, Reply(content="What subject should the e-mail have?"))
    assert passed and reason == "asks for information; names ['subject'], not every missing value " \
                                "['recipient_email', 'subject']"


def test_slot_that_hallucinates_a_call_fails():
    reply = Reply(tool_calls=[call("send_email", recipient_email="bob@example.com", subject="Hi")])
    passed, reason = judge_case(EMAIL_SLOT, reply)
    assert not passed and "instead of asking for ['recipient_email', 'subject']" in reason


def test_slot_reply_that_asks_nothing_fails():
    passed, reason = judge_case(EMAIL_SLOT, Reply(content="I will write the e-mail with a nice subject."))
    assert not passed


def test_slot_question_may_mention_the_action_it_will_take():
    reminder = case(
        "slot",
        {"role": "assistant", "content": "?"},
        missing_arguments=["date", "people"],
        missing_source="row",
    )
    for text in [
        "Before I set it up, could you give me the date and the party size?",
        "I'll book it once I know the date and party size. What are they?",
    ]:
        passed, reason = judge_case(reminder, Reply(content=text))
        assert passed, (text, reason)
    assert not judge_case(reminder, Reply(content="I have booked it. What date and party size?"))[0]


def test_slot_words_shared_by_two_parameters_do_not_count():
    assert "date" not in argument_synonyms(TOOLS, "start_date")
    hotel = case(
        "slot",
        {"role": "assistant", "content": "?"},
        missing_arguments=["start_date", "end_date"],
        missing_source="row",
    )
    assert judge_case(hotel, Reply(content="What date?"))[1] == (
        "asks for information; names ['start_date'], not every missing value ['start_date', 'end_date']")
    assert judge_case(hotel, Reply(content="What are your start and end dates?"))[1].startswith(ASKS_EVERY_MISSING)


def test_slot_with_unknown_missing_values_only_checks_for_a_question():
    unknown = case("slot", {"role": "assistant", "content": "?"})
    assert judge_case(unknown, Reply(content="Could you tell me more?"))[0]
    assert not judge_case(unknown, Reply(content="OK."))[0]


def test_slot_matches_korean_description_words_as_substrings():
    korean = [tool("bmi", {"weight": {"type": "number", "description": "몸무게 킬로그램"}}, ["weight"])]
    gold = EvalCase(
        1,
        1,
        1,
        "slot",
        korean,
        [{"role": "user", "content": "BMI"}],
        {"content": "?"},
        None,
        ["weight"],
        "row",
    )
    assert judge_case(gold, Reply(content="몸무게를 알려주세요."))[0]


def test_infer_missing_arguments_from_the_dialog_next_call():
    query = [{"role": "user", "content": "My BMI? I am 175 cm tall."}]
    later = call("calculate_bmi", height=175, weight=68)
    assert infer_missing_arguments(query, TOOLS, later) == ["weight"]
    assert infer_missing_arguments(query, TOOLS, None) is None


# ------------------------------------------------------------------------- relevance

PIZZA = case(
    "relevance",
    {"role": "assistant", "content": "I can't order pizza."},
    query=[{"role": "user", "content": "Order me a pizza"}],
)


def test_relevance_decline_passes():
    passed, reason = judge_case(PIZZA, Reply(content="Sorry, I can't order food with the tools I have."))
    assert passed and reason == "declines without calling a tool"


def test_relevance_korean_decline_passes():
    assert judge_case(PIZZA, Reply(content="피자는 주문할 수 없습니다."))[0]


def test_relevance_call_fails():
    passed, reason = judge_case(PIZZA, Reply(tool_calls=[call("get_weather", city="Seoul")]))
    assert not passed and "although no tool serves the request" in reason


def test_relevance_reply_that_claims_success_fails():
    for text in [
        "I have ordered a large pizza for you.",
        "Your pizza has been ordered.",
        "피자를 주문했습니다.",
        "Sure, I'll order it now.",
    ]:
        passed, reason = judge_case(PIZZA, Reply(content=text))
        assert not passed and reason.startswith("claims an action"), text


def test_relevance_small_talk_passes():
    thanks = case("relevance", {"role": "assistant", "content": "You're welcome!"})
    passed, reason = judge_case(
        thanks, Reply(content="You're welcome! Is there anything else I can help with?")
    )
    assert passed and "small talk" in reason


@pytest.mark.parametrize("text", [
    "I can book 3 seats on the harbor cruise in Krakow on 2026-05-02.",  # replies our SFT models gave
    "Ivan Lopez will receive your lilies at 7 Maple Avenue on 2026-07-08.",
    "No visa is required for travel to Australia with a passport.",
    "I need 5 seats.",
])
def test_relevance_reply_that_neither_declines_nor_chats_fails_when_the_gold_reply_declines(text):
    passed, reason = judge_case(PIZZA, Reply(content=text))
    assert not passed and reason.startswith("does not decline, though the request needs an action"), text


def test_relevance_same_reply_passes_as_a_direct_answer_when_the_gold_reply_chats():
    chat = case("relevance", {"role": "assistant", "content": "Paris is the capital of France."},
                query=[{"role": "user", "content": "What is the capital of France?"}])
    passed, reason = judge_case(chat, Reply(content="The capital of France is Paris."))
    assert passed and "the gold reply is not a decline" in reason
    assert not judge_case(PIZZA, Reply(content="The capital of France is Paris."))[0]


def test_relevance_asking_for_order_details_instead_of_declining_fails():
    passed, reason = judge_case(
        PIZZA, Reply(content="Sure! What is your address and which size would you like?")
    )
    assert not passed and "instead of declining" in reason


def test_unknown_output_type_is_a_clear_error():
    with pytest.raises(ValueError, match="type_of_output 'chat'"):
        judge_case(case("chat", {}), Reply(content="hi"))


# ------------------------------------------------------------------------ reply_action


@pytest.mark.parametrize(
    ("reply", "action"),
    [
        (Reply(tool_calls=[call("get_weather", city="Paris")]), "call"),
        (Reply(content="Sure, checking.", tool_calls=[call("get_weather", city="Paris")]), "call"),
        (Reply(content="Which city would you like the weather for?"), "ask"),
        (Reply(content="Please provide the date of the reservation"), "ask"),
        (Reply(content="I'm afraid I can't book flights; no available tool does that."), "decline"),
        (Reply(content="Sorry, which city?"), "decline"),  # a decline first, as the relevance judge reads it
        (Reply(content="I have booked your table."), "claim"),
        (Reply(content="It is 18 degrees and cloudy in Paris."), "answer"),
        (Reply(content="I'll book it once I know the date."), "answer"),  # a promise is not a claim
        (Reply(content=""), "broken"),
        (Reply(valid=False, error="arguments are not valid JSON"), "broken"),
    ],
)
def test_reply_action_names_what_the_reply_does(reply, action):
    assert reply_action(reply) == action


# ------------------------------------------------------------- natural phrasings, both languages

PLAIN = [
    tool("find_recipe", {"dish": {"type": "string", "description": "Dish to cook"},
                         "servings": {"type": "integer", "description": "Number of servings"}}, ["dish", "servings"]),
    tool("estimate_toll", {"vehicle": {"type": "string", "enum": ["car", "motorbike", "van"]},
                           "route": {"type": "string", "description": "Highway route, e.g. I-95"}}, ["vehicle", "route"]),
    tool("sky_tonight", {"location": {"type": "string", "description": "Observer position"}}, ["location"]),
    tool("ship_parcel", {"zip_code": {"type": "string", "description": "Destination postcode, e.g. 10001"},
                         "weight_kg": {"type": "number", "description": "Parcel mass in kilograms"}},
         ["zip_code", "weight_kg"]),
    tool("add_task", {"task_name": {"type": "string", "description": "The name of the task"},
                      "due": {"type": "string", "description": "When the task is due (예: 다음주 금요일)"}},
         ["task_name", "due"]),
    tool("discount", {"price": {"type": "number", "description": "원래 가격"},
                      "rate": {"type": "number", "description": "적용할 할인율(예: 30% 할인이면 30)"}},
         ["price", "rate"], description="원래 가격과 할인율로 할인된 가격을 계산한다."),
]


def plain_slot(*missing):
    return EvalCase(1, 1, 1, "slot", PLAIN, [{"role": "user", "content": "help"}], {"content": "?"},
                    missing_arguments=list(missing), missing_source="row")


@pytest.mark.parametrize(("text", "missing"), [
    ("How many people are you cooking for?", ["servings"]),
    ("Is it a car, a motorbike or a van?", ["vehicle"]),
    ("Where are you observing from?", ["location"]),
    ("What's the zip code it's going to? How heavy is it?", ["zip_code", "weight_kg"]),
    ("데드라인이 언제인가요?", ["due"]),
    ("할인율은 몇 %인가요?", ["rate"]),
    ("원래 가격이 얼마였고, 할인율은요?", ["price", "rate"]),
])
def test_slot_plain_questions_pass_and_ask_for_every_missing_value(text, missing):
    passed, reason = judge_case(plain_slot(*missing), Reply(content=text))
    assert passed and reason == f"{ASKS_EVERY_MISSING} {missing}", reason


@pytest.mark.parametrize(("text", "reason"), [
    ("Anything else I can help you with?", "does not ask the user for anything"),
    ("Shall I go ahead?", "does not ask the user for anything"),
    ("I've booked it for you. Anything else?", "claims to have acted"),
    ("Which dish would you like?", "asks again for ['dish'], which the user already gave"),
])
def test_slot_replies_that_ask_nothing_needed_fail(text, reason):
    passed, why = judge_case(plain_slot("servings"), Reply(content=text))
    assert not passed and why.startswith(reason), why


@pytest.mark.parametrize("text", [
    "That's not something these tools cover.",
    "That isn't possible with my tools.",
    "I have no way to do that here.",
    "That's beyond what I can help with.",
    "I won't be able to help with that one.",
    "None of my tools handle pizza orders, I'm afraid.",
    "그건 제가 도와드리기 어려워요.",
    "그 기능은 지원하지 않아요.",
    "피자 주문은 해 드릴 수가 없어요.",
    "제가 가진 도구로는 할 수 있는 일이 아니에요. 주문 기능이 없거든요.",
])
def test_relevance_ordinary_declines_pass(text):
    passed, reason = judge_case(PIZZA, Reply(content=text))
    assert passed and reason.startswith("declines"), (text, reason)


@pytest.mark.parametrize("text", [
    "I'll do that right away.",
    "On it!",
    "네, 바로 처리해 드릴게요.",
    "알겠습니다, 주문하겠습니다.",
])
def test_relevance_a_promise_to_act_is_a_claim_even_when_the_gold_reply_chats(text):
    chat = case("relevance", {"role": "assistant", "content": "You're welcome!"})
    for turn in (PIZZA, chat):
        passed, reason = judge_case(turn, Reply(content=text))
        assert not passed and reason.startswith("claims an action"), (text, reason)


def test_relevance_negated_claims_and_offers_to_tell_are_not_claims():
    assert judge_case(PIZZA, Reply(content="I haven't ordered anything: I can't place orders."))[0]
    chat = case("relevance", {"role": "assistant", "content": "파리는 프랑스의 수도예요."})
    assert judge_case(chat, Reply(content="네, 알려 드릴게요. 프랑스의 수도는 파리예요."))[0]


TIME_DONE = case("completion", {"role": "assistant", "content": "It's 7:05 pm in Seoul."}, query=[
    {"role": "user", "content": "What time is it in Seoul?"},
    {"role": "assistant", "content": None, "tool_calls": [call("get_time", city="Seoul")]},
    {"role": "tool", "name": "get_time", "content": '{"now": "2024-05-19 19:05:56", "dst": None}'},
])


def test_completion_a_date_time_is_found_in_other_words():
    assert completion_key_values(TIME_DONE) == ["2024-05-19 19:05:56"]
    assert judge_case(TIME_DONE, Reply(content="서울은 지금 오후 7시 5분이에요."))[0]
    assert judge_case(TIME_DONE, Reply(content="It is 19:05 there."))[0]
    assert not judge_case(TIME_DONE, Reply(content="It is 8 pm there."))[0]


def test_completion_rounded_figures_and_korean_units_match_within_half_a_percent():
    assert mentions_value("약 14만 4,510원입니다", 144510.98)
    assert mentions_value("about 3944 km", 3944.28)
    assert not mentions_value("about 24", 24.2)
    assert not mentions_value("7.3", 7.5)


def test_completion_with_nothing_to_check_says_so():
    status = case("completion", {"role": "assistant", "content": "메모를 저장했어요."}, query=[
        {"role": "user", "content": "메모 저장해 줘"},
        {"role": "assistant", "content": None, "tool_calls": [call("save_memo", text="우유")]},
        {"role": "tool", "name": "save_memo", "content": '{"status": "success"}'},
    ])
    passed, reason = judge_case(status, Reply(content="저장 완료!"))
    assert passed and reason.startswith("nothing checked")


TIDES = [
    {"role": "user", "content": "When is high tide at Long Beach on 2026-03-13?"},
    {"role": "assistant", "content": None, "tool_calls": [call("get_tides", beach="Long Beach", date="2026-03-13")]},
    {"role": "tool", "name": "get_tides",
     "content": '{"beach": "Long Beach", "date": "2026-03-13", "high_tide": "07:00", "low_tide": "13:30"}'},
]
TIDES_DONE = case("completion", {"role": "assistant", "content": "High tide is at 07:00, low tide at 13:30."},
                  query=TIDES)


def test_completion_needs_the_fields_asked_about_and_not_the_request_echoed():
    assert completion_key_values(TIDES_DONE) == ["07:00"]  # "high tide" names high_tide; beach and date echo
    assert judge_case(TIDES_DONE, Reply(content="It's at 7 am."))[0]
    passed, reason = judge_case(TIDES_DONE, Reply(content="Low tide is at 13:30."))
    assert not passed and "['07:00']" in reason


@pytest.mark.parametrize(("text", "reason"), [
    ("High tide is at 13:30 and low tide at 07:00.", "gives ['07:00 (high_tide)', '13:30 (low_tide)'] under another"),
    ("High tide is at 7 am; the beach is open 24 hours.", "states ['24'], which no tool result or request gives"),
    ("High tide is at 7 pm.", "puts ['07:00'] in the wrong half of the day"),
    ("Sorry, I couldn't get the tides right now. High tide is usually at 07:00.", "says it could not"),
])
def test_completion_that_contradicts_the_result_fails(text, reason):
    passed, why = judge_case(TIDES_DONE, Reply(content=text))
    assert not passed and why.startswith(reason), why


def test_reply_action_counts_a_report_of_the_action_as_an_answer_on_a_completion_turn():
    assert reply_action(Reply(content="Your table is booked for 7 pm.")) == "claim"
    assert reply_action(Reply(content="Your table is booked for 7 pm."), "completion") == "answer"
