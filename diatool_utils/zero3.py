"""Weights that DeepSpeed ZeRO-3 has partitioned: recognise them, read their shape, edit them whole.

Under ZeRO-3 each training process holds only a slice of every parameter. DeepSpeed marks such a
parameter with a ``ds_id``, keeps its full shape in ``ds_shape`` and leaves ``param.data`` an empty
tensor until the parameter is gathered. Code that reads a shape or writes rows (adding the
Functionary tokens, checking the embeddings before training) has to allow for that:

    zero3_partitioned(model.parameters())                  # True when any parameter is partitioned
    embedding_rows(model.get_input_embeddings().weight)    # the full row count, partitioned or not
    with gathered([weight]):                               # the whole matrix on every process;
        weight[new_rows] = ...                             # process 0's edits are kept

Without ZeRO-3 all three are plain: the shape is the tensor's own and ``gathered`` does nothing.
DeepSpeed is imported only when a partitioned parameter is gathered. (How much memory each ZeRO
stage needs is worked out in ``zero_memory``.)
"""

from __future__ import annotations

import contextlib


def zero3_partitioned(params) -> bool:
    """True when DeepSpeed ZeRO-3 has partitioned any of ``params`` (each rank holds only a slice)."""
    return any(hasattr(p, "ds_id") for p in params)


def embedding_rows(weight) -> int:
    """Rows of an embedding matrix; under ZeRO-3 a partitioned weight is empty here and keeps its shape in ds_shape."""
    return getattr(weight, "ds_shape", weight.shape)[0]


@contextlib.contextmanager
def gathered(weights):
    """Under DeepSpeed ZeRO-3, gather partitioned weights for the block and write rank 0's edits back.

    Weights that are not partitioned are used as they are, so the same code runs with and without ZeRO-3.
    """
    weights = list(weights)
    if zero3_partitioned(weights):
        import deepspeed

        with deepspeed.zero.GatheredParameters(weights, modifier_rank=0):
            yield
    else:
        yield
