"""Run each pair's shared prefix once: one forward over the common tokens, then both continuations on its cache.

DPO scores a pair as two sequences, prompt + chosen and prompt + rejected, so the policy reads the
prompt twice (and the reference model twice more). In tool dialogues the prompt (the tool list, the
system text, the dialogue so far) is most of the sequence. The two sequences of a pair agree token for
token up to their first difference, so that part can be run once:

    chosen    x_0 ... x_{K-1} c_K ... c_{Lc-1}          K = longest common token prefix of the pair
    rejected  x_0 ... x_{K-1} r_K ... r_{Lr-1}

    prefix        x_0 ... x_{P-1}                 P = K - 1, run once per pair, KV cache kept
    continuation  x_{P} c_K ... c_{Lc-1}          run for chosen and for rejected on the prefix's cache
                  x_{P} r_K ... r_{Lr-1}

The prefix stops one token short of K so that every prediction belongs to one forward: the prefix's
hidden state at position j predicts token j + 1 <= P (all common), and the continuation's first token
x_P predicts c_K or r_K. Every label of the full sequences is scored exactly once per side:

    full[j] = prefix[j]          for j < P       (the same values on both sides)
    full[j] = continuation[j-P]  for j >= P

The prefix's keys and values carry gradients; repeating them for the two continuations makes the
backward sum both sides' gradients into the one prefix pass. Same loss, same gradients, fewer tokens:
B * P + sum of continuations instead of 2B * L. The KV cache's key/value rows are indexed by position,
so the continuation also gets explicit position ids (P + k) and a padding mask over the prefix slots;
prefixes of different lengths in one batch are right-padded like any batch.

    batch = split_pair_batch(input_ids, attention_mask, turn_index, labels)   # None if a pair shares < 2 tokens
    fields = shared_prefix_forward(model, batch)   # {"log_probs": [2B, L-1], "entropy": ..., "is_top1": ...}

``model`` is a causal LM patched with TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``), as
DPOTrainer patches it; both forwards go through that head, so only the scored positions reach the
vocabulary projection where TRL's kernel allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
from accelerate.utils import is_peft_model
from transformers import DynamicCache

from .padding import causal_only

__all__ = ["SharedPrefixBatch", "shared_prefix_lengths", "split_pair_batch", "shared_prefix_forward",
           "unsupported_reason", "FUSED_FIELDS"]

FUSED_FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


def shared_prefix_lengths(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          turn_index: torch.Tensor) -> torch.Tensor:
    """K_b, the longest common prefix of chosen row b and rejected row B + b, in tokens. [B]

    Tokens count as common when ids *and* turn index agree and both are real (not padding).
    ``input_ids``, ``attention_mask``, ``turn_index``: [2B, L], chosen rows first.
    """
    ids_c, ids_r = input_ids.chunk(2)
    mask_c, mask_r = attention_mask.bool().chunk(2)
    turns_c, turns_r = turn_index.chunk(2)
    same = (ids_c == ids_r) & (turns_c == turns_r) & mask_c & mask_r  # [B, L]
    return same.long().cumprod(dim=1).sum(dim=1)


@dataclass
class SharedPrefixBatch:
    """One padded pair batch split into shared prefixes and continuations (B pairs, 2B sequences).

    prefix_ids / prefix_mask / prefix_labels   [B, P_max]  right-padded; prefix_labels[b, j] is the label
                                                           of token j + 1 (pre-shifted), -100 past P_b
    prefix_lengths                             [B]         P_b = K_b - 1 >= 1
    continuation_ids / continuation_labels     [2B, C_max] tokens P_b .. L_r - 1 of each sequence, padded
    continuation_mask                          [2B, P_max + C_max]  prefix slots then continuation slots
    continuation_positions                     [2B, C_max] P_b + k
    width                                      L - 1, the width of the stitched per-token outputs
    """

    prefix_ids: torch.Tensor
    prefix_mask: torch.Tensor
    prefix_labels: torch.Tensor
    prefix_lengths: torch.Tensor
    continuation_ids: torch.Tensor
    continuation_mask: torch.Tensor
    continuation_labels: torch.Tensor
    continuation_positions: torch.Tensor
    width: int

    @property
    def tokens(self) -> int:
        """Real tokens the two forwards read, against ``2B * L`` minus padding for the full path."""
        return int(self.prefix_lengths.sum() + self.continuation_mask[:, self.prefix_ids.size(1):].sum())


def split_pair_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, turn_index: torch.Tensor,
                     labels: torch.Tensor) -> SharedPrefixBatch | None:
    """Split a right-padded pair batch ([2B, L], chosen rows first) into prefixes and continuations.

    ``labels`` [2B, L] are the full path's labels (-100 where not scored). Returns None when some pair
    shares fewer than 2 tokens (nothing to share; the caller runs the full path).
    """
    num_pairs, length = input_ids.size(0) // 2, input_ids.size(1)
    prefix_lengths = shared_prefix_lengths(input_ids, attention_mask, turn_index) - 1  # P_b  [B]
    if int(prefix_lengths.min()) < 1:
        return None
    device = input_ids.device
    prefix_width = int(prefix_lengths.max())
    positions = torch.arange(length, device=device)

    # Prefixes, from the chosen rows: tokens 0 .. P_b - 1, and the labels of tokens 1 .. P_b.
    in_prefix = positions[:prefix_width] < prefix_lengths[:, None]  # [B, P_max]
    chosen_ids, chosen_labels = input_ids[:num_pairs], labels[:num_pairs]
    prefix_ids = chosen_ids[:, :prefix_width]
    prefix_labels = chosen_labels[:, 1:prefix_width + 1].masked_fill(~in_prefix, -100)

    # Continuations: tokens P_b .. L_r - 1 of every row, gathered to the left.
    both = torch.cat([prefix_lengths, prefix_lengths])  # [2B]
    lengths = attention_mask.sum(dim=1)  # L_r
    cont_width = int((lengths - both).max())
    source = both[:, None] + positions[:cont_width]  # [2B, C_max]
    in_cont = source < lengths[:, None]
    source = source.clamp(max=length - 1)
    continuation_ids = input_ids.gather(1, source).masked_fill(~in_cont, 0)
    continuation_labels = labels.gather(1, source).masked_fill(~in_cont, -100)
    continuation_mask = torch.cat([in_prefix.repeat(2, 1), in_cont], dim=1).long()
    return SharedPrefixBatch(
        prefix_ids=prefix_ids, prefix_mask=in_prefix.long(), prefix_labels=prefix_labels,
        prefix_lengths=prefix_lengths, continuation_ids=continuation_ids, continuation_mask=continuation_mask,
        continuation_labels=continuation_labels, continuation_positions=source.masked_fill(~in_cont, 0),
        width=length - 1,
    )


def _stitch(prefix_values: torch.Tensor, continuation_values: torch.Tensor, batch: SharedPrefixBatch) -> torch.Tensor:
    """Per-token values of the full sequences [2B, L-1] from the prefix's [B, P_max] and continuations' [2B, C_max-1].

    full[r, j] = prefix[b, j] for j < P_b, continuation[r, j - P_b] after (b = r mod B); past a row's
    end the continuation's own zeros (label -100) fill in.
    """
    starts = torch.cat([batch.prefix_lengths, batch.prefix_lengths])[:, None]  # [2B, 1]
    positions = torch.arange(batch.width, device=starts.device)[None, :]  # [1, L-1]
    prefix_part = prefix_values.repeat(2, 1)
    prefix_part = torch.nn.functional.pad(prefix_part, (0, batch.width - prefix_part.size(1)))
    last = continuation_values.size(1) - 1
    cont_part = continuation_values.gather(1, (positions - starts).clamp(0, last).expand(starts.size(0), -1))
    cont_part = torch.where(positions - starts <= last, cont_part, torch.zeros_like(cont_part))
    return torch.where(positions < starts, prefix_part, cont_part)


def shared_prefix_forward(model, batch: SharedPrefixBatch) -> SimpleNamespace:
    """Fused-head outputs of the full sequences, computed from one prefix pass and one continuation pass.

    Returns a namespace with the fused head's per-token fields (``log_probs``, ``entropy``, ``is_top1``,
    ... those the head computes; the rest None), each [2B, L-1] as ``model(..., fused_lm_head=True)`` gives
    for the full batch, and ``aux_loss = None``.
    """
    num_pairs = batch.prefix_ids.size(0)
    cache = DynamicCache()
    # the prefixes are right-padded: causal attention alone keeps real tokens off the padding (padding.py); the
    # continuation's mask keeps them off the padded prefix slots
    prefix = model(input_ids=batch.prefix_ids, attention_mask=causal_only(batch.prefix_mask),
                   shift_labels=batch.prefix_labels, cache=cache, fused_lm_head=True)
    # One copy of the prefix's keys and values per side: rows [chosen 0..B-1, rejected 0..B-1].
    cache.reorder_cache(torch.arange(num_pairs, device=batch.prefix_ids.device).repeat(2))
    continuation = model(input_ids=batch.continuation_ids, attention_mask=batch.continuation_mask,
                         position_ids=batch.continuation_positions, labels=batch.continuation_labels,
                         cache=cache, fused_lm_head=True)
    fields = {}
    for name in FUSED_FIELDS:
        head, tail = getattr(prefix, name, None), getattr(continuation, name, None)
        fields[name] = None if head is None or tail is None else _stitch(head, tail, batch)
    return SimpleNamespace(**fields, aux_loss=None)


def unsupported_reason(model, *, gradient_checkpointing: bool, distributed_type: str,
                       aux_loss: bool) -> str | None:
    """Why the shared-prefix forward can't run on this (unwrapped) model, or None when it can."""
    if distributed_type != "NO":
        return (f"distributed training ({distributed_type}): the wrapped model (DDP, DeepSpeed, FSDP) expects one "
                "forward per backward")
    if gradient_checkpointing:
        return "gradient checkpointing drops the KV cache during training"
    if aux_loss:
        return "the router's auxiliary loss needs the full sequences"
    if is_peft_model(model) and model.active_peft_config.is_prompt_learning:
        return "prompt-learning PEFT prepends virtual tokens to every sequence"
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    if not hasattr(config, "use_cache"):
        return f"{type(model).__name__} has no KV cache"
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    if layer_types != {"full_attention"} or getattr(config, "use_sliding_window", False):
        return f"attention layers of kinds {sorted(layer_types)} (a KV cache of full attention only is supported)"
    attention = getattr(config, "_attn_implementation", None) or "eager"
    if attention not in ("sdpa", "eager"):
        return f"attention implementation {attention!r} (sdpa and eager take a padded KV cache)"
    return None
