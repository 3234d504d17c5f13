"""How does one DiaTool-DPO run move the model, step by step? The first-action diagnostic along a run.

    python experiments/dpo_trajectory.py --sft runs/04_qlora/sft/merged --out runs/trajectory --every 10 \
        [FIELD=VALUE ...] [--eval-steps 10 20]

Trains DPO once (the recipe, with FIELD=VALUE overrides of its fields; ``steps``, ``lr`` and ``rows``
are short for ``dpo_steps``, ``dpo_learning_rate`` and ``dpo_rows``) and keeps the adapter every N
steps. Each kept adapter is merged into the SFT model and measured with the first-action diagnostic
(``diatool_utils/first_action.py``: mean P(text) per turn type, and the AUCs of slot and relevance
turns against call turns; every turn of the recipe's ``eval_data``, in batches of its
``eval_batch_size``; 65-73 s a step on 2 CPU cores). The SFT model is step 0.

Greedy decoding only shows which side of 1/2 P(text) falls on, and a full evaluation takes about
8-9.5 min on 2 CPU cores; the trajectory says which steps are worth it. ``--eval-steps`` runs the
greedy Call / Completion / Slot / Relevance evaluation at those steps (0 is the SFT model).

Writes into --out (default ``runs/dpo_trajectory``, not committed): trajectory.md, trajectory.json and
trajectory.png, rewritten after every step.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from diatool_utils.benchmark import load_dialog_benchmark  # noqa: E402
from diatool_utils.evaluation import behaviour_table, comparison_table  # noqa: E402
from diatool_utils.first_action import first_action_of_checkpoint, first_action_table  # noqa: E402
from diatool_utils.models import load_model_and_tokenizer  # noqa: E402
from diatool_utils.paths import REPO_ROOT  # noqa: E402
from diatool_utils.pipeline import (  # noqa: E402
    Recipe,
    evaluate_checkpoint,
    merge_adapter,
    recipe_overrides,
    shown_path,
    train_dpo,
)
from diatool_utils.plotting import plot_first_action_steps  # noqa: E402

SHORT = {"steps": "dpo_steps", "lr": "dpo_learning_rate", "rows": "dpo_rows"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", type=Path, required=True, help="the merged SFT checkpoint DPO starts from")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "dpo_trajectory")
    parser.add_argument("--every", type=int, required=True, help="keep and measure the adapter every N steps")
    parser.add_argument("--eval-steps", type=int, nargs="*", default=[], help="greedy evaluation at these steps")
    parser.add_argument("settings", nargs="*", metavar="FIELD=VALUE", help="recipe overrides")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every must be at least 1, got {args.every}")
    recipe = Recipe(**recipe_overrides(args.settings, SHORT))
    measured = {0, *range(args.every, recipe.dpo_steps + 1, args.every), recipe.dpo_steps}
    if unknown := sorted(set(args.eval_steps) - measured):
        parser.error(f"--eval-steps {unknown}: steps are measured at {sorted(measured)} only")
    command = shlex.join(["python", shown_path(str(Path(__file__).resolve())),
                          *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    cases = load_dialog_benchmark(recipe.eval_data)
    result = {"command": command, "recipe": json.loads(recipe.to_json()), "steps": {}, "evaluations": {}, "seconds": {}}

    start = time.perf_counter()
    stage = train_dpo(recipe, args.sft, args.out, checkpoint_every=args.every)
    result["seconds"]["dpo"] = round(time.perf_counter() - start, 1)
    result["history"] = stage.history
    folder = stage.path.parent  # run_dir/dpo-<ablation>
    checkpoints = {0: args.sft, recipe.dpo_steps: stage.path}
    for step in sorted(measured - set(checkpoints)):
        checkpoints[step] = merge_adapter(str(args.sft), folder / f"checkpoint-{step}", folder / f"step-{step}")

    reports = {}
    for step in sorted(checkpoints):
        start = time.perf_counter()
        model, tokenizer = load_model_and_tokenizer(str(checkpoints[step]))
        result["steps"][step] = first_action_of_checkpoint(model, tokenizer, cases, batch_size=recipe.eval_batch_size)
        del model
        result["seconds"][f"first action {step}"] = round(time.perf_counter() - start, 1)
        if step in args.eval_steps:
            report = evaluate_checkpoint(checkpoints[step], recipe, args.out / f"eval_step{step}.jsonl")
            reports[f"step {step}"] = report
            result["evaluations"][step] = report.summary
            result["seconds"][f"eval {step}"] = report.timing["wall_seconds"]
        print(f"step {step}: {result['steps'][step]}", flush=True)
        _write(args.out, result, reports)
    return result


def _write(out: Path, result: dict, reports: dict) -> None:
    """trajectory.md / .json / .png for the steps measured so far."""
    steps = result["steps"]
    parts = [first_action_table({f"step {step}": stats for step, stats in steps.items()})]
    if reports:
        parts += [comparison_table(reports), behaviour_table(reports)]
    parts.append(f"Command: `{result['command']}`")
    (out / "trajectory.md").write_text("\n\n".join(parts) + "\n")
    (out / "trajectory.json").write_text(json.dumps(result, indent=2, default=str))

    fig = plot_first_action_steps(steps)[0].figure
    fig.tight_layout()
    fig.savefig(out / "trajectory.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
