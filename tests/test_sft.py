"""Assistant-only SFT: what is trained, what is padded, what is skipped, and that it learns."""

import pytest
import torch
from transformers import TrainingArguments

from diatool_utils.masking import tokenize_conversation
from diatool_utils.models import tiny_model_and_tokenizer
from diatool_utils.sft import (
    IGNORE_INDEX,
    AssistantOnlyCollator,
    assistant_only_loss,
    attach_lora,
    build_sft_dataset,
    lora_config,
    lora_inputs_follow_autocast,
    sft_features,
    sft_trainer,
)
from diatool_utils.templating import STOP_TOKEN, add_functionary_tokens

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

ROW = {"id": "weather-1", "tools": TOOLS, "messages": [
    {"role": "user", "content": "What's the weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": '{"temp_c": 4}'},
    {"role": "assistant", "content": "It is 4 degrees in Oslo."},
]}


@pytest.fixture
def tokenizer(tiny_tokenizer):
    add_functionary_tokens(tiny_tokenizer)
    return tiny_tokenizer


def test_labels_keep_exactly_the_assistant_turn_tokens(tokenizer):
    features = sft_features(tokenizer, ROW, max_length=None)
    tokenized = tokenize_conversation(tokenizer, ROW["messages"], TOOLS)
    expected = [t if i >= 0 else IGNORE_INDEX for t, i in zip(tokenized.input_ids, tokenized.turn_index, strict=True)]
    assert features["labels"] == expected
    assert features["num_turns"] == 2
    trained = tokenizer.decode([t for t in features["labels"] if t != IGNORE_INDEX])
    assert "Oslo" in trained and trained.count(STOP_TOKEN) == 2
    assert "What's the weather" not in trained and "temp_c" not in trained


def test_rows_without_a_whole_assistant_turn_are_skipped_and_counted(tokenizer):
    full = len(sft_features(tokenizer, ROW, None)["input_ids"])
    first_call_end = tokenize_conversation(tokenizer, ROW["messages"], TOOLS).turn_index.index(1)
    short = {**ROW, "id": "cut-short"}
    dataset, report = build_sft_dataset(tokenizer, [ROW, short], max_length=full)
    assert len(dataset) == 2 and not report.skipped
    with pytest.raises(ValueError, match="no usable SFT rows"):
        build_sft_dataset(tokenizer, [short], max_length=first_call_end - 30)
    dataset, report = build_sft_dataset(tokenizer, [ROW, short], max_length=full)
    rows = [ROW, {**ROW, "id": "too-long", "messages": [{"role": "user", "content": "hi " * 2000},
                                                        *ROW["messages"][1:]]}]
    dataset, report = build_sft_dataset(tokenizer, rows, max_length=full)
    assert len(dataset) == 1 and report.skipped["no assistant turn left after truncation"] == 1
    assert "too-long" in str(report)


def test_collator_pads_ids_with_pad_and_labels_with_ignore_index():
    batch = AssistantOnlyCollator(pad_token_id=0)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        {"input_ids": [8], "labels": [8]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_lora_config_needs_the_functionary_tokens(tiny_tokenizer):
    with pytest.raises(ValueError, match="add_functionary_tokens"):
        lora_config(tiny_tokenizer)


def _args(tmp_path, steps, lr):
    return TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=steps,
                             learning_rate=lr, logging_steps=1, report_to=[], save_strategy="no",
                             use_cpu=True, seed=0, disable_tqdm=True)


def test_sft_lowers_the_loss_on_assistant_turns(tiny_model, tiny_tokenizer, tmp_path):
    add_functionary_tokens(tiny_tokenizer, tiny_model)
    rows = [{**ROW, "id": f"weather-{i}"} for i in range(4)]
    trainer = sft_trainer(tiny_model, tiny_tokenizer, rows, _args(tmp_path, 15, 1e-2), max_length=None)
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert losses[-1] < losses[0] - 1.0  # 10.8 -> 8.8 nats with seed 0


def test_lora_trains_the_rows_of_the_new_tokens(tiny_model, tiny_tokenizer, tmp_path):
    model = attach_lora(tiny_model, tiny_tokenizer, r=4, alpha=8, dropout=0.0)
    ids = torch.tensor(tiny_tokenizer.convert_tokens_to_ids(["<|from|>", STOP_TOKEN]))
    before = model.get_input_embeddings()(ids).detach().clone()
    assert torch.allclose(before[0], before[1]), "new rows start equal (the mean embedding)"
    sft_trainer(model, tiny_tokenizer, [ROW, ROW], _args(tmp_path, 3, 1e-2), max_length=None).train()
    after = model.get_input_embeddings()(ids).detach()
    assert not torch.allclose(after[0], after[1]), "the new tokens' rows did not train"


def test_token_rows_get_their_own_learning_rate(tiny_model, tiny_tokenizer):
    from diatool_utils.sft import token_row_optimizer

    width = tiny_model.config.hidden_size
    model = attach_lora(tiny_model, tiny_tokenizer, r=4, alpha=8, dropout=0.0)
    optimizer = token_row_optimizer(model, learning_rate=1e-4, token_learning_rate=5e-3)
    rows_group = [g for g in optimizer.param_groups if g["lr"] == 5e-3]  # the 4 Functionary token rows
    assert len(rows_group) == 1 and [p.shape for p in rows_group[0]["params"]] == [torch.Size([4, width])]
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == n_trainable


def test_the_token_rows_step_follows_each_matrix_scale(tmp_path):
    """50 x lr at SmolLM2-135M's embedding scale; an 8x smaller matrix (Qwen2.5-Coder-0.5B's) gets an 8x smaller
    step, and an untied output layer gets the step of its own scale."""
    from diatool_utils.sft import SMOLLM2_EMBEDDING_RMS, default_token_learning_rate

    model, tokenizer = tiny_model_and_tokenizer(tie_word_embeddings=False)
    with torch.no_grad():
        for layer, scale in ((model.get_input_embeddings(), 1.0), (model.get_output_embeddings(), 1 / 8)):
            layer.weight.normal_().mul_(scale * SMOLLM2_EMBEDDING_RMS / layer.weight.pow(2).mean().sqrt())
    assert default_token_learning_rate(model.get_input_embeddings().weight, 1e-3) == pytest.approx(5e-2, rel=1e-4)
    assert default_token_learning_rate(model.get_output_embeddings().weight, 1e-3) == pytest.approx(5e-2 / 8, rel=1e-4)
    model = attach_lora(model, tokenizer, r=4, alpha=8, dropout=0.0)
    trainer = sft_trainer(model, tokenizer, [ROW], _args(tmp_path, 1, 1e-3), max_length=None)
    groups = trainer.optimizer.param_groups
    assert len(groups) == 3 and groups[0]["lr"] == 1e-3  # LoRA, then the input rows, then the output rows
    # the four new rows are mean rows, which barely change a matrix's RMS
    assert [g["lr"] for g in groups[1:]] == [pytest.approx(5e-2, rel=1e-2), pytest.approx(5e-2 / 8, rel=1e-2)]
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())


def test_assistant_only_logits_give_the_full_causal_lm_loss_and_gradients(tiny_model, tiny_tokenizer, tmp_path):
    """Logits built only at scored positions: same loss and same gradients as the model's own loss."""
    model = attach_lora(tiny_model, tiny_tokenizer, r=4, alpha=8, dropout=0.0)
    other = {**ROW, "messages": ROW["messages"][:2]}  # a shorter row: padding and different scored spans
    trainer = sft_trainer(model, tiny_tokenizer, [ROW, other], _args(tmp_path, 1, 1e-2), max_length=None)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert (batch["labels"][:, 1:] != IGNORE_INDEX).any(dim=0).float().mean() < 0.6  # most logits are skipped

    def loss_and_grads(loss):
        model.zero_grad()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    ours, our_grads = loss_and_grads(trainer.compute_loss(model, batch))
    full, full_grads = loss_and_grads(model(**batch).loss)
    torch.testing.assert_close(ours, full)
    for mine, reference in zip(our_grads, full_grads, strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-6)


def test_decision_weight_marks_the_first_token_of_each_turn(tokenizer):
    features = sft_features(tokenizer, ROW, max_length=None, decision_weight=8.0)
    weighted = [i for i, w in enumerate(features["loss_weights"]) if w == 8.0]
    assert len(weighted) == 2  # one per assistant turn
    # the recipient: the called function's first token, then "all" for the text reply
    assert tokenizer.decode([features["input_ids"][weighted[1]]]) == "all"
    assert "get_weather".startswith(tokenizer.decode([features["input_ids"][weighted[0]]]))
    assert all((w > 0) == (label != IGNORE_INDEX) for w, label in zip(features["loss_weights"], features["labels"],
                                                                       strict=True))
    with pytest.raises(ValueError, match="decision_weight=0"):
        build_sft_dataset(tokenizer, [ROW], max_length=None, decision_weight=0)


def test_decision_weight_gives_the_weighted_mean_loss(tiny_model, tiny_tokenizer, tmp_path):
    """sum m * CE / sum m with m = w at turn starts; the weights reach compute_loss through the Trainer."""
    model = attach_lora(tiny_model, tiny_tokenizer, r=4, alpha=8, dropout=0.0)
    other = {**ROW, "messages": ROW["messages"][:2]}
    trainer = sft_trainer(model, tiny_tokenizer, [ROW, other], _args(tmp_path, 1, 1e-2), max_length=None,
                          decision_weight=10.0)
    batch = next(iter(trainer.get_train_dataloader()))  # after the Trainer's own column filtering
    assert "loss_weights" in batch
    with torch.no_grad():
        ours = trainer.compute_loss(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        targets, weights = batch["labels"][:, 1:], batch["loss_weights"][:, 1:]
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                                               ignore_index=IGNORE_INDEX, reduction="none")
        expected = (ce * weights.flatten()).sum() / weights.sum()
        plain = ce.sum() / (targets != IGNORE_INDEX).sum()
    torch.testing.assert_close(ours, expected)
    assert not torch.isclose(ours, plain)


def _bf16_loss_and_grads(model, batch, *, follow_autocast: bool):
    if follow_autocast:
        assert lora_inputs_follow_autocast(model) > 0
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = assistant_only_loss(model, batch)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def test_lora_inputs_left_to_autocast_give_the_same_bf16_step(tiny_model, tiny_tokenizer):
    """Under bf16 autocast, PEFT's cast of every LoRA input to fp32 is undone by the product that follows:
    skipping it changes nothing but the time."""
    model = attach_lora(tiny_model.to(torch.bfloat16), tiny_tokenizer, r=4, alpha=8, dropout=0.0)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # the optimizer's copy
    dataset, _ = build_sft_dataset(tiny_tokenizer, [ROW, {**ROW, "messages": ROW["messages"][:2]}], None)
    batch = AssistantOnlyCollator(tiny_tokenizer.pad_token_id)([dataset[0], dataset[1]])
    cast, cast_grads = _bf16_loss_and_grads(model, batch, follow_autocast=False)
    kept, kept_grads = _bf16_loss_and_grads(model, batch, follow_autocast=True)
    torch.testing.assert_close(kept, cast)
    for mine, reference in zip(kept_grads, cast_grads, strict=True):
        torch.testing.assert_close(mine, reference, rtol=2e-2, atol=1e-5)


def test_the_bf16_loss_stays_within_one_percent_of_fp32_on_the_same_batch(tiny_model, tiny_tokenizer):
    """The tolerance the CPU path's bf16 is held to (the 135M model's own figure is in benchmarks/results)."""
    add_functionary_tokens(tiny_tokenizer, tiny_model)
    dataset, _ = build_sft_dataset(tiny_tokenizer, [ROW, {**ROW, "messages": ROW["messages"][:2]}], None)
    batch = AssistantOnlyCollator(tiny_tokenizer.pad_token_id)([dataset[0], dataset[1]])
    with torch.no_grad():
        fp32, _ = assistant_only_loss(tiny_model, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16, _ = assistant_only_loss(tiny_model.to(torch.bfloat16), batch)
    assert abs(bf16.item() - fp32.item()) / fp32.item() < 0.01
