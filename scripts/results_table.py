"""Markdown tables of saved evaluations: accuracy per turn type, then what each model did on each turn type.

    python scripts/results_table.py "SFT=runs/x/eval_sft.jsonl" "+ DPO rows 7=runs/x/eval_dpo.jsonl" \
        [--against SFT] [--out results.md]

Each argument is LABEL=CASES_JSONL (a file evaluation.EvalReport.write saved). With --against LABEL, a third
table counts, per turn type, the turns each other model passes and that one fails (+) and the reverse (-). The verdicts are read as saved;
scripts/rejudge_results.py brings saved files under results/ in line with the current judge first.
"""
import argparse
from pathlib import Path

from diatool_utils.evaluation import EvalReport, behaviour_table, comparison_table, matched_results
from diatool_utils.judge import OUTPUT_TYPES


def gained_and_lost(reports: dict[str, EvalReport], against: str) -> str:
    """Per turn type, '+gained / -lost' turns of every model against the model labelled ``against``."""
    lines = [f"Turns gained / lost against {against}:", "", "| model | " + " | ".join(OUTPUT_TYPES) + " |",
             "|---|" + "---:|" * len(OUTPUT_TYPES)]
    for label, report in reports.items():
        if label == against:
            continue
        pairs = matched_results(reports[against], report)
        cells = []
        for kind in OUTPUT_TYPES:
            changes = [(mine.passed, base.passed) for base, mine in pairs if base.type == kind]
            cells.append(f"+{sum(p and not b for p, b in changes)} / -{sum(b and not p for p, b in changes)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tables(reports: dict[str, EvalReport]) -> str:
    seconds = {label: report.timing.get("wall_seconds") for label, report in reports.items()}
    accuracy = comparison_table(reports).splitlines()
    accuracy[0] += " evaluation s |"
    accuracy[1] += "---:|"
    accuracy[2:] = [f"{line} {seconds[label] if seconds[label] is not None else 'n/a'} |"
                    for line, label in zip(accuracy[2:], reports, strict=True)]
    return "\n".join(accuracy) + "\n\n" + behaviour_table(reports) + "\n"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="LABEL=CASES_JSONL")
    parser.add_argument("--against", default=None, metavar="LABEL", help="count turns gained and lost against it")
    parser.add_argument("--out", default=None, help="write the tables here as well")
    args = parser.parse_args(argv)
    reports = {}
    for item in args.reports:
        label, sep, path = item.rpartition("=")
        if not sep or not label:
            parser.error(f"{item!r} is not LABEL=CASES_JSONL")
        reports[label] = EvalReport.read(path)
    if args.against is not None and args.against not in reports:
        parser.error(f"--against {args.against!r} is none of the labels {list(reports)}")
    text = tables(reports) + (f"\n{gained_and_lost(reports, args.against)}" if args.against is not None else "")
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
