"""How often a judge agrees with hand labels: a labelled set of replies, judged and compared.

Each line of the labelled set (``tests/data/judge_agreement/replies.jsonl``) is one reply to one
benchmark turn, labelled pass or fail by hand:

    {"id": "en-slot-017", "lang": "en", "cases": "data/eval_dialog.jsonl", "dialog_num": 15,
     "serial_num": 82, "type_of_output": "slot", "reply": {"content": "...", "tool_calls": [...]},
     "label": "pass", "reason": "asks the city", "asks_every_missing": true}

``cases`` names the Dialog file that holds the turn (relative to ``root``). Slot lines also say
whether the reply asks for every missing value, which is compared with the judge's stricter
slot figure (:data:`judge.ASKS_EVERY_MISSING`).

    results = judge_labelled(load_labelled(path), root=REPO_ROOT)
    print(agreement_table(results))

Per output type and language: agreement (share of replies where judge and label agree), and the
precision and recall of the judge's "pass" (of the replies it passed, how many the labels pass;
of those the labels pass, how many it passed).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace

from diatool_utils.benchmark import BenchmarkCases, SkippedTurnsWarning, load_dialog_benchmark
from diatool_utils.dialogues_io import text_lines
from diatool_utils.judge import ASKS_EVERY_MISSING, OUTPUT_TYPES, EvalCase, Judge, judge_case

LANGUAGES = ("en", "ko")


class LabelledSetError(ValueError):
    """A line of a labelled set that can't be used (the message names the file and line)."""


@dataclass(frozen=True)
class LabelledReply:
    """One hand-labelled reply to one benchmark turn."""

    id: str
    lang: str
    cases: str
    dialog_num: int
    serial_num: int
    type_of_output: str
    reply: dict
    label: bool
    reason: str
    asks_every_missing: bool | None = None


@dataclass(frozen=True)
class JudgedReply:
    """A labelled reply with the judge's verdict, reason and (slot) stricter figure."""

    labelled: LabelledReply
    passed: bool
    reason: str

    @property
    def agrees(self) -> bool:
        return self.passed == self.labelled.label

    @property
    def asks_every_missing(self) -> bool:
        return self.passed and self.reason.startswith(ASKS_EVERY_MISSING)


def _line_problem(row: object) -> str | None:
    if not isinstance(row, dict):
        return "expected a JSON object"
    missing = [k for k in ("id", "lang", "cases", "dialog_num", "serial_num", "type_of_output", "reply", "label",
                           "reason") if k not in row]
    if missing:
        return f"missing key(s) {missing}"
    if row["lang"] not in LANGUAGES:
        return f"lang {row['lang']!r} is not one of {LANGUAGES}"
    if row["type_of_output"] not in OUTPUT_TYPES:
        return f"type_of_output {row['type_of_output']!r} is not one of {OUTPUT_TYPES}"
    if row["label"] not in ("pass", "fail"):
        return f"label {row['label']!r} is not 'pass' or 'fail'"
    if not isinstance(row["reply"], dict):
        return "'reply' must be an object with 'content' and/or 'tool_calls'"
    if row["type_of_output"] == "slot" and not isinstance(row.get("asks_every_missing"), bool):
        return "a slot reply needs 'asks_every_missing' (true or false)"
    return None


def load_labelled(path: str | Path) -> list[LabelledReply]:
    """Every line of a labelled set, checked; a bad line is an error naming the file and line."""
    replies = []
    for number, line in text_lines(path, LabelledSetError):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabelledSetError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        problem = _line_problem(row)
        if problem:
            raise LabelledSetError(f"{path}, line {number}: {problem}")
        replies.append(LabelledReply(**{**row, "label": row["label"] == "pass"}))
    if not replies:
        raise LabelledSetError(f"{path}: no labelled reply in the file")
    return replies


@cache
def _benchmark(path: Path) -> BenchmarkCases:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedTurnsWarning)  # a labelled turn must not be silently gone
        return load_dialog_benchmark(path)


def find_case(labelled: LabelledReply, root: Path) -> EvalCase:
    """The benchmark turn a labelled reply answers; an error names the reply when there is none."""
    for case in _benchmark(root / labelled.cases):
        if (case.dialog_num, case.serial_num) == (labelled.dialog_num, labelled.serial_num):
            if case.type_of_output != labelled.type_of_output:
                raise LabelledSetError(f"{labelled.id}: turn {labelled.serial_num} of {labelled.cases} is a "
                                       f"{case.type_of_output} turn, not {labelled.type_of_output}")
            return case
    raise LabelledSetError(f"{labelled.id}: {labelled.cases} has no dialog {labelled.dialog_num} "
                           f"turn {labelled.serial_num}")


def as_parsed_reply(reply: dict) -> SimpleNamespace:
    """A labelled reply in the shape the judge reads (``content``, ``tool_calls``, ``valid``)."""
    return SimpleNamespace(content=reply.get("content"), tool_calls=reply.get("tool_calls") or [], valid=True,
                           error=None)


def judge_labelled(replies: Sequence[LabelledReply], root: str | Path, judge: Judge = judge_case
                   ) -> list[JudgedReply]:
    """Each labelled reply judged against its turn by ``judge`` (the rule judge by default)."""
    root = Path(root)
    judged = []
    for labelled in replies:
        passed, reason = judge(find_case(labelled, root), as_parsed_reply(labelled.reply))
        judged.append(JudgedReply(labelled, bool(passed), str(reason)))
    return judged


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def agreement_rows(judged: Sequence[JudgedReply]) -> list[dict]:
    """One row per (output type, language): replies, agreement, and precision / recall of "pass"."""
    rows = []
    for kind in OUTPUT_TYPES:
        for lang in LANGUAGES:
            group = [j for j in judged if j.labelled.type_of_output == kind and j.labelled.lang == lang]
            if not group:
                continue
            judged_pass = [j for j in group if j.passed]
            labelled_pass = [j for j in group if j.labelled.label]
            rows.append({
                "type": kind, "lang": lang, "replies": len(group),
                "agreement": _ratio(sum(j.agrees for j in group), len(group)),
                "precision": _ratio(sum(j.labelled.label for j in judged_pass), len(judged_pass)),
                "recall": _ratio(sum(j.passed for j in labelled_pass), len(labelled_pass)),
            })
    return rows


def every_missing_agreement(judged: Sequence[JudgedReply], lang: str) -> tuple[int, int]:
    """(agreeing, total) slot replies in ``lang`` on whether the reply asks for every missing value."""
    slots = [j for j in judged if j.labelled.type_of_output == "slot" and j.labelled.lang == lang]
    return sum(j.asks_every_missing == j.labelled.asks_every_missing for j in slots), len(slots)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def agreement_table(judged: Sequence[JudgedReply]) -> str:
    """The Markdown table: per type and language, then the stricter slot figure per language."""
    lines = ["| type | lang | replies | agreement | precision (pass) | recall (pass) |", "|---|---|---:|---:|---:|---:|"]
    for row in agreement_rows(judged):
        lines.append(f"| {row['type']} | {row['lang']} | {row['replies']} | {_cell(row['agreement'])} | "
                     f"{_cell(row['precision'])} | {_cell(row['recall'])} |")
    for lang in LANGUAGES:
        agree, total = every_missing_agreement(judged, lang)
        if total:
            lines.append(f"| slot: asks for every missing value | {lang} | {total} | {_cell(agree / total)} | | |")
    return "\n".join(lines)


def disagreements(judged: Sequence[JudgedReply]) -> list[str]:
    """One line per reply where the judge and the label differ: id, label, the reply, the judge's reason."""
    lines = []
    for j in judged:
        if not j.agrees:
            reply = j.labelled.reply
            shown = reply.get("content") or json.dumps(reply.get("tool_calls"), ensure_ascii=False)
            lines.append(f"{j.labelled.id}: labelled {'pass' if j.labelled.label else 'fail'} "
                         f"({j.labelled.reason}); judged {'pass' if j.passed else 'fail'} ({j.reason}): {shown!r}")
    return lines
