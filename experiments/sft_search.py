"""Which SFT recipe gives DPO something to re-rank? Train several SFT variants from one base, measure each.

    python experiments/sft_search.py --out runs/sft_search --dpo \\
        --variant plain --variant first-token-x20 sft_decision_weight=20

Each ``--variant NAME [FIELD=VALUE ...]`` is one SFT run from the recipe's base model, with those
Recipe fields changed (``weight``, ``steps`` and ``lr`` are short for ``sft_decision_weight``,
``sft_steps`` and ``sft_learning_rate``). Every SFT model is judged two ways:

- greedy Call / Completion / Slot / Relevance (``evaluation``), what the paper's table reports;
- the first-action diagnostic (``first_action``): how well P(text reply) ranks the slot and
  relevance turns above the call turns. DPO moves where the model leans; the ranking is what
  SFT must supply.

With ``--dpo`` each SFT model then gets the recipe's DiaTool-DPO run and the same two measurements.
Writes search.md and search.json into --out (default ``runs/sft_search``, not committed), rewritten
after every variant; ``--minutes`` starts no new variant after that much wall time and lists what it
left out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import behaviour_table, comparison_table
from diatool_utils.first_action import first_action_of_checkpoint, first_action_table
from diatool_utils.models import load_model_and_tokenizer
from diatool_utils.paths import REPO_ROOT
from diatool_utils.pipeline import (
    Recipe,
    evaluate_checkpoint,
    recipe_overrides,
    shown_path,
    train_dpo,
    train_sft,
)

SHORT = {"weight": "sft_decision_weight", "steps": "sft_steps", "lr": "sft_learning_rate"}


def measure(folder, recipe: Recipe, out: Path, name: str) -> tuple:
    """(greedy EvalReport, first-action stats, seconds) of one merged checkpoint."""
    start = time.perf_counter()
    report = evaluate_checkpoint(folder, recipe, out / f"eval_{name}.jsonl")
    model, tokenizer = load_model_and_tokenizer(str(folder))
    cases = load_dialog_benchmark(recipe.eval_data)[: recipe.eval_limit or None]
    first = first_action_of_checkpoint(model, tokenizer, cases, batch_size=recipe.eval_batch_size)
    return report, first, round(time.perf_counter() - start, 1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "sft_search")
    parser.add_argument("--variant", nargs="+", action="append", required=True, metavar="NAME [FIELD=VALUE]")
    parser.add_argument("--base", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="recipe changes shared by every variant, e.g. model_name=runs/base eval_limit=40")
    parser.add_argument("--dpo", action="store_true", help="also run DiaTool-DPO on each SFT model")
    parser.add_argument("--minutes", type=float, default=None, help="start no new variant after this many minutes")
    args = parser.parse_args(argv)
    base = Recipe(**recipe_overrides(args.base, SHORT, "--base: "))
    variants = {name: recipe_overrides(settings, SHORT, f"--variant {name}: ") for name, *settings in args.variant}
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    reports, results = {}, {"variants": {}, "left_out": [], "base": json.loads(base.to_json())}
    for name, overrides in variants.items():
        if args.minutes and time.perf_counter() - start > 60 * args.minutes:
            results["left_out"].append(name)
            continue
        recipe = replace(base, **overrides)
        sft = train_sft(recipe, args.out / name)
        report, first, seconds = measure(sft.path, recipe, args.out, f"{name}_sft")
        reports[f"{name} SFT"] = report
        entry = {"overrides": overrides, "sft": {"summary": report.summary, "first_action": first,
                                                 "train_seconds": round(sft.seconds, 1), "measure_seconds": seconds,
                                                 "history": sft.history}}
        if args.dpo:
            dpo = train_dpo(recipe, sft.path, args.out / name)
            report, first, seconds = measure(dpo.path, recipe, args.out, f"{name}_dpo")
            reports[f"{name} +DPO"] = report
            entry["dpo"] = {"summary": report.summary, "first_action": first, "train_seconds": round(dpo.seconds, 1),
                            "measure_seconds": seconds, "history": dpo.history}
        results["variants"][name] = entry
        print(f"{name}: {json.dumps({k: v['summary'] for k, v in entry.items() if k != 'overrides'})}", flush=True)
        _write(args.out, reports, results, argv)
    _write(args.out, reports, results, argv)
    print(comparison_table(reports))
    return results


def _write(out: Path, reports: dict, results: dict, argv) -> None:
    """Rewritten after every variant, so a run stopped early still leaves its finished variants."""
    command = shlex.join(["python", shown_path(str(Path(__file__).resolve())),
                          *(argv if argv is not None else sys.argv[1:])])
    stats = {f"{name} {'SFT' if stage == 'sft' else '+DPO'}": entry[stage]["first_action"]
             for name, entry in results["variants"].items() for stage in ("sft", "dpo") if stage in entry}
    times = "\n".join(f"| {name} | {json.dumps(entry['overrides'])} | {entry['sft']['train_seconds'] / 60:.1f} min | "
                      + (f"{entry['dpo']['train_seconds'] / 60:.1f} min |" if "dpo" in entry else "- |")
                      for name, entry in results["variants"].items())
    left_out = f"\nLeft out (time): {', '.join(results['left_out'])}\n" if results["left_out"] else ""
    (out / "search.md").write_text(
        f"{comparison_table(reports)}\n\nFirst action (P(text) at each turn's recipient):\n\n"
        f"{first_action_table(stats)}\n\n| variant | recipe changes | SFT | DPO |\n|---|---|---|---|\n{times}\n"
        f"{left_out}\nWhat the replies did (counts of turns; the right action in bold):\n\n"
        f"{behaviour_table(reports)}\n\nCommand: `{command}`\n")
    (out / "search.json").write_text(json.dumps({**results, "command": command}, indent=2, default=list))


if __name__ == "__main__":
    main()
