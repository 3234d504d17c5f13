"""Watching a DPO run on the development split: does it teach the rows, or move one lean?

Every N optimizer steps (and at step 0, the SFT model) a run can measure two things on data it never trains on:

- **reward accuracy per Table-1 row** on ``data/dev_pairs.jsonl`` (20 pairs a row, on the dev tools): the share
  of pairs whose chosen trajectory gets the higher DiaTool-DPO reward,

      beta * R(tau) = beta * sum_t phi(t, T) * lr_t / psi(T),   lr_t = log pi(turn t) - log pi_ref(turn t)

  (the loss's own reward, :func:`diatool_utils.loss.trajectory_reward`). Rows 1-4 prefer a call, rows 5-10 a
  text reply. A run that teaches the rows raises every row; a run that moves a lean raises one side and lowers
  the other. At step 0 every reward is 0 (the policy is the reference), so accuracy starts at 0.
- **the first-action lean per turn type** on ``data/dev_dialog.jsonl`` (:mod:`diatool_utils.first_action`): mean
  P(text reply) on call, completion, slot and relevance turns, and the AUCs of slot and relevance turns against
  call turns.

The pair accuracies come from the trainer's own evaluation (one eval set per row, ``eval_row<k>_...`` in the log
history); the lean from :class:`FirstActionWatch`, a callback that adds ``{"step", "dev_first_action"}`` entries.
:func:`dev_curves` reads both back from a log history.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

import torch
from transformers import TrainerCallback

from .first_action import first_action_of_checkpoint
from .judge import EvalCase

ROW_EVAL = re.compile(r"^eval_row(\d+)_loss$")


def first_of_each_type(cases: Sequence[EvalCase], limit: int | None) -> list[EvalCase]:
    """The first ``limit`` turns of each turn type (call, completion, slot, relevance), in file order; all with None."""
    if limit is None:
        return list(cases)
    seen: dict[str, int] = {}
    kept = []
    for case in cases:
        seen[case.type_of_output] = seen.get(case.type_of_output, 0) + 1
        if seen[case.type_of_output] <= limit:
            kept.append(case)
    return kept


class FirstActionWatch(TrainerCallback):
    """The first-action diagnostic of the model being trained, on benchmark ``cases``, at step 0 and every
    ``every`` optimizer steps; each result goes into the trainer's log history (and so into its checkpoints).

    ``autocast``: the dtype the run computes in (bf16 or None), so the watched forward matches training's.
    """

    def __init__(self, cases: Sequence[EvalCase], tokenizer, every: int, batch_size: int = 32,
                 autocast: torch.dtype | None = None):
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.cases, self.tokenizer, self.every, self.batch_size, self.autocast = cases, tokenizer, every, \
            batch_size, autocast

    def _measure(self, model, state) -> None:
        if any(entry.get("step") == state.global_step and "dev_first_action" in entry for entry in state.log_history):
            return  # measured before a resume
        device = next(model.parameters()).device
        cast = (torch.autocast(device.type, dtype=self.autocast) if self.autocast is not None
                else contextlib.nullcontext())
        with cast:
            stats = first_action_of_checkpoint(model, self.tokenizer, self.cases, batch_size=self.batch_size)
        state.log_history.append({"step": state.global_step, "dev_first_action": stats})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:
            self._measure(model, state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._measure(model, state)


def dev_curves(history: Sequence[dict]) -> dict[int, dict]:
    """``{step: {"pair_accuracy": {row: acc}, "pair_margin": {row: margin}, "first_action": stats}}`` from a DPO
    stage's log history (a step measured twice, e.g. around a resume, keeps its last entry)."""
    curves: dict[int, dict] = {}
    for entry in history:
        step = entry.get("step")
        if "dev_first_action" in entry:
            curves.setdefault(step, {})["first_action"] = entry["dev_first_action"]
        for key in entry:
            if match := ROW_EVAL.match(key):
                point = curves.setdefault(step, {})
                row = int(match.group(1))
                point.setdefault("pair_accuracy", {})[row] = entry["eval_rewards/accuracies"]
                point.setdefault("pair_margin", {})[row] = entry["eval_rewards/margins"]
    return dict(sorted(curves.items()))


def dev_curves_table(curves: dict[int, dict]) -> str:
    """Markdown, one line per watched step: reward accuracy of each Table-1 row on the dev pairs, then the mean
    P(text) per turn type and the two AUCs on the dev file ("-" where a step has no such measurement)."""
    rows = sorted({row for point in curves.values() for row in point.get("pair_accuracy", {})})
    kinds = ("call", "slot", "relevance")
    header = ["step", *(f"row {row}" for row in rows), *(f"P(text) {kind}" for kind in kinds),
              "AUC slot vs call", "AUC relevance vs call"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for step, point in curves.items():
        accuracy, lean = point.get("pair_accuracy", {}), point.get("first_action")
        cells = [f"{accuracy[row]:.2f}" if row in accuracy else "-" for row in rows]
        if lean:
            cells += [f"{lean['mean_p_text'][kind]:.3f}" for kind in kinds]
            cells += [f"{lean[key]:.3f}" for key in ("auc_slot_vs_call", "auc_relevance_vs_call")]
        else:
            cells += ["-"] * 5
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
