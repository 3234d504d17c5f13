"""What this machine computes fast: bf16 dot products on the CPU, or a GPU; and how to name the processor.

On a CPU, bf16 pays only where the processor multiplies bf16 numbers natively: AVX512-BF16
(``avx512_bf16``: Intel Cooper Lake and later, AMD Zen 4 and later) or AMX (``amx_bf16``: Intel
Sapphire Rapids and later). Elsewhere PyTorch emulates bf16 and one SFT step of the 135M model took
twice as long as in fp32 (an Intel Xeon with AVX512 but neither flag: 38.1 s against 17.4-19.0 s).
So the recipe's CPU path asks before it uses bf16:

    from diatool_utils.hardware import default_precision, processor
    default_precision()    # "bf16" on a GPU or a CPU with bf16 dot products, else "fp32"
    processor()            # {"name": "Intel(R) Xeon(R) Processor", "bf16_flags": ["amx_bf16", "avx512_bf16"], ...}

Every timing in this repository records ``processor()`` beside it: two machines' numbers are only
compared when the processor is the same.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

import torch

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 dot products on x86
PRECISIONS = ("bf16", "fp32")


@cache
def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The processor's feature flags from ``/proc/cpuinfo`` (Linux); empty where that file is absent."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):  # x86 says flags, ARM says Features
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def default_precision() -> str:
    """``"bf16"`` on a GPU or on a CPU with bf16 dot products, ``"fp32"`` on any other CPU."""
    return "bf16" if torch.cuda.is_available() or cpu_has_bf16() else "fp32"


def default_quantization() -> str | None:
    """``"4bit"`` (QLoRA's NF4 base) on a GPU, where it saves the memory that limits model size; ``None`` on a CPU.

    A CPU has the memory and lacks the compute: bitsandbytes' CPU path dequantises every 4-bit weight
    on every matrix product (its faster CPU kernel would have to be downloaded at run time), so a
    full-precision base trains faster there (``benchmarks/bench_recipe_cpu.py``).
    """
    return "4bit" if torch.cuda.is_available() else None


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {PRECISIONS}")
    return precision


def processor() -> dict:
    """The processor's name, its bf16 flags, the threads PyTorch uses and the GPU if any: recorded beside timings."""
    name = platform.processor() or platform.machine()
    path = Path("/proc/cpuinfo")
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    return {
        "name": name,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "bf16_flags": sorted(flag for flag in BF16_FLAGS if flag in cpu_flags()),
        "avx512": "avx512f" in cpu_flags(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
