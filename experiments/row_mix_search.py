"""Which Table-1 rows should DiaTool-DPO train on? Train and evaluate several mixes on one SFT model.

    python experiments/row_mix_search.py --sft runs/04_qlora/sft/merged --out runs/mix_search \
        --mix rows5-10 5,6,7,8,9,10 --mix decline-x2 5,6,7,8,9,9,10,10 --mix slow 5,6,7,8,9,10 lr=2e-4

Each ``--mix NAME ROWS [FIELD=VALUE ...]`` is one DPO run from the same SFT checkpoint: ROWS are
Table-1 rows (a row named twice weighs twice, see ``pipeline.select_rows``), and FIELD=VALUE
overrides a ``Recipe`` field (``steps`` and ``lr`` are short for ``dpo_steps`` and
``dpo_learning_rate``). ``--base FIELD=VALUE ...`` changes every mix (and the baseline's evaluation);
``--eval-limit N`` is short for ``--base eval_limit=N``. The SFT model is evaluated once, as the baseline.

Writes into --out (default ``runs/row_mix_search``, not committed): search.md (accuracy per type and what the replies did, one row per mix) and
search.json (summaries, training curves, seconds). With ``--minutes`` the search stops starting
new mixes once that much wall time has passed, and says which it left out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from diatool_utils.evaluation import behaviour_table, comparison_table
from diatool_utils.paths import REPO_ROOT
from diatool_utils.pipeline import (
    Recipe,
    evaluate_checkpoint,
    recipe_field_parser,
    recipe_overrides,
    shown_path,
    train_dpo,
)

SHORT = {"steps": "dpo_steps", "lr": "dpo_learning_rate"}


def parse_mix(words: list[str]) -> tuple[str, dict]:
    """``[NAME, ROWS, FIELD=VALUE ...]`` -> (NAME, recipe overrides); ROWS ``all`` (or ``none``) is every row."""
    if len(words) < 2:
        raise ValueError(f"--mix {' '.join(words)}: give a name and the rows, e.g. --mix decline-x2 5,6,9,9")
    name, rows, *settings = words
    overrides = {"dpo_rows": recipe_field_parser("dpo_rows")("none" if rows == "all" else rows)}
    return name, {**overrides, **recipe_overrides(settings, SHORT, f"--mix {name}: ")}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", type=Path, required=True, help="the merged SFT checkpoint every mix starts from")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "row_mix_search")
    parser.add_argument("--mix", nargs="+", action="append", required=True, metavar="NAME ROWS [FIELD=VALUE]")
    parser.add_argument("--base", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="recipe changes shared by every mix, e.g. eval_limit=40 max_new_tokens=32")
    parser.add_argument("--minutes", type=float, default=None, help="start no new mix after this many minutes")
    parser.add_argument("--eval-limit", type=int, default=None, help="short for --base eval_limit=N")
    args = parser.parse_args(argv)
    mixes = dict(parse_mix(words) for words in args.mix)
    base = Recipe(**recipe_overrides(args.base, SHORT, "--base: "))
    if args.eval_limit is not None:
        base = replace(base, eval_limit=args.eval_limit)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    reports = {"SFT only": evaluate_checkpoint(args.sft, base, args.out / "eval_sft.jsonl")}
    results = {"mixes": {}, "left_out": [], "sft": str(args.sft), "base": json.loads(base.to_json())}
    for name, overrides in mixes.items():
        if args.minutes and time.perf_counter() - start > 60 * args.minutes:
            results["left_out"].append(name)
            continue
        recipe = replace(base, **overrides)
        stage = train_dpo(recipe, args.sft, args.out / name)
        report = evaluate_checkpoint(stage.path, recipe, args.out / f"eval_{name}.jsonl")
        reports[name] = report
        results["mixes"][name] = {"overrides": overrides, "summary": report.summary, "history": stage.history,
                                  "train_seconds": round(stage.seconds, 1),
                                  "eval_seconds": report.timing["wall_seconds"]}
        print(f"{name}: {json.dumps(report.summary)}", flush=True)
        _write(args.out, reports, results, argv)
    results["sft_summary"] = reports["SFT only"].summary
    _write(args.out, reports, results, argv)
    print(comparison_table(reports))
    return results


def _write(out: Path, reports: dict, results: dict, argv) -> None:
    """Rewritten after every mix, so a run stopped early still leaves its finished mixes."""
    command = shlex.join(["python", shown_path(str(Path(__file__).resolve())),
                          *(argv if argv is not None else sys.argv[1:])])
    settings = "\n".join(f"| {name} | {json.dumps(mix['overrides'])} | {mix['train_seconds'] / 60:.1f} min | "
                         f"{mix['eval_seconds'] / 60:.1f} min |" for name, mix in results["mixes"].items())
    left_out = f"\nLeft out (time): {', '.join(results['left_out'])}\n" if results["left_out"] else ""
    (out / "search.md").write_text(
        f"{comparison_table(reports)}\n\n| mix | recipe changes | DPO | eval |\n|---|---|---|---|\n{settings}\n"
        f"{left_out}\nWhat the replies did (counts of turns; the right action in bold):\n\n"
        f"{behaviour_table(reports)}\n\nCommand: `{command}`\n")
    (out / "search.json").write_text(json.dumps({**results, "command": command}, indent=2, default=list))


if __name__ == "__main__":
    main()
