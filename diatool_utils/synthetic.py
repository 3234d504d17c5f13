"""A seeded generator of English tool dialogues: SFT data, Table-1 pairs, held-out dev and eval sets.

Each user request is kept as a *structured intent*: a request template from the catalogue
(:mod:`diatool_utils.synthetic_tools`) plus the value of each slot. The text is rendered
from it, so leaving a value out (a Type-2 query) means rendering the template again without
that slot, never cutting words out of a sentence:

    >>> intent = sample_intent(TOOLS_BY_NAME["get_weather"], random.Random(0))
    >>> intent.template
    'I need the weather forecast[ for {date}][ in {city}][, in {unit} please].'
    >>> intent.text()
    'I need the weather forecast for 2026-03-07 in Nairobi, in fahrenheit please.'
    >>> intent.text(omit=("date",))
    'I need the weather forecast in Nairobi, in fahrenheit please.'

Everything is drawn from one ``random.Random(seed)``, so the same seed and sizes give the
same files byte for byte (``scripts/make_data.py``).

Three generators:

- :func:`generate_sft`: conversations in the OpenAI format, mostly Type 1 with fewer
  slot-filling (Type 2) and decline (Type 3) examples; over half hold two or three requests.
- :func:`generate_pairs`: preference pairs for all ten Table-1 rows (:mod:`diatool_utils.pairs`),
  half of them after an earlier, finished request.
- :func:`generate_eval`: FunctionChat-Bench "Dialog" rows built only from held-out tools: the
  evaluation set (``split="eval"``) or the development set (``split="dev"``), on tools of their own.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

from diatool_utils.pairs import (
    ROW_NEEDS,
    ROWS,
    Round,
    Type1Dialogue,
    build_pair,
    call_flow,
    decline_flow,
    plan_rounds,
    slot_filling_flow,
    user_message,
)
from diatool_utils.states import label_turns
from diatool_utils.synthetic_tools import ENUMS, POOLS, Param, ToolSpec, tools_in

# ----------------------------------------------------------------------------- values

_FIRST_DATE = dt.date(2025, 1, 1)
_AIRLINE_CODES = ("LH", "BA", "AF", "UA", "KL", "QF", "JL", "AC", "IB", "SK")


def _money(lo: int, hi: int, rng: random.Random) -> int | float:
    if rng.random() < 0.6:
        return rng.randint(lo, hi)
    value = rng.randint(lo * 100, hi * 100) / 100
    return int(value) if value == int(value) else value


def sample_value(spec: Any, rng: random.Random) -> Any:
    """One value of a :class:`Param` ``values`` spec (or a result-field spec)."""
    if isinstance(spec, tuple):
        kind = spec[0]
        if kind == "int":
            return rng.randint(spec[1], spec[2])
        if kind == "money":
            return _money(spec[1], spec[2], rng)
        if kind == "code":
            return spec[1] + "".join(rng.choice(string.digits) for _ in range(spec[2]))
        if kind == "clock":  # a time of day between two hours
            return f"{rng.randint(spec[1], spec[2]):02d}:{rng.choice((0, 10, 20, 30, 40, 50)):02d}"
        if kind == "choice":
            return rng.choice(spec[1])
        if kind == "pick":
            return rng.choice(POOLS[spec[1]])
        raise ValueError(f"unknown value spec {spec!r}")
    if spec == "date":
        return (_FIRST_DATE + dt.timedelta(days=rng.randrange(730))).isoformat()
    if spec == "time":
        return f"{rng.randint(7, 22):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    if spec == "bool":
        return rng.random() < 0.5
    if spec == "person":
        return f"{rng.choice(POOLS['first_name'])} {rng.choice(POOLS['last_name'])}"
    if spec == "email":
        return f"{rng.choice(POOLS['first_name'])}.{rng.choice(POOLS['last_name'])}@example.com".lower()
    if spec == "phone":
        return f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    if spec == "flight":
        return f"{rng.choice(_AIRLINE_CODES)}{rng.randint(100, 999)}"

    if spec in ENUMS:
        return rng.choice(ENUMS[spec])
    return rng.choice(POOLS[spec])


def sample_param(param: Param, rng: random.Random) -> Any:
    return sample_value(param.values, rng)


def value_text(param: Param | None, value: Any) -> str:
    """How a value is written in a sentence (booleans through the parameter's phrases)."""
    if isinstance(value, bool):
        if param is None or param.phrases is None:
            return "yes" if value else "no"
        return param.phrases[0] if value else param.phrases[1]
    if isinstance(value, list):
        return _join([str(v) for v in value])
    return str(value)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def invent_value(param: Param, avoid: list[Any], rng: random.Random) -> Any:
    """A plausible value for ``param`` that differs from everything in ``avoid``."""
    for _ in range(50):
        value = sample_param(param, rng)
        if value not in avoid:
            return value
    raise ValueError(f"could not invent a value for {param.name!r} different from {avoid}")


# -------------------------------------------------------------------------- templates

_CHUNK = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"\{(\w+)\}")


def template_slots(template: str) -> list[str]:
    """The slot names of a request template, in order."""
    return _SLOT.findall(template)


def render_template(template: str, texts: dict[str, str]) -> str:
    """Fill a request template; a chunk ``[... {slot} ...]`` disappears when ``slot`` has no text.

    ``[ {slot}| other words]`` renders " other words" instead when the slot is left out.
    """

    def chunk(match: re.Match) -> str:
        present, _, absent = match.group(1).partition("|")
        names = _SLOT.findall(present)
        if len(names) != 1:
            raise ValueError(f"a chunk needs exactly one slot: [{match.group(1)}] in {template!r}")
        if names[0] in texts:
            return present.replace("{" + names[0] + "}", texts[names[0]])
        return absent

    outside = _CHUNK.sub("", template)
    if _SLOT.search(outside):
        raise ValueError(f"every slot must sit inside [ ] so it can be left out: {template!r}")
    text = tidy(_CHUNK.sub(chunk, template), capitalize=False)
    starts_with_value = any(text.startswith(t) for t in texts.values() if t)
    return text if starts_with_value else tidy(text)


def tidy(text: str, capitalize: bool = True) -> str:
    """Collapse spaces, drop spaces before punctuation, capitalise the first letter."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:?!])", r"\1", text)
    text = re.sub(r"^[,;:]\s*", "", text)
    return text[:1].upper() + text[1:] if capitalize else text


@dataclass(frozen=True)
class Intent:
    """A user request as structure: the tool, the template and every slot value it renders."""

    tool: ToolSpec
    template: str
    values: dict[str, Any]

    def texts(self) -> dict[str, str]:
        return {n: value_text(self.tool.params[n], v) for n, v in self.values.items()}

    def text(self, omit: tuple[str, ...] = ()) -> str:
        """The request as the user writes it, without the values named in ``omit``."""
        return render_template(self.template, {n: t for n, t in self.texts().items() if n not in omit})

    def arguments(self) -> dict[str, Any]:
        """The call's arguments: every value, in the tool's parameter order."""
        return {n: self.values[n] for n in self.tool.params if n in self.values}


def sample_intent(tool: ToolSpec, rng: random.Random, optional_rate: float = 0.4) -> Intent:
    """A request for ``tool``: a random template, every required value, some optional ones."""
    template = rng.choice(tool.requests)
    values: dict[str, Any] = {}
    for name in template_slots(template):
        param = tool.params[name]
        if name in tool.optional and rng.random() >= optional_rate:
            continue
        # no two values alike, so a value left out can't be read off another one ("3 guests", 3 nights)
        taken = [v for v in values.values() if not isinstance(v, bool)] if param.type != "boolean" else []
        values[name] = invent_value(param, taken, rng)
    return Intent(tool, template, values)


# ------------------------------------------------------------------------ the assistant

ASK = (
    "Sure, what {be} {labels}?",
    "Could you tell me {labels}?",
    "Happy to help. What {be} {labels}?",
    "I can {capability} for you; what {be} {labels}?",
    "Before I {capability}, could you give me {labels}?",
    "Please tell me {labels}.",
    "I need {labels} first. What {be} {pronoun}?",
)
FOLLOW_UP = (
    "Thanks! And what {be} {labels}?",
    "Got it. Could you also tell me {labels}?",
    "Thank you. Please also give me {labels}.",
    "Great, and {labels}?",
)
DECLINE = (
    "Sorry, I can't {capability} with the tools I have.",
    "I'm sorry, but I don't have a tool to {capability}.",
    "Unfortunately, I'm not able to {capability} here.",
    "I can't help with that, as none of my tools can {capability}.",
    "Sorry, I'm unable to {capability} with the available tools.",
    "I'm afraid I can't {capability}; no available tool does that.",
)
ANSWER = ("{value}", "{value}.", "It's {value}.", "{Label} is {value}.", "{value}, please.")


def _user_label(param: Param) -> str:
    return param.label.replace("your ", "my ")


def slot_question(tool: ToolSpec, names: tuple[str, ...], rng: random.Random, follow_up: bool = False,
                  template: str | None = None) -> str:
    """One sentence asking for the values of ``names``, each named by its label.

    ``template`` defaults to a random one of :data:`ASK` (or :data:`FOLLOW_UP` after a partial answer).
    """
    labels = _join([tool.params[n].label for n in names])
    template = template or rng.choice(FOLLOW_UP if follow_up else ASK)
    return tidy(template.format(be="is" if len(names) == 1 else "are", labels=labels,
                                pronoun="it" if len(names) == 1 else "they", capability=tool.capability))


def slot_answer(tool: ToolSpec, values: dict[str, Any], rng: random.Random) -> str:
    """The user's reply giving ``values`` (one value: a per-parameter phrasing)."""
    items = [(tool.params[n], value_text(tool.params[n], v)) for n, v in values.items()]
    if len(items) == 1:
        param, text = items[0]
        template = rng.choice(param.answers or ANSWER)
        label = _user_label(param)
        return template.format(value=text, Label=label[:1].upper() + label[1:])
    if rng.random() < 0.6:
        answer = _join([f"{_user_label(p)} is {t}" for p, t in items]) + "."
        return answer[:1].upper() + answer[1:]
    return _join([t for _, t in items]) + rng.choice((".", "", ", please."))


def decline_text(tool: ToolSpec, rng: random.Random) -> str:
    """A one-sentence polite decline that says what can't be done."""
    return rng.choice(DECLINE).format(capability=tool.capability)


def tool_result(tool: ToolSpec, arguments: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """What the tool answers: its required arguments echoed, plus the result fields."""
    result = {n: arguments[n] for n in tool.required}
    for name, spec in tool.result.items():  # a callable sees the arguments and the fields so far
        result[name] = spec({**arguments, **result}, rng) if callable(spec) else sample_value(spec, rng)
        if isinstance(result[name], float) and result[name] == int(result[name]):
            result[name] = int(result[name])
    return result


def completion_text(tool: ToolSpec, arguments: dict[str, Any], result: dict[str, Any],
                    rng: random.Random) -> str:
    """One sentence that reports the result's key values."""
    texts = {n: value_text(tool.params.get(n), v) for n, v in {**arguments, **result}.items()}
    return tidy(rng.choice(tool.completions).format(**texts))


@dataclass
class SyntheticWriter:
    """The :class:`~diatool_utils.pairs.DialogueWriter` of a synthetic intent."""

    intent: Intent

    @property
    def tool(self) -> ToolSpec:
        return self.intent.tool

    def request(self, omit):
        return self.intent.text(tuple(omit))

    def ask(self, names, rng, follow_up=False):
        return slot_question(self.tool, tuple(names), rng, follow_up)

    def answer(self, values, rng):
        return slot_answer(self.tool, values, rng)

    def decline(self, rng):
        return decline_text(self.tool, rng)

    def invent(self, name, avoid, rng):
        return invent_value(self.tool.params[name], [avoid, *self.intent.values.values()], rng)

    def result(self, arguments, rng):
        if not self.tool.result:
            return None
        return json.dumps(tool_result(self.tool, arguments, rng), ensure_ascii=False)

    def completion(self, arguments, result, rng):
        if not self.tool.completions:
            return None
        return completion_text(self.tool, arguments, json.loads(result), rng)


def synthetic_dialogue(tool: ToolSpec, offered: list[ToolSpec], rng: random.Random) -> Type1Dialogue:
    """A Type-1 dialogue for ``tool`` with ``offered`` in its tool list (a never-offered tool
    gets no tool answer: its rows stop at the call)."""
    intent = sample_intent(tool, rng)
    writer = SyntheticWriter(intent)
    arguments = intent.arguments()
    result = writer.result(arguments, rng) or ""
    completion = writer.completion(arguments, result, rng) if result else ""
    return Type1Dialogue(
        tools=[t.openai_schema() for t in offered], tool_name=tool.name, arguments=arguments,
        required=list(tool.required), request=intent.text(), result=result, completion=completion or "",
        writer=writer)


# ---------------------------------------------------------------------- tool lists


def offered_tools(targets: list[ToolSpec], pool: list[ToolSpec], count: int, rng: random.Random,
                  exclude: tuple[ToolSpec, ...] = (), same_domain_rate: float = 0.6) -> list[ToolSpec]:
    """``targets`` plus distractors from ``pool`` up to ``count`` tools, in random order.

    Often one distractor shares a target's domain (weather next to air quality), so the
    model has to read which tool fits rather than guess from the topic.
    """
    chosen = list(targets)
    banned = {t.name for t in (*targets, *exclude)}
    candidates = [t for t in pool if t.name not in banned]
    domains = {t.domain for t in (*targets, *exclude)}
    near = [t for t in candidates if t.domain in domains]
    if near and len(chosen) < count and rng.random() < same_domain_rate:
        pick = rng.choice(near)
        chosen.append(pick)
        candidates.remove(pick)
    while len(chosen) < count and candidates:
        pick = rng.choice(candidates)
        chosen.append(pick)
        candidates.remove(pick)
    rng.shuffle(chosen)
    return chosen


def _draw(weights: dict[Any, float], rng: random.Random) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


TOOLS_PER_DIALOGUE = {1: 0.3, 2: 0.45, 3: 0.25}
TOOLS_LEFT_WHEN_DECLINING = {1: 0.4, 2: 0.4, 3: 0.2}


def _missing(tool: ToolSpec, rng: random.Random) -> list[str]:
    """Which required values a Type-2 request leaves out: one most often, sometimes several."""
    required = list(tool.required)
    k = 1 if len(required) == 1 or rng.random() < 0.6 else rng.randint(2, len(required))
    keep = set(rng.sample(required, k))
    return [n for n in required if n in keep]


# --------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """One user request and the assistant's (correct) flow for it."""

    query_type: int
    tool: ToolSpec
    messages: list[dict]  # the request and every message after it
    rounds: list[Round] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def make_episode(query_type: int, tool: ToolSpec, rng: random.Random, call_id: str = "call_0",
                 round_style: str | None = None, drop_values_when_declining: float = 0.3) -> Episode:
    """A correct episode of the given query type for ``tool``.

    Type 1 calls at once; Type 2 leaves values out of the request and asks for them; Type 3
    (``tool`` is not offered) declines, whether or not the request gives every value.
    """
    src = synthetic_dialogue(tool, [], rng)
    if query_type == 1:
        return Episode(1, tool, [user_message(src.request), *call_flow(src, rng, call_id=call_id)])
    if query_type == 2:
        missing = _missing(tool, rng)
        rounds = plan_rounds(missing, rng, round_style)
        flow = slot_filling_flow(src, rounds, rng, call_id=call_id)
        return Episode(2, tool, [user_message(src.writer.request(tuple(missing))), *flow], rounds, missing)
    if query_type == 3:
        request = src.request
        if tool.required and rng.random() < drop_values_when_declining:
            request = src.writer.request(tuple(_missing(tool, rng)))
        return Episode(3, tool, [user_message(request), *decline_flow(src, rng)])
    raise ValueError(f"query_type must be 1, 2 or 3, got {query_type!r}")


def _out_of_scope_tool(rng: random.Random, offered: list[ToolSpec], pool: list[ToolSpec],
                       phantoms: list[ToolSpec], phantom_rate: float) -> ToolSpec:
    """A tool the request needs but the list lacks: never offered (phantom) or just not in this list."""
    names = {t.name for t in offered}
    if rng.random() < phantom_rate:
        return rng.choice(phantoms)
    return rng.choice([t for t in pool if t.name not in names])


# -------------------------------------------------------------------------------- SFT

# Type 2 is the hardest behaviour to learn (read the request, find the value that is not there, ask for it):
# at 15 % a 135M model never asked after 120 SFT steps; at 30 % it starts to (README, "Results").
SFT_MIX = {1: 0.55, 2: 0.30, 3: 0.15}

# Requests per SFT conversation. Evaluation dialogues hold 1-4 requests (2.1 on average). With
# 85 % single-request SFT rows, the model learned "after a decline, decline again": it declined 8 of
# 13 call turns that came after an earlier request, although the tool was in its list.
SFT_REQUESTS = {1: 0.45, 2: 0.35, 3: 0.20}


def generate_sft(n: int = 1500, seed: int = 0, mix: dict[int, float] | None = None,
                 requests: dict[int, float] | None = None, phantom_rate: float = 0.5) -> list[dict]:
    """``n`` SFT conversations; ``mix`` gives the share of each query type (of every request).

    ``requests`` gives the share of conversations with 1, 2, 3 ... requests, each of a type
    drawn from ``mix`` (a decline may come before a call, the way the evaluation dialogues
    go). Rows: ``{"id", "tools", "messages", "query_type", "query_types"}`` (the type of the
    first request, and of every request).
    """
    rng = random.Random(seed)
    mix = mix or SFT_MIX
    requests = requests or SFT_REQUESTS
    pool = tools_in("train")
    phantoms = tools_in("phantom_train")
    rows = []
    for i in range(n):
        types = [_draw(mix, rng) for _ in range(_draw(requests, rng))]
        rows.append(_sft_row(f"sft-{i:05d}", types, rng, pool, phantoms, phantom_rate))
    return rows


def _sft_row(row_id, types, rng, pool, phantoms, phantom_rate) -> dict:
    served = []
    for query_type in types:
        if query_type in (1, 2):
            served.append(rng.choice([t for t in pool if t not in served]))
    count = max(len(served), _draw(TOOLS_PER_DIALOGUE if served else TOOLS_LEFT_WHEN_DECLINING, rng))
    offered = offered_tools(served, pool, count, rng)
    messages, served_iter = [], iter(served)
    for k, query_type in enumerate(types):
        tool = next(served_iter) if query_type in (1, 2) else \
            _out_of_scope_tool(rng, offered, pool, phantoms, phantom_rate)
        messages += make_episode(query_type, tool, rng, call_id=f"call_{k}").messages
    return {"id": row_id, "tools": [t.openai_schema() for t in offered], "messages": messages,
            "query_type": types[0], "query_types": types}


# ------------------------------------------------------------------------------ pairs


def _row_tools(row: int, pool: list[ToolSpec]) -> list[ToolSpec]:
    needed = max(ROW_NEEDS[row])
    return [t for t in pool if len(t.required) >= needed]


PAIR_SPLITS = ("train", "dev")


def generate_pairs(n: int = 3000, seed: int = 0, row_weights: dict[int, float] | None = None,
                   phantom_rate: float = 0.5, history_rate: float = 0.5, split: str = "train") -> list[dict]:
    """``n`` preference pairs over the ten Table-1 rows (equal shares unless ``row_weights``).

    ``split`` picks the tools: ``"train"`` for the pairs DPO trains on, ``"dev"`` for held-out pairs on the
    development tools (their reward accuracy per row is watched during training, never trained on).

    Rows 9-10 need a tool that is not offered: half of them (``phantom_rate``) ask for
    something no training tool does, the others for a training tool left out of the list.
    A share ``history_rate`` of the pairs start after an earlier request that was already
    served, asked about or declined (:func:`with_history`), as in the evaluation dialogues.
    """
    if split not in PAIR_SPLITS:
        raise ValueError(f"generate_pairs builds pairs to train on or to watch on dev: split must be one of "
                         f"{PAIR_SPLITS}, got {split!r} (the evaluation's tools stay out of every choice)")
    rng = random.Random(seed)
    weights = row_weights or {row: 1.0 for row in ROWS}
    total = sum(weights.values())
    counts = {row: int(n * w / total) for row, w in weights.items()}
    for row in sorted(weights, key=lambda r: -weights[r])[: n - sum(counts.values())]:
        counts[row] += 1
    rows = [row for row, c in counts.items() for _ in range(c)]
    rng.shuffle(rows)
    pool, phantoms = tools_in(split), tools_in("phantom_" + split)
    pairs = []
    for i, row in enumerate(rows):
        if row in (9, 10):
            left = _draw(TOOLS_LEFT_WHEN_DECLINING, rng)
            if rng.random() < phantom_rate:
                tool = rng.choice([t for t in phantoms if len(t.required) >= max(1, row - 9)])
                offered = offered_tools([], pool, left, rng)
            else:
                tool = rng.choice(pool)
                offered = offered_tools([tool], pool, left + 1, rng)
        else:
            tool = rng.choice(_row_tools(row, pool))
            offered = offered_tools([tool], pool, _draw(TOOLS_PER_DIALOGUE, rng), rng)
        src = synthetic_dialogue(tool, offered, rng)
        pair = build_pair(row, src, rng, pair_id=f"pair-{i:05d}")
        if rng.random() < history_rate:
            pair = with_history(pair, rng, pool, phantoms, phantom_rate)
        pairs.append(pair)
    return pairs


def with_history(pair: dict, rng: random.Random, pool: list[ToolSpec], phantoms: list[ToolSpec],
                 phantom_rate: float = 0.5) -> dict:
    """``pair`` with one earlier, finished request of a random type put before its request.

    The earlier request uses a tool of the pair's list (Types 1 and 2) or one the list lacks
    (Type 3), so the lesson of the pair must hold whatever came before: a call after a
    decline, a decline after a call. Its messages belong to the prompt: they carry no loss.
    """
    return _after(pair, earlier_request(pair["tools"], rng, pool, phantoms, phantom_rate))


def earlier_request(tools: list[dict], rng: random.Random, pool: list[ToolSpec], phantoms: list[ToolSpec],
                    phantom_rate: float = 0.5) -> list[dict]:
    """The messages of one finished request of a random type, for a dialogue offering ``tools``:
    a Type 1 or 2 request uses one of them, a Type-3 request a tool of ``pool`` (or a phantom) they lack."""
    by_name = {t.name: t for t in pool}
    offered = [by_name[t["function"]["name"]] for t in tools if t["function"]["name"] in by_name]
    query_type = _draw(SFT_MIX, rng) if offered else 3
    if query_type == 3:
        tool = _out_of_scope_tool(rng, offered, pool, phantoms, phantom_rate)
    else:
        tool = rng.choice(offered)
    return make_episode(query_type, tool, rng, call_id="call_h").messages


def _after(pair: dict, earlier: list[dict]) -> dict:
    """``pair`` with ``earlier`` messages put between its system prompt and its request."""
    *before, request = pair["prompt"]
    return {**pair, "prompt": [*before, *earlier, request]}


# Twin pairs: the two rows of a twin share one dialogue (tool list, request, values, answers) and
# differ in a single fact the model must read: whether the request gives every required value
# (rows 1-3 against 5-7), or whether the needed tool is in the list (rows 4 and 8 against 9 and 10).
# Their chosen flows start differently (call against ask, call against decline, ask against decline),
# so in one batch their pushes on "call or text?" cancel and only the reading of that fact is taught.
TWINS = ((1, 5), (2, 6), (3, 7), (4, 9), (8, 10))


def generate_twin_pairs(n: int = 1000, seed: int = 0, phantom_rate: float = 0.5,
                        history_rate: float = 0.5) -> list[dict]:
    """``n`` // 2 twins of preference pairs (see :data:`TWINS`), equal shares of the five kinds.

    Each pair carries ``"twin"`` (the id it shares with its twin), and twins are adjacent, so a
    sequential sampler with an even batch size puts both in one batch. A twin that starts after an
    earlier request (share ``history_rate``) has the same earlier request in both pairs; it never
    uses the needed tool, which one pair of a (4, 9) or (8, 10) twin lacks. ``phantom_rate`` is the
    share of the earlier Type-3 requests that ask for a never-offered tool.
    """
    rng = random.Random(seed)
    kinds = [TWINS[k % len(TWINS)] for k in range(n // 2)]
    rng.shuffle(kinds)
    pool, phantoms = tools_in("train"), tools_in("phantom_train")
    pairs = []
    for k, (first, second) in enumerate(kinds):
        tool = rng.choice([t for t in pool if len(t.required) >= max(*ROW_NEEDS[first], *ROW_NEEDS[second])])
        count = _draw(TOOLS_PER_DIALOGUE, rng)  # the pair without the needed tool keeps at least one
        offered = offered_tools([tool], pool, max(count, 2) if second in (9, 10) else count, rng)
        src = synthetic_dialogue(tool, offered, rng)
        a = build_pair(first, src, rng, pair_id=f"pair-{2 * k:05d}")
        b = build_pair(second, src, rng, missing=a["missing_arguments"] or None, pair_id=f"pair-{2 * k + 1:05d}")
        if rng.random() < history_rate:
            narrower = b["tools"] if len(b["tools"]) < len(a["tools"]) else a["tools"]
            others = [t for t in pool if t.name != tool.name]
            earlier = earlier_request(narrower, rng, others, phantoms, phantom_rate)
            a, b = _after(a, earlier), _after(b, earlier)
        pairs += [{**a, "twin": f"twin-{k:05d}"}, {**b, "twin": f"twin-{k:05d}"}]
    return pairs


# ------------------------------------------------------------------------- evaluation

EVAL_PLAN = {"dialogues": 45, "direct": 40, "slot_filling": 30, "two_rounds": 6, "out_of_tools": 23}
_OUTPUT_TYPE = {"call": "call", "complete": "completion", "ask": "slot", "decline": "relevance"}


EVAL_SPLITS = ("eval", "dev", "train")


def generate_eval(seed: int = 0, plan: dict[str, int] | None = None, split: str = "eval") -> list[dict]:
    """FunctionChat-Bench "Dialog" rows built only from held-out tools.

    With the default :data:`EVAL_PLAN`: 40 direct and 30 slot-filling requests (70 calls, 70
    completions), 36 slot turns (6 requests take two rounds: the user answers only part of
    the first question), 23 requests no offered tool serves, spread over 45 dialogues.
    Slot turns list the still-missing argument names under ``missing_arguments``.

    ``split`` picks the tools: ``"eval"`` (the evaluation set, scored once at the end),
    ``"dev"`` (the development set that training choices are made on) or ``"train"`` (the tools the
    model trained on: a transfer diagnostic, never a score, since its requests are the training data's
    own phrasings). Out-of-scope requests ask for a tool of ``"phantom_" + split`` or for one of the
    split's tools left out of the list.
    """
    if split not in EVAL_SPLITS:
        raise ValueError(f"generate_eval builds a benchmark on one tool split: split must be one of {EVAL_SPLITS}, "
                         f"got {split!r}")
    rng = random.Random(seed)
    plan = {**EVAL_PLAN, **(plan or {})}
    kinds = [1] * plan["direct"] + [2] * plan["slot_filling"] + [3] * plan["out_of_tools"]
    rng.shuffle(kinds)
    sizes = _split_sizes(len(kinds), plan["dialogues"], rng)
    two_rounds = set(rng.sample([i for i, k in enumerate(kinds) if k == 2], plan["two_rounds"]))
    pool, phantoms = tools_in(split), tools_in("phantom_" + split)
    rows, start, serial = [], 0, 1
    for number, size in enumerate(sizes, start=1):
        episode_kinds = [(kinds[j], j in two_rounds) for j in range(start, start + size)]
        start += size
        row = _eval_dialogue(number, episode_kinds, rng, pool, phantoms, serial)
        serial += len(row["turns"])
        rows.append(row)
    return rows


def _split_sizes(total: int, parts: int, rng: random.Random, most: int = 4) -> list[int]:
    if not parts <= total <= parts * most:
        raise ValueError(f"can't spread {total} requests over {parts} dialogues of at most {most}")
    sizes = [1] * parts
    for _ in range(total - parts):
        sizes[rng.choice([i for i, s in enumerate(sizes) if s < most])] += 1
    return sizes


def _eval_dialogue(number, episode_kinds, rng, pool, phantoms, serial) -> dict:
    served: list[ToolSpec] = []
    for kind, two in episode_kinds:
        if kind in (1, 2):
            options = [t for t in pool if t not in served and (not two or len(t.required) >= 2)]
            served.append(rng.choice(options or [t for t in pool if not two or len(t.required) >= 2]))
    count = max(len(set(t.name for t in served)), rng.randint(1, 4))
    unique = list({t.name: t for t in served}.values())
    offered = offered_tools(unique, pool, count, rng, same_domain_rate=0.3)
    messages, missing_at, served_iter = [], {}, iter(served)
    for k, (kind, two) in enumerate(episode_kinds):
        if kind in (1, 2):
            tool = next(served_iter)
            episode = _eval_episode(kind, tool, two, rng, f"call_{k}")
        else:
            tool = _out_of_scope_tool(rng, offered, pool, phantoms, phantom_rate=0.5)
            episode = make_episode(3, tool, rng, call_id=f"call_{k}", drop_values_when_declining=0.0)
        # the slot questions are the assistant texts that answer a user message, one per round
        asks = [i for i, m in enumerate(episode.messages) if m["role"] == "assistant"
                and not m.get("tool_calls") and episode.messages[i - 1]["role"] == "user"]
        for (asked, _), i in zip(episode.rounds, asks if episode.rounds else [], strict=True):
            missing_at[len(messages) + i] = list(asked)
        messages += episode.messages
    turns = []
    for label in label_turns(messages):
        kind = _OUTPUT_TYPE[label.action]
        turn = {"turn_num": len(turns) + 1, "serial_num": serial + len(turns),
                "query": messages[:label.index], "ground_truth": _ground_truth(messages[label.index]),
                "type_of_output": kind, "acceptable_arguments": None}
        if kind == "slot":
            turn["missing_arguments"] = missing_at[label.index]
        turns.append(turn)
    return {"dialog_num": number, "tools_count": len(offered), "tools": [t.openai_schema() for t in offered],
            "turns": turns}


def _eval_episode(kind, tool, two_rounds, rng, call_id) -> Episode:
    if kind == 1:
        return make_episode(1, tool, rng, call_id=call_id)
    for _ in range(100):  # two rounds need two or more missing values
        episode = make_episode(2, tool, rng, call_id=call_id, round_style="partial" if two_rounds else "together")
        if len(episode.rounds) == (2 if two_rounds else 1):
            return episode
    raise ValueError(f"{tool.name}: could not make a {'two' if two_rounds else 'one'}-round slot-filling request")


def _ground_truth(message: dict) -> dict:
    truth = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        truth["tool_calls"] = message["tool_calls"]
    return truth

