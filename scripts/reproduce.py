"""SFT -> evaluate -> DiaTool-DPO -> evaluate, in one command, plus the paper's ablations.

    python scripts/reproduce.py --out runs/04_qlora --reuse                   # notebook 04's run (README's table)
    python scripts/reproduce.py --out runs/04_qlora --reuse --ablations full no_psi no_margin plain_multiturn
    python scripts/reproduce.py --out runs/smoke --smoke                      # tiny model, seconds
    python scripts/reproduce.py --out results/full_dose/seed0 --reuse --checkpoint-every 25 --dev-every 25 \
        --sft-steps 375 --dpo-steps 100 --dpo-batch-size 10 --dpo-row-balanced true --seed 0   # the full dose

Writes into --out: results.md and results.json (accuracy per type, micro and macro averages,
wall times; results.md also counts what the replies did on each kind of turn), accuracy.png,
training_curves.png, recipe.json, and the per-case JSONL of every evaluation. The SFT model is trained once and shared by every DPO variant.
results.json also counts what the trainers consumed: ``sft_conversations_seen`` and ``dpo_pairs_seen``.

``--checkpoint-every N`` keeps each stage's training state every N steps: the same command, with ``--reuse``, goes
on from there after an interruption. ``--dev-every N`` watches each DPO run on the dev split every N steps (reward
accuracy per Table-1 row on ``data/dev_pairs.jsonl``, the first-action lean on ``data/dev_dialog.jsonl``), into
results.json's ``dev_curves`` and dev_curves.png; training is unchanged. The evaluation file is scored once per model.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from diatool_utils.dev_watch import dev_curves, dev_curves_table  # noqa: E402
from diatool_utils.evaluation import behaviour_table, comparison_table, plot_accuracy  # noqa: E402
from diatool_utils.pipeline import (  # noqa: E402
    ABLATIONS,
    Recipe,
    evaluate_checkpoint,
    recipe_field_parser,
    train_dpo,
    train_sft,
)
from diatool_utils.plotting import plot_dev_curves, plot_training_curves  # noqa: E402

SMOKE = dict(model_name="tiny-random", sft_steps=2, dpo_steps=2, eval_limit=6, max_new_tokens=8, max_length=512)
LABELS = {"full": "SFT + DiaTool-DPO", "no_psi": "w/o psi", "no_margin": "w/o margin",
          "plain_multiturn": "w/o phi, psi, margin"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ablations", nargs="+", default=["full"], choices=sorted(ABLATIONS))
    parser.add_argument("--smoke", action="store_true", help="tiny random model, a few steps")
    parser.add_argument("--reuse", action="store_true",
                        help="skip stages already finished in --out with the same settings (e.g. notebook 04's run)")
    parser.add_argument("--sft-limit", type=int, default=None, help="use only this many SFT rows")
    parser.add_argument("--dpo-limit", type=int, default=None, help="use only this many pairs")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="keep each stage's training state every N steps (resume with --reuse)")
    parser.add_argument("--dev-every", type=int, default=None,
                        help="watch each DPO run on the dev split every N steps (dev_curves.png)")
    parser.add_argument("--dev-limit", type=int, default=None,
                        help="watch only the first K dev pairs of each row and K turns of each type (a quick look)")
    for f in fields(Recipe):
        if f.name == "ablation":
            continue
        # SUPPRESS: a flag not given leaves no attribute, so "--dpo-rows none" (None) still overrides the default
        default = f"{f.default_factory()} on this machine" if f.default is MISSING else f.default
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=recipe_field_parser(f.name),
                            default=argparse.SUPPRESS, help=f"(default {default})")
    return parser.parse_args(argv)


def write_results(out: Path, reports: dict, seconds: dict, histories: dict, recipe: Recipe, command: str,
                  pending: list[str], seen: dict | None = None) -> dict:
    """results.md/.json and the plots, rewritten after every finished stage: an interrupted run (hours on a
    CPU) keeps the variants it finished, and says which it has not reached."""
    not_yet = f"\nNot run yet (the run stopped or is still going): {', '.join(pending)}\n" if pending else ""
    timing = "\n".join(f"| {name} | {'not recorded' if s is None else f'{s / 60:.1f} min'} |"
                       for name, s in seconds.items())
    curves = {name: dev_curves(history) for name, history in histories.items() if name != "SFT"}
    curves = {name: points for name, points in curves.items() if points}
    watched = "".join(f"\n{name}, watched on the dev split (reward accuracy per Table-1 row on the dev pairs; the "
                      f"first-action lean on the dev file):\n\n{dev_curves_table(points)}\n"
                      for name, points in curves.items())
    (out / "results.md").write_text(f"{comparison_table(reports)}\n\n| stage | wall time |\n|---|---|\n{timing}\n"
                                    f"{not_yet}\nWhat the replies did (counts of turns; the right action in bold):"
                                    f"\n\n{behaviour_table(reports)}\n{watched}\nCommand: `{command}`\n")
    results = {"summaries": {k: r.summary for k, r in reports.items()}, "seconds": seconds,
               "recipe": json.loads(recipe.to_json()), "command": command, "not_run": list(pending),
               **(seen or {}), **({"dev_curves": curves} if curves else {})}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    for name, points in curves.items():
        axes = plot_dev_curves(points)
        axes[0].figure.suptitle(f"{name}, watched on the dev split")
        axes[0].figure.tight_layout()
        axes[0].figure.savefig(out / ("dev_curves.png" if len(curves) == 1 else f"dev_curves_{slug(name)}.png"), dpi=90)
        plt.close(axes[0].figure)
    fig, ax = plt.subplots(figsize=(9, 4))
    plot_accuracy(reports, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=90)
    plt.close(fig)
    fig = plot_training_curves(histories)[0].figure
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=90)
    plt.close(fig)
    return results


def slug(name: str) -> str:
    """A label as a file name: "SFT + DiaTool-DPO" -> "SFT_DiaTool-DPO"."""
    return re.sub(r"[^\w-]+", "_", name).strip("_")


def timed_eval(folder, recipe: Recipe, output_path: Path, reuse: bool) -> tuple:
    """(report, seconds); a reused evaluation reports the wall time measured when it ran, or None when its
    summary file (where that time is kept) did not come along with the replies."""
    report = evaluate_checkpoint(folder, recipe, output_path, reuse=reuse)
    return report, report.timing.get("wall_seconds")


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe: defaults, then --smoke's settings, then every flag given (None included)."""
    overrides = {f.name: getattr(args, f.name) for f in fields(Recipe) if hasattr(args, f.name)}
    return Recipe(**{**(SMOKE if args.smoke else {}), **overrides})


def main(argv=None) -> dict:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    recipe = recipe_from_args(args)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(recipe.to_json())

    reuse = args.reuse
    command = "python scripts/reproduce.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sft = train_sft(recipe, out, args.sft_limit, reuse=reuse, checkpoint_every=args.checkpoint_every)
    reports, seconds, histories = {}, {"SFT train": sft.seconds}, {"SFT": sft.history}
    seen = {"sft_conversations_seen": sft.examples_seen}
    reports["SFT only"], seconds["SFT eval"] = timed_eval(sft.path, recipe, out / "eval_sft.jsonl", reuse)
    results = write_results(out, reports, seconds, histories, recipe, command, args.ablations, seen)
    for number, ablation in enumerate(args.ablations, 1):
        variant = Recipe(**{**recipe.__dict__, "ablation": ablation})
        dpo = train_dpo(variant, sft.path, out, args.dpo_limit, reuse=reuse, checkpoint_every=args.checkpoint_every,
                        dev_every=args.dev_every, dev_limit=args.dev_limit)
        label = LABELS[ablation]
        seconds[f"{ablation} train"], histories[label] = dpo.seconds, dpo.history
        seen.setdefault("dpo_pairs_seen", dpo.examples_seen)  # every variant takes dpo_steps x dpo_batch_size
        reports[label], seconds[f"{ablation} eval"] = timed_eval(dpo.path, variant, out / f"eval_{ablation}.jsonl",
                                                                 reuse)
        results = write_results(out, reports, seconds, histories, recipe, command, args.ablations[number:], seen)
    table = comparison_table(reports)
    print(table)
    return results


if __name__ == "__main__":
    main()
