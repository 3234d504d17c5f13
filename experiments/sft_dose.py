"""How much SFT does the model need before it asks and declines? The dev file's scores along one SFT run.

    python experiments/sft_dose.py --out runs/sft_dose --every 75 [FIELD=VALUE ...]

Trains SFT once (the recipe, with FIELD=VALUE overrides; ``steps`` and ``lr`` are short for ``sft_steps`` and
``sft_learning_rate``; 375 steps of 4 conversations is one epoch of ``data/sft.jsonl``), keeping the training
state every N steps, so a run cut off goes on from there when started again. Each kept adapter is merged into
the base and judged greedily on the dev file (``data/dev_dialog.jsonl``: the evaluation's format on tools in
neither training nor ``data/eval_dialog.jsonl``), with the first-action diagnostic beside it (the lean per turn
type and how well it ranks slot and relevance turns against call turns). The step to stop SFT at is chosen
here, on dev; the evaluation file is scored once, by the finished recipe.

Writes into --out (not committed): sft_dose.md and sft_dose.json, rewritten after every checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import behaviour_table, comparison_table
from diatool_utils.first_action import first_action_of_checkpoint, first_action_table
from diatool_utils.models import load_model_and_tokenizer
from diatool_utils.paths import DEV_DIALOGS, REPO_ROOT
from diatool_utils.pipeline import (
    Recipe,
    evaluate_checkpoint,
    merge_adapter,
    recipe_overrides,
    shown_path,
    train_sft,
)

SHORT = {"steps": "sft_steps", "lr": "sft_learning_rate"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "sft_dose")
    parser.add_argument("--every", type=int, required=True, help="keep the training state and judge on dev every N steps")
    parser.add_argument("settings", nargs="*", metavar="FIELD=VALUE", help="recipe overrides")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every must be at least 1, got {args.every}")
    recipe = Recipe(**{"eval_data": str(DEV_DIALOGS), **recipe_overrides(args.settings, SHORT)})
    command = shlex.join(["python", shown_path(str(Path(__file__).resolve())),
                          *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "recipe": json.loads(recipe.to_json()), "steps": {}, "seconds": {}}

    start = time.perf_counter()
    stage = train_sft(recipe, args.out, reuse=True, checkpoint_every=args.every)
    result["seconds"]["sft"], result["history"] = round(time.perf_counter() - start, 1), stage.history
    folder = stage.path.parent
    steps = sorted({*range(args.every, recipe.sft_steps, args.every), recipe.sft_steps})
    cases = load_dialog_benchmark(recipe.eval_data)[: recipe.eval_limit or None]
    conversations = len(load_jsonl_rows(recipe.sft_data))
    reports = {}
    for step in steps:
        start = time.perf_counter()
        merged = stage.path if step == recipe.sft_steps else folder / f"step-{step}"
        if step != recipe.sft_steps and not (merged / "model.safetensors").is_file():
            merge_adapter(recipe.model_name, folder / f"checkpoint-{step}", merged)
        reports[f"step {step}"] = report = evaluate_checkpoint(merged, recipe, args.out / f"dev_step{step}.jsonl",
                                                               reuse=True)
        model, tokenizer = load_model_and_tokenizer(str(merged))
        first_action = first_action_of_checkpoint(model, tokenizer, cases, batch_size=recipe.eval_batch_size)
        del model
        epochs = step * recipe.sft_batch_size / conversations
        result["steps"][step] = {"epochs": round(epochs, 2), "dev": report.summary, "first_action": first_action}
        result["seconds"][f"step {step}"] = round(time.perf_counter() - start, 1)
        print(f"step {step} ({epochs:.2f} epochs): {report.summary['per_type']}", flush=True)
        _write(args.out, result, reports)
    return result


def load_jsonl_rows(path) -> list[str]:
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(out: Path, result: dict, reports: dict) -> None:
    """sft_dose.md / .json for the checkpoints judged so far."""
    first = {f"step {step}": row["first_action"] for step, row in result["steps"].items()}
    parts = ["Dev file (`data/dev_dialog.jsonl`), greedy:", comparison_table(reports), behaviour_table(reports),
             first_action_table(first), f"Command: `{result['command']}`"]
    (out / "sft_dose.md").write_text("\n\n".join(parts) + "\n")
    (out / "sft_dose.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
