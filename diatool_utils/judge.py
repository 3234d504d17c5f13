"""A rule-based judge for FunctionChat-Bench "Dialog" turns: call, completion, slot, relevance.

The benchmark's authors judge each generated turn with GPT-4 and a rubric per output type.
We have no API model, so this module writes each rubric as a few explicit rules over the
parsed reply. Every rule returns ``(passed, reason)``; the reason says which rule decided.

    call        a tool call; the right function; argument keys exactly the ground truth's;
                every value of its declared JSON-schema type and equal to the ground truth
                or to an ``acceptable_arguments`` alternative.
    completion  no tool call; every *key value* of the tool result appears in the reply.
    slot        no tool call; the reply asks a question and names every missing argument.
    relevance   no tool call; the reply declines (or chats) and does not claim an action.

What the rules can tell (and so what a score from them means):

- call: everything the rubric asks, except *semantic* equivalence of free-text values.
  Strings match after case-folding and collapsing whitespace; numbers match numerically
  (3 == 3.0) but a parameter declared ``integer`` needs a JSON integer (the rubric fails a
  float there); booleans match only booleans; lists and objects match element by element.
  ``"Only ground truth is allowed."`` turns off the string normalisation for that turn.
  ``acceptable_arguments`` given as a JSON object (or its JSON text) adds alternatives per
  key (a list = several alternatives); free-text notes can't be read and are ignored (the
  reason says so).
- completion: the key values are the tool result's scalar leaves (numbers, and strings of at
  most 3 words / 40 characters) that also appear in the ground-truth completion, i.e. the
  facts the reference answer chose to report. *All* of them must appear in the reply
  (numbers compared as numbers, so "12,300" matches 12300). Booleans and long strings are
  never required. When the reference reports none of the leaves (e.g. a time rephrased as
  "7 pm"), any non-empty text passes: the rule can't check meaning, only presence.
- slot: "asks" = a question mark or a request phrase ("please provide", "could you", Korean
  "알려 주세요" ...). "Names an argument" = a word that singles it out: from its name
  (``recipient_email`` -> "recipient") or its description, minus words another parameter or
  the function itself also uses and minus example values ("e.g. Lisbon"), matched loosely
  (plural and possessive endings ignored; substrings for Korean). When the benchmark row
  lists ``missing_arguments`` every one must be named. When they are *inferred* (the original
  benchmark has no such key, see :func:`infer_missing_arguments`) the set may include a value
  the user already gave in other words, so naming at least one suffices. When nothing can be
  inferred, only "asks a question and makes no call" is checked. A reply that claims to have
  acted ("I have booked ...") fails; one that promises to ("I'll book it once ...") does not.
- relevance: a tool call fails; a claim or promise of action ("I have booked", "successfully",
  "I'll order it", Korean "예약했습니다") fails; a decline phrase ("I can't", "not able", "죄송",
  "할 수 없습니다") passes; asking for details without declining ("what is the city?", "I need
  the date", "I can play podcasts for you; ...") fails, since it starts slot-filling for a
  request no tool serves; any other reply passes as small talk or a direct answer, unless the
  gold reply itself declines: then the request wants an action no tool takes, and a reply that
  neither declines nor asks ("I can book 3 seats on the harbor cruise", "Ivan Lopez will receive
  your lilies", a made-up answer) fails too. Only the benchmark's small-talk turns, whose gold
  reply chats, accept a reply without a decline.

Checked on the synthetic data (``synthetic.generate_eval`` / ``generate_pairs``): every one
of the 199 gold eval turns passes, rendered and parsed back; the first rejected turn of
Table-1 rows 5, 6, 8, 9 and 10 always fails (600 pairs, seed 2) and of row 7 (asks for too
few values) 58 of 60.

What the rules cannot tell: paraphrases and translations ("New York" vs "뉴욕" unless listed
as acceptable; "female" vs "여자"), whether a completion distorts a value it does mention,
whether a slot question re-asks a value the user already gave, arguments told apart only by
a stopword (``from_currency`` / ``to_currency``), synonyms absent from the schema ("payee"
for ``recipient``), and whether small talk is sensible. The phrase lists are English plus a few Korean endings; other languages get only the
structural checks (call / no call, question mark). For those judgements pass ``judge=`` to
:func:`diatool_utils.evaluation.evaluate`: any callable ``judge(case, parsed) -> (bool, str)``
with the signature of :func:`judge_case`, e.g. one that sends the benchmark's GPT-4 rubric
to an API model.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

OUTPUT_TYPES = ("call", "completion", "slot", "relevance")
ONLY_GROUND_TRUTH = "only ground truth is allowed"

Verdict = tuple[bool, str]
Judge = Callable[["EvalCase", Any], Verdict]


@dataclass
class EvalCase:
    """One judged turn: the gold history (``query``) and what the next assistant turn should be.

    ``missing_source`` says where ``missing_arguments`` came from: ``"row"`` (the benchmark row
    lists them), ``"inferred"`` (:func:`infer_missing_arguments`) or ``"unknown"``.
    """

    dialog_num: int
    serial_num: int
    turn_num: int
    type_of_output: str
    tools: list[dict]
    query: list[dict]
    ground_truth: dict
    acceptable_arguments: Any = None
    missing_arguments: list[str] | None = None
    missing_source: str = "unknown"
    line: int | None = None


# ---------------------------------------------------------------------------- text helpers


def normalise_text(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed, thousands separators dropped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    return re.sub(r"\s+", " ", text).strip()


_NUMBER = re.compile(r"(?:(?<![0-9a-z])-)?\d+(?:\.\d+)?")  # "2024-05-19" is 2024, 5, 19


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` ("12,300" counts as 12300)."""
    return [float(m) for m in _NUMBER.findall(normalise_text(text))]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def mentions_value(text: str, value: Any) -> bool:
    """Whether ``value`` (a number or a string) is written in ``text``.

    Strings match as normalised substrings that are not glued to other ASCII letters or
    digits (so "success" is not found in "successfully", but "뉴욕" is found in "뉴욕과").
    """
    if isinstance(value, bool) or value is None:
        return False
    if _is_number(value):
        return any(math.isclose(n, float(value), rel_tol=1e-9, abs_tol=1e-9) for n in numbers_in(text))
    needle = normalise_text(str(value))
    if not needle:
        return False
    pattern = r"(?<![a-z0-9])" + re.escape(needle) + r"(?![a-z0-9])"
    return re.search(pattern, normalise_text(text)) is not None


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", normalise_text(text).replace("e-mail", "email"))


def _stem(word: str) -> str:
    for ending in ("'s", "ing", "ed", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


# --------------------------------------------------------------------- replies and tools


def reply_text(parsed: Any) -> str:
    """The text part of a parsed reply ("" when there is none)."""
    return (getattr(parsed, "content", None) or "").strip()


def reply_calls(parsed: Any) -> list[tuple[str, Any]]:
    """``(name, arguments)`` for each tool call of a parsed reply; JSON text arguments decoded.

    Accepts OpenAI-style calls (``{"function": {"name", "arguments"}}``), flat dicts
    (``{"name", "arguments"}``) and objects with ``.name`` / ``.arguments``. Arguments that
    are not valid JSON come back as the raw string (the call judge fails them).
    """
    calls = []
    for call in getattr(parsed, "tool_calls", None) or []:
        if isinstance(call, dict):
            body = call.get("function", call)
            name, arguments = body.get("name"), body.get("arguments")
        else:
            name, arguments = getattr(call, "name", None), getattr(call, "arguments", None)
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                pass
        calls.append((str(name), arguments))
    return calls


def message_calls(message: dict) -> list[tuple[str, Any]]:
    """:func:`reply_calls` for a message dict (a ground truth or a ``query`` message)."""
    return reply_calls(SimpleNamespace(tool_calls=message.get("tool_calls") or []))


def tool_schemas(tools: list[dict]) -> dict[str, dict]:
    """Function name -> its ``{"name", "description", "parameters"}`` dict."""
    schemas = {}
    for tool in tools:
        function = tool.get("function", tool)
        schemas[function["name"]] = function
    return schemas


def _properties(schema: dict) -> dict[str, dict]:
    return (schema.get("parameters") or {}).get("properties") or {}


def _required(schema: dict) -> list[str]:
    return list((schema.get("parameters") or {}).get("required") or [])


def _structural_failure(parsed: Any) -> str | None:
    """A reason when the reply can't be judged at all (unparseable or empty), else None."""
    if not getattr(parsed, "valid", True):
        return f"malformed reply: {getattr(parsed, 'error', None) or 'could not be parsed'}"
    if not reply_text(parsed) and not reply_calls(parsed):
        return "empty reply"
    return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_calls(calls: list[tuple[str, Any]]) -> str:
    return ", ".join(f"{name}({json.dumps(args, ensure_ascii=False)})" for name, args in calls)


# ---------------------------------------------------------------------------------- call


def type_error(value: Any, schema: dict) -> str | None:
    """Why ``value`` is not of the JSON-schema type in ``schema`` (None when it is)."""
    declared = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} is not one of {schema['enum']}"
    if declared is None:
        return None
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": _is_number,
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    types = declared if isinstance(declared, list) else [declared]
    if any(checks.get(t, lambda v: True)(value) for t in types):
        return None
    return f"{value!r} is not of type {'/'.join(types)}"


def values_equal(predicted: Any, gold: Any, *, strict: bool = False) -> bool:
    """Ground-truth equality with light normalisation (``strict``: strings compared as written).

    Numbers compare numerically (3 == 3.0), booleans only equal booleans, strings compare
    case- and whitespace-insensitively, lists and dicts element by element.
    """
    if isinstance(gold, bool) or isinstance(predicted, bool):
        return isinstance(gold, bool) and isinstance(predicted, bool) and gold == predicted
    if _is_number(gold):
        return _is_number(predicted) and math.isclose(
            float(predicted), float(gold), rel_tol=1e-9, abs_tol=1e-12
        )
    if isinstance(gold, str):
        if not isinstance(predicted, str):
            return False
        return (
            predicted.strip() == gold.strip() if strict else normalise_text(predicted) == normalise_text(gold)
        )
    if isinstance(gold, list):
        return (
            isinstance(predicted, list)
            and len(predicted) == len(gold)
            and all(values_equal(p, g, strict=strict) for p, g in zip(predicted, gold, strict=True))
        )
    if isinstance(gold, dict):
        return (
            isinstance(predicted, dict)
            and predicted.keys() == gold.keys()
            and all(values_equal(predicted[k], gold[k], strict=strict) for k in gold)
        )
    return predicted == gold


def parse_acceptable_arguments(raw: Any) -> tuple[dict[str, Any], bool, str | None]:
    """Read a benchmark ``acceptable_arguments`` field.

    Returns ``(alternatives, strict, note)``: alternatives per argument key (raw values),
    ``strict`` when the field is "Only ground truth is allowed.", and a note when the field is
    free text the rules can't use.
    """
    if raw is None or raw == "" or raw == {}:
        return {}, False, None
    if isinstance(raw, str):
        if raw.strip().rstrip(".").casefold() == ONLY_GROUND_TRUTH:
            return {}, True, None
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            return {}, False, f"acceptable_arguments is free text, ignored: {_short(raw, 60)!r}"
        raw = decoded
    if isinstance(raw, dict):
        return dict(raw), False, None
    return {}, False, f"acceptable_arguments of type {type(raw).__name__} ignored"


def _alternatives(raw: Any, gold: Any) -> list[Any]:
    """A list in ``acceptable_arguments`` lists alternatives, unless the value itself is a list."""
    if isinstance(gold, list):
        if isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
            return raw
        return [raw]
    return raw if isinstance(raw, list) else [raw]


def _judge_one_call(
    name: str, arguments: Any, gold_arguments: dict, schema: dict, acceptable: dict, strict: bool
) -> str | None:
    """Why a predicted call of the right function is wrong (None when it is right)."""
    if not isinstance(arguments, dict):
        return f"arguments of {name} are not a JSON object: {_short(str(arguments), 60)!r}"
    extra = sorted(set(arguments) - set(gold_arguments))
    missing = sorted(set(gold_arguments) - set(arguments))
    if extra or missing:
        parts = ([f"unexpected {extra}"] if extra else []) + ([f"missing {missing}"] if missing else [])
        return f"argument keys of {name} differ from the ground truth: " + ", ".join(parts)
    properties = _properties(schema)
    for key, gold in gold_arguments.items():
        value = arguments[key]
        problem = type_error(value, properties.get(key, {}))
        if problem:
            return f"argument {key!r}: {problem}"
        options = [gold] + (_alternatives(acceptable[key], gold) if key in acceptable else [])
        if not any(values_equal(value, option, strict=strict) for option in options):
            allowed = " or ".join(json.dumps(o, ensure_ascii=False) for o in options)
            return f"argument {key!r}: {json.dumps(value, ensure_ascii=False)} != {allowed}"
    return None


def judge_call(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when the reply makes exactly the ground truth's call(s) with acceptable arguments."""
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    predicted = reply_calls(parsed)
    if not predicted:
        return False, f"no tool call; replied with text: {_short(reply_text(parsed))!r}"
    schemas = tool_schemas(case.tools)
    gold_calls = message_calls(case.ground_truth)
    acceptable, strict, note = parse_acceptable_arguments(case.acceptable_arguments)
    for name, _ in predicted:
        if name not in schemas:
            return False, f"called unknown tool {name!r} (available: {sorted(schemas)})"
    if len(predicted) != len(gold_calls):
        return (
            False,
            f"made {len(predicted)} call(s), expected {len(gold_calls)}: {_describe_calls(predicted)}",
        )
    unused = list(predicted)
    for gold_name, gold_arguments in gold_calls:
        match = next((c for c in unused if c[0] == gold_name), None)
        if match is None:
            called = ", ".join(n for n, _ in unused)
            return False, f"wrong function: called {called}, expected {gold_name}"
        unused.remove(match)
        problem = _judge_one_call(match[0], match[1], gold_arguments, schemas[gold_name], acceptable, strict)
        if problem:
            return False, problem
    reason = f"right call: {_describe_calls(predicted)}"
    return True, reason + (f" ({note})" if note else "")


# ---------------------------------------------------------------------------- completion

MAX_KEY_VALUE_WORDS = 3
MAX_KEY_VALUE_CHARS = 40


def _scalar_leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _scalar_leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _scalar_leaves(v)]
    return [value]


def tool_result_values(content: str) -> list[Any]:
    """Short scalar leaves of one tool result: numbers, and strings of <= 3 words / 40 chars.

    Content that is not JSON counts as one string leaf. Booleans and nulls are dropped.
    """
    try:
        decoded = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        decoded = content
    values = []
    for leaf in _scalar_leaves(decoded):
        if isinstance(leaf, str):
            leaf = leaf.strip()
            if not leaf or len(leaf) > MAX_KEY_VALUE_CHARS or len(leaf.split()) > MAX_KEY_VALUE_WORDS:
                continue
        elif not _is_number(leaf):
            continue
        if leaf not in values:
            values.append(leaf)
    return values


def last_tool_results(query: list[dict]) -> list[str]:
    """Contents of the tool messages after the last assistant message (the latest call round)."""
    results = []
    for message in reversed(query):
        if message.get("role") == "tool":
            results.append(str(message.get("content") or ""))
        elif message.get("role") == "assistant":
            break
    return list(reversed(results))


def completion_key_values(case: EvalCase) -> list[Any]:
    """The tool-result values a completion must mention: those the reference answer mentions.

    Without a reference text, every short scalar leaf is a key value.
    """
    leaves = [v for content in last_tool_results(case.query) for v in tool_result_values(content)]
    reference = case.ground_truth.get("content") or ""
    if not reference.strip():
        return leaves
    return [v for v in leaves if mentions_value(reference, v)]


def judge_completion(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when there is no call and every key value of the tool result is in the reply."""
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    calls = reply_calls(parsed)
    if calls:
        return False, f"made a tool call instead of reporting the result: {_describe_calls(calls)}"
    text = reply_text(parsed)
    key_values = completion_key_values(case)
    if not key_values:
        return True, "no tool-result value to check (the reference reports none); accepted non-empty text"
    absent = [v for v in key_values if not mentions_value(text, v)]
    if absent:
        return False, f"reply leaves out tool-result value(s) {absent} (of {key_values})"
    return True, f"reports all tool-result values {key_values}"


# ---------------------------------------------------------------------------------- slot

_REQUEST = re.compile(
    r"\b(please|could you|can you|would you|will you|may i|what(?:'s| is| are| was)|which|when|where|who|"
    r"how (?:many|much|long|old)|let me know|tell me|i need|i'll need|need to know|provide|specify|share)\b"
    r"|알려|주세요|주시겠|주실|까요|인가요|나요|입력해",
)


def asks_question(text: str) -> bool:
    """A question mark or a request phrase ("please provide", "could you", "알려 주세요" ...)."""
    return "?" in text or bool(_REQUEST.search(normalise_text(text)))


_STOPWORDS = set(
    "the a an of for to in on at by with and or is are be as that this it its from into per "
    "e.g eg ex example such like etc which what who when where whether if not no yes value values "
    "given specified provided optional required default format must should can will used use many much "
    "kind type some any".split()
)


def _name_words(name: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return {w for w in _words(spaced.replace("_", " ").replace("-", " ")) if len(w) >= 2}


def _description_words(description: str) -> set[str]:
    """Content words of a parameter description, without example values: words with digits
    or capitals after the first word ("e.g. Lisbon", "YYYY-MM-DD", "S1042") are skipped."""
    words = set()
    for position, word in enumerate(re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", description))):
        if any(ch.isdigit() for ch in word) or (position > 0 and any(ch.isupper() for ch in word)):
            continue
        if len(word) >= (4 if word.isascii() else 2):
            words.add(word.casefold())
    return words


def argument_synonyms(tools: list[dict], argument: str) -> set[str]:
    """Words that name ``argument`` in a reply.

    Its name's words (``start_date`` -> "start", "date") and its description's words
    (>= 4 letters; >= 2 characters in scripts like Korean), minus stopwords and minus words
    that don't single it out: words another parameter of the same tool uses (so "date" does
    not name ``start_date`` when ``end_date`` exists) and words of the function's own name and
    description (asking "which e-mail?" does not name the recipient of ``send_email``).
    A name word is only dropped when another name word remains (``city`` keeps "city").
    """
    name_words = _name_words(argument)
    words = set()
    for schema in tool_schemas(tools).values():
        properties = _properties(schema)
        if argument not in properties:
            continue
        shared = _name_words(schema["name"]) | set(_words(schema.get("description", ""))) | _STOPWORDS
        for other, spec in properties.items():
            if other != argument:
                shared |= set(_words(spec.get("description", ""))) | _name_words(other)
        words |= (name_words - shared) or (name_words - _STOPWORDS) or name_words
        words |= _description_words(properties[argument].get("description", "")) - shared
    return words or name_words


def mentions_argument(text: str, synonyms: set[str]) -> bool:
    """Whether a reply names an argument: any synonym as a word (stemmed) or, for words in
    scripts written without spaces between particles (Korean, ...), as a substring."""
    tokens = {_stem(w) for w in _words(text)}
    normalised = normalise_text(text)
    for synonym in synonyms:
        if not synonym.isascii():
            if synonym in normalised:
                return True
        elif _stem(synonym) in tokens:
            return True
    return False


def judge_slot(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when there is no call and the reply asks for the missing required values."""
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    calls = reply_calls(parsed)
    missing = case.missing_arguments
    if calls:
        asked_for = (
            f" instead of asking for {missing}" if missing else " instead of asking for the missing values"
        )
        return False, f"called {_describe_calls(calls)}{asked_for}"
    text = reply_text(parsed)
    if claims_action(text, promises=False):  # "I'll book it once I know the date" is fine here
        return False, f"claims to have acted although values are missing: {_short(text)!r}"
    if not asks_question(text):
        return False, f"does not ask the user for anything: {_short(text)!r}"
    if not missing:
        return True, "asks a question and makes no call (which values are missing is unknown: weak rule)"
    named = [a for a in missing if mentions_argument(text, argument_synonyms(case.tools, a))]
    unnamed = [a for a in missing if a not in named]
    if case.missing_source == "inferred":
        if named:
            return True, f"asks for {named} (missing values inferred as {missing}: one named suffices)"
        return False, f"asks a question but names none of the (inferred) missing values {missing}"
    if unnamed:
        return False, f"does not ask for {unnamed}" + (f" (asks for {named})" if named else "")
    return True, f"asks for every missing value {missing}"


def infer_missing_arguments(
    query: list[dict], tools: list[dict], later_call: dict | None
) -> list[str] | None:
    """Guess which required arguments are still missing at a slot turn of the original benchmark.

    ``later_call`` is the dialog's next ground-truth tool call (its OpenAI-style dict); it
    tells which tool the user is after and the values they eventually give. A required
    argument is *given* when its final value is already written in a user or tool message of
    ``query``; the others are missing. Booleans can't be seen in text, so they count as
    missing; a value the user gave in other words ("여자" for "female") does too (a superset,
    which is why :func:`judge_slot` asks for one of them only). None when there is no later call.
    """
    if later_call is None:
        return None
    [(name, arguments)] = message_calls({"tool_calls": [later_call]})
    schema = tool_schemas(tools).get(name)
    if schema is None or not isinstance(arguments, dict):
        return None
    required = _required(schema) or list(arguments)
    seen = " \n ".join(str(m.get("content") or "") for m in query if m.get("role") in ("user", "tool"))
    return [a for a in required if a not in arguments or not mentions_value(seen, arguments[a])]


# ----------------------------------------------------------------------------- relevance

_DONE_VERBS = (
    "booked|ordered|sent|scheduled|created|added|reserved|made|placed|purchased|bought|transferred|"
    "cancell?ed|deleted|updated|turned|played|started|completed|processed|submitted|paid"
)
_CLAIM_DONE = re.compile(  # "I booked", "I have set", "has been sent", "successfully", "예약했습니다"
    rf"\bi(?:'ve| have)?\s+(?:just\s+|already\s+|now\s+|successfully\s+)*(?:{_DONE_VERBS})\b"
    r"|\bi(?:'ve| have)\s+(?:just\s+|already\s+)*set\b"
    r"|\b(?:has|have) been (?:successfully )?(?:\w+ed|sent|set|made|paid|done|bought)\b"
    r"|\bsuccessfully\b|\ball set\b|(?:했|되었|됐|드렸)습니다|했어요|완료",
)
_CLAIM_WILL = re.compile(  # "I'll book it", "let me order that"
    r"\b(?:i'll|i will|let me)\s+(?:go ahead and\s+)?(?:book|order|send|set|schedule|create|add|reserve|"
    r"place|purchase|buy|transfer|cancel|delete|update|turn|play|call)\b",
)

_DECLINE = re.compile(
    r"\b(?:can ?not|can't|unable|not able|don't have|do not have|doesn't (?:support|have)|"
    r"does not (?:support|have)|not (?:possible|supported|available)|no (?:tool|function|ability|access)|"
    r"sorry|unfortunately|i'm afraid|outside (?:of )?(?:my|the)|beyond my)\b"
    r"|수 없|없습니다|없어요|없네요|죄송|불가능|지원하지 않|지원되지 않",
)

_ASKS_DETAILS = re.compile(
    r"\bplease (?:provide|tell|share|specify|give|enter|confirm|let me know)\b"
    r"|\b(?:could|can|would) you (?:please )?(?:provide|tell|share|specify|give|confirm|let me know)\b"
    r"|\bwhat (?:is|are|'s|was|were) (?:the|your)\b|\bwhich \w+(?: \w+)? (?:would|do|should|did) you\b"
    r"|\bi(?:'ll| will)? need (?:the|your|to know)\b|\bi can [\w ,'-]{1,60}? for you\b|알려 ?주",
)


def claims_action(text: str, *, promises: bool = True) -> bool:
    """Whether the reply says it did something ("I have booked", "successfully", "주문했습니다")
    or, with ``promises``, that it is about to ("I'll book it", "let me order that")."""
    text = normalise_text(text)
    return bool(_CLAIM_DONE.search(text) or (promises and _CLAIM_WILL.search(text)))


def declines(text: str) -> bool:
    """Whether the reply says it can't serve the request ("I can't", "sorry", "할 수 없습니다")."""
    return bool(_DECLINE.search(normalise_text(text)))


def judge_relevance(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when there is no call and the reply declines or chats without claiming an action."""
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    calls = reply_calls(parsed)
    if calls:
        return False, f"called {_describe_calls(calls)} although no tool serves the request"
    text = reply_text(parsed)
    if claims_action(text):
        return False, f"claims an action it cannot have taken: {_short(text)!r}"
    if declines(text):
        return True, "declines without calling a tool"
    if _ASKS_DETAILS.search(normalise_text(text)):
        return False, f"asks for details of a request no tool serves instead of declining: {_short(text)!r}"
    if declines(str(case.ground_truth.get("content") or "")):
        # the gold reply declines, so the request wants an action no tool takes: anything else ("I can book
        # 3 seats on the harbor cruise", "Ivan Lopez will receive your lilies") answers it as if it could
        return False, f"does not decline, though the request needs an action no tool takes: {_short(text)!r}"
    return True, "no call, no claim, no request for details, and the gold reply is not a decline: accepted as " \
                 "small talk / a direct answer"


# ------------------------------------------------------------------------ what a reply does

ACTIONS = ("call", "ask", "decline", "claim", "answer", "broken")


def reply_action(parsed: Any) -> str:
    """What a reply *does*, whatever the turn asked for: the choice the Table-1 rows teach.

        call     makes a tool call                       (right on a call turn)
        ask      asks the user for something             (right on a slot turn)
        decline  says it can't serve the request         (right on a relevance turn)
        claim    says it acted, with no call             (never right)
        answer   any other text                          (right on a completion turn)
        broken   malformed or empty

    The rules are tried in the order broken, call, claim, decline, ask, answer, and the first
    that matches wins; so "Sorry, which city?" counts as a decline, as the relevance judge reads
    it. Accuracy says whether a turn passed; this says which way a failing model leans.
    """
    if _structural_failure(parsed):
        return "broken"
    if reply_calls(parsed):
        return "call"
    text = reply_text(parsed)
    if claims_action(text, promises=False):
        return "claim"
    if declines(text):
        return "decline"
    if asks_question(text) or _ASKS_DETAILS.search(normalise_text(text)):
        return "ask"
    return "answer"


# --------------------------------------------------------------------------------- judge

JUDGES = {
    "call": judge_call,
    "completion": judge_completion,
    "slot": judge_slot,
    "relevance": judge_relevance,
}


def judge_case(case: EvalCase, parsed: Any) -> Verdict:
    """Judge one generated turn by its ``type_of_output``: returns ``(passed, reason)``.

    ``parsed`` is a parsed reply (``content``, ``tool_calls``, ``valid``, ``error``), e.g.
    from ``templating.parse_assistant_reply``. An LLM judge for :func:`evaluate` takes the
    same two arguments and returns the same pair.
    """
    try:
        rule = JUDGES[case.type_of_output]
    except KeyError:
        raise ValueError(f"type_of_output {case.type_of_output!r} is not one of {OUTPUT_TYPES}") from None
    return rule(case, parsed)
