"""DiaToolDPOTrainer: equal to TRL's DPO where it should be, trains where it should, fails loudly otherwise."""

import contextlib
import copy
import importlib
import math
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from trl import DPOConfig, DPOTrainer, TrlParser
from trl.trainer import utils as trl_utils

from diatool_utils.collator import (
    SKIP_NO_TURN,
    SKIP_PROMPT_MISMATCH,
    DataCollatorForDiaToolPreference,
    tokenize_pair,
)
from diatool_utils.loss import diatool_dpo_loss, trajectory_reward
from diatool_utils.templating import add_functionary_tokens, render_conversation
from diatool_utils.trainer import (
    DiaToolDPOConfig,
    DiaToolDPOTrainer,
    check_trl_version,
    scored_positions_only,
)

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]


def call(city: str, call_id: str = "call_0") -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": f'{{"city": "{city}"}}'}}]}


def say(text: str) -> dict:
    return {"role": "assistant", "content": text}


def tool_result(text: str, call_id: str = "call_0") -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": "get_weather", "content": text}


def single_turn_pairs() -> list[dict]:
    """One assistant turn on each side: the case where DiaTool-DPO must equal standard DPO."""
    ask = [{"role": "user", "content": "What's the weather like?"}]
    given = [{"role": "user", "content": "Weather in Seoul?"}]
    return [
        {"id": "slot", "tools": TOOLS, "prompt": ask, "chosen": [say("Which city?")], "rejected": [call("Paris")]},
        {"id": "call", "tools": TOOLS, "prompt": given, "chosen": [call("Seoul")],
         "rejected": [say("Which city do you mean, exactly?")]},
        {"id": "decline", "tools": TOOLS, "prompt": [{"role": "user", "content": "Book me a taxi."}],
         "chosen": [say("Sorry, I can't book taxis.")], "rejected": [call("Taxi")]},
    ]


def multi_turn_pairs() -> list[dict]:
    """Table-1 shapes: slot filling (chosen 3 turns) against a hallucinated call (2 turns), and the reverse."""
    ask = [{"role": "user", "content": "What's the weather like?"}]
    given = [{"role": "user", "content": "Weather in Seoul?"}]
    return [
        {"id": "row5", "tools": TOOLS, "prompt": ask,
         "chosen": [say("Which city?"), {"role": "user", "content": "Seoul"}, call("Seoul"),
                    tool_result("sunny"), say("It is sunny in Seoul.")],
         "rejected": [call("Paris"), tool_result("rain"), say("It rains in Paris.")]},
        {"id": "row1", "tools": TOOLS, "prompt": given,
         "chosen": [call("Seoul"), tool_result("sunny"), say("Sunny in Seoul.")],
         "rejected": [say("Which city?"), {"role": "user", "content": "Seoul"}, call("Seoul"),
                      tool_result("sunny"), say("Sunny in Seoul.")]},
        {"id": "row9", "tools": TOOLS, "prompt": [{"role": "user", "content": "Book me a taxi."}],
         "chosen": [say("Sorry, I can't book taxis.")], "rejected": [call("Taxi")]},
        {"id": "row4", "tools": TOOLS, "prompt": [{"role": "user", "content": "Is it cold in Oslo?"}],
         "chosen": [call("Oslo"), tool_result("-3C"), say("Yes, -3C in Oslo.")],
         "rejected": [say("I can't check the weather.")]},
    ]


def make_args(tmp_path, **overrides) -> DiaToolDPOConfig:
    settings = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=1, report_to=[],
                    bf16=False, activation_checkpointing=False, save_strategy="no", disable_tqdm=True,
                    logging_steps=1, seed=0, dataloader_pin_memory=False)
    settings.update(overrides)
    return DiaToolDPOConfig(**settings)


@pytest.fixture
def functionary_model(tiny_model, tiny_tokenizer):
    add_functionary_tokens(tiny_tokenizer, tiny_model)
    return tiny_model, tiny_tokenizer


def first_batch(trainer, rows=None):
    dataset = trainer.train_dataset
    examples = [dataset[i] for i in range(len(dataset) if rows is None else rows)]
    return trainer._prepare_inputs(trainer.data_collator(examples))


# ---------------------------------------------------------------------------------------------
# Equivalence with TRL's DPOTrainer
# ---------------------------------------------------------------------------------------------

def trl_rows(pairs: list[dict]) -> list[dict]:
    """The same pairs as TRL prompt/completion text whose scored tokens are exactly our assistant tokens.

    Our loss scores a turn from the recipient through <|stop|>. TRL scores every token after the
    prompt and appends EOS to a completion that does not end with it. So: the prompt ends with the
    generation prompt "<|from|>assistant\\n<|recipient|>", the completion is the turn up to <|stop|>
    without the "\\n" the template writes after it, and the TRL tokenizer's eos_token is <|stop|>,
    so TRL finds the completion already terminated and adds nothing.
    """
    rows = []
    for pair in pairs:
        prompt = render_conversation(pair["prompt"], pair["tools"], add_generation_prompt=True)
        row = {"prompt": prompt}
        for side in ("chosen", "rejected"):
            full = render_conversation(pair["prompt"] + pair[side], pair["tools"])
            assert full.startswith(prompt) and full.endswith("<|stop|>\n")
            row[side] = full[len(prompt):-1]
        rows.append(row)
    return rows


def perturbed(model, scale: float = 0.05, seed: int = 0):
    """A copy of ``model`` with seeded Gaussian noise on every weight: a policy that differs from its reference."""
    policy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return policy


def test_single_turn_without_margin_equals_trl_dpo(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    pairs = single_turn_pairs()
    policy = perturbed(model)  # policy == reference would give ln 2 for any implementation
    ours = DiaToolDPOTrainer(copy.deepcopy(policy), ref_model=copy.deepcopy(model),
                             args=make_args(tmp_path, beta=0.7, margin=0.0, gamma=0.3, per_device_train_batch_size=3),
                             train_dataset=pairs, processing_class=tokenizer)
    trl_tokenizer = copy.deepcopy(tokenizer)
    trl_tokenizer.eos_token = "<|stop|>"
    trl_args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=0.7, report_to=[], bf16=False,
                         activation_checkpointing=False, disable_tqdm=True, per_device_train_batch_size=3,
                         dataloader_pin_memory=False)
    theirs = DPOTrainer(copy.deepcopy(policy), ref_model=copy.deepcopy(model), args=trl_args,
                        train_dataset=Dataset.from_list(trl_rows(pairs)), processing_class=trl_tokenizer)

    ours_batch, theirs_batch = first_batch(ours), first_batch(theirs)
    # Same sequences, and the tokens TRL scores are exactly our assistant-turn tokens.
    for row in range(2 * len(pairs)):
        ours_ids = ours_batch["input_ids"][row][ours_batch["attention_mask"][row].bool()]
        theirs_ids = theirs_batch["input_ids"][row][theirs_batch["attention_mask"][row].bool()]
        ours_scored = ours_batch["input_ids"][row][ours_batch["turn_index"][row] >= 0]
        theirs_scored = theirs_batch["input_ids"][row][theirs_batch["completion_mask"][row].bool()]
        assert ours_ids[:len(theirs_ids)].tolist() == theirs_ids.tolist()
        assert ours_scored.tolist() == theirs_scored.tolist()

    with torch.no_grad():
        ours_loss = ours.compute_loss(ours.model, ours_batch)
        theirs_loss = theirs.compute_loss(theirs.model, theirs_batch)
    assert abs(theirs_loss.item() - math.log(2)) > 0.01  # the policy's log-ratios are not all zero
    torch.testing.assert_close(ours_loss, theirs_loss, rtol=1e-5, atol=1e-6)
    ours_metrics, theirs_metrics = ({key: values[-1] for key, values in trainer._metrics["train"].items()}
                                    for trainer in (ours, theirs))
    for key in ("rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        assert ours_metrics[key] == pytest.approx(theirs_metrics[key], rel=1e-5, abs=1e-6), key
    # the margin is a difference of two close rewards: its error is theirs, in absolute terms
    scale = abs(theirs_metrics["rewards/chosen"]) + abs(theirs_metrics["rewards/rejected"])
    assert ours_metrics["rewards/margins"] == pytest.approx(theirs_metrics["rewards/margins"], abs=1e-5 * scale)

    # With a margin the loss is DPO's with the logit shifted by beta * margin: larger than DPO's.
    ours.args.margin = 0.5
    with torch.no_grad():
        assert ours.compute_loss(ours.model, ours_batch) > theirs_loss


# ---------------------------------------------------------------------------------------------
# Training behaviour
# ---------------------------------------------------------------------------------------------

def trajectory_logratio_gap(trainer, batch) -> float:
    """Mean R(chosen) - R(rejected), with log-probs from the plain (unfused) forward: an independent check."""
    def turn_logps(model):
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        token_logps = logits.float().log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
        turn_index = batch["turn_index"][:, 1:]
        width = int(batch["num_turns"].max())
        one_hot = F.one_hot(turn_index.clamp(min=0), width) * (turn_index >= 0)[..., None]
        return (token_logps[..., None] * one_hot).sum(1)  # [2B, T]

    logratios = turn_logps(trainer.model) - turn_logps(trainer.ref_model)
    rewards = trajectory_reward(logratios, batch["num_turns"], trainer.args.gamma)
    chosen, rejected = rewards.chunk(2)
    return (chosen - rejected).mean().item()


def test_one_step_pushes_chosen_up_and_rejected_down(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    pairs = multi_turn_pairs()
    args = make_args(tmp_path, per_device_train_batch_size=len(pairs), learning_rate=1e-2, optim="sgd",
                     lr_scheduler_type="constant", margin=0.0)
    trainer = DiaToolDPOTrainer(model, args=args, train_dataset=pairs, processing_class=tokenizer)
    batch = first_batch(trainer)
    assert trajectory_logratio_gap(trainer, batch) == pytest.approx(0.0, abs=1e-6)  # policy == reference
    trainer.train()
    assert trajectory_logratio_gap(trainer, batch) > 1e-4


def test_loss_falls_and_reward_accuracy_rises_on_a_few_pairs(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    pairs = multi_turn_pairs()[1:3]  # 2 vs 3 turns, and 1 vs 1
    args = make_args(tmp_path, per_device_train_batch_size=2, max_steps=12, learning_rate=3e-2, beta=0.5)
    trainer = DiaToolDPOTrainer(model, args=args, train_dataset=pairs, processing_class=tokenizer)
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 12
    first, last = logs[:3], logs[-3:]
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    assert mean(last, "loss") < 0.5 * mean(first, "loss")
    assert mean(last, "rewards/accuracies") > mean(first, "rewards/accuracies")
    assert mean(last, "rewards/accuracies") == 1.0
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "turns/chosen", "turns/rejected"):
        assert key in logs[0]


@pytest.mark.parametrize("decision_weight", [1.0, 5.0])
def test_precomputed_reference_gives_the_same_loss(functionary_model, tmp_path, decision_weight):
    model, tokenizer = functionary_model
    pairs = multi_turn_pairs()
    losses = []
    for precompute in (False, True):
        args = make_args(tmp_path / str(precompute), per_device_train_batch_size=4, precompute_ref_log_probs=precompute,
                         decision_weight=decision_weight)
        trainer = DiaToolDPOTrainer(copy.deepcopy(model), args=args, train_dataset=pairs, processing_class=tokenizer)
        batch = first_batch(trainer)
        if precompute:
            assert trainer.ref_model is None and batch["ref_chosen_logps"].shape == (4, 3)
        with torch.no_grad():
            losses.append(trainer.compute_loss(trainer.model, batch))
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)


def test_decision_weight_counts_each_turns_first_token_w_times(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    pairs, w = multi_turn_pairs(), 6.0
    trainers = {weight: DiaToolDPOTrainer(copy.deepcopy(model), train_dataset=pairs, processing_class=tokenizer,
                                          args=make_args(tmp_path / str(weight), per_device_train_batch_size=4,
                                                         decision_weight=weight))
                for weight in (1.0, w)}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move both policies away from their (unchanged) references, alike
        noise = [torch.randn(p.shape, generator=generator) * 0.05 for p in trainers[w].model.parameters()]
        for trainer in trainers.values():
            for parameter, delta in zip(trainer.model.parameters(), noise, strict=True):
                parameter.add_(delta.to(parameter.device))
    batch = first_batch(trainers[w])

    def token_logps(net):  # the plain (unfused) forward: an independent path to the log-probs
        with torch.no_grad():
            logits = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        return logits.float().log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)

    turn_index = batch["turn_index"][:, 1:]
    width = int(batch["num_turns"].max())
    token_lr = token_logps(trainers[w].model) - token_logps(trainers[w].ref_model)
    lr = torch.zeros(turn_index.shape[0], width)
    for b, i in (turn_index >= 0).nonzero().tolist():  # by hand: the first token of each turn counts w times
        first = i == 0 or turn_index[b, i - 1] != turn_index[b, i]
        lr[b, turn_index[b, i]] += (w if first else 1.0) * token_lr[b, i]
    chosen_turns, rejected_turns = batch["num_turns"].chunk(2)
    args = trainers[w].args
    expected, _, _ = diatool_dpo_loss(*lr.chunk(2), chosen_turns, rejected_turns, beta=args.beta, gamma=args.gamma,
                                      margin=args.margin)
    with torch.no_grad():
        weighted = trainers[w].compute_loss(trainers[w].model, batch)
        plain = trainers[1.0].compute_loss(trainers[1.0].model, batch)
    torch.testing.assert_close(weighted, expected.mean(), rtol=1e-4, atol=1e-5)
    assert abs(weighted.item() - plain.item()) > 1e-3  # the weight changed the loss


def test_evaluate_reports_the_loss_and_rewards_of_held_out_pairs(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    trainer = DiaToolDPOTrainer(model, args=make_args(tmp_path, per_device_eval_batch_size=2),
                                train_dataset=single_turn_pairs(), eval_dataset=multi_turn_pairs(),
                                processing_class=tokenizer)
    metrics = trainer.evaluate()
    # Policy == reference before training: every reward is 0 and the loss is -log sigmoid(-beta * margin).
    expected = -F.logsigmoid(torch.tensor(-trainer.args.beta * trainer.args.margin)).item()
    assert metrics["eval_loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["eval_rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["eval_turns/chosen"] == pytest.approx(2.0)  # (3 + 2 + 1 + 2) / 4
    assert trainer.pair_reports["eval"].kept == 4
    held_out = trainer.evaluate(eval_dataset=single_turn_pairs())  # a list passed later is prepared too
    assert held_out["eval_turns/chosen"] == pytest.approx(1.0)


def test_reference_is_a_frozen_copy_with_the_functionary_rows(tiny_model, tiny_tokenizer, tmp_path):
    rows_before = tiny_model.get_input_embeddings().weight.shape[0]
    trainer = DiaToolDPOTrainer(tiny_model, args=make_args(tmp_path), train_dataset=single_turn_pairs(),
                                processing_class=tiny_tokenizer)
    assert len(tiny_tokenizer) == rows_before + 4  # the trainer added the four markers
    assert trainer.ref_model is not trainer.model
    for (name, p), (_, r) in zip(trainer.model.named_parameters(), trainer.ref_model.named_parameters(), strict=True):
        assert torch.equal(p, r), name
    assert trainer.ref_model.get_input_embeddings().weight.shape[0] == len(tiny_tokenizer)


def test_a_model_name_loads_the_model_and_its_tokenizer(tmp_path):
    trainer = DiaToolDPOTrainer("tiny-random", args=make_args(tmp_path), train_dataset=single_turn_pairs())
    assert trainer.processing_class.convert_tokens_to_ids("<|stop|>") < trainer.model.get_input_embeddings().num_embeddings
    assert trainer.ref_model is not None and trainer.pair_reports["train"].kept == 3


def test_lora_without_ref_model_uses_the_disabled_adapter_as_reference(tiny_model, tiny_tokenizer, sft_markers,
                                                                       tmp_path):
    from peft import LoraConfig

    model, tokenizer = sft_markers(tiny_model, tiny_tokenizer)
    pairs = multi_turn_pairs()
    args = make_args(tmp_path, max_steps=1, per_device_train_batch_size=4, learning_rate=5e-2)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    base = copy.deepcopy(model)
    trainer = DiaToolDPOTrainer(model, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=lora)
    assert trainer.ref_model is None
    trainer.train()
    batch = first_batch(trainer)
    ref_chosen, ref_rejected = trainer.compute_ref_log_probs(trainer.model, batch)
    with torch.no_grad():
        base = base.to(batch["input_ids"].device)
        logits = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    token_logps = logits.log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    turn_index = batch["turn_index"][:, 1:]
    expected = torch.stack([(token_logps * (turn_index == t)).sum(1) for t in range(trainer._ref_turns_width)], 1)
    torch.testing.assert_close(torch.cat([ref_chosen, ref_rejected]), expected, rtol=1e-4, atol=1e-4)
    assert trainer.state.log_history[-1]["train_loss"] > 0


def test_trainable_token_lora_on_a_tied_head_is_refused_with_advice(tiny_model, tiny_tokenizer, sft_markers, tmp_path):
    from peft import LoraConfig

    model, tokenizer = sft_markers(tiny_model, tiny_tokenizer)
    ids = tokenizer.convert_tokens_to_ids(["<|from|>", "<|recipient|>", "<|content|>", "<|stop|>"])
    lora = LoraConfig(r=4, target_modules=["q_proj"], trainable_token_indices={"embed_tokens": ids},
                      task_type="CAUSAL_LM")
    with pytest.raises(ValueError, match="merge_and_unload"):
        DiaToolDPOTrainer(model, args=make_args(tmp_path), train_dataset=single_turn_pairs(),
                          processing_class=tokenizer, peft_config=lora)


def test_lora_on_markers_never_trained_warns_and_trained_markers_do_not(functionary_model, tmp_path):
    """A LoRA adapter can't move the markers' output rows: DPO straight on a base model would tie them forever."""
    from peft import LoraConfig

    model, tokenizer = functionary_model
    lora = LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")
    with pytest.warns(UserWarning, match="Run SFT first"):
        DiaToolDPOTrainer(copy.deepcopy(model), args=make_args(tmp_path), train_dataset=single_turn_pairs(),
                          processing_class=tokenizer, peft_config=lora)
    trained = copy.deepcopy(model)
    with torch.no_grad():  # what SFT leaves: four rows of their own
        ids = tokenizer.convert_tokens_to_ids(["<|from|>", "<|recipient|>", "<|content|>", "<|stop|>"])
        trained.get_output_embeddings().weight[ids] += torch.randn(4, trained.config.hidden_size) * 0.01
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*output rows of the Functionary tokens.*")
        DiaToolDPOTrainer(trained, args=make_args(tmp_path), train_dataset=single_turn_pairs(),
                          processing_class=tokenizer, peft_config=lora)


# ---------------------------------------------------------------------------------------------
# Bad input: counted skips or clear errors
# ---------------------------------------------------------------------------------------------

def test_pairs_cut_to_nothing_or_with_different_prompts_are_counted_and_skipped(functionary_model, tmp_path, caplog):
    model, tokenizer = functionary_model
    pairs = single_turn_pairs()
    long_prompt = [{"role": "user", "content": "Weather? " + "Please tell me. " * 60}]
    pairs.append({"id": "too-long", "tools": TOOLS, "prompt": long_prompt,
                  "chosen": [say("Which city?")], "rejected": [call("Paris")]})
    # TRL's implicit-prompt format: no "prompt", whole conversations that must share their opening.
    pairs.append({"id": "mismatch", "tools": TOOLS,
                  "chosen": [{"role": "user", "content": "Weather in Seoul?"}, call("Seoul")],
                  "rejected": [{"role": "user", "content": "Weather in Oslo?"}, call("Oslo")]})
    with caplog.at_level("WARNING"):
        trainer = DiaToolDPOTrainer(model, args=make_args(tmp_path, max_length=200), train_dataset=pairs,
                                    processing_class=tokenizer)
    report = trainer.pair_reports["train"]
    assert report.kept == 3 and len(trainer.train_dataset) == 3
    assert report.skipped == {SKIP_NO_TURN: 1, SKIP_PROMPT_MISMATCH: 1}
    assert report.first_ids == {SKIP_NO_TURN: ["too-long"], SKIP_PROMPT_MISMATCH: ["mismatch"]}
    assert "skipped 2" in caplog.text and "too-long" in caplog.text

    with pytest.raises(ValueError, match="skipped 2.*strict_pairs"):
        DiaToolDPOTrainer(copy.deepcopy(model), args=make_args(tmp_path, max_length=200, strict_pairs=True),
                          train_dataset=pairs, processing_class=tokenizer)


def test_the_twin_of_a_skipped_pair_is_skipped_too_and_twins_stay_in_order(functionary_model, tmp_path, caplog):
    from torch.utils.data import SequentialSampler

    model, tokenizer = functionary_model
    pairs = [{**pair, "twin": twin} for pair, twin in zip(single_turn_pairs(), ["t1", "t1", "t2"], strict=True)]
    long_prompt = [{"role": "user", "content": "Weather? " + "Please tell me. " * 60}]
    pairs.append({"id": "too-long", "twin": "t2", "tools": TOOLS, "prompt": long_prompt,
                  "chosen": [say("Which city?")], "rejected": [call("Paris")]})
    with caplog.at_level("WARNING"):
        trainer = DiaToolDPOTrainer(model, args=make_args(tmp_path, max_length=200,
                                                          train_sampling_strategy="sequential"),
                                    train_dataset=pairs, processing_class=tokenizer)
    assert trainer.train_dataset["id"] == ["slot", "call"]  # "decline" went with its twin "too-long"
    assert trainer.pair_reports["train"].kept == 3 and "also skipping 1 usable pairs" in caplog.text
    assert isinstance(trainer._get_train_sampler(), SequentialSampler)

    caplog.clear()
    with caplog.at_level("WARNING"):
        DiaToolDPOTrainer(copy.deepcopy(model), args=make_args(tmp_path, max_length=200), train_dataset=pairs,
                          processing_class=tokenizer)
    assert "twins will land in different batches" in caplog.text


def test_truncated_turns_are_reported_but_the_pair_is_kept(functionary_model):
    _, tokenizer = functionary_model
    pair = multi_turn_pairs()[0]
    full = tokenize_pair(pair, 0, tokenizer=tokenizer, max_length=None)
    cut = tokenize_pair(pair, 0, tokenizer=tokenizer, max_length=len(full["chosen_input_ids"]) - 3)
    assert (full["chosen_turns"], cut["chosen_turns"], cut["truncated_turns"]) == (3, 2, 1)
    assert cut["skip_reason"] == ""


def test_earlier_assistant_turns_in_the_prompt_are_context_not_scored(functionary_model):
    _, tokenizer = functionary_model
    pair = multi_turn_pairs()[0]  # row 5: chosen has 3 assistant turns, rejected 2
    history = [{"role": "user", "content": "Book me a taxi."}, say("Sorry, I can't book taxis.")]
    later = {**pair, "prompt": history + pair["prompt"]}
    alone, after = (tokenize_pair(p, 0, tokenizer=tokenizer, max_length=None) for p in (pair, later))
    for side in ("chosen", "rejected"):
        assert after[f"{side}_turns"] == alone[f"{side}_turns"]
        scored = [t for t in after[f"{side}_turn_index"] if t >= 0]
        assert scored == [t for t in alone[f"{side}_turn_index"] if t >= 0]  # same turns, same tokens
    start = next(i for i, t in enumerate(after["chosen_turn_index"]) if t >= 0)
    assert after["chosen_input_ids"][:start] == after["rejected_input_ids"][:start]
    assert "can't book taxis" in tokenizer.decode(after["chosen_input_ids"][:start])
    assert after["skip_reason"] == ""


@pytest.mark.parametrize("broken, message", [
    (lambda p: p.update(chosen=[{"role": "user", "content": "hi"}]), "'chosen' has no assistant message"),
    (lambda p: p.update(rejected="not messages"), "'rejected' must be a list of messages"),
    (lambda p: p.update(chosen=[call("Seoul")] + [say("and?")]), "tool result"),
])
def test_malformed_pairs_raise_naming_the_pair(functionary_model, tmp_path, broken, message):
    model, tokenizer = functionary_model
    pairs = single_turn_pairs()
    broken(pairs[1])
    with pytest.raises(ValueError, match=rf"pair 1 \(id 'call'\).*{message}"):
        DiaToolDPOTrainer(model, args=make_args(tmp_path), train_dataset=pairs, processing_class=tokenizer)


def test_a_dataset_with_no_usable_pair_is_an_error(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    with pytest.raises(ValueError, match="no usable pairs"):
        DiaToolDPOTrainer(model, args=make_args(tmp_path, max_length=20), train_dataset=single_turn_pairs(),
                          processing_class=tokenizer)


def test_a_datasets_dataset_of_structured_rows_gives_the_same_tokens_as_a_list(functionary_model):
    _, tokenizer = functionary_model
    pairs = multi_turn_pairs()
    arrow_rows = Dataset.from_list(pairs)  # Arrow unifies message structs, adding None keys
    for index, pair in enumerate(pairs):
        expected = tokenize_pair(pair, index, tokenizer=tokenizer, max_length=None)
        assert tokenize_pair(arrow_rows[index], index, tokenizer=tokenizer, max_length=None) == expected


def test_collator_pads_turn_index_with_minus_one_and_counts_turns():
    collator = DataCollatorForDiaToolPreference(pad_token_id=0)
    batch = collator([
        {"chosen_input_ids": [5, 6, 7, 8], "chosen_turn_index": [-1, 0, -1, 1],
         "rejected_input_ids": [5, 9], "rejected_turn_index": [-1, 0],
         "ref_chosen_logps": [-1.0, -2.0], "ref_rejected_logps": [-3.0, 0.0]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [5, 9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["turn_index"].tolist() == [[-1, 0, -1, 1], [-1, 0, -1, -1]]
    assert batch["num_turns"].tolist() == [2, 1]
    assert batch["ref_chosen_logps"].tolist() == [[-1.0, -2.0]]


# ---------------------------------------------------------------------------------------------
# Config, CLI and the TRL version guard
# ---------------------------------------------------------------------------------------------

def test_config_fields_parse_from_the_command_line(tmp_path):
    parser = TrlParser([DiaToolDPOConfig])
    (args,) = parser.parse_args_and_config(args=[
        "--output_dir", str(tmp_path), "--bf16", "false", "--gamma", "0.7", "--margin", "2.0", "--use_psi", "false",
        "--use_margin", "False", "--strict_pairs", "true", "--beta", "0.5", "--decision_weight", "4",
        "--loss_type", "sigmoid", "sft", "--loss_weights", "1.0", "0.3"])
    assert (args.gamma, args.margin, args.use_phi, args.use_psi, args.use_margin, args.strict_pairs) == \
        (0.7, 2.0, True, False, False, True)
    assert (args.beta, args.loss_type, args.loss_weights, args.decision_weight) == \
        (0.5, ["sigmoid", "sft"], [1.0, 0.3], 4.0)
    help_text = parser.format_help()
    assert "--gamma" in help_text and "Reward scaling factor" in help_text and "--use_phi" in help_text
    defaults = DiaToolDPOConfig(output_dir=str(tmp_path), bf16=False)
    assert (defaults.gamma, defaults.margin, defaults.use_phi, defaults.use_psi, defaults.use_margin,
            defaults.decision_weight) == (0.5, 0.5, True, True, True, 1.0)


@pytest.mark.parametrize("overrides, message", [
    ({"gamma": 1.5}, "gamma"),
    ({"loss_type": ["ipo"]}, "loss_type"),
    ({"ld_alpha": 0.5}, "ld_alpha"),
    ({"use_weighting": True}, "use_weighting"),
    ({"decision_weight": 0.0}, "decision_weight must be positive"),
])
def test_unsupported_settings_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        DiaToolDPOConfig(output_dir=str(tmp_path), bf16=False, **overrides)


def test_nll_on_chosen_adds_the_mean_chosen_token_nll(functionary_model, tmp_path):
    model, tokenizer = functionary_model
    pairs = single_turn_pairs()
    plain = DiaToolDPOTrainer(copy.deepcopy(model), args=make_args(tmp_path, per_device_train_batch_size=3),
                              train_dataset=pairs, processing_class=tokenizer)
    rpo = DiaToolDPOTrainer(copy.deepcopy(model), train_dataset=pairs, processing_class=tokenizer,
                            args=make_args(tmp_path, per_device_train_batch_size=3, loss_type=["sigmoid", "sft"],
                                           loss_weights=[1.0, 0.5]))
    batch = first_batch(plain)
    with torch.no_grad():
        model = model.to(batch["input_ids"].device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:3, :-1]
        token_logps = logits.log_softmax(-1).gather(-1, batch["input_ids"][:3, 1:, None]).squeeze(-1)
        nll = -token_logps[batch["turn_index"][:3, 1:] >= 0].mean()
        torch.testing.assert_close(rpo.compute_loss(rpo.model, batch),
                                   plain.compute_loss(plain.model, batch) + 0.5 * nll, rtol=1e-5, atol=1e-5)


def test_other_trl_versions_are_refused_with_the_pip_command(monkeypatch):
    with pytest.raises(ImportError) as error:
        check_trl_version("1.17.0")
    assert "trl==1.17.0 is installed" in str(error.value) and "pip install trl==1.16.0" in str(error.value)
    check_trl_version("1.16.0")

    import trl

    monkeypatch.setattr(trl, "__version__", "0.29.0")
    monkeypatch.delitem(sys.modules, "diatool_utils.trainer")
    with pytest.raises(ImportError, match="trl==0.29.0 is installed"):
        importlib.import_module("diatool_utils.trainer")


# ---------------------------------------------------------------------------------------------
# Replay: SFT conversations trained beside the pairs
# ---------------------------------------------------------------------------------------------

def replay_rows(pairs: list[dict]) -> list[dict]:
    """Each pair's chosen trajectory as one SFT conversation."""
    return [{"id": pair["id"], "tools": pair["tools"], "messages": pair["prompt"] + pair["chosen"]} for pair in pairs]


def test_replay_adds_lambda_times_the_weighted_sft_loss_of_a_replay_batch(functionary_model, tmp_path):
    from diatool_utils.sft import build_sft_dataset

    model, tokenizer = functionary_model
    pairs = single_turn_pairs()
    replay, _ = build_sft_dataset(tokenizer, replay_rows(multi_turn_pairs())[:3], 512, decision_weight=4.0)
    plain = DiaToolDPOTrainer(copy.deepcopy(model), args=make_args(tmp_path, per_device_train_batch_size=3),
                              train_dataset=pairs, processing_class=tokenizer)
    # a replay batch of the whole replay set: its loss does not depend on the shuffled order
    replaying = DiaToolDPOTrainer(copy.deepcopy(model), train_dataset=pairs, processing_class=tokenizer,
                                  args=make_args(tmp_path, per_device_train_batch_size=3, replay_weight=0.7,
                                                 replay_batch_size=3),
                                  replay_dataset=replay)
    batch = first_batch(plain)
    # the SFT loss by hand: weighted mean cross-entropy of the assistant tokens, each turn's first token x4
    ids = [replay[i]["input_ids"] for i in range(3)]
    width = max(map(len, ids))
    with torch.no_grad():
        sft_loss, weight_sum = 0.0, 0.0
        for row in range(3):
            input_ids = torch.tensor([replay[row]["input_ids"]])
            logits = model(input_ids=input_ids).logits[0, :-1]
            nll = -logits.log_softmax(-1).gather(-1, input_ids[0, 1:, None]).squeeze(-1)
            weights = torch.tensor(replay[row]["loss_weights"][1:])
            sft_loss, weight_sum = sft_loss + (weights * nll).sum(), weight_sum + weights.sum()
        assert width > min(map(len, ids))  # the replay batch is padded
        plain.model.train(), replaying.model.train()
        torch.testing.assert_close(replaying.compute_loss(replaying.model, batch),
                                   plain.compute_loss(plain.model, batch) + 0.7 * sft_loss / weight_sum,
                                   rtol=1e-5, atol=1e-5)
        # evaluation leaves the replay out
        plain.model.eval(), replaying.model.eval()
        torch.testing.assert_close(replaying.compute_loss(replaying.model, batch),
                                   plain.compute_loss(plain.model, batch))
    assert replaying._metrics["train"]["replay/sft_loss"]


def test_replay_batches_cycle_through_the_whole_replay_set(functionary_model, tmp_path):
    from diatool_utils.sft import build_sft_dataset

    model, tokenizer = functionary_model
    replay, _ = build_sft_dataset(tokenizer, replay_rows(multi_turn_pairs())[:3], 512)
    trainer = DiaToolDPOTrainer(model, train_dataset=single_turn_pairs(), processing_class=tokenizer,
                                args=make_args(tmp_path, replay_weight=1.0, replay_batch_size=2),
                                replay_dataset=replay)
    firsts = {tuple(ids) for ids in (replay[i]["input_ids"][:40] for i in range(3))}
    drawn = [trainer._next_replay_batch() for _ in range(4)]  # batches of 2, 1, 2, 1: two passes
    assert [len(batch["input_ids"]) for batch in drawn] == [2, 1, 2, 1]
    for one_pass in (drawn[:2], drawn[2:]):
        rows = {tuple(ids[:40].tolist()) for batch in one_pass for ids in batch["input_ids"]}
        assert rows == firsts


def test_replay_needs_both_its_data_and_a_weight(functionary_model, tmp_path):
    from diatool_utils.sft import build_sft_dataset

    model, tokenizer = functionary_model
    replay, _ = build_sft_dataset(tokenizer, replay_rows(multi_turn_pairs())[:2], 512)
    pairs = single_turn_pairs()
    with pytest.raises(ValueError, match="replay needs both a replay_dataset and args.replay_weight > 0"):
        DiaToolDPOTrainer(model, args=make_args(tmp_path), train_dataset=pairs, processing_class=tokenizer,
                          replay_dataset=replay)
    with pytest.raises(ValueError, match="replay_weight=1.0 and no replay_dataset"):
        DiaToolDPOTrainer(model, args=make_args(tmp_path, replay_weight=1.0), train_dataset=pairs,
                          processing_class=tokenizer)
    with pytest.raises(ValueError, match="build it with sft.build_sft_dataset"):
        DiaToolDPOTrainer(model, args=make_args(tmp_path, replay_weight=1.0), train_dataset=pairs,
                          processing_class=tokenizer, replay_dataset=Dataset.from_list([{"text": "hi"}]))
    with pytest.raises(ValueError, match="replay_weight must be >= 0"):
        make_args(tmp_path, replay_weight=-1.0)


def test_scoring_only_the_scored_positions_changes_no_value_or_gradient(tiny_model):
    input_ids = torch.randint(0, 1000, (2, 12))
    labels = input_ids.masked_fill(torch.rand(2, 12) < 0.7, -100)
    trl_utils.add_fused_lm_head(tiny_model, outputs=("log_probs", "entropy", "is_top1"))
    results = []
    for compact in (False, True):
        tiny_model.zero_grad()
        with scored_positions_only() if compact else contextlib.nullcontext():
            outputs = tiny_model(input_ids=input_ids, labels=labels, fused_lm_head=True, use_cache=False)
        outputs.log_probs.sum().backward()
        grads = [p.grad.clone() for p in tiny_model.parameters() if p.grad is not None]
        results.append((outputs.log_probs.detach(), outputs.entropy.detach(), outputs.is_top1, grads))
    (plain_logps, plain_entropy, plain_top1, plain_grads), (logps, entropy, top1, grads) = results
    scored = labels[:, 1:] != -100
    torch.testing.assert_close(logps, plain_logps, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(entropy[scored], plain_entropy[scored], rtol=1e-5, atol=1e-6)
    assert torch.equal(top1[scored], plain_top1[scored]) and (logps[~scored] == 0).all()
    for grad, plain in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(grad, plain, rtol=1e-4, atol=1e-6)
    assert not trl_utils._use_triton(torch.device("cpu")), "the switch is put back"
