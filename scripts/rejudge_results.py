"""Judge every saved evaluation under results/ again with the current rules, and rewrite it in place.

A change to the judge (diatool_utils/judge.py) leaves the verdicts saved by earlier runs stale. This script
re-scores each saved reply without a model (evaluation.rejudge), rewrites every cases file whose verdicts
changed (with its .summary.json/.md) and prints a Markdown table
of each changed file's accuracies before and after (or writes it with --table):

    python scripts/rejudge_results.py [--table results/rejudged.md] [--data data/eval_dialog.jsonl]

tests/test_results_files.py checks that every saved evaluation agrees with the current judge.
"""
import argparse
from pathlib import Path

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import EvalReport, rejudge
from diatool_utils.judge import OUTPUT_TYPES
from diatool_utils.paths import REPO_ROOT


def saved_evaluations(root: Path) -> list[Path]:
    """Every cases file (JSONL with a raw_reply per line) under ``root``."""
    files = []
    for path in sorted(root.rglob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            if '"raw_reply"' in handle.readline():
                files.append(path)
    return files


def _cells(report: EvalReport) -> list[str]:
    summary = report.summary
    return [f"{summary['per_type'][kind]['accuracy']:.3f}" for kind in OUTPUT_TYPES] + [f"{summary['micro_avg']:.3f}"]


def _row(name: str, before: EvalReport, after: EvalReport) -> str:
    cells = [old if old == new else f"{old} -> **{new}**" for old, new in zip(_cells(before), _cells(after), strict=True)]
    return f"| `{name}` | " + " | ".join(cells) + " |"


def rejudge_file(path: Path, cases, name: str) -> str | None:
    """Judge one cases file again. If a verdict or its reason changed, rewrite the file and those of its
    summaries that exist, and return its table row (labelled ``name``); else None."""
    before = EvalReport.read(path)
    after = rejudge(before, cases)
    if [(r.passed, r.reason) for r in before.results] == [(r.passed, r.reason) for r in after.results]:
        return None
    sidecars = [Path(f"{path.with_suffix('')}.summary.{ext}") for ext in ("json", "md")]
    absent = [sidecar for sidecar in sidecars if not sidecar.exists()]
    after.write(path)
    for sidecar in absent:
        sidecar.unlink()
    return _row(name, before, after)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO_ROOT / "results"))
    parser.add_argument("--data", default=str(REPO_ROOT / "data" / "eval_dialog.jsonl"))
    parser.add_argument("--table", default=None, help="write the Markdown table here as well")
    args = parser.parse_args(argv)
    root, cases = Path(args.root), load_dialog_benchmark(args.data)
    rows, checked = [], 0
    for path in saved_evaluations(root):
        checked += 1
        if row := rejudge_file(path, cases, str(path.relative_to(root))):
            rows.append(row)
    header = "| saved evaluation | " + " | ".join(OUTPUT_TYPES) + " | micro avg |\n|---|" + "---:|" * 5
    table = "\n".join([header, *rows]) if rows else "No verdict or reason changed."
    text = f"{table}\n\n{len(rows)} evaluations changed; {checked} files checked under {root.name}/.\n"
    print(text)
    if args.table:
        Path(args.table).write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
