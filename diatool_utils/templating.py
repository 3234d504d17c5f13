"""Functionary v2 templating: tools as TypeScript, conversations as text, replies back to calls.

Every message becomes one block (docs/method.md, "The Functionary v2 template")::

    system / user:      <|from|>{role}\\n<|recipient|>all\\n<|content|>{text}\\n
    tool result:        <|from|>{tool name}\\n<|recipient|>all\\n<|content|>{result}\\n
    assistant text:     <|from|>assistant\\n<|recipient|>all\\n<|content|>{text}<|stop|>\\n
    assistant call(s):  <|from|>assistant\\n<|recipient|>{function}\\n<|content|>{json arguments}<|stop|>\\n

Parallel calls are joined by "\\n" and one ``<|stop|>`` ends the whole assistant message; text
that comes with calls goes first, as an ``all`` block. The model is prompted with
``ASSISTANT_PREFIX`` and writes the rest of the turn: the recipient ("all" or a function
name), the content, and ``<|stop|>``.

    text = render_conversation(messages, tools, add_generation_prompt=True)
    reply = parse_assistant_reply(generated_text)      # never raises; reply.valid, reply.error
    add_functionary_tokens(tokenizer, model)           # once, before tokenizing or training

The four markers are added to the tokenizer as special tokens, so decode generated ids with
``skip_special_tokens=False`` before parsing them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from .zero3 import embedding_rows, gathered

FROM_TOKEN = "<|from|>"
RECIPIENT_TOKEN = "<|recipient|>"
CONTENT_TOKEN = "<|content|>"
STOP_TOKEN = "<|stop|>"
FUNCTIONARY_SPECIAL_TOKENS = [FROM_TOKEN, RECIPIENT_TOKEN, CONTENT_TOKEN, STOP_TOKEN]

ASSISTANT_PREFIX = f"{FROM_TOKEN}assistant\n{RECIPIENT_TOKEN}"  # also the generation prompt
TEXT_RECIPIENT = "all"  # the recipient of a message meant for people, not for a function

DEFAULT_SYSTEM_PROMPT = (
    "A conversation between a user and a helpful assistant. The assistant can call the "
    "functions defined above, with arguments in JSON, when the request needs them; "
    "otherwise it answers in plain language."
)

TOOLS_HEADER = "// Supported function definitions that should be called when necessary."

ROLES = ("system", "user", "assistant", "tool")


# ---------------------------------------------------------------------------------------------
# 1. Tools -> TypeScript
# ---------------------------------------------------------------------------------------------

_NOTES = [  # JSON-schema keyword -> how the note reads in the comment
    ("default", "Default"),
    ("format", "Format"),
    ("minimum", "Minimum"),
    ("maximum", "Maximum"),
    ("exclusiveMinimum", "Exclusive minimum"),
    ("exclusiveMaximum", "Exclusive maximum"),
    ("minLength", "Minimum length"),
    ("maxLength", "Maximum length"),
    ("minItems", "Minimum items"),
    ("maxItems", "Maximum items"),
    ("pattern", "Pattern"),
]


def _function_of(tool: dict) -> dict:
    """The ``function`` part of an OpenAI tool; a bare ``{"name", "parameters"}`` is accepted too."""
    return tool["function"] if "function" in tool else tool


def _type_name(schema: dict, indent: int) -> str:
    """TypeScript type of a JSON schema; nested objects are written over several lines."""
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        names = [json.dumps(value, ensure_ascii=False) for value in schema["enum"]]
        if schema.get("nullable") and None not in schema["enum"]:
            names.append("null")
        return " | ".join(names) or "any"
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            names = []
            for option in schema[key]:
                name = _type_name(option, indent)
                if name not in names:
                    names.append(name)
            return " | ".join(names) or "any"
    kinds = schema.get("type", "any")
    kinds = list(kinds) if isinstance(kinds, list) else [kinds]
    if schema.get("nullable") and "null" not in kinds:
        kinds.append("null")
    names = []
    for kind in kinds:
        name = _single_type_name(kind, schema, indent)
        if name not in names:
            names.append(name)
    return " | ".join(names)


def _single_type_name(kind: str, schema: dict, indent: int) -> str:
    if kind in ("integer", "number"):
        return "number"
    if kind in ("string", "boolean", "null"):
        return kind
    if kind == "array":
        item = _type_name(schema.get("items", {}), indent)
        return f"({item})[]" if "|" in item and not item.endswith("}") else f"{item}[]"
    if kind == "object":
        if not schema.get("properties"):
            return "object"
        body = _object_fields(schema, indent + 1)
        return "{\n" + body + "  " * indent + "}"
    return "any"


def _comment(schema: dict, indent: int) -> str:
    """``// description Default=... Format=...`` lines, or "" when there is nothing to say."""
    parts = []
    description = str(schema.get("description", "")).strip()
    if description:
        parts.append(description)
    notes = []
    for key, label in _NOTES:
        if key in schema:
            value = schema[key]
            shown = json.dumps(value, ensure_ascii=False) if key == "default" else value
            notes.append(f"{label}={shown}.")
    if parts and notes and not parts[0].endswith((".", "!", "?")):
        parts[0] += "."
    parts += notes
    if not parts:
        return ""
    pad = "  " * indent
    return "".join(f"{pad}// {line}\n" for line in " ".join(parts).splitlines())


def _field_name(name: str) -> str:
    return name if name.isidentifier() else json.dumps(name, ensure_ascii=False)


def _object_fields(schema: dict, indent: int) -> str:
    """One ``name?: type,`` line per property (``?`` when not required), each after its comment."""
    required = set(schema.get("required", []))
    pad = "  " * indent
    lines = []
    for name, prop in schema.get("properties", {}).items():
        prop = prop if isinstance(prop, dict) else {}
        optional = "" if name in required else "?"
        lines.append(_comment(prop, indent))
        lines.append(f"{pad}{_field_name(name)}{optional}: {_type_name(prop, indent)},\n")
    return "".join(lines)


def _function_to_typescript(function: dict) -> str:
    name = function["name"]
    description = str(function.get("description", "")).strip()
    comment = "".join(f"// {line}\n" for line in description.splitlines())
    parameters = function.get("parameters") or {}
    if not parameters.get("properties"):
        return f"{comment}type {name} = () => any;\n"
    return f"{comment}type {name} = (_: {{\n{_object_fields(parameters, 0)}}}) => any;\n"


def tools_to_typescript(tools: list[dict] | None) -> str:
    """The tools as Functionary's ``namespace functions { ... }`` system message.

    Example: ``{"name": "get_weather", "parameters": {"type": "object", "properties":
    {"city": {"type": "string"}}, "required": ["city"]}}`` becomes
    ``type get_weather = (_: {\\ncity: string,\\n}) => any;`` inside the namespace.
    An empty or missing tool list gives an empty namespace.
    """
    return _tools_to_typescript_cached(json.dumps(tools or [], ensure_ascii=False))


@lru_cache(maxsize=256)
def _tools_to_typescript_cached(tools_json: str) -> str:
    # Cached on the JSON text: thousands of conversations share a handful of tool lists.
    tools = json.loads(tools_json)
    blocks = [_function_to_typescript(_function_of(tool)) for tool in tools]
    return TOOLS_HEADER + "\nnamespace functions {\n\n" + "\n".join(blocks) + "\n} // namespace functions"


# ---------------------------------------------------------------------------------------------
# 2. Validation
# ---------------------------------------------------------------------------------------------


class ConversationError(ValueError):
    """A conversation that can't be rendered; the message names the message index and role."""


def _fail(index: int, message: dict | None, problem: str) -> None:
    role = message.get("role", "?") if isinstance(message, dict) else "?"
    raise ConversationError(f"message {index} ({role}): {problem}")


def _arguments_object(arguments, index, message, name) -> dict:
    """Arguments of a tool call as a dict; JSON text must parse to an object."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str):
        _fail(index, message, f"tool call '{name}' has arguments of type {type(arguments).__name__}; "
                              "use JSON text or a dict")
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as error:
        _fail(index, message, f"tool call '{name}' has arguments that are not valid JSON ({error}): "
                              f"{arguments[:80]!r}")
    if not isinstance(value, dict):
        _fail(index, message, f"tool call '{name}' has arguments that are JSON but not an object: "
                              f"{arguments[:80]!r}")
    return value


def _tool_names(tools) -> set[str]:
    names = set()
    for position, tool in enumerate(tools):
        function = _function_of(tool) if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ConversationError(f"tool {position}: expected {{'type': 'function', 'function': "
                                    f"{{'name': ..., 'parameters': ...}}}}, got {str(tool)[:80]!r}")
        names.add(function["name"])
    return names


def _check_text(index: int, message: dict, text) -> None:
    for token in FUNCTIONARY_SPECIAL_TOKENS:
        if token in text:
            _fail(index, message, f"content contains the reserved marker {token}, which would break "
                                  "the template; remove it from the data")


def validate_conversation(messages: list[dict], tools: list[dict] | None = None, *,
                          require_final_assistant: bool = False, check_tool_names: bool = True) -> None:
    """Raise ``ConversationError`` naming the first bad message; return None if all is well.

    Checked: a non-empty list of messages with known roles and text content; assistant messages
    have content or tool calls; every call names a function (one of ``tools`` when tools are
    given) with arguments that are a JSON object; every tool result answers an earlier call
    (by ``tool_call_id``, else by name) and carries the function's ``name``; calls are
    answered before the conversation goes on. A conversation may end with unanswered calls
    (the assistant is waiting for the tool). With ``require_final_assistant`` the last
    message must be the assistant's. ``check_tool_names=False`` skips only the check that
    called functions are among ``tools`` (rendering uses that: a rejected trajectory may call
    a tool the list lacks, on purpose).
    """
    if not isinstance(messages, list) or not messages:
        raise ConversationError("the conversation is empty: expected a list with at least one message")
    known_tools = _tool_names(tools) if tools else None
    if not check_tool_names:
        known_tools = None
    pending: list[tuple[str | None, str]] = []  # calls (id, name) still waiting for a result
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ConversationError(f"message {index}: expected a dict with 'role', got {str(message)[:80]!r}")
        role = message.get("role")
        if role not in ROLES:
            _fail(index, message, f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        content = message.get("content")
        if role != "tool" and pending:
            missing = ", ".join(f"'{name}'" + (f" (id {call_id})" if call_id else "") for call_id, name in pending)
            _fail(index, message, f"the tool call(s) {missing} have no tool result before this message; "
                                  "add a {'role': 'tool', 'tool_call_id', 'name', 'content'} message for each")
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if content is not None and not isinstance(content, str):
                _fail(index, message, f"content must be text or None, got {type(content).__name__}")
            if not calls and not content:
                _fail(index, message, "an assistant message needs content or tool_calls")
            if content:
                _check_text(index, message, content)
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                name = function.get("name") if isinstance(function, dict) else None
                if not isinstance(name, str) or not name:
                    _fail(index, message, f"tool call without a function name: {str(call)[:80]!r}")
                if any(ch.isspace() for ch in name) or any(t in name for t in FUNCTIONARY_SPECIAL_TOKENS):
                    _fail(index, message, f"tool call name {name!r} contains whitespace or a reserved marker")
                if known_tools is not None and name not in known_tools:
                    _fail(index, message, f"calls '{name}', which is not one of the tools "
                                          f"({', '.join(sorted(known_tools)) or 'none'})")
                _arguments_object(function.get("arguments", "{}"), index, message, name)
                pending.append((call.get("id"), name))
        else:
            if not isinstance(content, str):
                _fail(index, message, f"content must be text, got {type(content).__name__}")
            _check_text(index, message, content)
        if role == "tool":
            name = message.get("name")
            if not isinstance(name, str) or not name.strip():
                _fail(index, message, "a tool result needs the function's 'name' (the template writes "
                                      "<|from|>{name}); copy it from the matching tool call")
            call_id = message.get("tool_call_id")
            match = [i for i, (pid, _) in enumerate(pending) if call_id is not None and pid == call_id]
            if not match:  # no id to go by (on the result or on the calls): the first call of that name
                match = [i for i, (pid, pname) in enumerate(pending)
                         if pname == name and (call_id is None or pid is None)]
            if not match:
                wanted = f"id {call_id!r}" if call_id is not None else f"name {name!r}"
                _fail(index, message, f"tool result with {wanted} does not answer any pending tool call")
            if pending[match[0]][1] != name:
                _fail(index, message, f"tool result is named '{name}' but answers a call to "
                                      f"'{pending[match[0]][1]}'")
            pending.pop(match[0])
    if require_final_assistant and messages[-1].get("role") != "assistant":
        _fail(len(messages) - 1, messages[-1], "the conversation must end with an assistant message")


# ---------------------------------------------------------------------------------------------
# 3. Rendering
# ---------------------------------------------------------------------------------------------


def _arguments_text(arguments) -> str:
    """JSON text as written in the data (kept verbatim), or a dict dumped without ASCII escapes."""
    if isinstance(arguments, str):
        return arguments.strip()
    return json.dumps(arguments, ensure_ascii=False)


def render_segments(messages: list[dict], tools: list[dict] | None = None, *,
                    add_generation_prompt: bool = False, validate: bool = True) -> list[tuple[str, int]]:
    """The rendered conversation as ``(text, turn)`` pieces that split at every special token.

    ``turn`` is -1 for context (system, user, tool messages, the ``ASSISTANT_PREFIX`` of each
    assistant message and the "\\n" after its ``<|stop|>``) and 0, 1, ... for the tokens that
    assistant message number ``turn`` is trained on: from the recipient through ``<|stop|>``.
    Each special token is a piece of its own, so tokenizing the pieces one by one gives the
    same ids as tokenizing ``"".join(texts)`` (``masking.tokenize_conversation`` relies on it).
    """
    if validate:  # structure only: calls to tools outside the list render like any other call
        validate_conversation(messages, tools, check_tool_names=False)
    pieces: list[tuple[str, int]] = []

    def block(sender: str, recipient: str, content: str, turn: int) -> None:
        pieces.extend([(FROM_TOKEN, turn), (f"{sender}\n", turn), (RECIPIENT_TOKEN, turn),
                       (f"{recipient}\n", turn), (CONTENT_TOKEN, turn)])
        if content:
            pieces.append((content, turn))

    block("system", TEXT_RECIPIENT, tools_to_typescript(tools) + "\n", -1)
    block("system", TEXT_RECIPIENT, DEFAULT_SYSTEM_PROMPT + "\n", -1)
    turn = 0
    for message in messages:
        role = message["role"]
        if role in ("system", "user"):
            block(role, TEXT_RECIPIENT, message["content"] + "\n", -1)
        elif role == "tool":
            block(message["name"].strip(), TEXT_RECIPIENT, message["content"] + "\n", -1)
        else:
            pieces.extend([(FROM_TOKEN, -1), ("assistant\n", -1), (RECIPIENT_TOKEN, -1)])
            start = len(pieces)
            calls = message.get("tool_calls") or []
            if message.get("content"):
                block("assistant", TEXT_RECIPIENT, message["content"] + ("\n" if calls else ""), turn)
            for i, call in enumerate(calls):
                args = _arguments_text(call["function"].get("arguments", "{}"))
                block("assistant", call["function"]["name"], args + ("\n" if i < len(calls) - 1 else ""), turn)
            del pieces[start:start + 3]  # the first block's prefix is the untrained prompt above
            pieces.extend([(STOP_TOKEN, turn), ("\n", -1)])
            turn += 1
    if add_generation_prompt:
        pieces.extend([(FROM_TOKEN, -1), ("assistant\n", -1), (RECIPIENT_TOKEN, -1)])
    return pieces


def render_conversation(messages: list[dict], tools: list[dict] | None = None, *,
                        add_generation_prompt: bool = False) -> str:
    """The whole conversation as Functionary v2 text.

    The tools' TypeScript namespace is the first system message, ``DEFAULT_SYSTEM_PROMPT``
    the second, then the conversation's own messages. With ``add_generation_prompt`` the
    text ends with ``ASSISTANT_PREFIX`` so a model continues with the next assistant turn.
    Raises ``ConversationError`` for a malformed conversation (see ``validate_conversation``);
    a call to a function that is not in ``tools`` is rendered, not refused, because rejected
    trajectories of the paper's rows 9 and 10 make exactly that mistake.
    """
    return "".join(text for text, _ in render_segments(messages, tools, add_generation_prompt=add_generation_prompt))


# ---------------------------------------------------------------------------------------------
# 4. Special tokens
# ---------------------------------------------------------------------------------------------


def missing_functionary_tokens(tokenizer) -> list[str]:
    """The Functionary markers that are not single tokens of ``tokenizer`` yet."""
    missing = []
    for token in FUNCTIONARY_SPECIAL_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id or tokenizer.convert_ids_to_tokens(token_id) != token:
            missing.append(token)
    return missing


def add_functionary_tokens(tokenizer, model=None) -> int:
    """Add the four markers as special tokens; grow the model's embeddings to match.

    New embedding rows (input, and output when it is not tied to the input) are set to the
    mean of the rows that existed before, so the new tokens start as an "average" token
    rather than noise. Idempotent: a second call adds nothing and changes no weights.
    Returns the number of tokens added to the tokenizer.
    """
    from tokenizers import AddedToken

    vocab_before = len(tokenizer)
    missing = missing_functionary_tokens(tokenizer)
    added = 0
    if missing:
        added = tokenizer.add_special_tokens(
            {"extra_special_tokens": [AddedToken(t, special=True, normalized=False) for t in missing]},
            replace_extra_special_tokens=False,
        )
    if model is not None:
        _grow_embeddings(model, tokenizer, vocab_before if added else None)
    return added


@torch.no_grad()
def _grow_embeddings(model, tokenizer, vocab_before: int | None) -> None:
    """Resize to fit the tokenizer; rows of the markers that are new get the old rows' mean."""
    marker_ids = tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
    rows_before = embedding_rows(model.get_input_embeddings().weight)
    if max(marker_ids) >= rows_before:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    # Rows to set: markers beyond the old matrix, plus markers added just now (a model whose
    # matrix was already larger than the vocabulary keeps unused rows there).
    fresh = [i for i in marker_ids if i >= rows_before or (vocab_before is not None and i >= vocab_before)]
    if not fresh:
        return
    known = min(rows_before, vocab_before if vocab_before is not None else rows_before)
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not matrices[0]:  # an untied head has its own rows
        matrices.append(output.weight)
    with gathered(matrices):  # under ZeRO-3 each process holds a slice: edit the whole matrix
        for weight in matrices:
            weight[fresh] = weight[:known].float().mean(dim=0).to(weight.dtype)


def functionary_token_ids(tokenizer) -> dict[str, int]:
    """Ids of the four markers; raises a clear error if ``add_functionary_tokens`` was not called."""
    missing = missing_functionary_tokens(tokenizer)
    if missing:
        raise ValueError(
            f"the tokenizer has no special token(s) {', '.join(missing)}: call "
            "diatool_utils.templating.add_functionary_tokens(tokenizer, model) once before "
            "tokenizing, training or generating (it also resizes the model's embeddings)"
        )
    return dict(zip(FUNCTIONARY_SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS),
                    strict=True))


# ---------------------------------------------------------------------------------------------
# 5. Parsing a generated reply
# ---------------------------------------------------------------------------------------------

_TRAILING_MARKERS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>")


@dataclass
class ParsedReply:
    """A generated assistant turn read back into OpenAI form.

    ``valid`` is False, with a readable ``error``, when the text does not follow the template;
    then ``content`` and ``tool_calls`` hold what could be read (a reply cut off before
    ``<|stop|>`` keeps its blocks; other errors leave them empty). ``raw`` is the input text.
    """

    content: str | None
    tool_calls: list[dict] = field(default_factory=list)
    valid: bool = True
    error: str | None = None
    raw: str = ""

    def to_message(self) -> dict:
        """An OpenAI assistant message. An invalid reply becomes a text reply with the raw text."""
        if not self.valid and not self.tool_calls and self.content is None:
            return {"role": "assistant", "content": self.raw}
        message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [dict(call, function=dict(call["function"])) for call in self.tool_calls]
        return message


def _invalid(raw: str, error: str) -> ParsedReply:
    return ParsedReply(content=None, tool_calls=[], valid=False, error=error, raw=raw)


def _parse_block(block: str, position: int) -> tuple[str, str]:
    """``assistant\\n<|recipient|>{name}\\n<|content|>{content}`` -> (recipient, content)."""
    head, sep, content = block.partition(CONTENT_TOKEN)
    sender, has_recipient, recipient = head.partition(RECIPIENT_TOKEN)
    if not has_recipient:
        raise ValueError(f"block {position} has no {RECIPIENT_TOKEN}: {block[:60]!r}")
    if not sep:
        raise ValueError(f"block {position} is not 'recipient\\n{CONTENT_TOKEN}...': no {CONTENT_TOKEN} "
                         f"after {recipient[:60]!r}")
    if sender.strip() != "assistant":
        raise ValueError(f"block {position} is from {sender.strip()!r}, expected 'assistant'")
    recipient = recipient.strip()
    if not recipient:
        raise ValueError(f"block {position} has an empty recipient")
    if any(ch.isspace() for ch in recipient) or STOP_TOKEN in recipient:
        raise ValueError(f"block {position} has recipient {recipient!r}, which is not a function "
                         "name (it contains whitespace)")
    return recipient, content


def parse_assistant_reply(text: str) -> ParsedReply:
    """Read a generated assistant turn into ``{content, tool_calls}``; never raises.

    ``text`` is what the model wrote after ``ASSISTANT_PREFIX`` (decoded with
    ``skip_special_tokens=False``), with or without that prefix in front. Anything after the
    first ``<|stop|>`` is ignored. Recipient ``all`` is text; any other recipient is a call
    whose content must be a JSON object (checked with ``json.loads``). Tool calls come back
    as ``{"id": "call_0", "type": "function", "function": {"name", "arguments": JSON text}}``.
    """
    raw = text
    if not isinstance(text, str):
        return _invalid(str(text), f"expected text, got {type(text).__name__}")
    body, stop, _ = text.partition(STOP_TOKEN)
    cut_off = not stop
    if cut_off:
        body = body.rstrip()
        for marker in _TRAILING_MARKERS:
            body = body.removesuffix(marker)
    if not body.lstrip().startswith(FROM_TOKEN):
        body = ASSISTANT_PREFIX + body
    before, *blocks = body.split(FROM_TOKEN)
    if before.strip():
        return _invalid(raw, f"text before the first {FROM_TOKEN}: {before[:60]!r}")
    texts, calls = [], []
    try:
        for position, block in enumerate(blocks):
            recipient, content = _parse_block(block, position)
            if position < len(blocks) - 1:
                content = content.removesuffix("\n")  # the "\n" that joins blocks
            if recipient == TEXT_RECIPIENT:
                texts.append(content)
                continue
            try:
                arguments = json.loads(content)
            except json.JSONDecodeError as error:
                raise ValueError(f"the arguments of '{recipient}' are not valid JSON ({error}): "
                                 f"{content[:80]!r}") from None
            if not isinstance(arguments, dict):
                raise ValueError(f"the arguments of '{recipient}' are JSON but not an object: {content[:80]!r}")
            calls.append({"id": f"call_{len(calls)}", "type": "function",
                          "function": {"name": recipient, "arguments": content.strip()}})
    except ValueError as error:
        return _invalid(raw, f"{error}" + (f" (and no {STOP_TOKEN}: cut off?)" if cut_off else ""))
    content = "\n".join(texts) if texts else None
    if cut_off:
        return ParsedReply(content, calls, valid=False, raw=raw,
                           error=f"the reply was cut off before {STOP_TOKEN} (generation hit its length limit?)")
    return ParsedReply(content, calls, valid=True, error=None, raw=raw)
