"""An optional model judge: FunctionChat-Bench's own rubric, sent to an OpenAI-compatible chat endpoint.

The rule-based judge (:mod:`diatool_utils.judge`) needs no model and is the default everywhere.
This one asks a chat model instead, as the benchmark's authors do with GPT-4. It is used only
when you pass it: ``evaluate(..., judge=ModelJudge.from_environment())``, ``rejudge(..., judge=...)``
or ``python -m diatool_utils.evaluation --model-judge``. Any server that speaks the OpenAI chat
API works: OpenAI itself, vLLM, llama.cpp's server, Ollama. It is configured from the environment:

    DIATOOL_JUDGE_BASE_URL   the API root, e.g. https://api.openai.com/v1 or http://localhost:8000/v1
    DIATOOL_JUDGE_MODEL      the model name the server knows, e.g. gpt-4o
    DIATOOL_JUDGE_API_KEY    sent as "Authorization: Bearer ..."; leave unset for a local server
    DIATOOL_JUDGE_RUBRICS    the benchmark repository's data/ folder, which holds rubric_call.txt,
                             rubric_completion.txt, rubric_slot.txt and rubric_relevance.txt

The rubric files are the benchmark's (they are not copied here). Each is a prompt with the
placeholders {tools}, {query}, {ground_truth} and {response} ({acceptable_arguments} too for call);
each is filled with JSON as the benchmark fills it, and sent as one user message at temperature 0.
The rubric asks the model to reason first and end with its verdict; as in the benchmark, the
verdict is read from the last two lines ("pass" / "fail", or 통과 / 합격 / 성공 for a pass). A
reply without one, an HTTP error or a timeout raises :class:`ModelJudgeError`, which
:func:`evaluation.score_replies` counts as a judge error on that turn.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diatool_utils.judge import (
    OUTPUT_TYPES,
    EvalCase,
    Verdict,
    parse_acceptable_arguments,
    reply_calls,
    reply_text,
)

ENVIRONMENT = {
    "base_url": "DIATOOL_JUDGE_BASE_URL",
    "model": "DIATOOL_JUDGE_MODEL",
    "api_key": "DIATOOL_JUDGE_API_KEY",
    "rubrics": "DIATOOL_JUDGE_RUBRICS",
}
PASS_WORDS = re.compile(r"\bpass(?:ed|es)?\b|패스|패쓰|통과|(?<!불)합격|성공")
FAIL_WORDS = re.compile(r"\bfail(?:ed|s)?\b|불합격|실패")


class ModelJudgeError(RuntimeError):
    """The endpoint could not be reached, answered with an error, or gave no verdict."""


def load_rubrics(folder: str | Path) -> dict[str, str]:
    """``rubric_<type>.txt`` for each output type from ``folder``; a missing file is an error naming it."""
    folder = Path(folder)
    rubrics = {}
    for kind in OUTPUT_TYPES:
        path = folder / f"rubric_{kind}.txt"
        if not path.is_file():
            raise ModelJudgeError(f"{path} not found: point the rubric folder at the benchmark repository's data/")
        rubrics[kind] = path.read_text(encoding="utf-8").strip()
    return rubrics


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _without_ids(message: dict) -> dict:
    """A message whose tool calls lose their ids, as the benchmark sends them."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    return {**message, "tool_calls": [{k: v for k, v in call.items() if k != "id"} for call in calls]}


def submission(parsed: Any) -> dict:
    """The generated reply as the rubric's [Submission]: an assistant message with its tool calls."""
    calls = [{"type": "function", "function": {"name": name, "arguments": _json(arguments)}}
             for name, arguments in reply_calls(parsed)]
    return {"role": "assistant", "content": reply_text(parsed) or None, "tool_calls": calls or None}


def fill_rubric(rubric: str, case: EvalCase, parsed: Any) -> str:
    """The rubric with the turn's tools, history, ground truth, acceptable arguments and the reply."""
    acceptable, strict, _ = parse_acceptable_arguments(case.acceptable_arguments)
    fields = {
        "tools": _json(case.tools),
        "query": _json(case.query),
        "ground_truth": _json(_without_ids(case.ground_truth)),
        "acceptable_arguments": _json("Only ground truth is allowed." if strict else acceptable or None),
        "response": _json(submission(parsed)),
    }
    for key, value in fields.items():  # not str.format: the JSON and the rubric's prose may hold braces
        rubric = rubric.replace("{" + key + "}", value)
    return rubric


def read_verdict(text: str) -> bool:
    """The verdict at the end of the judge's answer: its last two non-empty lines, as the benchmark reads them."""
    lines = [line.strip().casefold() for line in text.strip().splitlines() if line.strip()]
    tail = " ".join(lines[-2:])
    says_pass, says_fail = bool(PASS_WORDS.search(tail)), bool(FAIL_WORDS.search(tail))
    if says_pass == says_fail:
        found = "both pass and fail" if says_pass else "neither pass nor fail"
        raise ModelJudgeError(f"the judge's last lines say {found}: {tail[:120]!r}")
    return says_pass


@dataclass
class ModelJudge:
    """``judge(case, parsed) -> (passed, reason)`` backed by a chat endpoint and the benchmark's rubrics."""

    base_url: str
    model: str
    rubrics: dict[str, str]
    api_key: str | None = None
    timeout: float = 120.0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None, **overrides) -> ModelJudge:
        """A judge configured by ``DIATOOL_JUDGE_*`` (see the module's docstring); ``overrides`` win."""
        environ = os.environ if environ is None else environ
        settings = {key: environ.get(name) for key, name in ENVIRONMENT.items()} | overrides
        unset = [ENVIRONMENT[key] for key in ("base_url", "model", "rubrics") if not settings.get(key)]
        if unset:
            raise ModelJudgeError(f"the model judge needs {', '.join(unset)} set (see diatool_utils.model_judge)")
        rubrics = settings["rubrics"]
        return cls(base_url=settings["base_url"], model=settings["model"], api_key=settings.get("api_key") or None,
                   rubrics=rubrics if isinstance(rubrics, dict) else load_rubrics(rubrics),
                   timeout=float(settings.get("timeout") or 120.0))

    def request_body(self, case: EvalCase, parsed: Any) -> dict:
        """The chat-completions request for one turn."""
        prompt = fill_rubric(self.rubrics[case.type_of_output], case, parsed)
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}

    def complete(self, body: dict) -> str:
        """POST ``body`` to ``{base_url}/chat/completions``; the first choice's text."""
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=_json(body).encode("utf-8"), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:200]
            raise ModelJudgeError(f"{url} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as error:
            raise ModelJudgeError(f"{url} could not be reached: {error}") from None
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise ModelJudgeError(f"{url} did not answer with a chat completion: {raw[:200]!r}") from None
        if not isinstance(content, str) or not content.strip():
            raise ModelJudgeError(f"{url} answered with an empty message")
        return content

    def __call__(self, case: EvalCase, parsed: Any) -> Verdict:
        if not getattr(parsed, "valid", True):  # nothing to show the judge: the reply did not parse
            return False, f"malformed reply: {getattr(parsed, 'error', None) or 'could not be parsed'}"
        answer = self.complete(self.request_body(case, parsed))
        passed = read_verdict(answer)
        last = answer.strip().splitlines()[-3:]
        return passed, f"model judge ({self.model}): {'pass' if passed else 'fail'}; " + " / ".join(
            line.strip() for line in last if line.strip())[:300]
