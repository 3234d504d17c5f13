"""Step time and peak memory: DiaToolDPOTrainer against TRL's DPOTrainer and a naive per-turn loop.

Three implementations train on the same pairs, with the same model, reference model and settings,
for dialogues of 1, 2, 4 and 8 assistant turns per trajectory:

    trl      TRL 1.16's DPOTrainer (sequence-level DPO over every completion token), the speed to match
    diatool  DiaToolDPOTrainer: TRL's fused-LM-head log-probs, per-turn sums by one scatter_add
    shared   (--paired only) DiaToolDPOTrainer with the shared-prefix forward (its default): each pair's
             common tokens run once, both continuations on their KV cache
    naive    NAIVE BASELINE (written here, for comparison only): the same DiaTool-DPO loss the
             straightforward way, as the original implementation did: full [2B, L, V] logits, then a
             Python loop over samples and turns that slices each turn's logits and log-softmaxes them

Each (implementation, turns) runs in a fresh Python process: `warmup` training steps, then `steps`
timed ones (forward, backward and optimizer step, from Trainer's on_step_begin to on_step_end).

Memory, per process, over the timed steps only:
    CPU   peak resident set size (Linux VmHWM, reset through /proc/self/clear_refs when the first timed
          step begins) minus the resident size at that moment: the extra memory a step needs
    CUDA  torch.cuda.max_memory_allocated() minus memory_allocated() at that moment (peak stats reset)

    python benchmarks/bench_trainer.py                                             # embedded model, ~10 min on CPU
    MODEL_NAME=tiny-random python benchmarks/bench_trainer.py --steps 2            # a quick check
    python benchmarks/bench_trainer.py --random-init                               # SmolLM2 shape, random weights
    python benchmarks/bench_trainer.py --paired 3           # TRL, DiaTool, shared prefix taking turns, ~45 min

Writes benchmarks/results/bench_trainer_<device>_<model>.{json,md,png} and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from statistics import geometric_mean, median

RESULTS_DIR = Path(__file__).resolve().parent / "results"
IMPLEMENTATIONS = ("trl", "diatool", "naive")
CITIES = ["Seoul", "Paris", "Oslo", "Lima", "Cairo", "Quito", "Rome", "Tokyo"]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]


# ---------------------------------------------------------------------------------------------
# The pairs: T assistant turns on each side (T - 1 tool calls with their results, then a reply)
# ---------------------------------------------------------------------------------------------

def trajectory(turns: int, cities: list[str], closing: str) -> list[dict]:
    messages = []
    for t in range(turns - 1):
        call_id = f"call_{t}"
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": cities[t]})}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "name": "get_weather",
                         "content": json.dumps({"city": cities[t], "sky": "sunny", "celsius": 20 + t})})
    messages.append({"role": "assistant", "content": closing})
    return messages


def offered_tools(count: int) -> list[dict]:
    """get_weather plus the first count - 1 tools of the synthetic catalogue, as OpenAI-style tools."""
    from diatool_utils.synthetic_tools import TOOLS as CATALOGUE

    return TOOLS + [tool.openai_schema() for tool in CATALOGUE[:count - 1]]


EARLIER_REQUEST = [  # a finished request before the one the pair contrasts, as in half of data/dpo_pairs.jsonl
    {"role": "user", "content": "First, what's the weather in Madrid right now?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_m", "type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "Madrid"})}}]},
    {"role": "tool", "tool_call_id": "call_m", "name": "get_weather",
     "content": json.dumps({"city": "Madrid", "sky": "cloudy", "celsius": 17})},
    {"role": "assistant", "content": "Cloudy in Madrid, 17 degrees."},
]


def benchmark_pair(turns: int, tools: int = 1) -> dict:
    """T assistant turns on each side, contrasted from the first token: T - 1 calls with results, then a reply.

    ``tools`` = 1 is the short prompt of the earlier runs (one tool, one user message). With more tools the
    prompt is what a DiaTool pair carries: the offered tools and an earlier finished request before the one
    the pair contrasts, which both sides share.
    """
    prompt = [{"role": "user", "content": "Check the weather in my cities one by one, then sum it up."}]
    if tools > 1:
        prompt = EARLIER_REQUEST + [{"role": "user", "content": "Now check my other cities one by one, then sum "
                                                                "it up."}]
    return {"id": f"bench-{turns}-{tools}", "tools": offered_tools(tools), "prompt": prompt,
            "chosen": trajectory(turns, CITIES, "All sunny, between 20 and 27 degrees."),
            "rejected": trajectory(turns, CITIES[::-1], "I could not find anything useful, sorry.")}


def data_pairs(count: int = 4) -> list[dict]:
    """The first ``count`` pairs of data/dpo_pairs.jsonl: the token shapes training really sees."""
    with (Path(__file__).resolve().parent.parent / "data" / "dpo_pairs.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(next(handle)) for _ in range(count)]


def trl_rows(pairs: list[dict]) -> list[dict]:
    """TRL's prompt/completion text for the same pairs (see tests/test_trainer.py for the token equivalence).

    TRL scores every token after the prompt, so for multi-turn pairs it also scores the tool results
    in between: same sequences, same compute, a different (sequence-level) loss.
    """
    from diatool_utils.templating import render_conversation

    rows = []
    for pair in pairs:
        prompt = render_conversation(pair["prompt"], pair["tools"], add_generation_prompt=True)
        row = {"prompt": prompt}
        for side in ("chosen", "rejected"):
            row[side] = render_conversation(pair["prompt"] + pair[side], pair["tools"])[len(prompt):-1]
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# NAIVE BASELINE: the same loss with full logits and a Python loop over samples and turns
# ---------------------------------------------------------------------------------------------

def naive_trainer_class():
    import torch
    import torch.nn.functional as F

    from diatool_utils.trainer import DiaToolDPOTrainer

    class NaiveLoopDiaToolDPOTrainer(DiaToolDPOTrainer):
        """NAIVE BASELINE, for this benchmark only. Do not train with it.

        The DiaTool-DPO loss as a first implementation would write it: materialise the logits of every
        position ([2B, L, V]) for the policy and the reference, then for each sample and each turn slice
        that turn's logits, log-softmax them and sum the log-probs of its tokens, and build R(tau) from
        Python floats phi(t, T) and psi(T).
        """

        def _compute_loss(self, model, inputs, return_outputs=False):
            kwargs = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                      "use_cache": False}
            logits = model(**kwargs).logits  # [2B, L, V]
            with torch.no_grad():
                ref_logits = self.ref_model(**kwargs).logits
            gamma, beta = self.args.gamma, self.beta
            margin = self.args.margin if self.args.use_margin else 0.0
            rewards = []
            for row in range(logits.size(0)):
                num_turns = int(inputs["num_turns"][row])
                logratios = []
                for turn in range(num_turns):
                    positions = (inputs["turn_index"][row] == turn).nonzero().squeeze(1)
                    targets = inputs["input_ids"][row, positions, None]
                    policy = logits[row, positions - 1].log_softmax(-1).gather(-1, targets).sum()
                    reference = ref_logits[row, positions - 1].log_softmax(-1).gather(-1, targets).sum()
                    logratios.append(policy - reference)
                if gamma == 1.0:
                    phi = [(num_turns - t) / num_turns for t in range(num_turns)]
                else:
                    phi = [(1 - gamma ** (num_turns - t)) / (1 - gamma ** num_turns) for t in range(num_turns)]
                rewards.append(sum(w * lr for w, lr in zip(phi, logratios, strict=True)) / sum(phi))
            half = len(rewards) // 2
            losses = [-F.logsigmoid(beta * (rewards[b] - rewards[half + b] - margin)) for b in range(half)]
            chosen = torch.stack(rewards[:half]).detach() * beta
            rejected = torch.stack(rewards[half:]).detach() * beta
            metrics = self._metrics["train" if self.model.training else "eval"]
            metrics["rewards/chosen"].append(chosen.mean().item())
            metrics["rewards/rejected"].append(rejected.mean().item())
            metrics["rewards/margins"].append((chosen - rejected).mean().item())
            return torch.stack(losses).mean()

    return NaiveLoopDiaToolDPOTrainer


# ---------------------------------------------------------------------------------------------
# One measurement (runs in its own process)
# ---------------------------------------------------------------------------------------------

def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def step_timer(warmup: int):
    import torch
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()

    class StepTimer(TrainerCallback):
        """Times each optimizer step; measures the peak extra memory of the steps after the warm-up."""

        def __init__(self):
            self.times, self.base_bytes, self.peak_bytes = [], None, None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == warmup:
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    self.base_bytes = torch.cuda.memory_allocated()
                else:
                    with open("/proc/self/clear_refs", "w") as clear_refs:
                        clear_refs.write("5")  # reset the peak resident set size (VmHWM)
                    self.base_bytes = _proc_status_kib("VmRSS") * 1024
            if cuda:
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.start)
            if state.global_step > warmup:
                peak = torch.cuda.max_memory_allocated() if cuda else _proc_status_kib("VmHWM") * 1024
                self.peak_bytes = max(self.peak_bytes or 0, peak)

    return StepTimer()


def load_model(model_name: str, random_init: bool):
    import torch

    from diatool_utils.models import load_model_and_tokenizer, load_tokenizer, resolve_model_path

    if not random_init:
        return load_model_and_tokenizer(model_name)
    # Same architecture and tokenizer, random weights: step time and memory do not depend on the values.
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(resolve_model_path(model_name))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    if torch.cuda.is_available():
        model = model.to("cuda", torch.bfloat16)
    return model, load_tokenizer(model_name)


def measure(implementation: str, turns: int, model_name: str, steps: int, warmup: int, batch: int,
            random_init: bool) -> dict:
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from diatool_utils.templating import add_functionary_tokens
    from diatool_utils.trainer import DiaToolDPOConfig, DiaToolDPOTrainer

    model, tokenizer = load_model(model_name, random_init)
    add_functionary_tokens(tokenizer, model)
    ref_model = copy.deepcopy(model)  # every implementation gets the same explicit reference
    pairs = [benchmark_pair(turns)] * (batch * (warmup + steps))
    cuda = torch.cuda.is_available()
    settings = dict(output_dir=tempfile.mkdtemp(prefix="bench_trainer_"), per_device_train_batch_size=batch,
                    max_steps=warmup + steps, learning_rate=1e-6, bf16=cuda, gradient_checkpointing=False,
                    report_to=[], save_strategy="no", disable_tqdm=True, logging_steps=1, seed=0,
                    dataloader_drop_last=True)
    if implementation == "trl":
        trl_tokenizer = copy.deepcopy(tokenizer)
        trl_tokenizer.eos_token = "<|stop|>"
        trainer = DPOTrainer(model, ref_model=ref_model, args=DPOConfig(**settings),
                             train_dataset=Dataset.from_list(trl_rows(pairs)), processing_class=trl_tokenizer)
    else:
        trainer_class = DiaToolDPOTrainer if implementation == "diatool" else naive_trainer_class()
        # every sequence whole, as TRL runs them (the shared-prefix forward is measured by --paired)
        trainer = trainer_class(model, ref_model=ref_model, args=DiaToolDPOConfig(**settings, shared_prefix=False),
                                train_dataset=pairs, processing_class=tokenizer)
    batch_inputs = trainer.data_collator([trainer.train_dataset[0]])
    timer = step_timer(warmup)
    trainer.add_callback(timer)
    trainer.train()
    timed = timer.times[warmup:]
    return {
        "implementation": implementation, "turns": turns, "batch_pairs": batch,
        "tokens_per_sequence": batch_inputs["attention_mask"].sum(1).tolist(),
        "step_seconds": timed, "step_seconds_median": sorted(timed)[len(timed) // 2],
        "warmup_seconds": timer.times[:warmup],
        "peak_extra_mib": (timer.peak_bytes - timer.base_bytes) / 2**20,
        "base_mib": timer.base_bytes / 2**20,
        "loss": trainer.state.log_history[-2].get("loss"),
    }


# ---------------------------------------------------------------------------------------------
# Paired timing: TRL and DiaTool alternate in one process, so drift from other processes cancels
# ---------------------------------------------------------------------------------------------

PAIRED = ("trl", "diatool", "shared")


def _peak_tracker(cuda: bool):
    """(start, stop): stop() returns the peak extra bytes since start(), as in step_timer."""
    import torch

    state = {}

    def start():
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            state["base"] = torch.cuda.memory_allocated()
        else:
            # Memory freed by the previous forward + backward stays resident (glibc keeps it), and the next one
            # would reuse it without raising RSS: hand it back first, so the peak counts what this one needs.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            state["base"] = _proc_status_kib("VmRSS") * 1024

    def stop() -> int:
        if cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - state["base"]
        return _proc_status_kib("VmHWM") * 1024 - state["base"]

    return start, stop


def paired_shapes(turns_list: list[int], tools_list: list[int], data: bool,
                  only: list[str] | None = None) -> list[tuple[str, list[dict]]]:
    """The batches to time: one pair per (turns, tools), or only the TURNS:TOOLS given, then 4 data pairs."""
    grid = [(turns, tools) for tools in tools_list for turns in turns_list]
    if only:
        grid = [tuple(int(part) for part in shape.split(":")) for shape in only]
    shapes = [(f"{turns} turns, {tools} tools", [benchmark_pair(turns, tools)]) for turns, tools in grid]
    if data:
        shapes.append(("4 pairs of data/dpo_pairs.jsonl", data_pairs(4)))
    return shapes


def paired(model_name: str, shapes: list[tuple[str, list[dict]]], repeats: int, random_init: bool,
           on_row=None) -> list[dict]:
    """Forward + backward of the same batch (no optimizer) for TRL, DiaTool and DiaTool with the shared prefix,
    taking turns, ``repeats`` rounds after one warm-up round.

    On a shared machine the load changes from one minute to the next; taking turns step by step puts every
    implementation under the same load, so the ratios are much steadier than across processes. The order
    rotates each round, so over a multiple of 3 rounds each implementation runs first, second and third
    equally often. Memory: the peak extra bytes of each forward + backward (RSS on the CPU).
    """
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from diatool_utils.templating import add_functionary_tokens
    from diatool_utils.trainer import DiaToolDPOConfig, DiaToolDPOTrainer

    model, tokenizer = load_model(model_name, random_init)
    add_functionary_tokens(tokenizer, model)
    cuda = torch.cuda.is_available()
    settings = dict(output_dir=tempfile.mkdtemp(prefix="bench_trainer_"), bf16=cuda, gradient_checkpointing=False,
                    report_to=[], disable_tqdm=True, max_length=None)
    trl_tokenizer = copy.deepcopy(tokenizer)
    trl_tokenizer.eos_token = "<|stop|>"
    start_peak, stop_peak = _peak_tracker(cuda)
    rows = []
    for name, pairs in shapes:
        batch_size = dict(per_device_train_batch_size=len(pairs))
        trainers = {
            "trl": DPOTrainer(copy.deepcopy(model), ref_model=copy.deepcopy(model),
                              args=DPOConfig(**settings, **batch_size),
                              train_dataset=Dataset.from_list(trl_rows(pairs)), processing_class=trl_tokenizer),
            "diatool": DiaToolDPOTrainer(copy.deepcopy(model), ref_model=copy.deepcopy(model),
                                         args=DiaToolDPOConfig(**settings, **batch_size, shared_prefix=False),
                                         train_dataset=pairs, processing_class=tokenizer),
            "shared": DiaToolDPOTrainer(copy.deepcopy(model), ref_model=copy.deepcopy(model),
                                        args=DiaToolDPOConfig(**settings, **batch_size, shared_prefix=True),
                                        train_dataset=pairs, processing_class=tokenizer),
        }
        batches = {}
        for key, trainer in trainers.items():
            trainer.model.train()
            dataset = trainer.train_dataset
            batches[key] = trainer._prepare_inputs(trainer.data_collator([dataset[i] for i in range(len(dataset))]))
        times, peaks = {key: [] for key in trainers}, {key: [] for key in trainers}
        for repeat in range(repeats + 1):  # the first round warms up
            order = PAIRED[repeat % 3:] + PAIRED[:repeat % 3]
            for key in order:
                trainer = trainers[key]
                start_peak()
                start = time.perf_counter()
                trainer.compute_loss(trainer.model, batches[key]).backward()
                if cuda:
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                if repeat:
                    times[key].append(seconds)
                    peaks[key].append(stop_peak() / 2**20)
                trainer.model.zero_grad(set_to_none=True)
        ours = batches["diatool"]
        row = {"shape": name, "pairs": len(pairs), "tokens_per_sequence": ours["attention_mask"].sum(1).tolist(),
               "shared_prefix_tokens": split_tokens(ours),
               "seconds": times, "peak_extra_mib": peaks}
        for key in ("diatool", "shared"):
            ratios = [ours_s / trl_s for ours_s, trl_s in zip(times[key], times["trl"], strict=True)]
            row[f"{key}_ratios"] = ratios
            row[f"{key}_time_ratio"] = geometric_mean(ratios)
            row[f"{key}_memory_ratio"] = median(peaks[key]) / max(median(peaks["trl"]), 1e-9)
        rows.append(row)
        if on_row is not None:
            on_row(rows)  # write what is measured so far: a long run stopped early keeps its rows
        print(f"paired {name}: time / TRL diatool {row['diatool_time_ratio']:.3f}, shared "
              f"{row['shared_time_ratio']:.3f}; memory / TRL diatool {row['diatool_memory_ratio']:.3f}, shared "
              f"{row['shared_memory_ratio']:.3f}", flush=True)
        del trainers
    return rows


def split_tokens(batch: dict) -> int:
    """Tokens the shared-prefix forward reads for this batch (one prefix per pair plus both continuations)."""
    from diatool_utils.shared_prefix import split_pair_batch

    labels = batch["input_ids"].masked_fill(batch["turn_index"] < 0, -100)
    split = split_pair_batch(batch["input_ids"], batch["attention_mask"], batch["turn_index"], labels)
    return split.tokens if split is not None else int(batch["attention_mask"].sum())


def paired_table(rows: list[dict]) -> str:
    lines = ["| pairs | tokens / sequence | tokens read, shared / whole | TRL s | DiaTool s | shared s "
             "| DiaTool / TRL time | **shared / TRL time** | DiaTool / TRL memory | **shared / TRL memory** |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        tokens = row["tokens_per_sequence"]
        seconds = {key: median(values) for key, values in row["seconds"].items()}
        shown = "/".join(str(n) for n in tokens) if len(tokens) <= 2 else f"{min(tokens)}-{max(tokens)}"
        lines.append(
            f"| {row['shape']} | {shown} | {row['shared_prefix_tokens'] / sum(tokens):.2f} "
            f"| {seconds['trl']:.2f} | {seconds['diatool']:.2f} | {seconds['shared']:.2f} "
            f"| {row['diatool_time_ratio']:.2f} | **{row['shared_time_ratio']:.2f}** "
            f"| {row['diatool_memory_ratio']:.2f} | **{row['shared_memory_ratio']:.2f}** |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The whole run: one process per measurement, a table, a JSON file and a plot
# ---------------------------------------------------------------------------------------------

def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def markdown_table(rows: list[dict], turns_list: list[int]) -> str:
    by = {(r["implementation"], r["turns"]): r for r in rows}
    lines = ["| turns | tokens / sequence | TRL s/step | DiaTool s/step | naive s/step | DiaTool / TRL time "
             "| TRL peak MiB | DiaTool peak MiB | naive peak MiB | DiaTool / TRL memory |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for turns in turns_list:
        trl, ours, naive = (by.get((name, turns)) for name in IMPLEMENTATIONS)
        if not (trl and ours and naive):
            continue
        tokens = "/".join(str(n) for n in ours["tokens_per_sequence"])
        lines.append(
            f"| {turns} | {tokens} | {trl['step_seconds_median']:.3f} | {ours['step_seconds_median']:.3f} "
            f"| {naive['step_seconds_median']:.3f} | {ours['step_seconds_median'] / trl['step_seconds_median']:.3f} "
            f"| {trl['peak_extra_mib']:.0f} | {ours['peak_extra_mib']:.0f} | {naive['peak_extra_mib']:.0f} "
            f"| {ours['peak_extra_mib'] / trl['peak_extra_mib']:.3f} |")
    return "\n".join(lines)


def plot(rows: list[dict], turns_list: list[int], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"trl": "TRL DPOTrainer", "diatool": "DiaToolDPOTrainer", "naive": "naive per-turn loop"}
    fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in IMPLEMENTATIONS:
        points = sorted((r["turns"], r) for r in rows if r["implementation"] == name)
        xs = [t for t, _ in points]
        ax_time.plot(xs, [r["step_seconds_median"] for _, r in points], marker="o", label=labels[name])
        ax_memory.plot(xs, [r["peak_extra_mib"] for _, r in points], marker="o", label=labels[name])
    for ax, ylabel in ((ax_time, "seconds per step (median)"), (ax_memory, "peak extra memory per step (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(turns_list, [str(t) for t in turns_list])
        ax.set_xlabel("assistant turns per trajectory")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax_time.legend()
    fig.suptitle("\n".join(textwrap.wrap(title, 120)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("MODEL_NAME", "smollm2-135m"),
                        help="smollm2-135m (default, or $MODEL_NAME), tiny-random, a folder or a Hub id")
    parser.add_argument("--turns", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=1, help="pairs per step (2x as many sequences)")
    parser.add_argument("--random-init", action="store_true",
                        help="the model's architecture with random weights (for machines without the weights)")
    parser.add_argument("--paired", type=int, metavar="ROUNDS", default=0,
                        help="instead: TRL, DiaTool and DiaTool with the shared prefix take turns at forward + "
                             "backward in one process for ROUNDS rounds (a multiple of 3: the order rotates)")
    parser.add_argument("--tools", type=int, nargs="+", default=[3, 10],
                        help="with --paired: tools offered in the synthetic pairs (1 = the short one-tool prompt)")
    parser.add_argument("--shapes", nargs="+", metavar="TURNS:TOOLS",
                        help="with --paired: only these synthetic pairs (e.g. 4:3 8:10) instead of --turns x --tools")
    parser.add_argument("--no-data", action="store_true",
                        help="with --paired: leave out the batch of 4 pairs from data/dpo_pairs.jsonl")
    parser.add_argument("--worker", nargs=2, metavar=("IMPLEMENTATION", "TURNS"), help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.worker:
        result = measure(options.worker[0], int(options.worker[1]), options.model, options.steps,
                         options.warmup, options.batch, options.random_init)
        print("RESULT " + json.dumps(result))
        return

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if options.paired:
        started = time.time()
        stem = "bench_trainer_paired_{}_{}".format("cuda" if "CPU" not in device_name() else "cpu",
                                                   options.model.replace("/", "_"))
        title = (f"{options.model} on {device_name()}: forward + backward of one batch (policy, reference, "
                 f"backward), TRL, DiaTool and DiaTool with the shared prefix taking turns in one process, "
                 f"{options.paired} rounds after 1 warm-up; time ratios are geometric means of the round ratios, "
                 f"memory ratios of the median peak extra memory")
        command = " ".join(["python", "benchmarks/bench_trainer.py", *sys.argv[1:]])

        def write(rows: list[dict]) -> str:
            table = paired_table(rows)
            (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(
                {"title": title, "command": command, "wall_seconds": time.time() - started, "rows": rows}, indent=1))
            (RESULTS_DIR / f"{stem}.md").write_text(f"{title}\n\n{table}\n\nCommand: `{command}`\n")
            return table

        shapes = paired_shapes(options.turns, options.tools, not options.no_data, options.shapes)
        rows = paired(options.model, shapes, options.paired, options.random_init, on_row=write)
        print(f"\n{title}\n\n{write(rows)}")
        return
    started, rows = time.time(), []
    for turns in options.turns:
        for implementation in IMPLEMENTATIONS:  # interleaved, so slow drift hits every implementation
            command = [sys.executable, __file__, "--worker", implementation, str(turns), "--model", options.model,
                       "--steps", str(options.steps), "--warmup", str(options.warmup), "--batch", str(options.batch)]
            command += ["--random-init"] if options.random_init else []
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                sys.exit(f"{implementation} with {turns} turns failed:\n{done.stderr[-4000:]}")
            rows.append(json.loads(lines[-1][len("RESULT "):]))
            print(f"{implementation:8s} {turns} turns: {rows[-1]['step_seconds_median']:.3f} s/step, "
                  f"peak +{rows[-1]['peak_extra_mib']:.0f} MiB", flush=True)

    device = device_name()
    model = options.model + (" (random weights)" if options.random_init else "")
    memory = "torch.cuda.max_memory_allocated" if "CPU" not in device else "peak RSS (VmHWM) increase"
    title = (f"{model} on {device}; {options.batch} pair(s)/step, {options.steps} timed steps after "
             f"{options.warmup} warm-up; memory = {memory} during the timed steps")
    table = markdown_table(rows, options.turns)
    stem = "bench_trainer_{}_{}".format("cuda" if "CPU" not in device else "cpu",
                                        options.model.replace("/", "_") + ("-random" if options.random_init else ""))
    summary = {"title": title, "device": device, "model": model, "command": " ".join(sys.argv),
               "wall_seconds": time.time() - started, "rows": rows}
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(summary, indent=1))
    (RESULTS_DIR / f"{stem}.md").write_text(f"{title}\n\n{table}\n")
    try:
        plot(rows, options.turns, title, RESULTS_DIR / f"{stem}.png")
    except ImportError as error:  # a bare GPU machine may lack matplotlib: keep the table and JSON
        print(f"no plot: {error}")
    print(f"\n{title}\n\n{table}\n\nwrote {RESULTS_DIR / stem}.{{json,md,png}} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
