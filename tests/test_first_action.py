"""The first-action diagnostic: P(text reply) at the recipient, and how well it ranks turn types."""

import dataclasses
import math

import pytest
import torch

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import build_prompt
from diatool_utils.first_action import (
    auc,
    first_action_of_checkpoint,
    first_action_stats,
    first_action_table,
    text_probability,
)
from diatool_utils.paths import DATA_DIR


@pytest.fixture(scope="module")
def cases():
    return load_dialog_benchmark(DATA_DIR / "eval_dialog.jsonl")[:5]


def test_text_probability_reads_each_turn_off_its_dialogues_longest_prompt(tiny_model, tiny_tokenizer, cases):
    prompts = [build_prompt(case) for case in cases]
    assert prompts[1].startswith(prompts[0])  # turns of one dialogue share their history: one forward pass
    shared = text_probability(tiny_model, tiny_tokenizer, prompts, batch_size=2)
    text_id = tiny_tokenizer("all", add_special_tokens=False).input_ids[0]
    with torch.no_grad():
        alone = torch.stack([tiny_model(tiny_tokenizer(p, return_tensors="pt", add_special_tokens=False).input_ids)
                             .logits[0, -1].log_softmax(-1)[text_id].exp() for p in prompts])
    torch.testing.assert_close(shared, alone, rtol=1e-4, atol=1e-7)
    reordered = text_probability(tiny_model, tiny_tokenizer, prompts[::-1], batch_size=1)  # no padding at all
    torch.testing.assert_close(reordered, shared.flip(0), rtol=1e-4, atol=1e-7)


def test_a_prompt_that_does_not_end_at_the_recipient_is_refused(tiny_model, tiny_tokenizer, cases):
    with pytest.raises(ValueError, match=r"prompt 1 \(1 in all\) does not end at '<\|recipient\|>'"):
        text_probability(tiny_model, tiny_tokenizer, [build_prompt(cases[0]), "What is the weather"])


def test_a_tool_named_like_the_text_recipient_is_refused(tiny_model, tiny_tokenizer, cases):
    tool = {"type": "function", "function": {"name": "allocate_seat", "description": "Seat a guest.",
                                             "parameters": {"type": "object", "properties": {}}}}
    clash = dataclasses.replace(cases[0], tools=cases[0].tools + [tool])
    with pytest.raises(ValueError, match="tool 'allocate_seat' starts with the token 'all'"):
        first_action_of_checkpoint(tiny_model, tiny_tokenizer, [clash])
    stats = first_action_of_checkpoint(tiny_model, tiny_tokenizer, cases)
    assert set(stats["mean_p_text"]) <= {"call", "completion", "slot", "relevance"}


def test_auc_counts_pairs_ranked_right_and_ties_as_half():
    assert auc(torch.tensor([3.0, 2.0]), torch.tensor([1.0])) == 1.0
    assert auc(torch.tensor([1.0]), torch.tensor([2.0, 3.0])) == 0.0
    assert auc(torch.tensor([2.0, 1.0]), torch.tensor([2.0, 0.0])) == pytest.approx(0.625)  # (0.5 + 1 + 0 + 1) / 4
    assert math.isnan(auc(torch.tensor([]), torch.tensor([1.0])))


def test_stats_separate_a_lean_from_a_ranking():
    kinds = [type("Case", (), {"type_of_output": kind}) for kind in ["call", "call", "slot", "slot", "relevance"]]
    ranked = first_action_stats(kinds, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.05]))
    assert ranked["auc_slot_vs_call"] == 1.0 and ranked["auc_relevance_vs_call"] == 0.0
    assert ranked["mean_p_text"] == {"call": 0.15, "slot": 0.35, "relevance": 0.05}
    # every P(text) raised: the means move, the ranking (AUC) does not
    leaned = first_action_stats(kinds, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.05]) + 0.5)
    assert leaned["auc_slot_vs_call"] == ranked["auc_slot_vs_call"]
    assert leaned["mean_p_text"]["call"] == pytest.approx(0.65)
    assert "| a | 0.150 | 0.350 | 0.050 | 1.000 | 0.000 |" in first_action_table({"a": ranked})
    with pytest.raises(ValueError, match="5 cases but 4 probabilities"):
        first_action_stats(kinds, torch.zeros(4))
