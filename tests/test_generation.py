"""Writing replies by dialogue: each history read once, the dialogue's turns side by side, the same replies."""

from collections import Counter
from pathlib import Path

import pytest
import torch

from diatool_utils import templating
from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import build_prompt, evaluate
from diatool_utils.generation import (
    generate_replies,
    generate_replies_by_dialog,
    generate_replies_sharing_prefix,
    prefix_chains,
)

SMALL = Path(__file__).parent / "data" / "dialog_small.jsonl"
EVAL = Path(__file__).parents[1] / "data" / "eval_dialog.jsonl"


@pytest.fixture
def model_and_prompts(tiny_model, tiny_tokenizer):
    templating.add_functionary_tokens(tiny_tokenizer, tiny_model)
    prompts = [build_prompt(case) for case in load_dialog_benchmark(EVAL)[:14]]  # 3 dialogues and a part
    return tiny_model, tiny_tokenizer, prompts


def test_prefix_chains_group_consecutive_prompts_that_extend_each_other():
    ids = [[1, 2], [1, 2, 3], [1, 2, 3, 4], [9], [9, 8], [1, 2], [5, 6], [5]]
    assert prefix_chains(ids) == [[0, 1, 2], [3, 4], [5], [6], [7]]


def test_the_benchmarks_turns_form_one_chain_per_dialogue(tiny_tokenizer):
    cases = load_dialog_benchmark(EVAL)
    templating.add_functionary_tokens(tiny_tokenizer)
    ids = [tiny_tokenizer(build_prompt(case), add_special_tokens=False)["input_ids"] for case in cases]
    chains = prefix_chains(ids)
    assert len(chains) == len({case.dialog_num for case in cases})
    assert all(len({cases[i].dialog_num for i in chain}) == 1 for chain in chains)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_replies_by_dialog_equal_those_written_one_prompt_at_a_time(model_and_prompts, batch_size):
    model, tokenizer, prompts = model_and_prompts
    one_by_one = generate_replies(model, tokenizer, prompts, batch_size=1, max_new_tokens=12, show_progress=False)
    by_dialog = generate_replies_by_dialog(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=12,
                                           show_progress=False)
    assert by_dialog == one_by_one


@pytest.mark.parametrize("batch_size", [4, 16])
def test_rows_that_stop_early_leave_the_batch_and_the_others_go_on(model_and_prompts, batch_size):
    model, tokenizer, prompts = model_and_prompts
    with torch.no_grad():  # larger weights: the random model writes varied tokens instead of one token repeated
        for name, weight in model.named_parameters():
            if weight.dim() == 2 and "embed" not in name:
                weight.mul_(20)
    first_seen = {}  # token -> where each reply first writes it
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        written = model.generate(ids, max_new_tokens=20, do_sample=False, pad_token_id=0)[0, ids.size(1):].tolist()
        for token in set(written):
            first_seen.setdefault(token, []).append(written.index(token))
    token = max(first_seen, key=lambda t: (sum(p > 0 for p in first_seen[t]), len(set(first_seen[t]))))
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(token)
    reference = generate_replies_sharing_prefix(model, tokenizer, prompts, max_new_tokens=20, show_progress=False)
    finishes = Counter(reply.finish for reply in reference)
    assert finishes["eos"] >= 3 and finishes["length"] >= 1, finishes  # a batch of 4 shrinks when one row is done
    assert len({reply.num_tokens for reply in reference}) >= 3
    by_dialog = generate_replies_by_dialog(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=20,
                                           show_progress=False)
    assert by_dialog == reference


def test_the_model_is_left_in_the_mode_it_was_in(model_and_prompts):
    model, tokenizer, prompts = model_and_prompts
    model.train()
    generate_replies_by_dialog(model, tokenizer, prompts[:2], max_new_tokens=2, show_progress=False)
    assert model.training


def test_an_empty_prompt_is_refused(model_and_prompts):
    model, tokenizer, _ = model_and_prompts
    with pytest.raises(ValueError, match="empty prompt"):
        generate_replies_by_dialog(model, tokenizer, ["hello", ""], show_progress=False)


def test_evaluate_writes_by_dialog_on_a_cpu_and_records_how(model_and_prompts):
    model, tokenizer, _ = model_and_prompts
    cases = load_dialog_benchmark(SMALL)
    by_dialog = evaluate(model, tokenizer, cases, max_new_tokens=6, show_progress=False)
    batched = evaluate(model, tokenizer, cases, max_new_tokens=6, share_prefix=False, show_progress=False)
    assert by_dialog.timing["share_prefix"] is True and batched.timing["share_prefix"] is False
    assert [r.raw_reply for r in by_dialog.results] == [r.raw_reply for r in batched.results]
