# Generated from notebooks/05_zero3_multi_gpu.ipynb by
#   python -m diatool_utils.notebooks --export notebooks/05_zero3_multi_gpu.ipynb <script>
# Edit the notebook, not this file: a test checks that the two agree.
"""Train a tool-calling model with DiaTool-DPO: multi-turn DPO over assistant turns, in TRL's CLI style.

One process, or many through `accelerate launch` (DeepSpeed ZeRO-3 on 8 GPUs, or 2 CPU processes):

    accelerate launch --config_file configs/accelerate/zero3_8gpu.yaml scripts/train_diatool_dpo.py \\
        --config configs/recipes/diatool_dpo_paper.yaml --model_name_or_path path/to/your/sft-model

    accelerate launch --config_file configs/accelerate/zero3_cpu_2proc.yaml scripts/train_diatool_dpo.py \\
        --config configs/recipes/tiny_cpu_smoke.yaml

Every field of ScriptArguments (the pairs), DiaToolDPOConfig (TRL's DPOConfig plus gamma, margin,
use_phi, use_psi, use_margin, strict_pairs) and TRL's ModelConfig (model, dtype, LoRA, 4-bit) is a
flag and a key of the YAML file given with --config; the command line wins. `--help` lists them all.
"""


import argparse
import contextlib
import json
import logging
import os
import random
from dataclasses import dataclass, field

import torch

# isort: off
import diatool_utils  # noqa: F401  (before transformers imports bitsandbytes: drops its note nobody can act on)
from transformers import AutoModelForCausalLM, set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config
# isort: on

from diatool_utils.dialogues_io import read_jsonl
from diatool_utils.models import EMBEDDED_MODEL, bnb_4bit_config, load_tokenizer, resolve_model_path
from diatool_utils.paths import DATA_DIR
from diatool_utils.templating import FUNCTIONARY_SPECIAL_TOKENS, add_functionary_tokens
from diatool_utils.trainer import DiaToolDPOConfig, DiaToolDPOTrainer

logger = logging.getLogger("train_diatool_dpo")


@dataclass
class ScriptArguments:
    """Where the preference pairs come from and how they are split. The model is set in ModelConfig."""

    dataset_path: list[str] = field(
        default_factory=lambda: [str(DATA_DIR / "dpo_pairs.jsonl")],
        metadata={"help": "JSONL file(s) of preference pairs, one pair per line (tools, prompt, chosen, rejected), "
                          "as written by scripts/make_data.py. Several files are concatenated. Default: the "
                          "repository's data/dpo_pairs.jsonl."},
    )
    eval_dataset_path: str | None = field(
        default=None,
        metadata={"help": "JSONL file of evaluation pairs. Unset: hold out eval_split of the training pairs."},
    )
    eval_split: float = field(
        default=0.05,
        metadata={"help": "Fraction of the pairs held out for evaluation when there is no eval_dataset_path "
                          "(the paper's 95/5 split). 0 trains on everything and evaluates nothing."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the shuffle before the train/eval split."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training pairs after the split (smoke runs)."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N evaluation pairs after the split."})
    train_functionary_tokens: bool = field(
        default=True,
        metadata={"help": "With --use_peft: also train the input-embedding rows of the Functionary tokens "
                          "<|from|>, <|recipient|>, <|content|>, <|stop|>. Only for models whose input and output "
                          "embeddings are not tied (TRL's fused LM head can't train through PEFT's wrapper on a "
                          "tied head); a tied model keeps them frozen, so train them in SFT first."},
    )


def load_pairs(paths: list[str]) -> list[dict]:
    """Every pair of the JSONL files, in order; a line that is not a pair raises, naming file and line."""
    pairs = []
    for path in paths:
        for number, row in read_jsonl(path):
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: a pair must be a JSON object, got {type(row).__name__}")
            missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
            if missing:
                raise ValueError(f"{path}, line {number}: not a preference pair, missing {', '.join(missing)}")
            pairs.append(row)
    if not pairs:
        raise ValueError(f"no pairs in {', '.join(map(str, paths))}")
    return pairs


def split_pairs(pairs: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Shuffle with ``seed`` and hold out round(eval_fraction * n) pairs (at least one if the fraction is > 0)."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_split must lie in [0, 1), got {eval_fraction}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(eval_fraction * len(pairs))) if eval_fraction > 0 else 0
    return [pairs[i] for i in order[n_eval:]], [pairs[i] for i in order[:n_eval]]


def load_datasets(script_args: ScriptArguments) -> tuple[list[dict], list[dict] | None]:
    """(train pairs, eval pairs or None), cut to max_train_samples / max_eval_samples."""
    pairs = load_pairs(script_args.dataset_path)
    if script_args.eval_dataset_path:
        train, evaluation = pairs, load_pairs([script_args.eval_dataset_path])
    else:
        train, evaluation = split_pairs(pairs, script_args.eval_split, script_args.split_seed)
    return train[: script_args.max_train_samples], evaluation[: script_args.max_eval_samples] or None


@contextlib.contextmanager
def whole_weights():
    """Load and resize models whole in every process, even under ZeRO-3; DeepSpeed shards them when training starts.

    Under an accelerate ZeRO-3 launch, TrainingArguments registers the DeepSpeed config with transformers
    (whatever zero3_init_flag says), and from_pretrained would then shard the weights while loading
    (deepspeed.zero.Init): each process would hold 1/N of every matrix. add_functionary_tokens must see the
    whole embedding matrix to give the new rows the mean embedding, and the trainer copies the model into
    the reference: both need whole weights. Cost: every process holds a full copy in CPU memory until
    training starts (2 bytes per parameter in bf16, twice with the reference).
    """
    import transformers.integrations.deepspeed as hf_deepspeed

    registered = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = registered


def quantization_config_of(model_args: ModelConfig, training_args: DiaToolDPOConfig):
    """--load_in_4bit: our NF4 config (QLoRA); --load_in_8bit: TRL's; else None. Both train LoRA adapters only."""
    if not (model_args.load_in_4bit or model_args.load_in_8bit):
        return None
    if not model_args.use_peft:
        raise ValueError("--load_in_4bit / --load_in_8bit freeze the base weights: add --use_peft to train LoRA adapters")
    if training_args.deepspeed_plugin is not None and training_args.deepspeed_plugin.zero_stage == 3:
        raise ValueError("quantised weights and ZeRO-3 don't mix in this script: run QLoRA on one GPU (notebook 04) "
                         "or train bf16 weights with ZeRO-3")
    if model_args.load_in_8bit:
        return get_quantization_config(model_args)
    return bnb_4bit_config(None if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype))


def load_model(model_args: ModelConfig, training_args: DiaToolDPOConfig, quantization_config):
    """The policy as a plain causal LM: "smollm2-135m", "tiny-random", a folder or a Hub id."""
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    return AutoModelForCausalLM.from_pretrained(
        resolve_model_path(model_args.model_name_or_path),
        revision=model_args.model_revision,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
        quantization_config=quantization_config,
        # Full weights: the trainer moves them (or DeepSpeed shards them). 4-bit weights are placed while loading.
        device_map={"": training_args.distributed_state.device} if quantization_config is not None else None,
        use_safetensors=True,
    )


def lora_config_of(model_args: ModelConfig, model, tokenizer, train_token_rows: bool):
    """TRL's LoRA config from the flags (None without --use_peft), plus the Functionary token rows if allowed."""
    peft_config = get_peft_config(model_args)
    if peft_config is None or not train_token_rows:
        return peft_config
    if model.config.get_text_config().tie_word_embeddings:
        logger.warning("the model ties its input and output embeddings, so the Functionary token rows stay frozen "
                       "(TRL's fused LM head reads lm_head.weight directly): train them in SFT and merge first")
        return peft_config
    peft_config.trainable_token_indices = {"embed_tokens": tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)}
    return peft_config


def resolve_checkpoint(resume_from_checkpoint: str | None, output_dir: str) -> str | None:
    """--resume_from_checkpoint: a checkpoint folder, or true / last for the newest checkpoint-N of output_dir."""
    if resume_from_checkpoint is None or str(resume_from_checkpoint).lower() in ("", "false", "none"):
        return None
    if str(resume_from_checkpoint).lower() in ("true", "last"):
        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise FileNotFoundError(f"--resume_from_checkpoint {resume_from_checkpoint}: no checkpoint-N folder in "
                                    f"{output_dir}; pass a checkpoint folder, or start without the flag")
        return last
    if not os.path.isdir(resume_from_checkpoint):
        raise FileNotFoundError(f"--resume_from_checkpoint: no folder {resume_from_checkpoint}")
    return resume_from_checkpoint


def check_world_size(training_args: DiaToolDPOConfig) -> None:
    """The launcher's process count must be the one TrainingArguments sees (on CPU it needs use_cpu)."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != training_args.world_size:
        raise SystemExit(f"the launcher started {launched} processes but the trainer sees {training_args.world_size}. "
                         "On a machine without GPUs set use_cpu: true in the recipe (or pass --use_cpu true).")


def describe_distribution(trainer) -> str:
    """World size, DeepSpeed ZeRO stage, and how many parameter values this process holds (ZeRO-3 shards them)."""
    state = trainer.accelerator.state
    plugin = state.deepspeed_plugin
    total = held = 0
    for parameter in trainer.model_wrapped.parameters():
        total += getattr(parameter, "ds_numel", parameter.numel())
        held += parameter.ds_tensor.numel() if hasattr(parameter, "ds_tensor") else parameter.numel()
    return (f"world_size={state.num_processes} distributed_type={state.distributed_type.value} "
            f"zero_stage={plugin.zero_stage if plugin is not None else None} rank {state.process_index} holds "
            f"{held:,} of {total:,} parameter values ({held / total:.0%})")


def main(script_args: ScriptArguments, training_args: DiaToolDPOConfig, model_args: ModelConfig) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=training_args.get_process_log_level())
    check_world_size(training_args)
    set_seed(training_args.seed)
    model_args.model_name_or_path = model_args.model_name_or_path or EMBEDDED_MODEL

    # Data: our pair rows go to the trainer as they are (it tokenizes them with the Functionary template).
    train_pairs, eval_pairs = load_datasets(script_args)
    if eval_pairs is None:
        training_args.eval_strategy = "no"
    logger.info("pairs: %d train, %d eval", len(train_pairs), len(eval_pairs or []))

    # Model: the Functionary tokens are added before PEFT wraps it and before the reference is copied from it.
    quantization_config = quantization_config_of(model_args, training_args)
    tokenizer = load_tokenizer(model_args.model_name_or_path)
    with whole_weights():
        model = load_model(model_args, training_args, quantization_config)
        add_functionary_tokens(tokenizer, model)
    peft_config = lora_config_of(model_args, model, tokenizer, script_args.train_functionary_tokens)

    trainer = DiaToolDPOTrainer(model, args=training_args, train_dataset=train_pairs, eval_dataset=eval_pairs,
                                processing_class=tokenizer, peft_config=peft_config)

    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if checkpoint is not None:
        with open(os.path.join(checkpoint, "trainer_state.json")) as handle:
            step = json.load(handle)["global_step"]
        trainer.accelerator.print(f"[diatool-dpo] resuming from {checkpoint} at global step {step}")
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.accelerator.print(f"[diatool-dpo] {describe_distribution(trainer)}")
    trainer.accelerator.print(f"[diatool-dpo] trained to global step {trainer.state.global_step}: "
                              f"{json.dumps(result.metrics)}")

    # Under ZeRO-3 every process holds a shard: save_model gathers the 16-bit weights into one checkpoint
    # (zero3_save_16bit_model in the accelerate config) and writes the tokenizer beside them.
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"[diatool-dpo] saved the model and tokenizer to {training_args.output_dir}")
    # Leave the process group here, every rank together, not from the interpreter's exit handlers: there the
    # teardown can race with the communication threads, and one CPU rank once died with "terminate called
    # without an active exception" (SIGABRT) after saving, failing the whole launch.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


def parse_args(argv: list[str] | None = None):
    """(ScriptArguments, DiaToolDPOConfig, ModelConfig) from the command line and the --config YAML file."""
    parser = TrlParser((ScriptArguments, DiaToolDPOConfig, ModelConfig))
    # TrlParser reads --config itself; declared here only so that --help shows it.
    parser.add_argument("--config", default=argparse.SUPPRESS, metavar="RECIPE.yaml",
                        help="YAML file of flag values (e.g. configs/recipes/diatool_dpo_paper.yaml); flags given "
                             "on the command line override it.")
    return parser.parse_args_and_config(argv)


if __name__ == "__main__":
    main(*parse_args())
