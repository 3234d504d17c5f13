"""How much memory DeepSpeed ZeRO needs per GPU: the model states, stage by stage, with and without offload.

Mixed-precision training with Adam keeps, for each of the model's Psi parameters (ZeRO paper, Rajbhandari
et al. 2020):

    parameters   bf16                                   2 bytes
    gradients    bf16                                   2 bytes
    optimizer    fp32 master weights + Adam m + Adam v  4 + 4 + 4 = 12 bytes
                                                        --------
                                                        16 bytes per parameter

Data parallelism over N GPUs replicates all of it (16 Psi bytes on every GPU). Each ZeRO stage shards one
more part across the N GPUs, so that part costs 1/N on each:

    stage   shards                                  bytes per GPU
    0       nothing (plain data parallel)           (2 + 2 + 12) Psi
    1       optimizer states                        (2 + 2) Psi + 12 Psi / N
    2       + gradients                             2 Psi + (2 + 12) Psi / N
    3       + parameters                            (2 + 2 + 12) Psi / N

Offload (ZeRO-Offload / ZeRO-Infinity) moves parts to the host's memory: ``offload_optimizer`` moves the
optimizer states and the gradient shard (the CPU runs Adam on them), ``offload_params`` (stage 3 only)
moves the parameter shard too. Each GPU still gathers one layer's full parameters at a time to compute;
that working memory, the activations and the framework's buffers are not counted here.

DPO adds a frozen reference model: bf16 parameters only (2 bytes, no gradients, no optimizer). TRL shards it
like the policy under stage 3 and keeps a full copy on every GPU under stages 0-2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BYTES_PER_PARAMETER = {"parameters": 2, "gradients": 2, "optimizer": 12}
GiB = 2**30


@dataclass
class ZeroMemory:
    """Bytes of model states on each GPU, and on each node's CPU memory, by part."""

    stage: int
    num_gpus: int
    gpu: dict[str, float] = field(default_factory=dict)  # per GPU
    cpu: dict[str, float] = field(default_factory=dict)  # per node (all its GPUs' offloaded shards)

    @property
    def gpu_total(self) -> float:
        return sum(self.gpu.values())

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {size / GiB:.1f}" for name, size in self.gpu.items() if size)
        text = f"{self.gpu_total / GiB:6.1f} GiB per GPU ({parts})"
        if self.cpu_total:
            text += f"; {self.cpu_total / GiB:.1f} GiB of CPU memory per node"
        return text


def sharded_parts(stage: int) -> set[str]:
    """The parts of the model states that ZeRO ``stage`` splits across GPUs."""
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {stage}")
    return set(["optimizer", "gradients", "parameters"][:stage])


def zero_memory(num_params: float, num_gpus: int, stage: int, *, offload_optimizer: bool = False,
                offload_params: bool = False, reference_model: bool = False,
                gpus_per_node: int | None = None) -> ZeroMemory:
    """Model-state memory of one training process (one GPU) under ZeRO ``stage``.

    Args:
        num_params: Psi, the number of parameters (8.03e9 for Llama-3-8B).
        num_gpus: N, the data-parallel world size (GPUs over all nodes).
        stage: 0 (plain data parallel), 1, 2 or 3.
        offload_optimizer: optimizer states and the gradient shard live in CPU memory (stages 1-3).
        offload_params: the parameter shard lives in CPU memory too (stage 3 only, as in DeepSpeed).
        reference_model: add DPO's frozen bf16 reference model (sharded under stage 3, replicated below).
        gpus_per_node: GPUs sharing one node's CPU memory (default: all ``num_gpus``).
    """
    if num_gpus < 1 or num_params <= 0:
        raise ValueError(f"need num_gpus >= 1 and num_params > 0, got {num_gpus} and {num_params}")
    sharded = sharded_parts(stage)
    if offload_optimizer and stage == 0:
        raise ValueError("offload_optimizer needs ZeRO stage 1, 2 or 3 (the offloaded states are the shards)")
    if offload_params and stage != 3:
        raise ValueError("offload_params needs ZeRO stage 3: only stage 3 shards the parameters")

    per_gpu = {part: bytes_ * num_params / (num_gpus if part in sharded else 1)
               for part, bytes_ in BYTES_PER_PARAMETER.items()}
    if reference_model:
        per_gpu["reference"] = BYTES_PER_PARAMETER["parameters"] * num_params / (num_gpus if stage == 3 else 1)

    offloaded = set()
    if offload_optimizer:
        offloaded |= {"optimizer", "gradients"}
    if offload_params:
        offloaded |= {"parameters", "reference"} & per_gpu.keys()
    ranks_on_node = min(num_gpus, gpus_per_node or num_gpus)
    gpu = {part: (0.0 if part in offloaded else size) for part, size in per_gpu.items()}
    cpu = {part: size * ranks_on_node for part, size in per_gpu.items() if part in offloaded}
    return ZeroMemory(stage=stage, num_gpus=num_gpus, gpu=gpu, cpu=cpu)


def llama_parameter_count(vocab_size: int, hidden_size: int, num_layers: int, intermediate_size: int,
                          num_attention_heads: int, num_key_value_heads: int, tie_word_embeddings: bool) -> int:
    """Psi of a Llama-style decoder (no biases), from its config numbers.

        embeddings   vocab * hidden                 (a second copy for the LM head unless tied)
        attention    hidden * hidden * 2            (q and o)
                     + hidden * kv_dim * 2          (k and v; kv_dim = hidden * kv_heads / heads)
        MLP          hidden * intermediate * 3      (gate, up, down)
        norms        hidden * 2 per layer, + hidden for the final norm
    """
    kv_dim = hidden_size * num_key_value_heads // num_attention_heads
    per_layer = 2 * hidden_size * hidden_size + 2 * hidden_size * kv_dim + 3 * hidden_size * intermediate_size \
        + 2 * hidden_size
    embeddings = vocab_size * hidden_size * (1 if tie_word_embeddings else 2)
    return embeddings + num_layers * per_layer + hidden_size


def logits_bytes(num_sequences: int, max_length: int, vocab_size: int, bytes_per_value: int = 4) -> int:
    """Size of the [num_sequences, max_length, vocab] logits a plain LM head would build (fp32 by default).

    A DPO step on B pairs runs 2B sequences (chosen and rejected). TRL's fused LM head computes the
    per-token log-probs in chunks and never holds this tensor.
    """
    return num_sequences * max_length * vocab_size * bytes_per_value


# The configurations compared in notebook 05: (label, stage, offload_optimizer, offload_params).
STANDARD_SETUPS = [
    ("data parallel (stage 0)", 0, False, False),
    ("ZeRO-1", 1, False, False),
    ("ZeRO-2", 2, False, False),
    ("ZeRO-3", 3, False, False),
    ("ZeRO-3 + offload optimizer", 3, True, False),
    ("ZeRO-3 + offload optimizer + params", 3, True, True),
]


def memory_table(num_params: float, num_gpus: int, *, reference_model: bool = True,
                 gpus_per_node: int | None = None) -> list[tuple[str, ZeroMemory]]:
    """``zero_memory`` for each of ``STANDARD_SETUPS``."""
    return [(label, zero_memory(num_params, num_gpus, stage, offload_optimizer=opt, offload_params=par,
                                reference_model=reference_model, gpus_per_node=gpus_per_node))
            for label, stage, opt, par in STANDARD_SETUPS]


def plot_memory_table(table: list[tuple[str, ZeroMemory]], gpu_memory_gib: float | None = 80.0, ax=None):
    """Stacked bars of GiB per GPU by part (parameters, gradients, optimizer, reference), one bar per setup."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    labels = [label for label, _ in table]
    parts = list(dict.fromkeys(part for _, memory in table for part in memory.gpu))
    bottom = [0.0] * len(table)
    for part in parts:
        heights = [memory.gpu.get(part, 0.0) / GiB for _, memory in table]
        ax.barh(labels, heights, left=bottom, label=part)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for y, total in enumerate(bottom):
        ax.text(total, y, f" {total:.1f}", va="center", fontsize=8)
    if gpu_memory_gib:
        ax.axvline(gpu_memory_gib, color="red", ls="--", lw=1, label=f"{gpu_memory_gib:g} GiB GPU")
    ax.invert_yaxis()
    ax.set(xlabel="GiB per GPU (model states only: no activations)")
    ax.legend(fontsize=8, loc="lower right")
    return ax
