"""A rule-based judge for FunctionChat-Bench "Dialog" turns: call, completion, slot, relevance.

The benchmark's authors judge each generated turn with GPT-4 and a rubric per output type.
This module writes each rubric as explicit rules over the parsed reply, read by meaning in
English and Korean rather than by the wording of one generator. Every rule returns
``(passed, reason)``; the reason says which rule decided. (An optional model judge that runs
the benchmark's own rubric is in :mod:`diatool_utils.model_judge`.)

    call        a tool call; the right function; argument keys exactly the ground truth's;
                every value of its declared JSON-schema type and equal to the ground truth
                or to an ``acceptable_arguments`` alternative.
    completion  no tool call; the tool-result facts the reference reports are in the reply,
                and nothing in it contradicts the result.
    slot        no tool call, no claim of an action, and the reply asks the user for
                information. Separately, the stricter figure: it asks for every missing value.
    relevance   no tool call, no claim or promise of an action, and the reply declines (or,
                where the reference chats, answers).

What each rule can tell, and what it cannot:

- call: everything the rubric asks, except *semantic* equivalence of free-text values.
  Strings match after case-folding and collapsing whitespace; numbers match numerically
  (3 == 3.0) but a parameter declared ``integer`` needs a JSON integer (the rubric fails a
  float there); booleans match only booleans; lists and objects match element by element.
  ``"Only ground truth is allowed."`` turns off the string normalisation for that turn.
  ``acceptable_arguments`` given as a JSON object (or its JSON text) adds alternatives per
  key; free-text notes can't be read and are ignored (the reason says so). It cannot tell
  that "뉴욕" and "New York" are one city unless the row lists it as acceptable.
- completion: the key values are the tool result's short leaves (numbers, strings of at most
  3 words / 40 characters) that the reference answer reports, less those that only echo the
  request (in a user message or a call argument) and, when the user's last message names
  fields of the result ("When is high tide?"), less the other fields. All must be in the reply.
  Values match in other words where their form allows: numbers as numbers ("12,300", "13만
  3,096", "five", "2시간 8분" for 128 minutes, a rounding within 0.5 %), dates and times
  ("오후 7시 5분" for 19:05:56, "May 2" for 2003-05-02). The reply fails on a contradiction:
  a number that no tool result, request or reference holds ("open 24 hours"), a time in the
  wrong half of the day, a value written under a sibling field's name (high and low tide
  swapped), or "I couldn't" when the tool answered. A follow-up the assistant answers from
  earlier results is judged on all of them. When there is no key value (a status such as
  {"status": "success"}), the verdict starts with "nothing checked" and reports count those
  turns apart. It cannot tell a wrong name or word that is not a key value ("Central Library"
  for an echoed "Harbor Branch"), nor an added claim without a number ("it will drop tomorrow").
- slot: "asks" = a question mark or a request phrase ("please provide", "let me know", "알려
  주세요", "부탁드려요"), not counting sentences that only offer more help or ask to wait
  ("Anything else?", "잠시만 기다려 주세요"). A reply that claims to have acted ("I have booked",
  "your table is booked") fails; one that promises to once it knows ("I'll book it once ...")
  does not. A reply that names only values the user already gave fails as a redundant question.
  The stricter figure names every missing value: by a word of its name, description or enum
  values (less words that another parameter or the function's name shares), a Korean word with
  its particles ("데드라인이", "할인율은요"), a question word of its kind ("how many" for a number,
  "where" for a place, "언제" for a time), or, when one value is missing, any information
  request that names no other argument. Missing values come from the row or are inferred from
  the dialog's next call (:func:`infer_missing_arguments`); an inferred set may hold a value the
  user gave in other words, so the stricter figure can miss a right reply there. It cannot
  tell synonyms absent from the schema ("payee" for ``recipient``) or arguments told apart
  only by a stopword (``from_currency`` / ``to_currency``).
- relevance: a call fails; a claim ("I have booked", "successfully", "예약했습니다") or promise
  ("I'll do that right away", "on it", "바로 처리해 드릴게요") fails, also after a decline ("I
  can't, but I've notified them"); saying it can't ("not something these tools cover", "beyond
  what I can help with", "won't be able to", "도와드리기 어려워요", "지원하지 않아요", "권한 밖")
  passes, and so does an apology; asking for details of the request fails, since it starts
  slot-filling for a request no tool serves. Any other reply passes as small talk or a direct
  answer, unless the gold reply declines: then it fails as answering a request it can't serve.
  It cannot tell whether small talk or a direct answer is sensible or true.

The phrase lists cover English and Korean; other languages get only the structural checks
(call or no call, a question mark, numbers). Checked: every gold turn of data/eval_dialog.jsonl,
of the original FunctionChat-Bench Dialog file and of the Korean test dialogs passes; the first
rejected turn of Table-1 rows 5, 6, 8, 9 and 10 fails (600 pairs, seed 2), and row 7's (asks
for too few values) passes as a question but fails the stricter figure in 59 of 60. Agreement
with hand labels is measured by :mod:`diatool_utils.judge_agreement`.
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
    lists them), ``"inferred"`` (:func:`infer_missing_arguments`) or ``"unknown"``. ``slot_tool``
    is the tool they belong to (the dialog's next ground-truth call), when there is one.
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
    slot_tool: str | None = None


# ---------------------------------------------------------------------------- text helpers


def normalise_text(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed, thousands separators dropped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    return re.sub(r"\s+", " ", text).strip()


_NUMBER = re.compile(r"(?:(?<![0-9a-z])-)?\d+(?:\.\d+)?")  # "2024-05-19" is 2024, 5, 19
_KOREAN_UNITS = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:천만|억|만|천)\s*)+(?:\d+(?![\d.]))?")  # "13만 3096", "9만 2천"
_UNIT_VALUES = {"억": 1e8, "천만": 1e7, "만": 1e4}
_NUMBER_WORDS = {w: k for k, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {w: 10 * k for k, w in enumerate(
        "thirty forty fifty sixty seventy eighty ninety".split(), start=3)}
_SPELLED = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")(?:[- ](one|two|three|four|five|six|seven|eight|nine))?\b")
_DURATION = re.compile(r"(\d+)\s*(?:시간|hours?|hrs?|h)\s*(?:and\s*)?(\d+)\s*(?:분|minutes?|mins?|m)(?![a-z])")


def _korean_unit_value(run: str) -> str:
    """ "13만 3096" -> "133096", "9만 2천" -> "92000": digits with 억, 만 and 천, written out."""
    total = section = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(천만|억|만|천)?", run):
        if unit in _UNIT_VALUES:
            total, section = total + (section + float(number)) * _UNIT_VALUES[unit], 0.0
        else:
            section += float(number) * (1000 if unit == "천" else 1)
    total += section
    return f"{total:.0f}" if total == int(total) else str(total)


def _spelled_value(match: re.Match) -> str:
    tens, unit = match.group(1), match.group(2)
    if unit and _NUMBER_WORDS[tens] < 20:  # "five one" is two numbers, not 51
        return f"{_NUMBER_WORDS[tens]} {_NUMBER_WORDS[unit]}"
    return str(_NUMBER_WORDS[tens] + (_NUMBER_WORDS[unit] if unit else 0))


def written_numbers(text: str) -> list[str]:
    """Every number written in ``text``, as written: "12,300" -> "12300", "13만 3,096" -> "133096", "five" -> "5";
    a duration in hours and minutes also gives its minutes ("2시간 8분" -> "2", "8" and "128")."""
    text = _SPELLED.sub(_spelled_value, normalise_text(text))
    text = _KOREAN_UNITS.sub(lambda m: " " + _korean_unit_value(m.group(0)) + " ", text)
    minutes = [str(int(h) * 60 + int(m)) for h, m in _DURATION.findall(text)]
    return _NUMBER.findall(text) + minutes


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` ("12,300" counts as 12300)."""
    return [float(n) for n in written_numbers(text)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_matches(written: str, value: float) -> bool:
    """Equal, or ``value`` rounded or cut to what ``written`` shows, within 0.5 % ("about 144,510" and
    "14만 4천" for 144510.98, "3944" for 3944.28 match; "24" for 24.2 and "2만" for 22000 do not)."""
    number = float(written)
    if math.isclose(number, value, rel_tol=1e-9, abs_tol=1e-9):
        return True
    if abs(number - value) > 0.005 * abs(value):
        return False
    decimals = len(written.partition(".")[2])
    for places in range(decimals, -10, -1):
        scale = 10.0**places
        if number in (round(value, places), math.trunc(value * scale) / scale):
            return True
    return False


_MONTHS = {name: k for k, names in enumerate(
    ["jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"], start=1) for name in names.split()}
_DATE_TIME = re.compile(
    r"^(?:(\d{4})-(\d{1,2})-(\d{1,2}))?(?:^|[ t])?(?:(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?)?$")


def mentions_date_time(text: str, value: str) -> bool | None:
    """Whether ``text`` mentions an ISO date, time or date-time ``value`` in other words (None: not one).

    A date is mentioned by its month and day written together ("10월 26일", "Oct 26", "26 October",
    "10/26"); a time by its hour, on a 24- or 12-hour clock, with its minute ("오후 7시 5분" and
    "7:05 pm" for 19:05; "6시 반" for 06:30; "9 am" or "9시" when the minute is 0). A date-time is
    mentioned by either.
    """
    match = _DATE_TIME.match(normalise_text(value))
    if not match or not any(match.groups()):
        return None
    _, month, day, hour, minute = match.groups()
    text = normalise_text(text)
    said = month is not None and _says_date(text, int(month), int(day))
    return said or (hour is not None and _says_time(text, int(hour), int(minute)))


def _says_date(text: str, month: int, day: int) -> bool:
    names = "|".join(name for name, number in _MONTHS.items() if number == month)
    d, m = rf"0?{day}(?:st|nd|rd|th)?", f"0?{month}"
    return re.search(rf"(?<!\d){m}\s*월\s*{d}\s*일|(?<!\d){m}/{d}(?!\d)|\b(?:{names})\.? ?{d}(?!\d)"
                     rf"|(?<!\d){d} (?:of )?(?:{names})\b", text) is not None


_MORNING = r"(?:am|a\.m\.?|in the morning|오전|아침|새벽)"
_EVENING = r"(?:pm|p\.m\.?|in the (?:afternoon|evening)|at night|tonight|오후|저녁|밤)"


def _time_mentions(text: str, hour: int, minute: int) -> tuple[bool, bool]:
    """(said right, said in the wrong half of the day): "8:30 in the morning" is 20:30 said wrong."""
    hours = "|".join(sorted({str(hour), f"{hour:02d}", str(hour % 12 or 12)}))
    if minute == 0:
        pattern = rf"(?<!\d)(?:{hours})(?::00)?\s*(?:시|o'clock|am|pm|a\.m|p\.m)"
    else:
        half = r"|\s*시\s*반" if minute == 30 else ""
        pattern = rf"(?<!\d)(?:{hours})(?:\s*(?::|시|h|\.)\s*0?{minute}(?!\d){half})"
    wrong_half = _MORNING if hour >= 12 else _EVENING
    right = wrong = False
    for match in re.finditer(pattern, text):
        before, after = text[: match.start()], text[match.end():]
        if (re.search(wrong_half + r"\s*$", before) or re.match(r"\s*(?:분\s*)?" + wrong_half, after)
                or re.search(wrong_half, match.group(0))):
            wrong = True
        else:
            right = True
    return right, wrong


def _says_time(text: str, hour: int, minute: int) -> bool:
    return _time_mentions(text, hour, minute)[0]


def contradicts_time(text: str, value: Any) -> bool:
    """Whether ``text`` gives the time in ``value`` ("20:30", "2026-03-10 20:30") in the wrong half of the day."""
    match = _DATE_TIME.match(normalise_text(str(value))) if isinstance(value, str) else None
    if not match or match.group(4) is None:
        return False
    return _time_mentions(normalise_text(text), int(match.group(4)), int(match.group(5)))[1]


def mentions_value(text: str, value: Any) -> bool:
    """Whether ``value`` (a number or a string) is written in ``text``.

    Numbers match as numbers, also rounded (see :func:`_number_matches`) and with the Korean units
    만 / 억. Strings match as normalised substrings that are not glued to other ASCII letters or
    digits (so "success" is not found in "successfully", but "뉴욕" is found in "뉴욕과"); an ISO
    date or date-time also matches in other words (:func:`mentions_date_time`).
    """
    if isinstance(value, bool) or value is None:
        return False
    if _is_number(value):
        return any(_number_matches(n, float(value)) for n in written_numbers(text))
    needle = normalise_text(str(value))
    if not needle:
        return False
    pattern = r"(?<![a-z0-9])" + re.escape(needle) + r"(?![a-z0-9])"
    if re.search(pattern, normalise_text(text)):
        return True
    return bool(mentions_date_time(text, needle))


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", normalise_text(text).replace("e-mail", "email"))


def _stem(word: str) -> str:
    for ending in ("'s", "ing", "ed", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def _is_hangul(word: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in word)


# Korean writes particles and copulas onto the noun ("데드라인이", "할인율은요", "몸무게를"): a reply's
# word names a noun when it is the noun plus at most three of these endings.
_KOREAN_ENDINGS = tuple(sorted(set(
    "이 가 은 는 을 를 의 에 에서 에게 께 께서 한테 으로 로 와 과 랑 이랑 하고 도 만 까지 부터 이나 나 든 이든 "
    "요 이요 이에요 예요 이죠 죠 인가요 인지 인데 이고 고 이라고 라고 이랑요 이며 며 이신가요 일까요 인가 이야 야 "
    "입니다 이세요 세요 이십니까 입니까".split()), key=len, reverse=True))


def _is_ending_chain(rest: str, depth: int = 3) -> bool:
    if not rest:
        return True
    return depth > 0 and any(rest.startswith(e) and _is_ending_chain(rest[len(e):], depth - 1) for e in _KOREAN_ENDINGS)


_HADA = re.compile(r"^(?:하|해|할|한|함|했|합|되|된|될|됩|돼)")  # 포함해, 포함할까요: the noun 포함 as a verb
_COUNT_NOUNS = ("수", "값", "명")  # 인원수, 설정값: a noun of the schema with a counter glued on
VERB_MARK = "~"  # a schema word that was a verb ("포함해" -> "포함~") may be matched as a verb


def _korean_word_names(word: str, noun: str) -> bool:
    """Whether a Korean word is ``noun`` followed only by particles, or a compound that ends in it
    ("메일주소" names "주소") or adds a counter to it ("인원수" names "인원"), for nouns of two
    syllables or more; a schema verb (``noun`` ending in :data:`VERB_MARK`) may also be conjugated
    ("포함할까요" names "포함~")."""
    verb = noun.endswith(VERB_MARK)
    noun = noun.rstrip(VERB_MARK)
    start = word.find(noun)
    while start >= 0:
        rest = word[start + len(noun):]
        long_noun = len(noun) >= 2
        counter = long_noun and any(rest.startswith(c) and _is_ending_chain(rest[len(c):]) for c in _COUNT_NOUNS)
        if (start == 0 or long_noun) and (_is_ending_chain(rest) or counter or (verb and _HADA.match(rest))):
            return True
        start = word.find(noun, start + 1)
    return False


def _korean_noun(word: str) -> str:
    """A schema word without its particle when two syllables or more stay ("사용자의" -> "사용자"); a
    verb made of a noun and 하다 becomes the noun with :data:`VERB_MARK` ("포함해" -> "포함~")."""
    verb = re.match(r"^(.{2,}?)(?:하|해|할|한|함|했|합|되|된|될)", word)
    if verb and _is_hangul(verb.group(1)):
        return verb.group(1) + VERB_MARK
    for ending in _KOREAN_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 2:
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
NOTHING_CHECKED = "nothing checked"


def _scalar_leaves(value: Any) -> list[Any]:
    return [leaf for _, leaf in _keyed_leaves(value)]


def _keyed_leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """(the key it sits under, value) for every scalar in a JSON value; list items keep their list's key."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _keyed_leaves(v, str(k))]
    if isinstance(value, list):
        return [pair for v in value for pair in _keyed_leaves(v, key)]
    return [(key, value)]


_PYTHON_LITERAL = re.compile(r'("(?:\\.|[^"\\])*")|\b(None|True|False)\b')


def parse_tool_result(content: str) -> Any:
    """A tool result's JSON, also when written with Python's None / True / False (the original
    benchmark has such results); content that is still not JSON comes back as the string itself."""
    try:
        return json.loads(content)
    except (json.JSONDecodeError, TypeError):
        pass
    as_json = _PYTHON_LITERAL.sub(
        lambda m: m.group(1) or {"None": "null", "True": "true", "False": "false"}[m.group(2)], str(content))
    try:
        return json.loads(as_json)
    except json.JSONDecodeError:
        return content


def _key_value(leaf: Any) -> Any | None:
    """A leaf worth reporting: a number, or a string of <= 3 words / 40 characters (None otherwise)."""
    if isinstance(leaf, str):
        leaf = leaf.strip()
        if leaf and len(leaf) <= MAX_KEY_VALUE_CHARS and len(leaf.split()) <= MAX_KEY_VALUE_WORDS:
            return leaf
        return None
    return leaf if _is_number(leaf) else None


def keyed_result_values(content: str) -> list[tuple[str, Any]]:
    """(key, value) for the short scalar leaves of one tool result (see :func:`tool_result_values`)."""
    pairs = []
    for key, leaf in _keyed_leaves(parse_tool_result(content)):
        value = _key_value(leaf)
        if value is not None and (key, value) not in pairs:
            pairs.append((key, value))
    return pairs


def tool_result_values(content: str) -> list[Any]:
    """Short scalar leaves of one tool result: numbers, and strings of <= 3 words / 40 chars.

    Content that is not JSON counts as one string leaf. Booleans and nulls are dropped.
    """
    values = []
    for _, value in keyed_result_values(content):
        if value not in values:
            values.append(value)
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


def completion_tool_results(query: list[dict]) -> list[str]:
    """The tool results a completion turn reports: the latest call round's or, when the user asked a
    follow-up that the assistant answers from results it already has, every earlier one."""
    return last_tool_results(query) or [str(m.get("content") or "") for m in query if m.get("role") == "tool"]


def request_echoes(query: list[dict]) -> tuple[str, list[Any]]:
    """What the request already holds: the user's messages (as one text) and the arguments of the calls."""
    user_text = " \n ".join(str(m.get("content") or "") for m in query if m.get("role") == "user")
    arguments = [leaf for m in query if m.get("role") == "assistant"
                 for _, args in message_calls(m) for leaf in _scalar_leaves(args)]
    return user_text, arguments


def _asked_keys(query: list[dict], keys: set[str]) -> set[str]:
    """The result keys the user's last message names with all their words ("high tide" names
    ``high_tide`` but not ``low_tide``): the fields the user asked about."""
    last = next((str(m.get("content") or "") for m in reversed(query) if m.get("role") == "user"), "")
    said = {_stem(w) for w in _words(last)}
    named = {k for k in keys if (words := {_stem(w) for w in _name_words(k)} - _STOPWORDS) and words <= said}
    return named


def completion_key_values(case: EvalCase) -> list[Any]:
    """The tool-result values a completion must mention: those the reference answer mentions, except

    - the ones that only echo the request (written in a user message or passed as a call argument:
      the title looked up, the date asked about, the amount converted), which a reply may leave implicit;
    - when the user's last message names fields of the result ("When is high tide?"), the values of
      the other fields: the reply must answer what was asked, not restate the whole result.

    Without a reference text, every short scalar leaf that is not an echo is a key value.
    """
    pairs = []
    for pair in (p for content in completion_tool_results(case.query) for p in keyed_result_values(content)):
        if pair[1] not in [v for _, v in pairs]:
            pairs.append(pair)
    user_text, arguments = request_echoes(case.query)
    pairs = [(k, v) for k, v in pairs
             if not mentions_value(user_text, v) and not any(values_equal(v, a) for a in arguments)]
    reference = case.ground_truth.get("content") or ""
    if reference.strip():
        pairs = [(k, v) for k, v in pairs if mentions_value(reference, v)]
    asked = _asked_keys(case.query, {k for k, _ in pairs})
    return [v for k, v in pairs if not asked or k in asked]


def swapped_values(text: str, pairs: list[tuple[str, Any]]) -> list[str]:
    """Values given under a sibling field's name: "high tide is at 17:20" when 17:20 is the ``low_tide``.

    Siblings are keys that share a word and hold text values of the same form (``high_tide`` and
    ``low_tide``, ``departure_time`` and ``arrival_time``); each one's own words are those the other
    lacks ("high", "low"). A value counts under the last own word among the four words before it.
    """
    swapped = []
    for key, value in pairs:
        siblings = [(k, v) for k, v in pairs if k != key and _same_form(v, value)
                    and _name_words(k) & _name_words(key) - _STOPWORDS]
        for other, _ in siblings:
            own, theirs = _name_words(key) - _name_words(other), _name_words(other) - _name_words(key)
            if own and theirs and _named_before(text, value, own | theirs) in theirs:
                swapped.append(f"{value} ({key})")
                break
    return swapped


def _same_form(a: Any, b: Any) -> bool:
    """Both clock times, both dates, or both numbers written as text."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    forms = [r"\d{1,2}:\d{2}(?::\d{2})?", r"\d{4}-\d{2}-\d{2}", r"-?\d+(?:\.\d+)?"]
    return any(re.fullmatch(f, a.strip()) and re.fullmatch(f, b.strip()) for f in forms)


def _named_before(text: str, value: str, names: set[str]) -> str | None:
    """The last of ``names`` among the four words before ``value`` in ``text`` (None when none is)."""
    norm = normalise_text(text)
    found = re.search(r"(?<![a-z0-9])" + re.escape(normalise_text(value)) + r"(?![a-z0-9])", norm)
    if not found:
        return None
    return next((w for w in reversed(_words(norm[: found.start()])[-4:]) if w in names), None)


_FAILURE = re.compile(r"fail|error|not found|no result|unavailable|denied|없|실패|오류|불가")


def known_numbers(case: EvalCase) -> list[float]:
    """Every number the turn gives a reply to work with: in the tool results, the user's messages, the
    call arguments and the reference answer, plus the 12-hour form of each clock time ("21:00" -> 9)."""
    texts = [str(m.get("content") or "") for m in case.query if m.get("role") in ("user", "tool")]
    texts += [json.dumps(a, ensure_ascii=False) for m in case.query for _, a in message_calls(m)]
    texts.append(str(case.ground_truth.get("content") or ""))
    known = [n for text in texts for n in numbers_in(text)]
    hours = [int(h) for text in texts for h in re.findall(r"(?<!\d)(\d{1,2}):\d{2}", text)]
    return known + [float(h % 12 or 12) for h in hours]


def unknown_numbers(text: str, known: list[float]) -> list[str]:
    """Numbers ``text`` states that are none of ``known`` (nor a rounding of one); 0 and 1 are left
    alone ("one moment", list markers), and a duration counts by its total ("2시간 8분" for 128)."""
    text = _DURATION.sub(lambda m: f" {int(m.group(1)) * 60 + int(m.group(2))} "
                         if float(int(m.group(1)) * 60 + int(m.group(2))) in known else m.group(0), normalise_text(text))
    return [n for n in written_numbers(text)
            if float(n) not in (0.0, 1.0) and not any(_number_matches(n, k) for k in known)]


def judge_completion(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when there is no call, every key value of the tool result is in the reply, and nothing
    in the reply contradicts the result.

    A contradiction is a number no tool result, request or reference gives ("open 24 hours",
    "2026-06-21" for 2026-06-12), a clock time put in the wrong half of the day ("8:30 in the
    morning" for 20:30), or saying it could not do the thing when the tool answered without an error.
    When there is no key value to check (the reference reports none, or only echoes of the request),
    the verdict starts with "nothing checked" and the report counts these turns apart.
    """
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    calls = reply_calls(parsed)
    if calls:
        return False, f"made a tool call instead of reporting the result: {_describe_calls(calls)}"
    text = reply_text(parsed)
    contradiction = _contradiction(case, text)
    if contradiction:
        return False, contradiction
    key_values = completion_key_values(case)
    if not key_values:
        return True, f"{NOTHING_CHECKED}: the reference reports no tool-result value beyond the request's; " \
                     "accepted text without a call or a contradiction"
    absent = [v for v in key_values if not mentions_value(text, v)]
    if absent:
        return False, f"reply leaves out tool-result value(s) {absent} (of {key_values})"
    return True, f"reports all tool-result values {key_values}"


def _contradiction(case: EvalCase, text: str) -> str | None:
    """Why the reply contradicts the tool result (None when nothing does)."""
    results = completion_tool_results(case.query)
    unknown = unknown_numbers(text, known_numbers(case))
    if unknown:
        return f"states {unknown}, which no tool result or request gives: {_short(text)!r}"
    wrong = [v for content in results for v in tool_result_values(content) if contradicts_time(text, v)]
    if wrong:
        return f"puts {wrong} in the wrong half of the day: {_short(text)!r}"
    swapped = swapped_values(text, [pair for content in results for pair in keyed_result_values(content)])
    if swapped:
        return f"gives {swapped} under another field's name: {_short(text)!r}"
    if says_unable(text) and not any(_FAILURE.search(normalise_text(content)) for content in results):
        return f"says it could not, though the tool answered: {_short(text)!r}"
    return None


# ---------------------------------------------------------------------------------- slot

_REQUEST = re.compile(
    r"\b(please|could you|can you|would you|will you|may i|do you|what(?:'s| is| are| was)|which|when|where|who|"
    r"how (?:many|much|long|old|heavy|tall|far|big|often)|let me know|tell me|i need|i'll need|need to know|provide|"
    r"specify|share)\b"
    r"|알려|주세요|주시겠|주실|주시면|까요|인가요|나요|입력해|말씀해|부탁드|부탁해|어디|언제|누구|몇|얼마|어느|무슨|뭐라고",
)
_OFFER = re.compile(  # sentences that ask nothing about the request: "anything else?", "shall I go ahead?", "one moment"
    r"\b(?:anything|something) else\b|\b(?:what|how) else\b|\bhow (?:can|may) i help\b|"
    r"\b(?:shall|should) i (?:go ahead|proceed|continue)\b|\bwould you like me to (?:go ahead|proceed|continue)\b|"
    r"\bis (?:that|this) (?:all|correct|right|ok|okay)\b|다른 (?:도움|것|건|거)|더 (?:필요|도와)|"
    r"진행할까요|진행해도 될까요|진행해 드릴까요|"
    r"\b(?:one|a) (?:moment|second|sec)\b|\bhold on\b|\bplease wait\b|기다려 ?주|기다려 ?줘",  # waiting is not asking
)


def asks_question(text: str) -> bool:
    """A question mark or a request phrase ("please provide", "could you", "알려 주세요" ...)."""
    return "?" in text or bool(_REQUEST.search(normalise_text(text)))


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。])\s+|\n+", normalise_text(text)) if s.strip()]


def asks_for_information(text: str) -> bool:
    """A question or request about the task: :func:`asks_question`, not counting sentences that only
    offer more help, ask leave to go on or ask to wait ("Anything else?", "Shall I proceed?", "잠시만
    기다려 주세요")."""
    return asks_question(" ".join(s for s in _sentences(text) if not _OFFER.search(s)))


_STOPWORDS = set(
    "the a an of for to in on at by with and or is are be as that this it its from into per "
    "e.g eg ex example such like etc which what who when where whether if not no yes value values "
    "given specified provided optional required default format must should can will used use many much "
    "kind type some any 및 또는 등 예 값 수 것 중 때 경우 형식 입력 사용 해당 정보 단위".split()
)
_EXAMPLES = re.compile(  # "e.g. Lisbon", "(예: 다음주 수요일)": example values, not words that name the argument
    r"\([^()]*(?:\be\.g\.|\beg\b|\bex\b|for example|예:|예시:|예를 들어)[^()]*\)"
    r"|(?:\be\.g\.|for example|예:|예시:|예를 들어)[^()]*",
    re.IGNORECASE,
)


def _name_words(name: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return {w for w in _words(spaced.replace("_", " ").replace("-", " ")) if len(w) >= 2}


def _description_words(description: str) -> set[str]:
    """Content words of a parameter description, without example values: an example segment
    ("e.g. Lisbon", "(예: 다음주 수요일)") is dropped, and so are words with digits or, after the
    first word, capitals ("YYYY-MM-DD", "S1042"). Korean words lose their particle ("사용자의")."""
    words = set()
    text = unicodedata.normalize("NFKC", _EXAMPLES.sub(" ", description))
    for position, word in enumerate(re.findall(r"[^\W_]+", text)):
        if any(ch.isdigit() for ch in word) or (position > 0 and any(ch.isupper() for ch in word)):
            continue
        if _is_hangul(word):
            if not re.search(r"[a-z]", word, re.IGNORECASE):  # "true이면" is a value, not a word
                words.add(_korean_noun(word))
        elif len(word) >= 4:
            words.add(word.casefold())
    return words


def _enum_words(spec: dict) -> set[str]:
    return {w for value in spec.get("enum") or [] if isinstance(value, str) for w in _name_words(value)}


def _owner(tools: list[dict], argument: str, tool: str | None = None) -> dict | None:
    """The schema of ``tool`` when given and it has ``argument``, else the first tool that has it."""
    schemas = tool_schemas(tools)
    if tool in schemas and argument in _properties(schemas[tool]):
        return schemas[tool]
    return next((s for s in schemas.values() if argument in _properties(s)), None)


# Words that name the same kind of value: a reply may say "성함" or "체중" where the schema says "이름" or
# "무게". A group joins an argument's synonyms when one of its words already names the argument.
_SYNONYM_GROUPS = [set(group.split()) for group in (
    "name 이름 성함", "weight 무게 체중 몸무게", "height 키 신장", "age 나이 연세", "gender sex 성별",
    "email 이메일 메일", "phone 전화 전화번호 휴대폰", "address 주소", "password 비밀번호 암호",
    "date 날짜 일자", "time 시간 시각", "location 위치 지역 장소", "city 도시", "message 메시지 문자",
    "amount 금액 액수", "price 가격", "quantity 수량 개수", "title 제목", "content 내용 본문",
)]


def argument_synonyms(tools: list[dict], argument: str, tool: str | None = None) -> set[str]:
    """Words that name ``argument`` in a reply.

    Its name's words (``start_date`` -> "start", "date"), its description's words (>= 4 letters;
    Korean words of any length, without particles) and its enum values, minus stopwords and minus
    words that don't single it out: words another parameter of the same tool uses (so "date" does
    not name ``start_date`` when ``end_date`` exists) and words of the function's own name (asking
    "which e-mail?" does not name the recipient of ``send_email``). A name word is only dropped
    when another name word remains (``city`` keeps "city"). With ``tool``, only that tool's schema
    counts; else every tool that has the argument.
    """
    name_words = _name_words(argument)
    words = set()
    owner = _owner(tools, argument, tool) if tool else None
    for schema in [owner] if owner else tool_schemas(tools).values():
        properties = _properties(schema)
        if argument not in properties:
            continue
        shared = _name_words(schema["name"]) | _STOPWORDS
        for other, spec in properties.items():
            if other != argument:
                shared |= _description_words(spec.get("description", "")) | _name_words(other) | _enum_words(spec)
        words |= (name_words - shared) or (name_words - _STOPWORDS) or name_words
        spec = properties[argument]
        words |= (_description_words(spec.get("description", "")) | _enum_words(spec)) - shared
        words |= {w for group in _SYNONYM_GROUPS if group & words for w in group} - shared
    return words or name_words


def mentions_argument(text: str, synonyms: set[str]) -> bool:
    """Whether a reply names an argument: any synonym as a word (stemmed) or, for Korean, as a
    word followed only by particles ("데드라인이", "할인율은요", "메일주소를")."""
    words = _words(text)
    stems = {_stem(w) for w in words}
    for synonym in synonyms:
        if _is_hangul(synonym):
            if any(_korean_word_names(w, synonym) for w in words if _is_hangul(w)):
                return True
        elif not synonym.isascii():
            if synonym in normalise_text(text):
                return True
        elif _stem(synonym) in stems:
            return True
    return False


# A question word names an argument of its kind that no other word named: "How many people are you
# cooking for?" asks for ``servings`` (a number), "Where are you observing from?" for a place.
_KIND_WORDS = {
    "time": set("date time day deadline datetime due hour schedule start end until year month week "
                "날짜 시간 일시 기한 마감 일자 시각 요일 시작 종료 연도 데드라인".split()),
    "place": set("location city place address origin destination zip postal postcode country region area venue "
                 "위치 장소 주소 지역 도시 출발지 도착지 목적지 나라 국가 출발 도착".split()),
    "person": set("name recipient receiver person contact guest attendee owner user 이름 수신자 사람 성함 받는".split()),
    "text": set("message text content body note memo comment 내용 메시지 텍스트 문구 메모".split()),
}
_CUES = (  # (kind, pattern); earlier kinds claim a span first ("몇 시" is a time, not a number)
    ("time", r"\bwhen\b|\bwhat (?:time|day|date|year)\b|\bwhich (?:day|date)\b|언제|몇 ?월 ?며칠|몇 ?시|며칠|무슨 요일"
             r"|몇 ?월|어느 날"),
    ("place", r"\bwhere\b|\bwhich (?:city|place|town|country|location|address)\b|어디|어느 (?:지역|곳|도시|나라|동네)"),
    ("person", r"\bwho(?:m|se)?\b|누구|누가"),
    ("text", r"\bwhat (?:should|do you want|would you like) (?:it|me|the \w+) to say\b|\bwhat should (?:it|the \w+) say\b"
             r"|뭐라고|무슨 내용|어떤 내용|무엇이라고"),
    ("number", r"\bhow (?:many|much|heavy|tall|old|long|far|big|large|often)\b"
               r"|\bwhat (?:size|number|amount|percentage|percent)\b|몇|얼마"),
)


def argument_kinds(tools: list[dict], argument: str, tool: str | None = None) -> set[str]:
    """What sort of value ``argument`` holds, from its words and type: time, place, person, text, number."""
    schema = _owner(tools, argument, tool)
    spec = _properties(schema).get(argument, {}) if schema else {}
    words = {_stem(w) for w in _name_words(argument)} | _description_words(spec.get("description", ""))
    kinds = {kind for kind, vocabulary in _KIND_WORDS.items()
             if words & ({_stem(v) for v in vocabulary} | vocabulary)
             or any(_is_hangul(v) and any(v in w for w in words) for v in vocabulary)}
    declared = spec.get("type")
    if declared in ("integer", "number") or (isinstance(declared, list) and {"integer", "number"} & set(declared)):
        kinds.add("number")
    return kinds


def _cue_kinds(text: str) -> list[str]:
    """The kind of each question word in ``text``, in order of kind (spans are not counted twice)."""
    text, found, taken = normalise_text(text), [], []
    for kind, pattern in _CUES:
        for match in re.finditer(pattern, text):
            if not any(match.start() < end and start < match.end() for start, end in taken):
                taken.append(match.span())
                found.append(kind)
    return found


def named_missing_arguments(tools: list[dict], missing: list[str], text: str, tool: str | None = None) -> list[str]:
    """Which of the ``missing`` arguments (of ``tool``) a reply asks for: by a word that names it, by a
    question word of its kind, or, when one value is missing, by any question that names no other argument."""
    named = [a for a in missing if mentions_argument(text, argument_synonyms(tools, a, tool))
             or _asks_which(text, tools, a, tool)]
    kinds = {a: argument_kinds(tools, a, tool) for a in missing}
    for kind in _cue_kinds(text):
        candidate = next((a for a in missing if a not in named and kind in kinds[a]), None)
        if candidate:
            named.append(candidate)
    if len(missing) == 1 and not named and not given_arguments_named(tools, missing, text, tool):
        named = list(missing)
    return [a for a in missing if a in named]


def _asks_which(text: str, tools: list[dict], argument: str, tool: str | None) -> bool:
    """A word the argument shares with its function's name names it right after "which" / "what":
    "Which book is it?" asks for ``book_title`` of ``hold_book``, "what subject should the e-mail
    have?" does not ask for ``recipient_email`` of ``send_email``."""
    schema = _owner(tools, argument, tool)
    shared = _name_words(argument) & _name_words(schema["name"]) if schema else set()
    return any(re.search(rf"\b(?:which|what)\s+(?:\w+\s+)?{re.escape(w)}", normalise_text(text)) for w in shared)


def given_arguments_named(tools: list[dict], missing: list[str], text: str, tool: str | None = None) -> list[str]:
    """The arguments of the missing values' tool that are not missing and that the reply names."""
    schema = _owner(tools, missing[0], tool) if missing else None
    others = [a for a in _properties(schema) if a not in missing] if schema else []
    return [a for a in others if mentions_argument(text, argument_synonyms(tools, a, schema["name"]))]


ASKS_EVERY_MISSING = "asks for every missing value"


def judge_slot(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when there is no call, no claim of an action, and the reply asks the user for information.

    The reason starts with :data:`ASKS_EVERY_MISSING` when it also asks for every missing value
    (the stricter figure the report counts apart).
    """
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    calls = reply_calls(parsed)
    missing = case.missing_arguments
    if calls:
        asked_for = f" instead of asking for {missing}" if missing else " instead of asking for the missing values"
        return False, f"called {_describe_calls(calls)}{asked_for}"
    text = reply_text(parsed)
    if claims_action(text, promises=False):  # "I'll book it once I know the date" is fine here
        return False, f"claims to have acted although values are missing: {_short(text)!r}"
    if not asks_for_information(text):
        return False, f"does not ask the user for anything: {_short(text)!r}"
    if not missing:
        return True, "asks for information and makes no call (which values are missing is unknown)"
    named = named_missing_arguments(case.tools, missing, text, case.slot_tool)
    if not named and (again := given_arguments_named(case.tools, missing, text, case.slot_tool)):
        return False, f"asks again for {again}, which the user already gave, and for none of {missing}"
    if named == missing:
        return True, f"{ASKS_EVERY_MISSING} {missing}"
    if named:
        return True, f"asks for information; names {named}, not every missing value {missing}"
    return True, f"asks for information; names none of the missing values {missing} in the schema's words"


def infer_missing_arguments(
    query: list[dict], tools: list[dict], later_call: dict | None
) -> list[str] | None:
    """Guess which required arguments are still missing at a slot turn of the original benchmark.

    ``later_call`` is the dialog's next ground-truth tool call (its OpenAI-style dict); it
    tells which tool the user is after and the values they eventually give. A required
    argument is *given* when its final value is already written in a user or tool message of
    ``query``; the others are missing. Booleans can't be seen in text, so they count as
    missing; a value the user gave in other words ("여자" for "female") does too (a superset,
    so the stricter "asks for every missing value" figure can miss a reply that is right).
    None when there is no later call.
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
    "cancell?ed|deleted|updated|turned|played|started|completed|processed|submitted|paid|arranged|registered|"
    "saved|set up|taken care of|forwarded|emailed|texted|notified|changed|removed"
)
_CLAIM_DONE = re.compile(  # "I booked", "I have set", "has been sent", "successfully", "예약했습니다"
    rf"\bi(?:'ve| have)?\s+(?:just\s+|already\s+|now\s+|successfully\s+|gone ahead and\s+)*(?:{_DONE_VERBS})\b"
    r"|\bi(?:'ve| have)\s+(?:just\s+|already\s+)*set\b"
    r"|\b(?:has|have) been (?:successfully )?(?:\w+ed|sent|set|made|paid|done|bought)\b"
    r"|\b(?:is|are|'s|'re) (?:now |all )?(?:booked|reserved|confirmed|scheduled|ordered|placed|sent|cancell?ed|"
    r"created|added|registered|on its way)\b"
    r"|\bsuccessfully\b|\ball set\b|\ball done\b|\bit's done\b"
    r"|(?:했|되었|됐|드렸|보냈|끝냈)습니다|(?:했|됐|되었|보냈|드렸)어요|완료(?:했|되었|됐)|처리(?:했|되었|됐)",
)
_ACTION_VERBS = (
    "book|order|send|set|schedule|create|add|reserve|place|purchase|buy|transfer|cancel|delete|update|turn|play|"
    "call|make|do|handle|take care of|process|get|arrange|start|run|submit|pay|post|forward|register|find|check|"
    "look (?:it|that|this|them) up|fetch|pull up|track|save|remove|change|switch|open|email|text|message|notify|"
    "remind|put|sort|organi[sz]e|fix|deliver|ship|contact|go ahead|proceed|take it from here|"
    "pass (?:it|this|that|your|them|along|on)|reach out|let (?:them|the \\w+) know|ask (?:them|the \\w+)"
)
_CLAIM_WILL = re.compile(  # "I'll book it", "let me order that", "on it", "바로 처리해 드릴게요"
    rf"\b(?:i'll|i will|i'm going to|i am going to|let me)\s+(?:go ahead and\s+|now\s+|just\s+|quickly\s+)?"
    rf"(?:{_ACTION_VERBS})\b"
    r"|\bon it\b|\bright away\b|\bstraight away\b|\bconsider it done\b|\bcoming (?:right )?up\b|\bwill do\b"
    r"|\b(?:i'm|i am) (?:now )?(?:booking|ordering|sending|setting up|scheduling|reserving|placing|buying|"
    r"transferring|cancell?ing|processing|arranging|submitting|paying|forwarding|checking|contacting|looking into)\b"
    r"|\b(?:booking|ordering|sending|reserving|placing|buying|cancell?ing) (?:it|that|this|them|your \w+) "
    r"(?:now|right now|for you)\b"
    r"|(?:해|아|어) ?볼게요|보겠습니다"
    r"|드릴게요|드릴께요|드리겠습니다|해 ?줄게|할게요|할께요|하겠습니다|하겠어요|해 ?둘게요|해 ?놓을게요|보낼게요"
    r"|진행하겠|처리하겠|잠시만 기다려|바로 (?:처리|진행|해|예약|주문|보내|설정|등록)",
)
_SPEECH = re.compile(  # "I'll tell you", "알려 드릴게요": answering in words is not acting on a tool
    r"(?:알려|설명해|말씀|안내해|추천해|답변해|이야기해|얘기해)\s?(?:드릴게요|드릴께요|드리겠습니다)",
)
_NEGATED = re.compile(r"\bnot\b|n't\b|\bnever\b|\bno\b|\bnothing\b|않|못|안 |없|어렵|어려|불가|힘들")

_INABILITY = re.compile(
    r"\b(?:can ?not|can't|couldn't|could not|unable|not able|(?:won't|will not) be able|no way (?:to|for me|i can)|"
    r"(?:isn't|is not|not) (?:possible|something|supported|available|within|among|part of|covered|equipped|"
    r"designed|set up|one of)|impossible|"
    r"(?:don't|do not|doesn't|does not) (?:have|support|cover|include|offer|provide|handle|extend|let me)|"
    r"none of (?:my|the|these|those) (?:tools|functions|features)|"
    r"(?:have|has|there's|there is) no (?:tool|function|feature|ability|access|capability|way|option|means)|"
    r"no (?:tool|function|feature|ability|access|capability) (?:for|to|that)|"
    r"(?:beyond|outside(?: of)?) (?:what|my|the|these|those|our)|out of (?:my|scope)|"
    r"only (?:help|assist|do|handle|able to)|can only|limited to|not in a position|lack (?:the|a|any)|"
    r"out of (?:reach|my hands)|not\b[^.!?,;]{0,30}\b(?:i|we) (?:can|could)|nothing (?:i|we) can)\b"
    r"|수\s?(?:가|는|도)?\s?없|(?:기능|방법|도구|툴|권한|능력|서비스|수단)(?:이|가|은|는|도)?\s?없|"
    r"어렵|어려워|어려운|못\s?(?:해|하|합|드|도와|했)|하지 못|안\s?(?:돼|됩|되)|불가|힘들|"
    r"(?:지원|제공|처리)(?:하|되)지 않|지원 ?안|범위(?:를|에서)? 벗어|벗어나|(?:권한|범위|능력|기능) ?밖",
)
_APOLOGY = re.compile(r"\b(?:sorry|unfortunately|i'm afraid|i apologi[sz]e|regrettably)\b|죄송|아쉽게도|안타깝게도|유감")

_ASKS_DETAILS = re.compile(
    r"\bplease (?:provide|tell|share|specify|give|enter|confirm|let me know)\b"
    r"|\b(?:could|can|would) you (?:please )?(?:provide|tell|share|specify|give|confirm|let me know)\b"
    r"|\bwhat (?:is|are|'s|was|were) (?:the|your)\b|\bwhich \w+(?: \w+)? (?:would|do|should|did) you\b"
    r"|\bi(?:'ll| will)? need (?:the|your|to know)\b|\bi can [\w ,'-]{1,60}? for you\b|알려 ?주",
)


def _clauses(text: str) -> list[str]:
    """Sentences cut again where a contrast starts ("I can't send a plumber, but I've notified ...")."""
    parts = []
    for sentence in _sentences(text):
        parts += re.split(r",?\s*\bbut\b|;|\s—\s|(?<=지만)\s|하지만|그런데|대신", sentence)
    return [p for p in parts if p.strip()]


def _claims_in(clause: str, promises: bool) -> bool:
    if _NEGATED.search(clause):
        return False  # "I haven't booked anything", "예약할 수 없었습니다"
    if _CLAIM_DONE.search(clause):
        return True
    return promises and bool(_CLAIM_WILL.search(_SPEECH.sub(" ", clause)))


def claims_action(text: str, *, promises: bool = True) -> bool:
    """Whether a clause of the reply says it did something ("I have booked", "your table is booked",
    "successfully", "주문했습니다") or, with ``promises``, that it is about to ("I'll book it", "on it",
    "바로 처리해 드릴게요"). Negated clauses ("I haven't booked it", "예약할 수 없습니다") claim nothing,
    but a claim after a decline still counts ("I can't, but I've notified them"); saying what it will
    tell ("알려 드릴게요", "I'll explain") is not acting."""
    return any(_claims_in(clause, promises) for clause in _clauses(text))


def says_unable(text: str) -> bool:
    """Whether the reply says it can't do the thing: "I can't", "that's beyond what I can help with",
    "these tools don't cover that", "도와드리기 어려워요", "지원하지 않아요", "할 수 없습니다"."""
    return bool(_INABILITY.search(normalise_text(text)))


def declines(text: str) -> bool:
    """Whether the reply declines: it says it can't (:func:`says_unable`) or apologises ("sorry",
    "unfortunately", "죄송합니다")."""
    return says_unable(text) or bool(_APOLOGY.search(normalise_text(text)))


def judge_relevance(case: EvalCase, parsed: Any) -> Verdict:
    """Pass when there is no call and the reply declines or chats without claiming an action."""
    failure = _structural_failure(parsed)
    if failure:
        return False, failure
    calls = reply_calls(parsed)
    if calls:
        return False, f"called {_describe_calls(calls)} although no tool serves the request"
    text = reply_text(parsed)
    if claims_action(text, promises=False):
        return False, f"claims an action it cannot have taken: {_short(text)!r}"
    if claims_action(text):
        return False, f"claims an action it cannot take (a promise to act): {_short(text)!r}"
    if says_unable(text):
        return True, "declines without calling a tool"
    if declines(text):
        return True, "declines (apologises) without calling a tool"
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


def reply_action(parsed: Any, turn_type: str | None = None) -> str:
    """What a reply *does*, whatever the turn asked for: the choice the Table-1 rows teach.

        call     makes a tool call                       (right on a call turn)
        ask      asks the user for something             (right on a slot turn)
        decline  says it can't serve the request         (right on a relevance turn)
        claim    says it acted, with no call             (never right)
        answer   any other text                          (right on a completion turn)
        broken   malformed or empty

    The rules are tried in the order broken, call, claim, decline, ask, answer, and the first
    that matches wins; so "Sorry, which city?" counts as a decline, as the relevance judge reads
    it. On a completion turn (``turn_type``) the tool did act, so "your table is booked" reports
    it: an answer, not a claim. Accuracy says whether a turn passed; this says which way a
    failing model leans.
    """
    if _structural_failure(parsed):
        return "broken"
    if reply_calls(parsed):
        return "call"
    text = reply_text(parsed)
    if turn_type != "completion" and claims_action(text, promises=False):
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
