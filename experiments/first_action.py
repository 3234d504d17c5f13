"""The first-action diagnostic (diatool_utils/first_action.py) for several checkpoints on the benchmark.

    python experiments/first_action.py --out runs/first_action/first_action.md \
        SFT=runs/04_qlora/sft/merged "SFT + DiaTool-DPO"=runs/04_qlora/dpo-full/merged

Writes a Markdown table (mean P(text) per turn type, AUC of slot and relevance turns against
call turns) and a JSON file beside it with the same numbers and the command (default
``runs/first_action/first_action.md``, not committed). The benchmark and the batch size are the
recipe's (``Recipe.eval_data``, ``Recipe.eval_batch_size``) unless ``--eval-data`` / ``--batch-size``
say otherwise. ``--tools train`` builds the evaluation's plan on the training tools instead
(``generate_eval(split="train")``): whether the models tell the turns apart where the tools are known,
which separates a decision that was not learned from one that does not carry to new tools.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from diatool_utils.benchmark import cases_from_dialogs, load_dialog_benchmark
from diatool_utils.first_action import first_action_of_checkpoint, first_action_table
from diatool_utils.models import load_model_and_tokenizer
from diatool_utils.paths import REPO_ROOT
from diatool_utils.pipeline import Recipe, shown_path
from diatool_utils.synthetic import EVAL_SPLITS, generate_eval


def benchmark(eval_data, tools: str | None = None, tools_seed: int = 7):
    """The turns to score and how to name them: generated on the ``tools`` split, else read from ``eval_data``."""
    if tools:
        source = f"generate_eval(seed={tools_seed}, split={tools!r})"
        return cases_from_dialogs(generate_eval(seed=tools_seed, split=tools), source=source), source
    return load_dialog_benchmark(eval_data), shown_path(str(Path(eval_data).resolve()))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "first_action" / "first_action.md",
                        help="the Markdown table (JSON beside it)")
    parser.add_argument("--eval-data", default=Recipe.eval_data, help="(default: the recipe's eval_data)")
    parser.add_argument("--batch-size", type=int, default=Recipe.eval_batch_size,
                        help="dialogues per forward pass (default: the recipe's eval_batch_size)")
    parser.add_argument("--tools", choices=EVAL_SPLITS,
                        help="score a benchmark generated on this tool split instead of --eval-data")
    parser.add_argument("--tools-seed", type=int, default=7, help="the generator's seed for --tools (default 7)")
    args = parser.parse_args(argv)
    named = [spec.partition("=")[::2] for spec in args.checkpoints]
    if bad := [spec for spec, (name, path) in zip(args.checkpoints, named, strict=True) if not name or not path]:
        parser.error(f"give each checkpoint as NAME=PATH, not {bad}")
    cases, source = benchmark(args.eval_data, args.tools, args.tools_seed)
    stats, seconds = {}, {}
    for name, path in named:
        start = time.perf_counter()
        model, tokenizer = load_model_and_tokenizer(path)
        stats[name] = first_action_of_checkpoint(model, tokenizer, cases, batch_size=args.batch_size)
        seconds[name] = round(time.perf_counter() - start, 1)
        del model
        print(name, stats[name], f"{seconds[name]} s", flush=True)
    command = shlex.join(["python", shown_path(str(Path(__file__).resolve())),
                          *(argv if argv is not None else sys.argv[1:])])
    table = first_action_table(stats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"{table}\n\n{len(cases)} turns of {source}; device "
                        f"{'cuda' if torch.cuda.is_available() else 'cpu'}.\n\nCommand: `{command}`\n")
    args.out.with_suffix(".json").write_text(json.dumps({"stats": stats, "seconds": seconds, "benchmark": source, "command": command},
                                                        indent=2))
    print(table)
    return stats


if __name__ == "__main__":
    main()
