"""The first-action diagnostic (diatool_utils/first_action.py) for several checkpoints on the benchmark.

    python experiments/first_action.py --out runs/first_action/first_action.md \
        SFT=runs/04_qlora/sft/merged "SFT + DiaTool-DPO"=runs/04_qlora/dpo-full/merged

Writes a Markdown table (mean P(text) per turn type, AUC of slot and relevance turns against
call turns) and a JSON file beside it with the same numbers and the command (default
``runs/first_action/first_action.md``, not committed). The benchmark and the batch size are the
recipe's (``Recipe.eval_data``, ``Recipe.eval_batch_size``) unless ``--eval-data`` / ``--batch-size``
say otherwise.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.first_action import first_action_of_checkpoint, first_action_table
from diatool_utils.models import load_model_and_tokenizer
from diatool_utils.paths import REPO_ROOT
from diatool_utils.pipeline import Recipe, shown_path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "first_action" / "first_action.md",
                        help="the Markdown table (JSON beside it)")
    parser.add_argument("--eval-data", default=Recipe.eval_data, help="(default: the recipe's eval_data)")
    parser.add_argument("--batch-size", type=int, default=Recipe.eval_batch_size,
                        help="dialogues per forward pass (default: the recipe's eval_batch_size)")
    args = parser.parse_args(argv)
    named = [spec.partition("=")[::2] for spec in args.checkpoints]
    if bad := [spec for spec, (name, path) in zip(args.checkpoints, named, strict=True) if not name or not path]:
        parser.error(f"give each checkpoint as NAME=PATH, not {bad}")
    cases = load_dialog_benchmark(args.eval_data)
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
    shown = shown_path(str(Path(args.eval_data).resolve()))
    args.out.write_text(f"{table}\n\n{len(cases)} turns of {shown}; device "
                        f"{'cuda' if torch.cuda.is_available() else 'cpu'}.\n\nCommand: `{command}`\n")
    args.out.with_suffix(".json").write_text(json.dumps({"stats": stats, "seconds": seconds, "command": command},
                                                        indent=2))
    print(table)
    return stats


if __name__ == "__main__":
    main()
