"""The TRL 1.16 internals DiaToolDPOTrainer hooks into still exist and behave as relied upon.

This file imports TRL only, never diatool_utils.trainer (whose import stops on another TRL version),
so on a newer TRL it runs and lists exactly which hook moved. Run it before moving the pin:

    pip install trl==<new> && pytest tests/test_trl_api.py
"""

import inspect

import pytest
import torch
from trl import DPOConfig, DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer import utils as trl_utils


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize("method, expected", [
    # overridden by DiaToolDPOTrainer, with the same signature
    ("__init__", ["self", "model", "ref_model", "args", "data_collator", "train_dataset", "eval_dataset",
                  "processing_class", "compute_metrics", "callbacks", "optimizers", "quantization_config",
                  "peft_config"]),
    ("_prepare_dataset", ["self", "dataset", "processing_class", "args", "dataset_name"]),
    ("_set_signature_columns_if_needed", ["self"]),
    ("compute_ref_log_probs", ["self", "model", "inputs"]),
    ("_compute_loss", ["self", "model", "inputs", "return_outputs"]),
    # called by TRL around the overrides
    ("_precompute_ref_logps", ["self", "dataset", "name", "batch_size"]),
    ("compute_loss", ["self", "model", "inputs", "return_outputs", "num_items_in_batch"]),
    ("evaluate", ["self", "eval_dataset", "ignore_keys", "metric_key_prefix"]),
])
def test_dpo_trainer_methods_we_override_or_rely_on(method, expected):
    assert parameters(getattr(DPOTrainer, method)) == expected


def test_dpo_trainer_calls_our_hooks_where_we_expect():
    init = inspect.getsource(DPOTrainer.__init__)
    assert "self._prepare_dataset(train_dataset, processing_class, args, \"train\")" in init
    assert "if data_collator is None:" in init  # a collator we pass in is used as is
    assert "self._precompute_ref_logps(" in init
    # ref_model=None with a full model: TRL reloads the checkpoint from disk, which lacks the
    # Functionary rows; DiaToolDPOTrainer passes a copy instead.
    assert "create_model_from_path(ref_model_path" in init
    # With PEFT and no ref_model the reference is the adapter-disabled model.
    assert "is_peft_model(self.model) or (args.precompute_ref_log_probs" in init
    # The per-turn reference log-probs travel through these two dataset columns and the collator.
    precompute = inspect.getsource(DPOTrainer._precompute_ref_logps)
    assert "self.compute_ref_log_probs(model, padded_batch)" in precompute
    assert '"ref_chosen_logps": ref_chosen_logps[indices]' in precompute
    assert "collate_fn=self.data_collator" in precompute
    assert "self._compute_loss(model, inputs, return_outputs)" in inspect.getsource(DPOTrainer.compute_loss)
    # The attributes our _compute_loss reads, all set by DPOTrainer.__init__.
    for attribute in ("self.beta", "self.precompute_ref_logps", "self.loss_types", "self.loss_weights",
                      "self.aux_loss_enabled", "self.router_aux_loss_coef", "self._metrics",
                      "self._total_train_tokens", "self._tp_size", "self.ref_model"):
        assert f"{attribute} =" in init, attribute
    assert 'outputs = ("log_probs", "entropy", "mean_logits", "is_top1")' in init


def test_dpo_config_fields_we_read_or_refuse():
    fields = DPOConfig.__dataclass_fields__
    for name in ("beta", "loss_type", "loss_weights", "max_length", "truncation_mode", "precompute_ref_log_probs",
                 "pad_to_multiple_of", "dataset_num_proc", "model_init_kwargs", "trust_remote_code", "ld_alpha",
                 "f_divergence_type", "use_weighting", "gradient_checkpointing"):
        assert name in fields, name
    assert "rpo_alpha" not in fields  # the NLL-on-chosen term is loss_type "sft"; revisit if rpo_alpha returns
    assert fields["loss_type"].default_factory() == ["sigmoid"]


def test_trl_helpers_we_import_keep_their_signatures():
    assert parameters(trl_utils.pad) == ["tensors", "padding_value", "padding_side", "pad_to_multiple_of"]
    assert parameters(trl_utils.use_adapter) == ["model", "adapter_name"]
    assert parameters(trl_utils.create_model_from_path) == ["model_id", "architecture", "kwargs"]
    assert parameters(trl_utils.add_fused_lm_head) == ["model", "temperature", "cast_lm_head_to_fp32", "outputs"]
    assert parameters(disable_gradient_checkpointing) == ["model", "gradient_checkpointing_kwargs"]
    assert callable(trl_utils.global_then_local_main_first)
    assert trl_utils.remove_none_values({"a": None, "b": [{"c": None, "d": 1}]}) == {"b": [{"d": 1}]}
    padded = trl_utils.pad([torch.tensor([1, 2, 3]), torch.tensor([4])], padding_value=-1, padding_side="right")
    assert padded.tolist() == [[1, 2, 3], [4, -1, -1]]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # CUDA takes TRL's Triton (compact) path


@pytest.mark.parametrize("device", DEVICES)
def test_fused_lm_head_returns_shifted_token_logprobs_zero_where_unscored(tiny_model, device):
    tiny_model.to(device)
    input_ids = torch.randint(0, 1000, (2, 7), device=device)
    unscored = torch.tensor([[1, 1, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 0, 0]], device=device).bool()
    labels = input_ids.masked_fill(unscored, -100)
    with torch.no_grad():
        expected = tiny_model(input_ids=input_ids).logits[:, :-1].log_softmax(-1)
    expected = expected.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    trl_utils.add_fused_lm_head(tiny_model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    with torch.no_grad():
        outputs = tiny_model(input_ids=input_ids, labels=labels, fused_lm_head=True, use_cache=False)
    scored = labels[:, 1:] != -100
    assert outputs.log_probs.shape == (2, 6)  # position i scores token i + 1
    torch.testing.assert_close(outputs.log_probs[scored], expected[scored], rtol=1e-4, atol=1e-4)
    assert (outputs.log_probs[~scored] == 0).all()
    for name in ("entropy", "is_top1"):
        assert getattr(outputs, name).shape == (2, 6)


def test_fused_lm_head_takes_a_kv_cache_and_pre_shifted_labels(tiny_model):
    """What the shared-prefix forward relies on: the fused forward passes ``cache`` and ``position_ids`` to the
    backbone (it forces use_cache=False, but a cache passed in is still filled and read), scores pre-shifted
    ``shift_labels`` without shifting, and ``DynamicCache.reorder_cache`` repeats rows with their gradients."""
    from transformers import DynamicCache

    input_ids = torch.randint(0, 1000, (1, 9))
    labels = input_ids.clone()
    trl_utils.add_fused_lm_head(tiny_model)
    with torch.no_grad():
        whole = tiny_model(input_ids=input_ids, labels=labels, fused_lm_head=True, use_cache=False).log_probs
        cache = DynamicCache()
        head = tiny_model(input_ids=input_ids[:, :4], shift_labels=labels[:, 1:5], cache=cache, fused_lm_head=True)
        assert cache.get_seq_length() == 4 and head.log_probs.shape == (1, 4)
        cache.reorder_cache(torch.tensor([0, 0]))
        tail = tiny_model(input_ids=input_ids[:, 4:].repeat(2, 1), labels=labels[:, 4:].repeat(2, 1),
                          position_ids=torch.arange(4, 9).repeat(2, 1), attention_mask=torch.ones(2, 9),
                          cache=cache, fused_lm_head=True)
    torch.testing.assert_close(torch.cat([head.log_probs[0], tail.log_probs[1]]), whole[0], rtol=1e-5, atol=1e-5)


def test_the_fused_head_decides_compact_scoring_where_scored_positions_only_switches_it():
    """``trainer.scored_positions_only`` swaps the function TRL's fused forward asks whether to project only the
    scored positions; if TRL moves that decision, the switch would silently do nothing."""
    source = inspect.getsource(trl_utils.add_fused_lm_head)
    assert "compact = _use_triton(hidden_states.device)" in source
    assert callable(trl_utils._use_triton) and not trl_utils._use_triton(torch.device("cpu"))

