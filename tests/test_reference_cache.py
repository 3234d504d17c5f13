"""Reference log-probs computed once per model and pair, read back exactly by every later run."""

import copy
import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from test_trainer import first_batch, make_args, multi_turn_pairs

from diatool_utils.reference_cache import ReferenceCache, model_fingerprint, pair_key
from diatool_utils.trainer import DiaToolDPOConfig, DiaToolDPOTrainer


def lora(model, seed):
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(copy.deepcopy(model), config)


def test_the_fingerprint_is_the_frozen_weights_and_settings_not_the_adapter(tiny_model):
    base = model_fingerprint(lora(tiny_model, 0), autocast="bf16")
    assert model_fingerprint(lora(tiny_model, 1), autocast="bf16") == base  # another adapter, same reference
    assert model_fingerprint(lora(tiny_model, 0), autocast="no") != base
    changed = copy.deepcopy(tiny_model)
    with torch.no_grad():
        changed.model.layers[0].mlp.up_proj.weight[0, 0] += 1e-3
    assert model_fingerprint(lora(changed, 0), autocast="bf16") != base


def test_a_pair_key_covers_both_sides_tokens_and_turns():
    key = pair_key([1, 2, 3], [-1, 0, 0], [1, 2, 4], [-1, 0, 0])
    assert key != pair_key([1, 2, 3], [-1, 0, 0], [1, 2, 5], [-1, 0, 0])
    assert key != pair_key([1, 2, 3], [-1, -1, 0], [1, 2, 4], [-1, 0, 0])
    assert key == pair_key((1, 2, 3), (-1, 0, 0), (1, 2, 4), (-1, 0, 0))


def test_values_come_back_exactly_and_padded_to_the_width(tmp_path):
    value = torch.tensor([-12.345678, -0.1], dtype=torch.float32).tolist()
    cache = ReferenceCache(tmp_path, "abc")
    cache.add(["k"], [value + [0.0]], [[-3.25, 0.0, 0.0]], [2], [1])
    again = ReferenceCache(tmp_path, "abc")
    assert again.missing(["k", "other"]) == [1]
    chosen, rejected = again.read(["k"], width=4)
    assert chosen == [value + [0.0, 0.0]] and rejected == [[-3.25, 0.0, 0.0, 0.0]]
    assert torch.tensor(chosen[0][:2], dtype=torch.float32).tolist() == value  # float32 in, float32 out


def test_a_damaged_cache_file_is_named(tmp_path):
    (tmp_path / "abc.json").write_text("{not json")
    with pytest.raises(ValueError, match="abc.json is not a reference log-prob cache"):
        ReferenceCache(tmp_path, "abc")


def test_a_second_run_reads_the_reference_instead_of_computing_it(tiny_model, tiny_tokenizer, tmp_path, monkeypatch,
                                                                   sft_markers):
    sft_markers(tiny_model, tiny_tokenizer)
    pairs = multi_turn_pairs()
    computed = []
    original = DiaToolDPOTrainer.compute_ref_log_probs
    monkeypatch.setattr(DiaToolDPOTrainer, "compute_ref_log_probs",
                        lambda self, model, inputs: computed.append(len(inputs["input_ids"])) or original(
                            self, model, inputs))
    peft = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear")

    def run(name, seed, **settings):
        torch.manual_seed(seed)
        args = make_args(tmp_path / name, per_device_train_batch_size=2, precompute_ref_log_probs=True,
                         ref_logps_cache=str(tmp_path / "reference"), **settings)
        assert isinstance(args, DiaToolDPOConfig)
        return DiaToolDPOTrainer(copy.deepcopy(tiny_model), args=args, train_dataset=pairs,
                                 processing_class=tiny_tokenizer, peft_config=peft)

    first = run("first", 0)
    assert sum(computed) == 2 * len(pairs)  # chosen and rejected rows of every pair
    second = run("second", 1)  # another seed, another adapter: the same reference
    assert sum(computed) == 2 * len(pairs), "the second run computed reference log-probs again"
    for column in ("ref_chosen_logps", "ref_rejected_logps"):
        assert second.train_dataset[column] == first.train_dataset[column]
    [stored] = (tmp_path / "reference").glob("*.json")
    assert len(json.loads(stored.read_text())["pairs"]) == len(pairs)
    run("other settings", 0, decision_weight=3.0)  # other numbers: computed, into a file of their own
    assert sum(computed) == 4 * len(pairs) and len(list((tmp_path / "reference").glob("*.json"))) == 2


def test_read_back_values_give_the_loss_of_the_live_reference(tiny_model, tiny_tokenizer, tmp_path, sft_markers):
    sft_markers(tiny_model, tiny_tokenizer)
    pairs = multi_turn_pairs()
    peft = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)  # policy != reference
    losses = []
    for name, settings in [("live", {}), ("computed", {"precompute_ref_log_probs": True}),
                           ("read back", {"precompute_ref_log_probs": True})]:
        torch.manual_seed(0)
        args = make_args(tmp_path / name, per_device_train_batch_size=4, ref_logps_cache=str(tmp_path / "ref"),
                         **settings)
        trainer = DiaToolDPOTrainer(copy.deepcopy(tiny_model), args=args, train_dataset=pairs,
                                    processing_class=tiny_tokenizer, peft_config=peft)
        with torch.no_grad():
            losses.append(trainer.compute_loss(trainer.model, first_batch(trainer)))
    assert losses[1] == losses[2]  # read back: bit for bit what was computed
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
