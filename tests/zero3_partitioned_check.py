"""Run by test_zero3_partitioned.py in a fresh process (one-rank gloo group, ZeRO-3 registered with transformers).

Loads the tiny model *partitioned* (as transformers does under an accelerate ZeRO-3 launch), adds the
Functionary tokens and asks the trainer for a copied reference; prints one JSON line of what it saw.
"""

import json
import os
import sys

import deepspeed
import torch
from transformers.integrations import HfDeepSpeedConfig

os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1], RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
deepspeed.init_distributed(dist_backend="gloo")
registered = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1})

from diatool_utils.models import load_model_and_tokenizer  # noqa: E402
from diatool_utils.templating import FUNCTIONARY_SPECIAL_TOKENS, add_functionary_tokens  # noqa: E402
from diatool_utils.trainer import DiaToolDPOConfig, DiaToolDPOTrainer  # noqa: E402

model, tokenizer = load_model_and_tokenizer("tiny-random")
weight = model.get_input_embeddings().weight
seen = {"partitioned": hasattr(weight, "ds_id"), "rows_before": int(weight.ds_shape[0])}
add_functionary_tokens(tokenizer, model)
weight = model.get_input_embeddings().weight
with deepspeed.zero.GatheredParameters([weight]):
    ids = tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
    mean = weight[: seen["rows_before"]].float().mean(dim=0)
    seen["rows_after"] = weight.shape[0]
    seen["new_rows_finite"] = bool(torch.isfinite(weight[ids]).all())
    seen["new_rows_are_the_mean"] = bool(torch.allclose(weight[ids].float(), mean.expand(len(ids), -1), atol=1e-6))
try:
    DiaToolDPOTrainer(model, args=DiaToolDPOConfig(output_dir=sys.argv[2], use_cpu=True, bf16=False, report_to=[]),
                      train_dataset=[], processing_class=tokenizer)
    seen["trainer"] = "accepted"
except ValueError as error:
    seen["trainer"] = str(error)
print(json.dumps(seen))
