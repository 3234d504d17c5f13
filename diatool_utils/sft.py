"""Supervised fine-tuning on assistant turns only, and the LoRA / QLoRA set-up shared with DPO.

SFT teaches the Functionary format and the three behaviours (call, ask for a missing value,
decline) before DPO re-ranks them. The loss is next-token cross-entropy on the assistant's
trained tokens only (``turn_index >= 0`` from ``masking.tokenize_conversation``); system,
user and tool tokens stay in the context with label -100.

    labels[i] = input_ids[i] if turn_index[i] >= 0 else -100

One token of each turn decides what the turn *does*: the first one after ``<|recipient|>``,
``all`` for a text reply (ask, decline, report) or a function name's first token for a call.
It is one of ~24 trained tokens of a turn in ``data/sft.jsonl``, and the tokens that copy values
dominate the mean loss, so with ``decision_weight`` w > 1 the loss is the weighted mean

    loss = sum_i m_i * CE_i / sum_i m_i,   m_i = w at a turn's first token, 1 elsewhere

At w = 20 the deciding tokens make ~46 % of the loss. That first decision is what the Slot and
Relevance columns hinge on; ``first_action`` measures it.
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel, Trainer, TrainingArguments

from .loss import decision_token_weights
from .masking import tokenize_conversation
from .padding import causal_only
from .templating import FUNCTIONARY_SPECIAL_TOKENS, add_functionary_tokens, missing_functionary_tokens

IGNORE_INDEX = -100


@dataclass
class SkipReport:
    """Rows left out of a dataset, counted by reason (nothing is dropped silently)."""

    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason -> first row id that hit it

    def skip(self, reason: str, row_id) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, row_id)

    def __str__(self) -> str:
        if not self.skipped:
            return f"kept {self.kept} rows, skipped none"
        reasons = "; ".join(f"{n} x {r} (first: {self.examples[r]})" for r, n in self.skipped.items())
        return f"kept {self.kept} rows, skipped {sum(self.skipped.values())}: {reasons}"


def lora_config(tokenizer, r: int = 16, alpha: int = 32, dropout: float = 0.05, *, model=None,
                train_output_rows: bool = True) -> LoraConfig:
    """LoRA on every linear layer, plus trainable rows for the Functionary special tokens.

    The new tokens start as the mean embedding, so all four would share one logit forever
    with frozen embeddings; ``trainable_token_indices`` trains just those rows. A tied output
    layer shares the input rows (PEFT ties its wrapper to the input's). An untied one (Qwen2.5-Coder,
    Llama-3) has rows of its own, also set to one shared mean: given ``model``, its rows of the
    four tokens train too, or the model could never prefer ``<|content|>`` or ``<|stop|>``.
    ``train_output_rows=False`` leaves them frozen (the old behaviour, kept to show what it breaks).
    """
    if missing_functionary_tokens(tokenizer):
        raise ValueError("the tokenizer lacks the Functionary tokens: call add_functionary_tokens() first")
    token_ids = tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
    rows = {"embed_tokens": token_ids}
    if model is not None:
        rows = {_module_name(model, model.get_input_embeddings()): token_ids}
        head = untied_output_embeddings(model)
        if head is not None and train_output_rows:
            rows[_module_name(model, head)] = token_ids
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear",
        trainable_token_indices=rows,
        task_type="CAUSAL_LM",
    )


def untied_output_embeddings(model: PreTrainedModel):
    """The output layer when it has weights of its own, None when it shares the input embeddings' (or has none)."""
    head = model.get_output_embeddings()
    if head is None or head.weight is model.get_input_embeddings().weight:
        return None
    return head


def _module_name(model, module) -> str:
    # PEFT matches trainable_token_indices keys as suffixes of the module names
    return next(name for name, candidate in model.named_modules() if candidate is module)


def attach_lora(model: PreTrainedModel, tokenizer, *, train_output_rows: bool = True, **lora_kwargs) -> PeftModel:
    """Add the Functionary tokens, prepare a 4-bit model for k-bit training, attach LoRA (see ``lora_config``)."""
    add_functionary_tokens(tokenizer, model)
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = lora_config(tokenizer, model=model, train_output_rows=train_output_rows, **lora_kwargs)
    with quiet_peft_wrapping():
        return get_peft_model(model, config)


def lora_inputs_follow_autocast(model) -> int:
    """Stop PEFT from casting each LoRA layer's input to the adapter's dtype; returns how many layers changed.

    PEFT keeps the LoRA matrices in fp32 on a bf16 base (the optimizer needs fp32 steps) and casts every
    layer's input to fp32 before ``B @ A @ x``. Under bf16 autocast that product runs in bf16 anyway, so each
    activation is copied bf16 -> fp32 -> bf16 for nothing (skipping it made a CPU step of the 135M model 8 % faster).
    Only for training under autocast (``TrainingArguments(bf16=True)``): outside it a bf16 input would meet an
    fp32 matrix and the product would raise.
    """
    layers = [module for module in model.modules() if hasattr(module, "cast_input_dtype_enabled")]
    for layer in layers:
        layer.cast_input_dtype_enabled = False
    return len(layers)


@contextmanager
def quiet_peft_wrapping():
    """PEFT 0.21.2 reads ``model.is_gradient_checkpointing`` when it wraps a model, which transformers 5.24
    deprecates with a FutureWarning on every wrap; nothing a user can act on, so it is kept out of the output."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def sft_features(tokenizer, row: dict, max_length: int | None, decision_weight: float = 1.0) -> dict:
    """``input_ids``, ``labels`` (-100 outside assistant turns) and ``loss_weights`` for one conversation row.

    ``loss_weights`` is ``decision_weight`` at each turn's first token (its recipient), 1 at its other
    tokens and 0 outside the turns.
    """
    tokenized = tokenize_conversation(tokenizer, row["messages"], row.get("tools"), max_length=max_length)
    turns = tokenized.turn_index
    labels = [tok if turn >= 0 else IGNORE_INDEX for tok, turn in zip(tokenized.input_ids, turns, strict=True)]
    weights = decision_token_weights(torch.tensor([turns]), decision_weight)[0].tolist()  # the DPO loss's rule
    return {"input_ids": tokenized.input_ids, "labels": labels, "loss_weights": weights,
            "num_turns": tokenized.num_turns, "dropped_turns": tokenized.dropped_turns}


def build_sft_dataset(tokenizer, rows, max_length: int | None = 1024,
                      decision_weight: float = 1.0) -> tuple[Dataset, SkipReport]:
    """Tokenize conversation rows; rows with no trained token left after truncation are skipped and counted.

    With ``decision_weight`` != 1 each example also carries its ``loss_weights`` (see ``sft_features``).
    """
    if decision_weight <= 0:
        raise ValueError(f"decision_weight={decision_weight}: expected a positive weight (1 = plain mean loss)")
    features, report = [], SkipReport()
    for number, row in enumerate(rows):
        row_id = row.get("id", f"row {number}")
        example = sft_features(tokenizer, row, max_length, decision_weight)
        if example["num_turns"] == 0:
            report.skip("no assistant turn left after truncation", row_id)
            continue
        report.kept += 1
        kept = ("input_ids", "labels", "loss_weights") if decision_weight != 1 else ("input_ids", "labels")
        features.append({key: example[key] for key in kept})
    if not features:
        raise ValueError(f"no usable SFT rows: {report}")
    return Dataset.from_list(features), report


class AssistantOnlyCollator:
    """Right-pads ``input_ids`` (pad token), ``labels`` (-100) and ``loss_weights`` if present (0)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)

        def pad(key, value):
            return torch.tensor([e[key] + [value] * (width - len(e[key])) for e in examples])

        input_ids = pad("input_ids", self.pad_token_id)
        lengths = torch.tensor([len(e["input_ids"]) for e in examples])
        attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": pad("labels", IGNORE_INDEX)}
        if "loss_weights" in examples[0]:
            batch["loss_weights"] = pad("loss_weights", 0.0).float()
        return batch


TOKEN_ROWS = "trainable_tokens_delta"  # PEFT's name for the trainable rows of the new tokens


SMOLLM2_EMBEDDING_RMS = 0.1356  # element RMS of SmolLM2-135M-Instruct's embedding matrix, where 50 x lr was tuned


def default_token_learning_rate(weight: torch.Tensor, learning_rate: float) -> float:
    """The step of new rows in matrix ``weight``: 50 x ``learning_rate`` at SmolLM2-135M's scale, scaled to the matrix:

        lr_rows = 50 * lr * RMS(W) / RMS(E_SmolLM2),   RMS(W) = sqrt(mean of W_ij^2)

    Adam moves each element by about its learning rate per step, whatever the gradient's size, so the
    step must follow the rows' size for the rows to move by the same fraction of it. Qwen2.5-Coder-0.5B's
    elements are 8x smaller (RMS 0.0173 against 0.1356): an unscaled 50 x 1e-3 moved each of them by
    about three times its size in one step, and its SFT loss jumped from 1.4 to 5.9 at step 4.
    """
    rms = weight.detach().float().pow(2).mean().sqrt().item() if weight.numel() else SMOLLM2_EMBEDDING_RMS
    return 50 * learning_rate * rms / SMOLLM2_EMBEDDING_RMS


def token_row_optimizer(model, learning_rate: float, token_learning_rate: float | None = None,
                        weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW with its own learning rate for the Functionary token rows.

    The four rows start as one shared mean embedding; at a LoRA learning rate (~5e-4) Adam moves
    each element ~lr per step, far too little in a short run for the model to tell ``<|content|>``
    from ``<|stop|>`` (it then ends turns with its old eos token). The rows get a larger step:
    ``token_learning_rate``, or by default one per matrix (input rows, untied output rows) from
    ``default_token_learning_rate``.
    """
    groups, rows = [], set()
    for module in model.modules():
        # a tied output layer shares the input layer's delta: one group for both
        deltas = [p for p in getattr(module, TOKEN_ROWS, {}).values() if p.requires_grad and id(p) not in rows]
        if deltas:
            lr = token_learning_rate or default_token_learning_rate(module.base_layer.weight, learning_rate)
            groups.append({"params": deltas, "lr": lr, "weight_decay": 0.0})
            rows.update(id(p) for p in deltas)
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in rows]
    return torch.optim.AdamW([{"params": rest, "lr": learning_rate, "weight_decay": weight_decay}, *groups])


class AssistantOnlyTrainer(Trainer):
    """``Trainer`` whose loss builds logits only where an assistant token is predicted.

    With targets y_{p+1} (label -100 outside assistant turns) and N scored targets in the batch,

        loss = -(1/N) * sum_{p : y_{p+1} != -100} log softmax(W_head h_p)[y_{p+1}]

    which is the usual causal-LM loss: positions with no scored target add nothing, so their logits
    need not exist. The LM head (576 x 49k on SmolLM2) and its [B, L, V] fp32 logits are the largest
    matrix product and tensor of a step; ``logits_to_keep`` (the positions scored in any row of the
    batch) builds them for the assistant spans only.

    A batch with ``loss_weights`` m (``build_sft_dataset(decision_weight=w)``) gets the weighted mean
    sum m * CE / sum m over the batch instead (per micro-batch: with gradient accumulation each
    micro-batch is normalised by its own weights).
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = assistant_only_loss(model, inputs, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _save(self, output_dir=None, state_dict=None):
        """As Trainer's, but a checkpoint of a PEFT model keeps the adapter and the trained token rows without the
        (resized) embedding matrices, as ``pipeline.save_adapter`` does: PEFT would add them to every checkpoint,
        1.1 GB each on Qwen2.5-Coder-0.5B. A run resumed from it rebuilds them the way training started."""
        if not isinstance(self.model, PeftModel):
            return super()._save(output_dir, state_dict)
        self.model.save_pretrained = functools.partial(self.model.save_pretrained, save_embedding_layers=False)
        try:
            super()._save(output_dir, state_dict)
        finally:
            del self.model.save_pretrained  # the method again


def assistant_only_loss(model, inputs: dict, num_items_in_batch=None):
    """The loss of ``AssistantOnlyTrainer`` (its docstring has the formula) on one collated batch: (loss, outputs).

    Also the replay term of ``DiaToolDPOTrainer``, which trains SFT conversations beside the pairs.
    """
    targets = inputs["labels"][:, 1:]  # position p predicts token p+1
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)  # [K] positions, union over rows
    outputs = model(input_ids=inputs["input_ids"], attention_mask=causal_only(inputs["attention_mask"]),
                    logits_to_keep=keep)
    kept = targets[:, keep]  # [B, K]
    per_token = torch.nn.functional.cross_entropy(outputs.logits.flatten(0, 1).float(), kept.flatten(),
                                                  ignore_index=IGNORE_INDEX, reduction="none")
    if "loss_weights" in inputs:
        weights = inputs["loss_weights"][:, 1:][:, keep].flatten()
        return (per_token * weights).sum() / weights.sum(), outputs
    scored = num_items_in_batch if num_items_in_batch is not None else (kept != IGNORE_INDEX).sum()
    return per_token.sum() / scored, outputs


def sft_trainer(model, tokenizer, rows, args: TrainingArguments, max_length: int | None = 1024,
                eval_rows=None, token_learning_rate: float | None = None, decision_weight: float = 1.0) -> Trainer:
    """A ``transformers.Trainer`` for assistant-only SFT; prints what was skipped.

    ``decision_weight``: the loss weight of each turn's first token (see the module docstring).

    ``token_learning_rate`` is the step size of the new token rows (see ``token_row_optimizer``); the
    scheduler scales all groups alike. Default: ``default_token_learning_rate`` of each matrix.
    """
    train_dataset, report = build_sft_dataset(tokenizer, rows, max_length, decision_weight)
    print(f"SFT data: {report}")
    eval_dataset = build_sft_dataset(tokenizer, eval_rows, max_length)[0] if eval_rows else None
    if decision_weight != 1 and args.remove_unused_columns:  # Trainer would drop loss_weights (not a forward() input)
        args = replace(args, remove_unused_columns=False)
    optimizer = token_row_optimizer(model, args.learning_rate, token_learning_rate, args.weight_decay)
    return AssistantOnlyTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=AssistantOnlyCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        optimizers=(optimizer, None),
    )
