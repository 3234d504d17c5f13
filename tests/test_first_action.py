"""The first-action diagnostic: P(text reply) at the recipient, and how well it ranks turn types."""

import math

import pytest
import torch

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import build_prompt
from diatool_utils.first_action import auc, first_action_stats, first_action_table, text_probability
from diatool_utils.paths import DATA_DIR


@pytest.fixture(scope="module")
def cases():
    return load_dialog_benchmark(DATA_DIR / "eval_dialog.jsonl")[:5]


def test_text_probability_is_the_two_token_probability_of_all_newline(tiny_model, tiny_tokenizer, cases):
    prompts = [build_prompt(case) for case in cases]
    batched = text_probability(tiny_model, tiny_tokenizer, prompts, batch_size=3)  # left padding inside
    alone = torch.stack([text_probability(tiny_model, tiny_tokenizer, [p])[0] for p in prompts])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-7)
    all_id, newline_id = tiny_tokenizer("all\n", add_special_tokens=False).input_ids
    ids = tiny_tokenizer(prompts[0], return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        first = tiny_model(ids).logits[0, -1].log_softmax(-1)[all_id]
        second = tiny_model(torch.cat([ids, torch.tensor([[all_id]])], 1)).logits[0, -1].log_softmax(-1)[newline_id]
    assert batched[0].item() == pytest.approx((first + second).exp().item(), rel=1e-4)
    assert tiny_tokenizer.padding_side == "right"  # restored


def test_a_prompt_that_does_not_end_at_the_recipient_is_refused(tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match=r"prompts 0\.\.0.*<\|recipient\|>"):
        text_probability(tiny_model, tiny_tokenizer, ["What is sm"])  # 'sm' + 'all' merge into 'small'


def test_auc_counts_pairs_ranked_right_and_ties_as_half():
    assert auc(torch.tensor([3.0, 2.0]), torch.tensor([1.0])) == 1.0
    assert auc(torch.tensor([1.0]), torch.tensor([2.0, 3.0])) == 0.0
    assert auc(torch.tensor([2.0, 1.0]), torch.tensor([2.0, 0.0])) == pytest.approx(0.625)  # (0.5 + 1 + 0 + 1) / 4
    assert math.isnan(auc(torch.tensor([]), torch.tensor([1.0])))


def test_stats_separate_a_lean_from_a_ranking(cases):
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
