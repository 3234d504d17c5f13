"""Does the model *tell* turns apart, or only lean one way? The first-action diagnostic.

In the Functionary format the assistant's first decision is its recipient: ``all`` starts a
text reply (ask, decline, answer), a function name starts a call. So for a prompt that ends at
``<|recipient|>``, the probability of the token ``all`` is the probability of a text reply::

    P(text) = P(all | prompt)

(exact as long as no offered function's name starts with that token; :func:`first_action_of_checkpoint`
checks the benchmark's tools).

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
from .judge import EvalCase, tool_schemas

TEXT_RECIPIENT = "all"  # the token that opens a text reply after <|recipient|>


def _text_token(tokenizer) -> int:
    ids = tokenizer(TEXT_RECIPIENT, add_special_tokens=False).input_ids
    if len(ids) != 1:
        raise ValueError(f"{TEXT_RECIPIENT!r} is {len(ids)} tokens for this tokenizer; the diagnostic needs one")
    return ids[0]


def _prefix_hosts(encoded: list[list[int]]) -> dict[int, int]:
    """Prompt index -> index of the longest prompt whose tokens start with it (itself if none).

    The turns of one dialogue share their history, so one forward pass over its last turn's
    prompt scores every earlier turn too (a causal model's logits at a position see only what
    came before it).
    """
    hosts: dict[int, int] = {}
    longest_first = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    roots: list[int] = []
    for i in longest_first:
        ids = encoded[i]
        hosts[i] = next((j for j in roots if encoded[j][: len(ids)] == ids), i)
        if hosts[i] == i:
            roots.append(i)
    return hosts


@torch.no_grad()
def text_probability(model, tokenizer, prompts: Sequence[str], *, batch_size: int = 4) -> torch.Tensor:
    """P(text reply) = P(``all``) for each prompt ending at ``<|recipient|>``; shape (len(prompts),).

    Prompts that are token prefixes of a longer one are read off its forward pass
    (:func:`_prefix_hosts`); the remaining prompts run in left-padded batches, with position ids
    that count real tokens only, as in ``generate``. Only the hidden states at the read positions
    go through the output layer.
    """
    text_id = _text_token(tokenizer)
    encoded = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    if bad := [i for i, p in enumerate(prompts) if not p.endswith("<|recipient|>")]:
        raise ValueError(f"prompt {bad[0]} ({len(bad)} in all) does not end at '<|recipient|>'")
    hosts = _prefix_hosts(encoded)
    roots = sorted(set(hosts.values()), key=lambda i: len(encoded[i]))
    readers = {root: [i for i, host in hosts.items() if host == root] for root in roots}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    was_training = model.training
    model.eval()
    result = torch.empty(len(prompts))
    try:
        for start in range(0, len(roots), batch_size):
            batch = roots[start : start + batch_size]
            width = max(len(encoded[root]) for root in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            rows, positions, targets = [], [], []
            for row, root in enumerate(batch):
                pad = width - len(encoded[root])
                ids[row, pad:] = torch.tensor(encoded[root])
                mask[row, pad:] = 1
                for i in readers[root]:
                    rows.append(row)
                    positions.append(pad + len(encoded[i]) - 1)  # the <|recipient|> that ends prompt i
                    targets.append(i)
            ids, mask = ids.to(model.device), mask.to(model.device)
            hidden = decoder(input_ids=ids, attention_mask=mask,
                             position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).last_hidden_state  # (B, L, H)
            logits = head(hidden[torch.tensor(rows), torch.tensor(positions)]).float()  # (readers, V)
            result[torch.tensor(targets)] = logits.log_softmax(-1)[:, text_id].exp().cpu()
    finally:
        model.train(was_training)
    return result


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


def first_action_of_checkpoint(model, tokenizer, cases: Sequence[EvalCase], *, batch_size: int = 4) -> dict:
    """:func:`first_action_stats` of a loaded model on benchmark cases.

    Refuses cases whose tools include one whose name starts with the ``all`` token: P(all) would
    then count that call as text.
    """
    text_id = _text_token(tokenizer)
    for case in cases:
        for name in tool_schemas(case.tools):
            if tokenizer(name, add_special_tokens=False).input_ids[:1] == [text_id]:
                raise ValueError(f"dialog {case.dialog_num} turn {case.turn_num}: tool {name!r} starts with the "
                                 f"token {TEXT_RECIPIENT!r}, so P({TEXT_RECIPIENT}) would not be P(text)")
    return first_action_stats(cases, text_probability(model, tokenizer, [build_prompt(c) for c in cases],
                                                      batch_size=batch_size))
