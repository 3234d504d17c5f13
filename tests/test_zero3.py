"""zero3: telling partitioned weights from whole ones; without ZeRO-3 every helper is a plain pass-through.

The helpers on weights that ZeRO-3 really partitioned are checked in test_zero3_partitioned.py.
"""

import torch

from diatool_utils.zero3 import embedding_rows, gathered, zero3_partitioned


def test_plain_parameters_are_not_partitioned():
    model = torch.nn.Embedding(10, 4)
    assert not zero3_partitioned(model.parameters())
    assert not zero3_partitioned([])


def test_a_parameter_marked_by_deepspeed_counts_as_partitioned():
    marked = torch.nn.Parameter(torch.empty(0))
    marked.ds_id = 7  # what DeepSpeed sets on every parameter it partitions
    assert zero3_partitioned([torch.nn.Parameter(torch.zeros(2)), marked])
    assert zero3_partitioned(iter([marked]))


def test_embedding_rows_reads_the_full_shape_of_an_empty_slice():
    assert embedding_rows(torch.nn.Embedding(10, 4).weight) == 10
    slice_ = torch.nn.Parameter(torch.empty(0))
    slice_.ds_shape = torch.Size([49152, 576])
    assert embedding_rows(slice_) == 49152


@torch.no_grad()
def test_gathered_leaves_whole_weights_as_they_are_and_keeps_edits():
    weight = torch.nn.Embedding(3, 2).weight
    with gathered([weight]):
        weight[1] = 5.0
    assert weight[1].tolist() == [5.0, 5.0]
