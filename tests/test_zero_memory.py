"""ZeRO memory arithmetic: 16 bytes per parameter, split stage by stage, moved to the CPU by offload."""

import matplotlib
import pytest

from diatool_utils.zero_memory import (
    GiB,
    llama_parameter_count,
    logits_bytes,
    memory_table,
    plot_memory_table,
    sharded_parts,
    zero_memory,
)

matplotlib.use("Agg")

PSI = 8e9  # an "8B" model


def test_data_parallel_keeps_sixteen_bytes_per_parameter_on_every_gpu():
    memory = zero_memory(PSI, num_gpus=8, stage=0)
    assert memory.gpu == {"parameters": 2 * PSI, "gradients": 2 * PSI, "optimizer": 12 * PSI}
    assert memory.gpu_total == 16 * PSI == 128e9


@pytest.mark.parametrize("stage, expected_bytes_per_param", [
    (0, 2 + 2 + 12),
    (1, 2 + 2 + 12 / 8),
    (2, 2 + (2 + 12) / 8),
    (3, (2 + 2 + 12) / 8),
])
def test_each_stage_divides_one_more_part_by_the_number_of_gpus(stage, expected_bytes_per_param):
    assert zero_memory(PSI, 8, stage).gpu_total == pytest.approx(expected_bytes_per_param * PSI)


def test_stages_shard_optimizer_then_gradients_then_parameters():
    assert [sharded_parts(s) for s in range(4)] == [
        set(), {"optimizer"}, {"optimizer", "gradients"}, {"optimizer", "gradients", "parameters"}]


def test_eight_b_model_on_eight_gpus_under_stage_three_holds_two_bytes_per_parameter():
    assert zero_memory(PSI, 8, 3).gpu_total == pytest.approx(16e9)  # 2 bytes per parameter on each GPU
    assert zero_memory(PSI, 8, 2).gpu_total == pytest.approx(30e9)


def test_reference_model_is_sharded_only_under_stage_three():
    assert zero_memory(PSI, 8, 3, reference_model=True).gpu["reference"] == pytest.approx(2 * PSI / 8)
    assert zero_memory(PSI, 8, 2, reference_model=True).gpu["reference"] == pytest.approx(2 * PSI)


def test_offloading_the_optimizer_moves_optimizer_and_gradient_shards_to_the_node_cpu():
    memory = zero_memory(PSI, 8, 3, offload_optimizer=True)
    assert memory.gpu == {"parameters": 2 * PSI / 8, "gradients": 0.0, "optimizer": 0.0}
    assert memory.cpu == {"gradients": pytest.approx(2 * PSI), "optimizer": pytest.approx(12 * PSI)}


def test_offloading_parameters_too_leaves_no_model_state_on_the_gpu():
    memory = zero_memory(PSI, 8, 3, offload_optimizer=True, offload_params=True, reference_model=True)
    assert memory.gpu_total == 0
    assert memory.cpu_total == pytest.approx((16 + 2) * PSI)


def test_two_nodes_split_the_offloaded_states_between_their_cpus():
    one_node = zero_memory(PSI, 16, 3, offload_optimizer=True, gpus_per_node=16)
    two_nodes = zero_memory(PSI, 16, 3, offload_optimizer=True, gpus_per_node=8)
    assert two_nodes.cpu_total == pytest.approx(one_node.cpu_total / 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"stage": 4}, "stage must be"),
    ({"stage": 0, "offload_optimizer": True}, "offload_optimizer needs"),
    ({"stage": 2, "offload_params": True}, "offload_params needs ZeRO stage 3"),
    ({"stage": 3, "num_gpus": 0}, "num_gpus >= 1"),
])
def test_impossible_setups_are_refused(kwargs, message):
    settings = {"num_params": PSI, "num_gpus": 8} | kwargs
    with pytest.raises(ValueError, match=message):
        zero_memory(**settings)


def test_memory_shrinks_down_the_standard_table():
    totals = [memory.gpu_total for _, memory in memory_table(PSI, 8)]
    assert totals == sorted(totals, reverse=True) and totals[-1] == 0


def test_plot_draws_the_table_numbers():
    table = memory_table(PSI, 8)
    ax = plot_memory_table(table, gpu_memory_gib=80)
    ends = {round(bar.get_x() + bar.get_width(), 6) for bar in ax.patches}
    for _, memory in table:
        assert round(memory.gpu_total / GiB, 6) in ends or memory.gpu_total == 0
    assert [t.get_text() for t in ax.get_yticklabels()] == [label for label, _ in table]


def test_llama_parameter_count_matches_a_real_model(tiny_model):
    config = tiny_model.config
    count = llama_parameter_count(config.vocab_size, config.hidden_size, config.num_hidden_layers,
                                  config.intermediate_size, config.num_attention_heads,
                                  config.num_key_value_heads, config.tie_word_embeddings)
    assert count == sum(p.numel() for p in tiny_model.parameters())


def test_llama_3_8b_has_about_8_billion_parameters():
    count = llama_parameter_count(128256, 4096, 32, 14336, 32, 8, tie_word_embeddings=False)
    assert 8.02e9 < count < 8.04e9


def test_logits_of_one_pair_at_8192_tokens_with_a_128k_vocabulary_take_7_8_gib_in_fp32():
    assert logits_bytes(2, 8192, 128256) == 2 * 8192 * 128256 * 4
    assert round(logits_bytes(2, 8192, 128256) / GiB, 1) == 7.8
