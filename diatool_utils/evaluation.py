"""Evaluate a tool-calling model on FunctionChat-Bench "Dialog" (or our data/eval_dialog.jsonl).

Each benchmark turn gives the gold history so far (``query``) and what the next assistant
turn should be. For every turn we render the history with the Functionary v2 template, let
the model write the next turn (greedy, up to ``<|stop|>``), parse it and judge it with the
rules in :mod:`diatool_utils.judge` (or any ``judge=`` callable with the same signature):

    report = evaluate(model, tokenizer, "data/eval_dialog.jsonl", output_path="results/cases.jsonl")
    print(report.to_markdown())          # accuracy per type_of_output, micro and macro averages
    plot_accuracy({"SFT": sft_report, "SFT + DiaTool-DPO": dpo_report})

From a shell (writes cases.jsonl, cases.summary.json, cases.summary.md and accuracy.png into --out):

    python -m diatool_utils.evaluation --model smollm2-135m --data data/eval_dialog.jsonl --out results/

After a change to the judge, the replies a run saved are judged again without a model
(:func:`rejudge`; the file and its summaries are rewritten in place):

    python -m diatool_utils.evaluation --rejudge results/cases.jsonl --data data/eval_dialog.jsonl

Malformed model output (invalid JSON arguments, an unknown tool, a reply cut off before
``<|stop|>``, an empty reply) is judged a failure with its reason; it never stops the loop.
A benchmark turn that can't be judged is left out and listed with its line in the report's
``skipped`` (loading and checking live in :mod:`diatool_utils.benchmark`).

The default judge is the rule-based one (:mod:`diatool_utils.judge`). ``--model-judge`` uses the
benchmark's own rubric on an OpenAI-compatible endpoint instead (:mod:`diatool_utils.model_judge`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from diatool_utils import templating
from diatool_utils.benchmark import BenchmarkFormatError, cases_from_dialogs, load_dialog_benchmark  # noqa: F401 (re-exported)
from diatool_utils.judge import (
    ACTIONS,
    ASKS_EVERY_MISSING,
    NOTHING_CHECKED,
    OUTPUT_TYPES,
    EvalCase,
    Judge,
    judge_case,
    reply_action,
    reply_calls,
)
from diatool_utils.progress import stage_progress


def build_prompt(case: EvalCase) -> str:
    """The Functionary v2 text of the gold history, ending with ``<|from|>assistant\\n<|recipient|>``."""
    return templating.render_conversation(case.query, case.tools, add_generation_prompt=True)


# ---------------------------------------------------------------------------- generation


@dataclass
class Generation:
    """One generated turn.

    ``text`` is what the model wrote after the prompt, through ``<|stop|>`` when it wrote one;
    ``finish`` is ``"stop"`` (it did), ``"eos"`` (it ended with the tokenizer's eos instead) or
    ``"length"`` (it hit ``max_new_tokens``); ``num_tokens`` counts the new tokens kept and
    ``prompt_tokens`` the prompt's (on a CPU, reading the prompt usually costs more than writing).
    """

    text: str
    finish: str
    num_tokens: int
    prompt_tokens: int = 0


def gold_generation(case: EvalCase) -> Generation:
    """The ground truth written as a model would generate it (a perfect model's reply).

    Scoring these checks the benchmark and the judge together: every case should pass.
    """
    prompt = build_prompt(case)
    full = templating.render_conversation([*case.query, case.ground_truth], case.tools)
    reply = full[len(prompt) :]
    return Generation(reply[: reply.rindex(templating.STOP_TOKEN) + len(templating.STOP_TOKEN)], "stop", 0)


@torch.no_grad()
def generate_replies(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    show_progress: bool = True,
) -> list[Generation]:
    """Greedy generation for many prompts, in left-padded batches, each stopping at ``<|stop|>``.

    Prompts are sorted by length so a batch holds similar lengths (less padding); the results
    come back in the prompts' order. Per batch: ``input_ids`` and ``attention_mask`` (B, L),
    padded on the left so every prompt ends where generation starts.
    """
    stop_id = templating.functionary_token_ids(tokenizer)[templating.STOP_TOKEN]
    eos_id = tokenizer.eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[Generation | None] = [None] * len(prompts)
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    progress = stage_progress("evaluation", len(prompts), "turn", show=show_progress)
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            output = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=[stop_id] + ([eos_id] if eos_id is not None else []),
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id,
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
            prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()
            for i, row, n_prompt in zip(indices, new_tokens, prompt_tokens, strict=True):
                results[i] = _cut_at_end(row, stop_id, eos_id, tokenizer)
                results[i].prompt_tokens = n_prompt
            progress.update(len(indices))
    finally:
        progress.close()
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return results


@torch.no_grad()
def generate_replies_sharing_prefix(
    model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 96, show_progress: bool = True
) -> list[Generation]:
    """Greedy generation one prompt at a time, reusing the key/value cache of the previous prompt.

    The turns of one benchmark dialog extend each other: prompt k+1 is prompt k, the gold
    assistant turn and the next user message. Keeping the cache of the longest shared token
    prefix means each dialog's history is read once, not once per turn (on our eval set 97k
    prompt tokens become about 25k). Same results as :func:`generate_replies`, in the order given.
    """
    from transformers import DynamicCache

    stop_id = templating.functionary_token_ids(tokenizer)[templating.STOP_TOKEN]
    eos_id = tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    cache, cached_ids, results = DynamicCache(), [], []
    progress = stage_progress("evaluation", len(prompts), "turn", show=show_progress)
    try:
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            shared = 0
            while shared < min(len(ids) - 1, len(cached_ids)) and ids[shared] == cached_ids[shared]:
                shared += 1  # at least one prompt token stays uncached: generate needs an input
            _keep_first(cache, shared)
            output = model.generate(
                torch.tensor([ids], device=model.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device),
                cache=cache,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=[stop_id] + ([eos_id] if eos_id is not None else []),
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id,
            )
            cached_ids = ids
            _keep_first(cache, len(ids))  # drop the generated tokens
            generation = _cut_at_end(output[0, len(ids) :].tolist(), stop_id, eos_id, tokenizer)
            generation.prompt_tokens = len(ids)
            results.append(generation)
            progress.update()
    finally:
        progress.close()
        model.train(was_training)
    return results


def _keep_first(cache, n: int) -> None:
    """Crop a key/value cache to its first ``n`` positions (transformers' crop takes -removed)."""
    extra = cache.get_seq_length() - n
    if extra > 0:
        cache.crop(-extra)


def _cut_at_end(row: list[int], stop_id: int, eos_id: int | None, tokenizer) -> Generation:
    """Keep new tokens through the first ``<|stop|>``; an eos ends the reply without being kept."""
    for k, token in enumerate(row):
        if token == stop_id:
            return Generation(tokenizer.decode(row[: k + 1], skip_special_tokens=False), "stop", k + 1)
        if token == eos_id:
            return Generation(tokenizer.decode(row[:k], skip_special_tokens=False), "eos", k)
    return Generation(tokenizer.decode(row, skip_special_tokens=False), "length", len(row))


# ------------------------------------------------------------------------------ scoring


@dataclass
class CaseResult:
    """The verdict on one benchmark turn, as saved to the per-case JSONL."""

    dialog_num: int
    serial_num: int
    turn_num: int
    type: str
    prompt: str
    raw_reply: str
    parsed: dict
    finish: str
    passed: bool
    reason: str
    ground_truth: dict = field(default_factory=dict)


def _parsed_dict(parsed: Any) -> dict:
    return {
        "content": getattr(parsed, "content", None),
        "tool_calls": [{"name": n, "arguments": a} for n, a in reply_calls(parsed)],
        "valid": getattr(parsed, "valid", True),
        "error": getattr(parsed, "error", None),
    }


def score_replies(
    cases: Sequence[EvalCase],
    generations: Sequence[Generation],
    *,
    prompts: Sequence[str] | None = None,
    judge: Judge | None = None,
    max_new_tokens: int | None = None,
) -> list[CaseResult]:
    """Parse and judge one generation per case.

    A reply that did not end with ``<|stop|>`` fails before the judge sees it: cut off at the
    token limit, or ended with the tokenizer's eos (the format was not followed).
    """
    judge = judge or judge_case
    results = []
    for k, (case, generation) in enumerate(zip(cases, generations, strict=True)):
        parsed = templating.parse_assistant_reply(generation.text)  # never raises
        if generation.finish == "length":
            limit = f"max_new_tokens={max_new_tokens}" if max_new_tokens else "the token limit"
            passed, reason = False, f"cut off: no {templating.STOP_TOKEN} within {limit}"
        elif generation.finish == "eos":
            passed, reason = False, f"ended with the eos token instead of {templating.STOP_TOKEN}"
        else:
            try:
                passed, reason = judge(case, parsed)
            except Exception as error:  # e.g. an API judge timing out: counted, never silent
                passed, reason = False, f"judge error: {error!r}"
        results.append(
            CaseResult(
                dialog_num=case.dialog_num,
                serial_num=case.serial_num,
                turn_num=case.turn_num,
                type=case.type_of_output,
                prompt=prompts[k] if prompts is not None else "",
                raw_reply=generation.text,
                parsed=_parsed_dict(parsed),
                finish=generation.finish,
                passed=bool(passed),
                reason=str(reason),
                ground_truth=case.ground_truth,
            )
        )
    return results


def rejudge(report: EvalReport, cases: Sequence[EvalCase], *, judge: Judge | None = None) -> EvalReport:
    """The replies ``report`` saved, judged again: after a change to the rules, or by another ``judge``.

    No model is needed: each saved ``raw_reply`` is parsed and judged as :func:`score_replies` does,
    matched to its case by (dialog_num, serial_num, turn_num). A reply that did not stop fails before any
    judge sees it: a saved failure of one is kept as it is (its reason names the token limit, which a file
    without its summary no longer knows). A saved case missing from ``cases`` is an error naming it; the
    timing is kept.
    """
    by_key = {(case.dialog_num, case.serial_num, case.turn_num): case for case in cases}
    again = []
    for result in report.results:
        case = by_key.get((result.dialog_num, result.serial_num, result.turn_num))
        if case is None:
            raise ValueError(f"saved case dialog_num={result.dialog_num} serial_num={result.serial_num} "
                             f"turn_num={result.turn_num} is not in the benchmark given ({len(cases)} cases)")
        if result.finish != "stop" and not result.passed:
            again.append(result)  # cut off or ended by eos: it failed before any judge saw it, and still does
            continue
        generation = Generation(text=result.raw_reply, finish=result.finish, num_tokens=0, prompt_tokens=0)
        again += [replace(scored, prompt=result.prompt) for scored in
                  score_replies([case], [generation], judge=judge, max_new_tokens=report.timing.get("max_new_tokens"))]
    return EvalReport(again, report.timing, skipped_turns(cases) or report.skipped)


def skipped_turns(cases: Sequence[EvalCase]) -> list[str]:
    """The turns the loader could not judge ("line N, turn T: why"), when ``cases`` came from it."""
    return [str(skip) for skip in getattr(cases, "skipped", [])]


def summarise(results: Sequence[CaseResult]) -> dict:
    """Accuracy per type_of_output, the micro average (over turns) and the macro average (over types).

    Types without a case get ``accuracy: None`` and are left out of the macro average. Two counts
    stand apart from the accuracy: ``slot_every_missing``, the slot turns whose reply also asked for
    every missing value (the stricter slot figure; the rule judge says so in its reason, so a
    model judge's verdicts count none), and ``completion_unchecked``, the completion turns where the
    reference reports no tool-result value, so the rule judge checked nothing but that no call was made.
    """
    per_type = {}
    for kind in OUTPUT_TYPES:
        verdicts = [r.passed for r in results if r.type == kind]
        accuracy = sum(verdicts) / len(verdicts) if verdicts else None
        per_type[kind] = {"passed": sum(verdicts), "total": len(verdicts), "accuracy": accuracy}
    present = [v["accuracy"] for v in per_type.values() if v["accuracy"] is not None]
    passed = sum(r.passed for r in results)
    return {
        "per_type": per_type,
        "passed": passed,
        "total": len(results),
        "micro_avg": passed / len(results) if results else None,
        "macro_avg": sum(present) / len(present) if present else None,
        "not_stopped": sum(r.finish != "stop" for r in results),
        "judge_errors": sum(r.reason.startswith("judge error") for r in results),
        "slot_every_missing": sum(r.type == "slot" and r.passed and r.reason.startswith(ASKS_EVERY_MISSING)
                                  for r in results),
        "completion_unchecked": sum(r.type == "completion" and r.reason.startswith(NOTHING_CHECKED)
                                    for r in results),
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@dataclass
class EvalReport:
    """Per-case results plus their summary; ``timing`` holds measured generation speed and
    ``skipped`` the benchmark turns that could not be judged (as "line N, turn T: why")."""

    results: list[CaseResult]
    timing: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        return summarise(self.results)

    def to_dict(self) -> dict:
        return {"summary": self.summary, "timing": self.timing} | ({"skipped": self.skipped} if self.skipped else {})

    def to_markdown(self) -> str:
        """A table: passed / total / accuracy per type, then micro and macro averages."""
        s = self.summary
        lines = ["| type | passed | total | accuracy |", "|---|---:|---:|---:|"]
        for kind, row in s["per_type"].items():
            lines.append(f"| {kind} | {row['passed']} | {row['total']} | {_fmt(row['accuracy'])} |")
        lines.append(f"| micro avg | {s['passed']} | {s['total']} | {_fmt(s['micro_avg'])} |")
        lines.append(f"| macro avg | | | {_fmt(s['macro_avg'])} |")
        slots = s["per_type"]["slot"]["total"]
        lines.append(f"\nSlot replies that asked for every missing value: {s['slot_every_missing']} of {slots}. "
                     f"Completion turns with nothing checked (the reference reports no tool-result value): "
                     f"{s['completion_unchecked']} of {s['per_type']['completion']['total']}.")
        if self.skipped:
            lines.append(f"{len(self.skipped)} benchmark turn(s) could not be judged and were left out: "
                         + "; ".join(self.skipped))
        return "\n".join(lines)

    def write(self, output_path: str | Path) -> Path:
        """Write every case as JSONL to ``output_path`` and the summary beside it
        (``cases.jsonl`` -> ``cases.summary.json``, ``cases.summary.md``)."""
        output_path = Path(output_path)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with output_path.open("w", encoding="utf-8") as handle:
            for result in self.results:
                handle.write(json.dumps(asdict(result), ensure_ascii=False) + "\n")
        stem = output_path.with_suffix("")
        Path(f"{stem}.summary.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        Path(f"{stem}.summary.md").write_text(self.to_markdown() + "\n", encoding="utf-8")
        return output_path

    @classmethod
    def read(cls, output_path: str | Path) -> EvalReport:
        """The report ``write`` saved: every case from the JSONL, the timing from the summary beside it."""
        output_path = Path(output_path)
        results = [CaseResult(**json.loads(line))
                   for line in output_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        summary = Path(f"{output_path.with_suffix('')}.summary.json")
        saved = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
        return cls(results, saved.get("timing", {}), saved.get("skipped", []))


# The paper's Table 2 (Llama-3-8B-Instruct, GPT-4 judge, FunctionChat-Bench Dialog; docs/method.md). The paper
# reports no macro average.
PAPER_TABLE_2 = {
    "paper: SFT only": {"per_type": {"call": {"accuracy": 0.843}, "completion": {"accuracy": 0.957},
                                     "slot": {"accuracy": 0.639}, "relevance": {"accuracy": 0.826}},
                        "micro_avg": 0.844, "macro_avg": None},
    "paper: SFT + DiaTool-DPO": {"per_type": {"call": {"accuracy": 0.857}, "completion": {"accuracy": 0.929},
                                              "slot": {"accuracy": 0.917}, "relevance": {"accuracy": 0.913}},
                                 "micro_avg": 0.905, "macro_avg": None},
}


def comparison_table(reports: dict[str, EvalReport | dict]) -> str:
    """The paper's layout: one row per model, accuracy per type, micro and macro averages."""
    lines = [
        "| model | " + " | ".join(OUTPUT_TYPES) + " | micro avg | macro avg |",
        "|---" + "|---:" * 6 + "|",
    ]
    for name, report in reports.items():
        s = report.summary if isinstance(report, EvalReport) else report
        cells = [_fmt(s["per_type"][k]["accuracy"]) for k in OUTPUT_TYPES] + [
            _fmt(s["micro_avg"]),
            _fmt(s["macro_avg"]),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def behaviour_table(reports: dict[str, EvalReport]) -> str:
    """What each model did on each kind of turn: counts of :func:`judge.reply_action`.

    One row per (turn type, model); a reply that never reached ``<|stop|>`` counts as broken.
    The right action is in bold: call -> **call**, completion -> **answer**, slot -> **ask**,
    relevance -> **decline** (small talk, counted as answer, may also pass there).
    """
    right = {"call": "call", "completion": "answer", "slot": "ask", "relevance": "decline"}
    lines = ["| turn type | model | " + " | ".join(ACTIONS) + " |", "|---|---" + "|---:" * len(ACTIONS) + "|"]
    for kind in OUTPUT_TYPES:
        for name, report in reports.items():
            counts = dict.fromkeys(ACTIONS, 0)
            for result in report.results:
                if result.type == kind:
                    action = "broken" if result.finish != "stop" else reply_action(SimpleNamespace(**result.parsed), kind)
                    counts[action] += 1
            cells = [f"**{n}**" if action == right[kind] else str(n) for action, n in counts.items()]
            lines.append(f"| {kind} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_changes(before: EvalReport, after: EvalReport) -> str:
    """Turn by turn, which verdicts changed from ``before`` to ``after``: a markdown table of gained
    (fail -> pass) and lost (pass -> fail) turns per type. Both reports must judge the same turns."""
    pairs = matched_results(before, after)
    lines = ["| turn type | turns | gained | lost | net |", "|---|---:|---:|---:|---:|"]
    for kind in OUTPUT_TYPES:
        of_kind = [(b, a) for b, a in pairs if b.type == kind]
        gained = sum(a.passed and not b.passed for b, a in of_kind)
        lost = sum(b.passed and not a.passed for b, a in of_kind)
        lines.append(f"| {kind} | {len(of_kind)} | {gained} | {lost} | {gained - lost:+d} |")
    return "\n".join(lines)


def changed_replies(before: EvalReport, after: EvalReport, kinds: Sequence[str] = OUTPUT_TYPES,
                    limit: int = 3, width: int = 150) -> str:
    """Up to ``limit`` turns whose verdict changed, one per turn type of ``kinds`` in turn, with the
    user's last request and both replies (cut to ``width`` characters), for reading side by side."""
    pairs = [(b, a) for b, a in matched_results(before, after) if b.passed != a.passed]
    shown, blocks = set(), []
    for kind in [*kinds] * limit:
        found = next(((b, a) for b, a in pairs if b.type == kind and id(b) not in shown), None)
        if found is None or len(blocks) == limit:
            continue
        b, a = found
        shown.add(id(b))
        request = _last_user_text(b.prompt)
        blocks.append(f"[{kind}] dialog {b.dialog_num}, turn {b.turn_num}: {request[:width]!r}\n"
                      f"  before ({'pass' if b.passed else 'fail'}): {b.raw_reply[:width]!r}\n"
                      f"  after  ({'pass' if a.passed else 'fail'}): {a.raw_reply[:width]!r}")
    return "\n\n".join(blocks) if blocks else "no turn changed its verdict"


def matched_results(before: EvalReport, after: EvalReport) -> list[tuple[CaseResult, CaseResult]]:
    """The results of the same benchmark turns in two reports, paired in ``before``'s order; reports of
    different turns are an error."""

    def key(result):
        return result.dialog_num, result.serial_num, result.turn_num

    later = {key(r): r for r in after.results}
    missing = [key(r) for r in before.results if key(r) not in later]
    if missing or len(later) != len(before.results):
        raise ValueError(f"the two reports judge different turns ({len(before.results)} and {len(after.results)}; "
                         f"e.g. dialog/serial/turn {missing[:1]} only in the first): evaluate both on the same cases")
    return [(r, later[key(r)]) for r in before.results]


def _last_user_text(prompt: str) -> str:
    """The text of the last user message in a rendered Functionary prompt."""
    t = templating
    marker = f"{t.FROM_TOKEN}user\n{t.RECIPIENT_TOKEN}all\n{t.CONTENT_TOKEN}"
    return prompt.rpartition(marker)[2].split(t.FROM_TOKEN)[0].strip() if marker in prompt else ""


def plot_accuracy(reports: EvalReport | dict[str, EvalReport | dict], ax=None, title: str | None = None):
    """Bar chart of accuracy per type and the micro/macro averages; one colour per model."""
    import matplotlib.pyplot as plt

    if not isinstance(reports, dict):
        reports = {"model": reports}
    labels = [*OUTPUT_TYPES, "micro avg", "macro avg"]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(reports)
    for k, (name, report) in enumerate(reports.items()):
        s = report.summary if isinstance(report, EvalReport) else report
        values = [s["per_type"][t]["accuracy"] for t in OUTPUT_TYPES] + [s["micro_avg"], s["macro_avg"]]
        xs = [i + (k - (len(reports) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(xs, [v or 0.0 for v in values], width, label=name)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title(title or "FunctionChat-Bench Dialog accuracy (rule-based judge)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(reports), fontsize=8, frameon=False)
    return ax.figure


# ------------------------------------------------------------------------------ evaluate


def evaluate(
    model,
    tokenizer,
    cases_or_path: str | Path | Sequence[EvalCase],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    output_path: str | Path | None = None,
    judge: Judge | None = None,
    limit: int | None = None,
    share_prefix: bool | None = None,
    show_progress: bool = True,
) -> EvalReport:
    """Generate and judge the assistant turn of every benchmark case.

    Args:
        cases_or_path: a Dialog JSONL path or cases from :func:`load_dialog_benchmark`.
        batch_size: prompts per ``model.generate`` call (left-padded, greedy).
        share_prefix: generate one case at a time, reusing each dialog's cached history
            (:func:`generate_replies_sharing_prefix`; ``batch_size`` is then unused). Default:
            on when the model is on a CPU, where reading prompts dominates (2.6x faster on 16
            eval cases with smollm2-135m, same replies; all 199 cases of data/eval_dialog.jsonl
            took 249 s on a shared 2-core CPU); batches are faster on a GPU.
        max_new_tokens: a reply still without ``<|stop|>`` after this many tokens fails as cut off.
        output_path: if given, the per-case JSONL (summary .json/.md written beside it).
        judge: ``judge(case, parsed_reply) -> (passed, reason)``; default the rule-based
            :func:`judge.judge_case`. An exception inside it fails that case with its message.
        limit: evaluate only the first ``limit`` cases (smoke runs).
    """
    cases = (
        load_dialog_benchmark(cases_or_path)
        if isinstance(cases_or_path, (str, Path))
        else cases_or_path
    )
    skipped = skipped_turns(cases)
    cases = list(cases)
    if limit is not None:
        cases = cases[:limit]
    prompts = [build_prompt(case) for case in cases]
    if share_prefix is None:
        share_prefix = model.device.type == "cpu"
    started = time.perf_counter()
    if share_prefix:
        generations = generate_replies_sharing_prefix(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, show_progress=show_progress
        )
    else:
        generations = generate_replies(
            model,
            tokenizer,
            prompts,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            show_progress=show_progress,
        )
    seconds = time.perf_counter() - started
    tokens = sum(g.num_tokens for g in generations)
    timing = {
        "generation_seconds": round(seconds, 3),
        "prompt_tokens": sum(g.prompt_tokens for g in generations),
        "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 2) if seconds > 0 else None,
        "cases": len(cases),
        "batch_size": 1 if share_prefix else batch_size,
        "share_prefix": share_prefix,
        "max_new_tokens": max_new_tokens,
    }
    results = score_replies(cases, generations, prompts=prompts, judge=judge, max_new_tokens=max_new_tokens)
    report = EvalReport(results, timing, skipped)
    if output_path is not None:
        report.write(output_path)
    return report


def main(argv: Sequence[str] | None = None) -> EvalReport:
    parser = argparse.ArgumentParser(description="Evaluate a model on FunctionChat-Bench Dialog turns.")
    parser.add_argument(
        "--model", default="smollm2-135m", help="smollm2-135m, tiny-random, a folder or a Hub id"
    )
    parser.add_argument("--data", default="data/eval_dialog.jsonl", help="a Dialog JSONL file")
    parser.add_argument("--out", default="results", help="folder for cases.jsonl, summary.* and accuracy.png")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--share-prefix",
        choices=["auto", "yes", "no"],
        default="auto",
        help="reuse each dialog's cached history, one case at a time (auto: on a CPU)",
    )
    parser.add_argument("--quantization", default=None, help="'4bit' to load in NF4 (needs bitsandbytes)")
    parser.add_argument("--rejudge", metavar="CASES_JSONL", default=None,
                        help="judge the replies a past run saved again, with no model, against --data; "
                             "rewrites that file and its summaries in place")
    parser.add_argument("--model-judge", action="store_true",
                        help="judge with the benchmark's rubric on an OpenAI-compatible endpoint, configured by "
                             "DIATOOL_JUDGE_BASE_URL, DIATOOL_JUDGE_MODEL, DIATOOL_JUDGE_API_KEY and "
                             "DIATOOL_JUDGE_RUBRICS (see diatool_utils.model_judge)")
    args = parser.parse_args(argv)
    judge = None
    if args.model_judge:
        from diatool_utils.model_judge import ModelJudge

        judge = ModelJudge.from_environment()
    cases = load_dialog_benchmark(args.data)
    if cases.skipped:
        print(cases.skip_report())
    if args.rejudge:
        before = EvalReport.read(args.rejudge)
        report = rejudge(before, cases, judge=judge)
        report.write(args.rejudge)
        flipped = sum(a.passed != b.passed for a, b in zip(before.results, report.results, strict=True))
        print(comparison_table({"as saved": before, "judged again": report}))
        print(f"{flipped} of {len(report.results)} verdicts changed; rewrote {args.rejudge}")
        return report

    from diatool_utils.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model, quantization=args.quantization)
    if templating.missing_functionary_tokens(tokenizer):
        print(
            f"note: {args.model} has no Functionary tokens yet; adding them (new embeddings: mean of the old)."
        )
        templating.add_functionary_tokens(tokenizer, model)
    out = Path(args.out)
    report = evaluate(
        model,
        tokenizer,
        cases,
        judge=judge,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        output_path=out / "cases.jsonl",
        limit=args.limit,
        share_prefix={"auto": None, "yes": True, "no": False}[args.share_prefix],
    )
    plot_accuracy({args.model: report}).savefig(out / "accuracy.png", dpi=120, bbox_inches="tight")
    print(report.to_markdown())
    print(json.dumps(report.timing))
    return report


if __name__ == "__main__":
    main()
