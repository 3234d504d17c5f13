"""From preference pairs to padded batches, keeping track of which token belongs to which turn.

A pair row (one line of data/dpo_pairs.jsonl, TRL's conversational format plus tools):

    {"id", "tools", "prompt": [messages], "chosen": [messages], "rejected": [messages], ...}

``tokenize_pair`` renders prompt+chosen and prompt+rejected in the Functionary template and
tokenizes each with ``masking.tokenize_conversation``, which also returns the *turn index* of
every token: 0 .. T-1 for the tokens of assistant turn t (the ones the loss scores), -1 for
everything else (system, user, tool, padding):

    tokens      <|from|>user ... <|from|>assistant\\n<|recipient|> all \\n<|content|> Hi <|stop|> \\n
    turn_index   -1    -1 ...   -1         -1        -1             0  0     0       0    0     -1

``DataCollatorForDiaToolPreference`` pads a batch the way TRL's ``DataCollatorForPreference`` does,
chosen rows first, then rejected rows, and pads the turn index with -1:

    input_ids      [2B, L]   rows 0..B-1 = chosen, B..2B-1 = rejected
    attention_mask [2B, L]
    turn_index     [2B, L]   -1 = not scored
    num_turns      [2B]      assistant turns per trajectory (max of turn_index + 1)

A pair is *skipped* (counted, reported, never silently dropped) when truncation to
``max_length`` leaves one side without an assistant turn, or when the two sides do not share
the same context before their first assistant turn ("the prompts differ").
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.data.data_collator import DataCollatorMixin
from trl.trainer.utils import pad, remove_none_values

from .masking import tokenize_conversation

SKIP_NO_TURN = "no assistant turn left after truncation to max_length"
SKIP_PROMPT_MISMATCH = "chosen and rejected prompts differ"
CONVERSATION_FIELDS = ("tools", "prompt", "chosen", "rejected")


# ---------------------------------------------------------------------------------------------
# Rows: JSON text in a datasets.Dataset, messages when we use them
# ---------------------------------------------------------------------------------------------

def pair_row_for_dataset(row: dict) -> dict:
    """One pair as a row of a ``datasets.Dataset``: tools and messages stored as JSON text.

    Arrow gives every row of a column the same struct type, so tool schemas of different shapes
    would gain ``None`` keys; JSON text keeps each row exactly as written. Scalar metadata
    (``id``, ``row``, ``query_type`` ...) is kept as is.
    """
    out = {}
    for key, value in row.items():
        out[key] = json.dumps(value, ensure_ascii=False) if key in CONVERSATION_FIELDS else value
    return out


def _load_field(value: Any, name: str, label: str) -> Any:
    """JSON text -> Python; structured values lose the ``None`` keys Arrow adds when unifying structs."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{label}: '{name}' must be a list of messages (or JSON text of one), got the string "
                             f"{value[:60]!r}: {error}") from error
    return remove_none_values(value) if isinstance(value, (list, dict)) else value


def _messages(row: dict, name: str, label: str) -> list[dict]:
    messages = _load_field(row.get(name), name, label)
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise ValueError(f"{label}: '{name}' must be a list of messages ({{'role': ..., 'content': ...}}), "
                         f"got {type(messages).__name__}")
    return messages


def _row_label(row: dict, index: int | None) -> str:
    where = f"pair {index}" if index is not None else "pair"
    return f"{where} (id {row['id']!r})" if row.get("id") is not None else where


# ---------------------------------------------------------------------------------------------
# One pair -> token ids and turn index for both trajectories
# ---------------------------------------------------------------------------------------------

def first_scored_position(turn_index: list[int]) -> int:
    """Index of the first token with turn index >= 0 (len(turn_index) if there is none)."""
    return next((i for i, turn in enumerate(turn_index) if turn >= 0), len(turn_index))


def tokenize_pair(row: dict, index: int | None = None, *, tokenizer, max_length: int | None) -> dict:
    """Tokenize prompt+chosen and prompt+rejected of one pair; say why the pair must be skipped, if it must.

    Returns lists of length Lc (chosen) and Lr (rejected):
        chosen_input_ids, chosen_turn_index, rejected_input_ids, rejected_turn_index,
        chosen_turns, rejected_turns (assistant turns left after truncation),
        truncated_turns (assistant turns cut off by max_length, both sides together),
        skip_reason ("" to keep the pair, else SKIP_NO_TURN or SKIP_PROMPT_MISMATCH).

    Assistant messages inside the prompt (earlier turns of a longer dialogue) are context: they
    get turn index -1 and turn 0 is the first turn of chosen / rejected.
    Rows without a "prompt" (TRL's implicit-prompt format) are accepted: chosen and rejected are
    then whole conversations and must agree on everything before their first assistant turn.
    Malformed rows (a side with no assistant message at all, messages that are not messages)
    raise ValueError naming the pair.
    """
    label = _row_label(row, index)
    tools = _load_field(row.get("tools"), "tools", label) or None
    prompt = _messages(row, "prompt", label) if row.get("prompt") is not None else []
    context_turns = sum(m["role"] == "assistant" for m in prompt)  # earlier turns: context, not scored
    sides = {}
    for side in ("chosen", "rejected"):
        messages = _messages(row, side, label)
        if not any(m["role"] == "assistant" for m in messages):
            raise ValueError(f"{label}: '{side}' has no assistant message; every trajectory needs at least one "
                             "assistant turn to score")
        try:
            sides[side] = tokenize_conversation(tokenizer, prompt + messages, tools, max_length=max_length,
                                                context_turns=context_turns)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{label}, {side} side: {error}") from error
    chosen, rejected = sides["chosen"], sides["rejected"]

    skip_reason = ""
    if chosen.num_turns == 0 or rejected.num_turns == 0:
        skip_reason = SKIP_NO_TURN
    else:
        start_c, start_r = first_scored_position(chosen.turn_index), first_scored_position(rejected.turn_index)
        if chosen.input_ids[:start_c] != rejected.input_ids[:start_r]:
            skip_reason = SKIP_PROMPT_MISMATCH
    return {
        "chosen_input_ids": list(chosen.input_ids),
        "chosen_turn_index": list(chosen.turn_index),
        "rejected_input_ids": list(rejected.input_ids),
        "rejected_turn_index": list(rejected.turn_index),
        "chosen_turns": chosen.num_turns,
        "rejected_turns": rejected.num_turns,
        "truncated_turns": chosen.dropped_turns + rejected.dropped_turns,
        "skip_reason": skip_reason,
    }


@dataclass
class PairReport:
    """What happened to the pairs of one dataset: kept, skipped (by reason, with the first ids), truncated."""

    name: str = "train"
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    first_ids: dict = field(default_factory=dict)  # reason -> up to 3 pair ids
    truncated_pairs: int = 0  # kept pairs that lost assistant turns to max_length
    truncated_turns: int = 0

    @classmethod
    def from_columns(cls, name: str, skip_reasons: list[str], ids: list, truncated_turns: list[int]) -> PairReport:
        report = cls(name=name)
        for reason, pair_id, cut in zip(skip_reasons, ids, truncated_turns, strict=True):
            if reason:
                report.skipped[reason] += 1
                report.first_ids.setdefault(reason, [])
                if len(report.first_ids[reason]) < 3:
                    report.first_ids[reason].append(pair_id)
            else:
                report.kept += 1
                report.truncated_pairs += cut > 0
                report.truncated_turns += cut
        return report

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        text = f"{self.name} pairs: kept {self.kept}, skipped {self.num_skipped}"
        if self.skipped:
            text += " (" + "; ".join(f"{count} x {reason}, e.g. {self.first_ids[reason]}"
                                     for reason, count in self.skipped.items()) + ")"
        if self.truncated_pairs:
            text += (f"; {self.truncated_pairs} kept pairs were cut to max_length and lost "
                     f"{self.truncated_turns} assistant turns")
        return text


# ---------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------

@dataclass
class DataCollatorForDiaToolPreference(DataCollatorMixin):
    """Pad tokenized pairs into one batch of 2B trajectories, chosen first, like TRL's preference collator.

    Each example needs ``chosen_input_ids``, ``chosen_turn_index``, ``rejected_input_ids``,
    ``rejected_turn_index`` (lists, already truncated); ``ref_chosen_logps`` / ``ref_rejected_logps``
    (per-turn reference log-probs, lists of equal length W) pass through as [B, W] tensors.

    >>> collator = DataCollatorForDiaToolPreference(pad_token_id=0)
    >>> batch = collator([{"chosen_input_ids": [5, 6, 7], "chosen_turn_index": [-1, 0, 0],
    ...                    "rejected_input_ids": [5, 8], "rejected_turn_index": [-1, 0]}])
    >>> batch["input_ids"].tolist(), batch["turn_index"].tolist(), batch["num_turns"].tolist()
    ([[5, 6, 7], [5, 8, 0]], [[-1, 0, 0], [-1, 0, -1]], [1, 1])
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sides = ("chosen", "rejected")
        input_ids = [torch.tensor(e[f"{side}_input_ids"], dtype=torch.long) for side in sides for e in examples]
        turn_index = [torch.tensor(e[f"{side}_turn_index"], dtype=torch.long) for side in sides for e in examples]
        attention_mask = [torch.ones_like(ids) for ids in input_ids]
        output = {
            "input_ids": pad(input_ids, self.pad_token_id, "right", self.pad_to_multiple_of),
            "attention_mask": pad(attention_mask, 0, "right", self.pad_to_multiple_of),
            "turn_index": pad(turn_index, -1, "right", self.pad_to_multiple_of),
        }
        output["num_turns"] = output["turn_index"].amax(dim=1) + 1
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in examples[0]:
                output[key] = torch.tensor([e[key] for e in examples], dtype=torch.float32)
        return output
