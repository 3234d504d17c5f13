"""Example tools and conversations for tests (importable: ``from conversations import ...``).

Each conversation is OpenAI style (see the project brief) and covers one shape the template
must handle: a text reply, a single call, parallel calls, text before a call, and a
multi-round slot-filling dialogue (Type 2).
"""

import copy

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Seoul."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            },
            "required": ["city"],
        },
    },
}

SEND_EMAIL = {
    "type": "function",
    "function": {
        "name": "send_email",
        "description": "Send an e-mail",
        "parameters": {
            "type": "object",
            "properties": {
                "to": {"type": "string", "description": "Recipient address", "format": "email"},
                "subject": {"type": "string"},
                "body": {"type": "string"},
            },
            "required": ["to", "subject", "body"],
        },
    },
}

CURRENT_TIME = {
    "type": "function",
    "function": {"name": "get_current_time", "description": "The time now, as ISO 8601."},
}

TOOLS = [WEATHER, SEND_EMAIL, CURRENT_TIME]


def call(name, arguments, call_id="call_0"):
    """One OpenAI-style tool call; ``arguments`` is JSON text."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


TEXT_REPLY = [
    {"role": "user", "content": "Hello! Who are you?"},
    {"role": "assistant", "content": "I am an assistant that can check the weather and send e-mails."},
]

DECLINE = [
    {"role": "user", "content": "Book me a table for two tonight."},
    {"role": "assistant", "content": "Sorry, I can't book restaurants with the tools I have."},
]

SINGLE_CALL = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What's the weather in Seoul?"},
    {"role": "assistant", "content": None,
     "tool_calls": [call("get_weather", '{"city": "Seoul"}')]},
    {"role": "tool", "tool_call_id": "call_0", "name": "get_weather",
     "content": '{"temperature": 21, "condition": "sunny"}'},
    {"role": "assistant", "content": "It is sunny and 21 °C in Seoul."},
]

PARALLEL_CALLS = [
    {"role": "user", "content": "Weather in Seoul and in Busan, in fahrenheit please."},
    {"role": "assistant", "content": None, "tool_calls": [
        call("get_weather", '{"city": "Seoul", "unit": "fahrenheit"}', "call_0"),
        call("get_weather", '{"city": "Busan", "unit": "fahrenheit"}', "call_1"),
    ]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": '{"temperature": 75}'},
    {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": '{"temperature": 70}'},
    {"role": "assistant", "content": "Seoul is 70 °F and Busan is 75 °F."},
]

TEXT_THEN_CALL = [
    {"role": "user", "content": "서울 날씨 알려줘"},
    {"role": "assistant", "content": "서울 날씨를 확인해 볼게요.",
     "tool_calls": [call("get_weather", {"city": "서울"})]},  # arguments given as a dict
    {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": '{"temperature": 18}'},
    {"role": "assistant", "content": "서울은 지금 18도예요."},
]

SLOT_FILLING = [  # Type 2: two slot-filling rounds, then the call and the completion
    {"role": "user", "content": "Please send an e-mail for me."},
    {"role": "assistant", "content": "Sure. Who should receive it?"},
    {"role": "user", "content": "kim@example.com"},
    {"role": "assistant", "content": "What should the subject and the message be?"},
    {"role": "user", "content": "Subject 'Lunch', and say: see you at noon."},
    {"role": "assistant", "content": None, "tool_calls": [
        call("send_email", '{"to": "kim@example.com", "subject": "Lunch", "body": "See you at noon."}')]},
    {"role": "tool", "tool_call_id": "call_0", "name": "send_email", "content": '{"status": "sent"}'},
    {"role": "assistant", "content": "Done: the e-mail to kim@example.com was sent."},
]

NO_ARGUMENT_CALL = [
    {"role": "user", "content": "What time is it?"},
    {"role": "assistant", "content": None, "tool_calls": [call("get_current_time", "{}")]},
]

CONVERSATIONS = {
    "text_reply": TEXT_REPLY,
    "decline": DECLINE,
    "single_call": SINGLE_CALL,
    "parallel_calls": PARALLEL_CALLS,
    "text_then_call": TEXT_THEN_CALL,
    "slot_filling": SLOT_FILLING,
    "no_argument_call": NO_ARGUMENT_CALL,
}

# The exact text each assistant turn is trained on: from the recipient through <|stop|>.
EXPECTED_TURN_TEXTS = {
    "text_reply": ["all\n<|content|>I am an assistant that can check the weather and send e-mails.<|stop|>"],
    "decline": ["all\n<|content|>Sorry, I can't book restaurants with the tools I have.<|stop|>"],
    "single_call": [
        'get_weather\n<|content|>{"city": "Seoul"}<|stop|>',
        "all\n<|content|>It is sunny and 21 °C in Seoul.<|stop|>",
    ],
    "parallel_calls": [
        'get_weather\n<|content|>{"city": "Seoul", "unit": "fahrenheit"}\n'
        '<|from|>assistant\n<|recipient|>get_weather\n<|content|>{"city": "Busan", "unit": "fahrenheit"}<|stop|>',
        "all\n<|content|>Seoul is 70 °F and Busan is 75 °F.<|stop|>",
    ],
    "text_then_call": [
        'all\n<|content|>서울 날씨를 확인해 볼게요.\n<|from|>assistant\n<|recipient|>get_weather\n'
        '<|content|>{"city": "서울"}<|stop|>',
        "all\n<|content|>서울은 지금 18도예요.<|stop|>",
    ],
    "slot_filling": [
        "all\n<|content|>Sure. Who should receive it?<|stop|>",
        "all\n<|content|>What should the subject and the message be?<|stop|>",
        'send_email\n<|content|>{"to": "kim@example.com", "subject": "Lunch", "body": "See you at noon."}<|stop|>',
        "all\n<|content|>Done: the e-mail to kim@example.com was sent.<|stop|>",
    ],
    "no_argument_call": ["get_current_time\n<|content|>{}<|stop|>"],
}


def conversation(name):
    """A fresh deep copy, so a test may modify it."""
    return copy.deepcopy(CONVERSATIONS[name])
