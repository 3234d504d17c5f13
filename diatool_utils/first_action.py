"""Does the model *tell* turns apart, or only lean one way? The first-action diagnostic.

In the Functionary format the assistant's first decision is its recipient: ``all`` followed by
a newline starts a text reply (ask, decline, answer), a function name starts a call. So for a
prompt that ends at ``<|recipient|>``::

    P(text) = P(all | prompt) * P(newline | prompt, all)

(two factors, because a function name may itself start with the token ``all``).

Greedy decoding only shows which side of 1/2 P(text) falls on. Two numbers separate the two
ways a model can change:

- the mean P(text) per turn type says where it leans;
- the AUC, P(text on a slot turn > P(text) on a call turn), says how well it *ranks* the
  turns that need a text reply above those that need a call. 0.5 is blind; 1.0 means some
  threshold on P(text) would answer every turn right.

A preference step that moves every mean but leaves the AUC where it was has shifted the
model's prior, not taught it to read the request: more slot turns pass only as more call
turns fail.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .evaluation import build_prompt
from .judge import EvalCase

TEXT_RECIPIENT = "all\n"  # the tokens that open a text reply after <|recipient|>


@torch.no_grad()
def text_probability(model, tokenizer, prompts: Sequence[str], *, batch_size: int = 8) -> torch.Tensor:
    """P(text reply) for each prompt ending at ``<|recipient|>``; shape (len(prompts),).

    One forward pass per batch over ``prompt + "all\\n"``, left-padded so that the last tokens
    of every row line up: the logits at the last ``m + 1`` positions score the ``m`` tokens of
    ``all\\n``. Position ids count real tokens only, as in ``generate``.
    """
    marker = tokenizer(TEXT_RECIPIENT, add_special_tokens=False).input_ids
    m = len(marker)
    target = torch.tensor(marker, device=model.device)
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    scores = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer([p + TEXT_RECIPIENT for p in prompts[start : start + batch_size]],
                              return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            ids, mask = batch["input_ids"], batch["attention_mask"]
            if not torch.equal(ids[:, -m:], target.expand(len(ids), -1)):
                raise ValueError(f"prompts {start}..{start + len(ids) - 1}: '{TEXT_RECIPIENT!r}' does not tokenize "
                                 "on its own after them; do they end at '<|recipient|>'?")
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                           logits_to_keep=m + 1).logits[:, :m].float()  # (B, m, V): position j predicts marker[j]
            logp = logits.log_softmax(-1).gather(-1, target.expand(len(ids), -1)[..., None]).squeeze(-1)  # (B, m)
            scores.append(logp.sum(-1).exp().cpu())
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return torch.cat(scores) if scores else torch.empty(0)


def auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney AUC)."""
    if not len(positive) or not len(negative):
        return float("nan")
    diff = positive[:, None] - negative[None, :]  # (P, N): every pair at once
    return ((diff > 0).float() + 0.5 * (diff == 0).float()).mean().item()


def first_action_stats(cases: Sequence[EvalCase], p_text: torch.Tensor) -> dict:
    """Mean P(text) per turn type, and how well P(text) ranks slot and relevance turns above call turns."""
    if len(cases) != len(p_text):
        raise ValueError(f"{len(cases)} cases but {len(p_text)} probabilities")
    types = [case.type_of_output for case in cases]
    by_type = {kind: p_text[[i for i, t in enumerate(types) if t == kind]] for kind in dict.fromkeys(types)}
    call = by_type.get("call", torch.empty(0))
    return {
        "mean_p_text": {kind: round(values.mean().item(), 3) for kind, values in by_type.items()},
        "auc_slot_vs_call": round(auc(by_type.get("slot", torch.empty(0)), call), 3),
        "auc_relevance_vs_call": round(auc(by_type.get("relevance", torch.empty(0)), call), 3),
    }


def first_action_table(stats: dict[str, dict]) -> str:
    """One row per model: mean P(text) on call / slot / relevance turns, and the two AUCs."""
    lines = ["| model | P(text) call | P(text) slot | P(text) relevance | AUC slot vs call | AUC relevance vs call |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in stats.items():
        means = row["mean_p_text"]
        lines.append(f"| {name} | {means.get('call', float('nan')):.3f} | {means.get('slot', float('nan')):.3f} | "
                     f"{means.get('relevance', float('nan')):.3f} | {row['auc_slot_vs_call']:.3f} | "
                     f"{row['auc_relevance_vs_call']:.3f} |")
    return "\n".join(lines)


def first_action_of_checkpoint(model, tokenizer, cases: Sequence[EvalCase], *, batch_size: int = 8) -> dict:
    """:func:`first_action_stats` of a loaded model on benchmark cases."""
    return first_action_stats(cases, text_probability(model, tokenizer, [build_prompt(c) for c in cases],
                                                      batch_size=batch_size))
