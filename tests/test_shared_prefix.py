"""The shared-prefix forward: the same loss, per-turn log-probs and LoRA gradients as running every sequence whole."""

import copy
import json
import logging

import pytest
import torch
from peft import LoraConfig
from test_trainer import call, make_args, multi_turn_pairs, say, tool_result

from diatool_utils.paths import DATA_DIR
from diatool_utils.shared_prefix import shared_prefix_lengths, split_pair_batch, unsupported_reason
from diatool_utils.trainer import DiaToolDPOTrainer

GIVEN = [{"role": "user", "content": "Weather in Seoul?"}]


def identical_first_turn_pairs() -> list[dict]:
    """Both sides make the same call and read the same result; only the closing reply differs."""
    same_start = [call("Seoul"), tool_result("sunny, 24C")]
    return [
        {"id": "same-call", "tools": multi_turn_pairs()[0]["tools"], "prompt": GIVEN,
         "chosen": same_start + [say("Sunny and 24C in Seoul.")],
         "rejected": same_start + [say("It is raining hard in Seoul today, take an umbrella.")]},
        *multi_turn_pairs()[:1],
    ]


def data_pairs(count: int = 2) -> list[dict]:
    """Pairs of the shipped data that hold earlier finished requests in their prompt (longer shared prefixes)."""
    with (DATA_DIR / "dpo_pairs.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    with_history = [row for row in rows if any(m["role"] == "assistant" for m in row["prompt"])]
    return with_history[:count]


BATCHES = {
    # four prompts of different lengths; row5 and row4 differ from the first assistant token (text vs call)
    "prefixes_of_different_lengths": (multi_turn_pairs, {}),
    "identical_first_turn": (identical_first_turn_pairs, {}),
    "truncated": (multi_turn_pairs, {"max_length": 150}),
    "data_pairs_with_history": (data_pairs, {"max_length": 600}),
}


def loss_turns_and_grads(trainer, batch):
    """Loss, policy and reference per-turn log-probs, logged rewards and every LoRA gradient of one batch."""
    trainer.model.train()  # as Trainer.training_step does (an eval-mode forward would repack 4-bit weights)
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in trainer.model.named_parameters() if "lora_" in name}
    width = int(batch["num_turns"].max())
    with torch.no_grad():
        policy = trainer._turn_logps(trainer._fused_outputs(trainer.model, batch, "policy").log_probs,
                                     batch["turn_index"], width)
        reference = torch.cat(trainer.compute_ref_log_probs(trainer.model, batch))[:, :width]
    rewards = {key: trainer._metrics["train"][key][0] for key in ("rewards/chosen", "rewards/rejected")}
    trainer._metrics["train"].clear()
    return loss.detach(), policy, reference, rewards, grads


def assert_same(shared, full, grad_tolerance: float = 1e-5):
    loss, policy, reference, rewards, grads = shared
    loss_f, policy_f, reference_f, rewards_f, grads_f = full
    torch.testing.assert_close(loss, loss_f, rtol=1e-5, atol=0)
    torch.testing.assert_close(policy, policy_f, rtol=1e-5, atol=1e-5 * policy_f.abs().max().item())
    torch.testing.assert_close(reference, reference_f, rtol=1e-5, atol=1e-5 * reference_f.abs().max().item())
    # A reward is beta times a difference of two log-probs some 100x larger than it (policy minus reference):
    # fp32 rounds those log-probs, so the reward is compared relative to them.
    scale = torch.cat([policy_f, reference_f]).abs().max().item()
    for key, value in rewards_f.items():
        assert rewards[key] == pytest.approx(value, rel=1e-5, abs=1e-5 * scale), key
    assert grads.keys() == grads_f.keys() and grads
    for name, grad in grads_f.items():
        assert grad.abs().max() > 0, f"{name} has no gradient: the comparison would prove nothing"
        torch.testing.assert_close(grads[name], grad, rtol=grad_tolerance,
                                   atol=grad_tolerance * grad.abs().max().item(), msg=name)


@pytest.fixture
def lora_trainer(tiny_model, tiny_tokenizer, sft_markers, tmp_path):
    def build(pairs, **overrides):
        model, tokenizer = sft_markers(copy.deepcopy(tiny_model), copy.deepcopy(tiny_tokenizer))
        # random A and B: the policy differs from its reference (the adapter disabled) and every LoRA weight
        # gets a gradient
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"],
                          task_type="CAUSAL_LM", init_lora_weights=False)
        args = make_args(tmp_path, per_device_train_batch_size=len(pairs), gamma=0.5, margin=0.5, beta=0.5,
                         **overrides)
        return DiaToolDPOTrainer(model, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=lora)
    return build


@pytest.mark.parametrize("kind", BATCHES)
def test_shared_prefix_gives_the_same_loss_turn_logps_and_lora_gradients(lora_trainer, kind):
    make_pairs, overrides = BATCHES[kind]
    trainer = lora_trainer(make_pairs(), **overrides)
    dataset = trainer.train_dataset
    batch = trainer._prepare_inputs(trainer.data_collator([dataset[i] for i in range(len(dataset))]))
    if kind == "truncated":
        assert trainer.pair_reports["train"].truncated_turns > 0
    split = split_pair_batch(batch["input_ids"], batch["attention_mask"], batch["turn_index"],
                             trainer._labels(batch))
    assert split is not None and split.tokens < int(batch["attention_mask"].sum())
    if kind == "prefixes_of_different_lengths":
        assert len(set(split.prefix_lengths.tolist())) >= 3
    if kind == "identical_first_turn":  # the shared prefix holds a scored turn: it counts on both sides
        scored = batch["turn_index"][0, 1:int(split.prefix_lengths[0]) + 1] >= 0
        assert scored.any()

    shared = loss_turns_and_grads(trainer, batch)
    assert trainer._shared_prefix_off == {"policy": None, "reference": None}
    trainer.args.shared_prefix, trainer._shared_prefix_off = False, {}
    full = loss_turns_and_grads(trainer, batch)
    assert trainer._shared_prefix_off == {"policy": "", "reference": ""}
    assert_same(shared, full)


def test_a_training_step_with_the_shared_prefix_matches_the_full_path(lora_trainer):
    results = []
    for shared in (True, False):
        torch.manual_seed(0)
        trainer = lora_trainer(multi_turn_pairs(), shared_prefix=shared, max_steps=2, learning_rate=1e-2)
        trainer.train()
        results.append([entry["loss"] for entry in trainer.state.log_history if "loss" in entry])
    assert results[0] == pytest.approx(results[1], rel=1e-4)


def test_gradient_checkpointing_falls_back_to_the_full_path_and_says_so_once(lora_trainer, caplog):
    trainer = lora_trainer(multi_turn_pairs(), activation_checkpointing=True)
    dataset = trainer.train_dataset
    batch = trainer._prepare_inputs(trainer.data_collator([dataset[i] for i in range(len(dataset))]))
    trainer.model.train()
    with caplog.at_level(logging.WARNING):
        first = trainer.compute_loss(trainer.model, batch)
        second = trainer.compute_loss(trainer.model, batch)
    assert "gradient checkpointing" in trainer._shared_prefix_off["policy"]
    assert trainer._shared_prefix_off["reference"] is None  # the reference runs without gradients: no checkpoints
    said = [r.message for r in caplog.records if "shared-prefix forward off" in r.message]
    assert len(said) == 1 and said[0].endswith(
        "shared-prefix forward off for the policy: gradient checkpointing drops the KV cache during training. "
        "Every sequence runs whole.")
    torch.testing.assert_close(first, second)


def test_switched_off_it_runs_every_sequence_whole_without_a_word(lora_trainer, caplog):
    trainer = lora_trainer(multi_turn_pairs(), shared_prefix=False)
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert trainer._shared_prefix_off == {"policy": "", "reference": ""}
    assert not [r for r in caplog.records if "shared-prefix" in r.message]


def test_prefix_lengths_stop_at_the_first_difference_and_at_padding():
    # pair 0 shares 3 tokens; pair 1 is the same sequence on both sides, shorter than the padded width
    input_ids = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 0, 0], [1, 2, 3, 9, 5], [1, 2, 3, 0, 0]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    turn_index = torch.tensor([[-1, -1, 0, 0, 0], [-1, -1, 0, -1, -1], [-1, -1, 0, 0, 0], [-1, -1, 0, -1, -1]])
    assert shared_prefix_lengths(input_ids, attention_mask, turn_index).tolist() == [3, 3]
    labels = input_ids.masked_fill(turn_index < 0, -100)
    split = split_pair_batch(input_ids, attention_mask, turn_index, labels)
    assert split.prefix_lengths.tolist() == [2, 2]
    assert split.prefix_ids.tolist() == [[1, 2], [1, 2]]
    assert split.prefix_labels.tolist() == [[-100, 3], [-100, 3]]  # labels of tokens 1 and 2
    assert split.continuation_ids.tolist() == [[3, 4, 5], [3, 0, 0], [3, 9, 5], [3, 0, 0]]
    assert split.continuation_positions.tolist() == [[2, 3, 4], [2, 0, 0], [2, 3, 4], [2, 0, 0]]
    assert split.continuation_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]] * 2
    assert split.tokens == 2 + 2 + 3 + 1 + 3 + 1


def test_a_pair_sharing_fewer_than_two_tokens_is_left_to_the_full_path():
    input_ids = torch.tensor([[1, 2, 3], [7, 2, 3]])
    mask = torch.ones_like(input_ids)
    turn_index = torch.tensor([[-1, 0, 0], [-1, 0, 0]])
    assert split_pair_batch(input_ids, mask, turn_index, input_ids) is None
    turn_index = torch.tensor([[-1, 0, 0], [-1, -1, 0]])  # same ids, different turn: not shared
    assert shared_prefix_lengths(input_ids.new_tensor([[1, 2, 3], [1, 2, 3]]), mask, turn_index).tolist() == [1]


@pytest.mark.parametrize("change, reason", [
    ({"layer_types": ["sliding_attention", "full_attention"]}, "attention layers of kinds"),
    ({"_attn_implementation": "flash_attention_2"}, "attention implementation 'flash_attention_2'"),
])
def test_models_the_cache_path_does_not_cover_are_named(tiny_model, change, reason):
    model = copy.deepcopy(tiny_model)
    assert unsupported_reason(model, gradient_checkpointing=False, distributed_type="NO", aux_loss=False) is None
    for key, value in change.items():
        setattr(model.config, key, value)
    assert reason in unsupported_reason(model, gradient_checkpointing=False, distributed_type="NO", aux_loss=False)
    assert "distributed training" in unsupported_reason(tiny_model, gradient_checkpointing=False,
                                                        distributed_type="DEEPSPEED", aux_loss=False)


def test_qlora_4bit_base_gives_the_same_loss_and_gradients(sft_markers, tmp_path):
    """Notebook 04's set-up: an NF4 base (bitsandbytes) with a LoRA adapter; the adapter disabled is the reference."""
    from diatool_utils.models import load_model_and_tokenizer

    model, tokenizer = sft_markers(*load_model_and_tokenizer("tiny-random", quantization="4bit"))
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
                      init_lora_weights=False)
    pairs = identical_first_turn_pairs()
    trainer = DiaToolDPOTrainer(model, args=make_args(tmp_path, per_device_train_batch_size=len(pairs)),
                                train_dataset=pairs, processing_class=tokenizer, peft_config=lora)
    dataset = trainer.train_dataset
    batch = trainer._prepare_inputs(trainer.data_collator([dataset[i] for i in range(len(dataset))]))
    shared = loss_turns_and_grads(trainer, batch)
    assert trainer._shared_prefix_off == {"policy": None, "reference": None}
    trainer.args.shared_prefix, trainer._shared_prefix_off = False, {}
    # TRL keeps the adapter of a quantised model in bf16, so its gradients carry bf16 rounding (~2^-8)
    assert next(p for n, p in trainer.model.named_parameters() if "lora_" in n).dtype == torch.bfloat16
    assert_same(shared, loss_turns_and_grads(trainer, batch), grad_tolerance=2e-2)
