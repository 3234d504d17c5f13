"""Functionary v2 templating: TypeScript tools, rendering, special tokens, parsing, validation."""

import json

import pytest
import torch
from conversations import CONVERSATIONS, TOOLS, WEATHER, call, conversation

from diatool_utils.templating import (
    ASSISTANT_PREFIX,
    CONTENT_TOKEN,
    DEFAULT_SYSTEM_PROMPT,
    FROM_TOKEN,
    FUNCTIONARY_SPECIAL_TOKENS,
    RECIPIENT_TOKEN,
    STOP_TOKEN,
    ConversationError,
    ParsedReply,
    add_functionary_tokens,
    parse_assistant_reply,
    render_conversation,
    tools_to_typescript,
    validate_conversation,
)


def function_tool(name, parameters=None, description=None):
    function = {"name": name}
    if description:
        function["description"] = description
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def params(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required)}


# --------------------------------------------------------------------------- tools -> TypeScript


def test_weather_tool_renders_exactly_as_the_reference_example():
    assert tools_to_typescript([WEATHER]) == (
        "// Supported function definitions that should be called when necessary.\n"
        "namespace functions {\n"
        "\n"
        "// Get the current weather for a city\n"
        "type get_weather = (_: {\n"
        "// City name, e.g. Seoul.\n"
        "city: string,\n"
        '// Default="celsius".\n'
        'unit?: "celsius" | "fahrenheit",\n'
        "}) => any;\n"
        "\n"
        "} // namespace functions"
    )


def test_function_without_parameters_takes_no_arguments():
    for tool in (function_tool("ping"), function_tool("ping", {"type": "object", "properties": {}})):
        assert "type ping = () => any;" in tools_to_typescript([tool])


def test_no_tools_give_an_empty_namespace():
    assert tools_to_typescript(None) == tools_to_typescript([])
    assert tools_to_typescript([]).endswith("namespace functions {\n\n\n} // namespace functions")


def test_scalar_types_integer_and_number_become_number():
    ts = tools_to_typescript([function_tool("f", params({
        "n": {"type": "integer"}, "x": {"type": "number"}, "ok": {"type": "boolean"}, "s": {"type": "string"},
        "anything": {},
    }, required=["n", "x", "ok", "s", "anything"]))])
    assert "n: number,\nx: number,\nok: boolean,\ns: string,\nanything: any,\n" in ts


def test_optional_parameters_get_a_question_mark_and_property_order_is_kept():
    ts = tools_to_typescript([function_tool("f", params(
        {"b": {"type": "string"}, "a": {"type": "string"}}, required=["a"]))])
    assert "b?: string,\na: string,\n" in ts


def test_defaults_formats_and_limits_are_comments():
    ts = tools_to_typescript([function_tool("f", params({
        "date": {"type": "string", "description": "Day of the trip", "format": "date"},
        "people": {"type": "integer", "minimum": 1, "maximum": 8, "default": 2},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "code": {"type": "string", "minLength": 3, "maxLength": 3},
    }))])
    assert "// Day of the trip. Format=date.\ndate?: string," in ts
    assert "// Default=2. Minimum=1. Maximum=8.\npeople?: number," in ts
    assert "// Maximum items=3.\ntags?: string[]," in ts
    assert "// Minimum length=3. Maximum length=3.\ncode?: string," in ts


def test_enums_become_string_unions_and_numeric_enums_stay_numbers():
    ts = tools_to_typescript([function_tool("f", params({
        "mode": {"type": "string", "enum": ["fast", "slow"]}, "level": {"type": "integer", "enum": [1, 2]},
    }))])
    assert 'mode?: "fast" | "slow",' in ts and "level?: 1 | 2," in ts


def test_arrays_nested_objects_and_nullable_types():
    ts = tools_to_typescript([function_tool("book", params({
        "guests": {"type": "array", "items": {
            "type": "object", "description": "One guest",
            "properties": {"name": {"type": "string", "description": "Full name"}, "age": {"type": "integer"}},
            "required": ["name"]}},
        "address": {"type": "object", "properties": {
            "city": {"type": "string"},
            "geo": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}},
            "required": ["city"]},
        "note": {"type": ["string", "null"]},
        "room": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "codes": {"type": "array", "items": {"type": ["string", "null"]}},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
    }, required=["guests"]))])
    assert "guests: {\n  // Full name\n  name: string,\n  age?: number,\n}[],\n" in ts
    assert "address?: {\n  city: string,\n  geo?: {\n    lat: number,\n  },\n},\n" in ts
    assert "note?: string | null," in ts
    assert "room?: number | null," in ts
    assert "codes?: (string | null)[]," in ts
    assert "matrix?: number[][]," in ts


def test_multiline_descriptions_are_commented_line_by_line():
    ts = tools_to_typescript([function_tool("f", params({"q": {"type": "string", "description": "one\ntwo"}}),
                                            description="First line.\nSecond line.")])
    assert "// First line.\n// Second line.\ntype f = " in ts
    assert "// one\n// two\nq?: string," in ts


def test_bare_function_dicts_are_accepted_like_openai_tools():
    assert tools_to_typescript([WEATHER["function"]]) == tools_to_typescript([WEATHER])


# --------------------------------------------------------------------------- rendering


def test_single_call_conversation_renders_exactly():
    text = render_conversation(conversation("single_call"), [WEATHER])
    assert text == (
        f"<|from|>system\n<|recipient|>all\n<|content|>{tools_to_typescript([WEATHER])}\n"
        f"<|from|>system\n<|recipient|>all\n<|content|>{DEFAULT_SYSTEM_PROMPT}\n"
        "<|from|>system\n<|recipient|>all\n<|content|>Answer briefly.\n"
        "<|from|>user\n<|recipient|>all\n<|content|>What's the weather in Seoul?\n"
        '<|from|>assistant\n<|recipient|>get_weather\n<|content|>{"city": "Seoul"}<|stop|>\n'
        '<|from|>get_weather\n<|recipient|>all\n<|content|>{"temperature": 21, "condition": "sunny"}\n'
        "<|from|>assistant\n<|recipient|>all\n<|content|>It is sunny and 21 °C in Seoul.<|stop|>\n"
    )


def test_parallel_calls_are_joined_by_newlines_and_end_with_one_stop():
    text = render_conversation(conversation("parallel_calls"), TOOLS)
    assert (
        '<|from|>assistant\n<|recipient|>get_weather\n<|content|>{"city": "Seoul", "unit": "fahrenheit"}\n'
        '<|from|>assistant\n<|recipient|>get_weather\n<|content|>{"city": "Busan", "unit": "fahrenheit"}<|stop|>\n'
        '<|from|>get_weather\n<|recipient|>all\n<|content|>{"temperature": 75}\n'
    ) in text
    assert text.count(STOP_TOKEN) == 2


def test_text_before_a_call_comes_first_and_dict_arguments_keep_unicode():
    text = render_conversation(conversation("text_then_call"), TOOLS)
    assert (
        "<|from|>assistant\n<|recipient|>all\n<|content|>서울 날씨를 확인해 볼게요.\n"
        '<|from|>assistant\n<|recipient|>get_weather\n<|content|>{"city": "서울"}<|stop|>\n'
    ) in text


def test_generation_prompt_is_the_assistant_prefix():
    messages = [{"role": "user", "content": "Hi"}]
    without = render_conversation(messages)
    assert render_conversation(messages, add_generation_prompt=True) == without + ASSISTANT_PREFIX
    assert ASSISTANT_PREFIX == "<|from|>assistant\n<|recipient|>"


def test_tools_come_first_then_the_general_instruction_then_the_conversation():
    text = render_conversation(conversation("text_reply"), TOOLS)
    assert text.index("namespace functions") < text.index(DEFAULT_SYSTEM_PROMPT) < text.index("Hello! Who")


# --------------------------------------------------------------------------- special tokens


def test_add_functionary_tokens_adds_four_single_tokens_and_is_idempotent(tiny_tokenizer):
    before = len(tiny_tokenizer)
    assert add_functionary_tokens(tiny_tokenizer) == 4
    assert add_functionary_tokens(tiny_tokenizer) == 0
    assert len(tiny_tokenizer) == before + 4
    ids = tiny_tokenizer("<|from|>user\n<|stop|>", add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.convert_ids_to_tokens([ids[0], ids[-1]]) == [FROM_TOKEN, STOP_TOKEN]
    assert len(ids) == 4  # <|from|>, "user", "\n", <|stop|>


def test_new_embedding_rows_are_the_mean_of_the_old_ones(tiny_tokenizer, tiny_model):
    old = tiny_model.get_input_embeddings().weight.detach().clone()
    assert add_functionary_tokens(tiny_tokenizer, tiny_model) == 4
    weight = tiny_model.get_input_embeddings().weight
    assert weight.shape[0] == len(tiny_tokenizer) == old.shape[0] + 4
    assert torch.equal(weight[: old.shape[0]], old)
    for token_id in tiny_tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS):
        torch.testing.assert_close(weight[token_id], old.mean(dim=0))
    assert tiny_model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()  # still tied
    assert tiny_model.config.vocab_size == len(tiny_tokenizer)


def test_second_call_with_the_model_changes_nothing(tiny_tokenizer, tiny_model):
    add_functionary_tokens(tiny_tokenizer, tiny_model)
    with torch.no_grad():
        tiny_model.get_input_embeddings().weight[-1] += 1.0  # as if training had moved the row
    snapshot = tiny_model.get_input_embeddings().weight.detach().clone()
    assert add_functionary_tokens(tiny_tokenizer, tiny_model) == 0
    assert torch.equal(tiny_model.get_input_embeddings().weight, snapshot)


def test_untied_output_embeddings_get_mean_rows_too(tiny_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=8, intermediate_size=16,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    old_out = model.get_output_embeddings().weight.detach().clone()
    add_functionary_tokens(tiny_tokenizer, model)
    out = model.get_output_embeddings().weight
    assert out.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    torch.testing.assert_close(out[-1], old_out.mean(dim=0))
    torch.testing.assert_close(out[-4], old_out.mean(dim=0))


def test_spare_embedding_rows_are_used_without_resizing(tiny_tokenizer):
    """Some models (Qwen) have more embedding rows than tokens: the markers take spare rows."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = len(tiny_tokenizer)
    config = LlamaConfig(vocab_size=vocab + 16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    old = model.get_input_embeddings().weight.detach().clone()
    assert add_functionary_tokens(tiny_tokenizer, model) == 4
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == vocab + 16
    torch.testing.assert_close(weight[vocab], old[:vocab].mean(dim=0))
    assert torch.equal(weight[vocab + 4:], old[vocab + 4:])  # the other spare rows are untouched


def test_a_model_resized_later_still_gets_mean_rows(tiny_tokenizer, tiny_model):
    old = tiny_model.get_input_embeddings().weight.detach().clone()
    add_functionary_tokens(tiny_tokenizer)  # tokenizer first, model afterwards
    assert add_functionary_tokens(tiny_tokenizer, tiny_model) == 0
    weight = tiny_model.get_input_embeddings().weight
    assert weight.shape[0] == old.shape[0] + 4
    torch.testing.assert_close(weight[-2], old.mean(dim=0))


# --------------------------------------------------------------------------- parsing


def test_parse_text_reply():
    reply = parse_assistant_reply("all\n<|content|>Hello there!<|stop|>")
    assert reply == ParsedReply("Hello there!", [], True, None, reply.raw)
    assert reply.to_message() == {"role": "assistant", "content": "Hello there!"}


def test_parse_accepts_the_prefix_in_front_and_ignores_what_follows_stop():
    text = ASSISTANT_PREFIX + "all\n<|content|>Hi<|stop|>\n<|from|>user\n<|im_end|>"
    reply = parse_assistant_reply(text)
    assert reply.valid and reply.content == "Hi"


def test_parse_one_call():
    reply = parse_assistant_reply('get_weather\n<|content|>{"city": "Seoul"}<|stop|>')
    assert reply.valid and reply.content is None
    assert reply.tool_calls == [call("get_weather", '{"city": "Seoul"}')]
    assert reply.to_message() == {"role": "assistant", "content": None,
                                  "tool_calls": [call("get_weather", '{"city": "Seoul"}')]}


def test_parse_parallel_calls_numbers_their_ids():
    reply = parse_assistant_reply(
        'get_weather\n<|content|>{"city": "Seoul"}\n'
        '<|from|>assistant\n<|recipient|>get_weather\n<|content|>{"city": "Busan"}<|stop|>')
    assert reply.valid
    assert [c["id"] for c in reply.tool_calls] == ["call_0", "call_1"]
    assert [json.loads(c["function"]["arguments"])["city"] for c in reply.tool_calls] == ["Seoul", "Busan"]


def test_parse_text_then_call():
    reply = parse_assistant_reply(
        "all\n<|content|>Let me check.\n<|from|>assistant\n<|recipient|>get_weather\n"
        '<|content|>{"city": "Seoul"}<|stop|>')
    assert reply.valid and reply.content == "Let me check."
    assert reply.tool_calls[0]["function"]["name"] == "get_weather"


def test_reply_cut_off_before_stop_is_invalid_but_keeps_what_was_read():
    reply = parse_assistant_reply("all\n<|content|>The weather in Seoul is")
    assert not reply.valid and "cut off" in reply.error
    assert reply.content == "The weather in Seoul is"
    broken_call = parse_assistant_reply('get_weather\n<|content|>{"city": "Se')
    assert not broken_call.valid and broken_call.tool_calls == []
    assert "not valid JSON" in broken_call.error and "cut off" in broken_call.error


@pytest.mark.parametrize("text, phrase", [
    ("Hello, how can I help you today?", "no <|content|>"),
    ("", "no <|content|>"),
    ("junk<|from|>assistant\n<|recipient|>all\n<|content|>x<|stop|>", "no <|content|>"),
    ("<|from|>user\n<|recipient|>all\n<|content|>x<|stop|>", "expected 'assistant'"),
    ("\n<|content|>hi<|stop|>", "empty recipient"),
    ("get_weather\n<|content|>city=Seoul<|stop|>", "not valid JSON"),
    ('get_weather\n<|content|>["Seoul"]<|stop|>', "not an object"),
    ('get weather\n<|content|>{"city": "Seoul"}<|stop|>', "whitespace"),
])
def test_malformed_replies_are_invalid_with_a_readable_error(text, phrase):
    reply = parse_assistant_reply(text)
    assert isinstance(reply, ParsedReply)
    assert not reply.valid and phrase in reply.error
    assert reply.content is None and reply.tool_calls == []
    assert reply.to_message() == {"role": "assistant", "content": text}


def test_surrounding_whitespace_in_a_recipient_is_tolerated():
    reply = parse_assistant_reply(' get_weather \n<|content|>{"city": "Seoul"}<|stop|>')
    assert reply.valid and reply.tool_calls[0]["function"]["name"] == "get_weather"


def test_parser_never_raises_on_noise():
    import random

    rng = random.Random(0)
    alphabet = list("ab{}\":, \n") + FUNCTIONARY_SPECIAL_TOKENS + ["all", "assistant"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        reply = parse_assistant_reply(text)
        assert reply.valid == (reply.error is None)
    assert not parse_assistant_reply(None).valid


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_rendered_assistant_turns_parse_back_to_the_same_calls(name):
    """Round trip: render each assistant message, parse what follows its prompt, compare."""
    messages = conversation(name)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render_conversation(messages[:i], TOOLS, add_generation_prompt=True)
        full = render_conversation(messages[: i + 1], TOOLS)
        assert full.startswith(prompt)
        continuation = full[len(prompt):]  # what the model writes after the prompt
        reply = parse_assistant_reply(continuation)
        assert reply.valid, reply.error
        assert reply.content == message.get("content")
        expected = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
        got = [(c["function"]["name"], c["function"]["arguments"]) for c in reply.tool_calls]
        assert [n for n, _ in got] == [n for n, _ in expected]
        for (_, want), (_, have) in zip(expected, got, strict=True):
            assert json.loads(have) == (json.loads(want) if isinstance(want, str) else want)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_example_conversations_are_valid(name):
    validate_conversation(conversation(name), TOOLS)


def error_of(messages, tools=None, **kwargs):
    with pytest.raises(ConversationError) as info:
        validate_conversation(messages, tools, **kwargs)
    return str(info.value)


def test_empty_conversation_is_an_error():
    assert "empty" in error_of([])


def test_unknown_role_names_the_message():
    assert error_of([{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]).startswith(
        "message 1 (robot): unknown role 'robot'")


def test_tool_call_without_a_result_before_the_next_message():
    messages = conversation("single_call")
    del messages[3]  # the tool result
    assert error_of(messages).startswith("message 3 (assistant): the tool call(s) 'get_weather' (id call_0) "
                                         "have no tool result")


def test_a_conversation_may_end_waiting_for_the_tool():
    validate_conversation(conversation("single_call")[:3], TOOLS)


def test_tool_result_without_a_matching_call():
    messages = conversation("single_call")
    messages[3]["tool_call_id"] = "call_9"
    assert error_of(messages).startswith("message 3 (tool): tool result with id 'call_9' does not answer")
    orphan = [{"role": "user", "content": "hi"},
              {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": "{}"}]
    assert "does not answer any pending tool call" in error_of(orphan)


def test_results_without_ids_are_matched_by_name():
    messages = conversation("single_call")
    del messages[3]["tool_call_id"]
    validate_conversation(messages, TOOLS)
    del messages[2]["tool_calls"][0]["id"]
    messages[3]["tool_call_id"] = "call_x"  # an id the call never had
    validate_conversation(messages, TOOLS)


def test_tool_result_named_differently_from_its_call():
    messages = conversation("single_call")
    messages[3]["name"] = "send_email"
    assert "named 'send_email' but answers a call to 'get_weather'" in error_of(messages)


def test_tool_message_without_a_name():
    messages = conversation("single_call")
    del messages[3]["name"]
    assert error_of(messages).startswith("message 3 (tool): a tool result needs the function's 'name'")


def test_arguments_that_are_not_json_or_not_an_object():
    messages = conversation("single_call")
    messages[2]["tool_calls"][0]["function"]["arguments"] = "{city: Seoul}"
    assert error_of(messages).startswith("message 2 (assistant): tool call 'get_weather' has arguments "
                                         "that are not valid JSON")
    messages[2]["tool_calls"][0]["function"]["arguments"] = '"Seoul"'
    assert "JSON but not an object" in error_of(messages)


def test_call_to_a_tool_that_is_not_offered():
    messages = conversation("single_call")
    assert "calls 'get_weather', which is not one of the tools (send_email)" in error_of(
        messages, [TOOLS[1]])
    validate_conversation(messages)  # without tools there is nothing to check against
    validate_conversation(messages, [TOOLS[1]], check_tool_names=False)


def test_calls_to_tools_outside_the_list_still_render():
    """Rejected trajectories of Table-1 rows 9 and 10 call a tool the list lacks, on purpose."""
    text = render_conversation(conversation("single_call"), [TOOLS[1]])
    assert "<|recipient|>get_weather\n" in text and "type get_weather" not in text


def test_final_assistant_turn_can_be_required():
    messages = conversation("single_call")[:4]
    assert error_of(messages, require_final_assistant=True).startswith(
        "message 3 (tool): the conversation must end with an assistant message")
    validate_conversation(conversation("single_call"), require_final_assistant=True)


def test_assistant_message_needs_content_or_calls():
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]
    assert error_of(messages).startswith("message 1 (assistant): an assistant message needs content")


def test_reserved_markers_in_content_are_rejected():
    messages = [{"role": "user", "content": f"say {STOP_TOKEN}"}]
    assert error_of(messages).startswith("message 0 (user): content contains the reserved marker <|stop|>")


def test_non_text_content_is_rejected():
    assert error_of([{"role": "user", "content": ["hi"]}]).startswith("message 0 (user): content must be text")


def test_malformed_tools_are_named():
    assert error_of([{"role": "user", "content": "hi"}], [{"type": "function"}]).startswith("tool 0:")


def test_render_validates_first():
    with pytest.raises(ConversationError, match="message 0"):
        render_conversation([{"role": "bot", "content": "hi"}])


def test_markers_are_the_functionary_strings():
    assert FUNCTIONARY_SPECIAL_TOKENS == [FROM_TOKEN, RECIPIENT_TOKEN, CONTENT_TOKEN, STOP_TOKEN] == [
        "<|from|>", "<|recipient|>", "<|content|>", "<|stop|>"]
