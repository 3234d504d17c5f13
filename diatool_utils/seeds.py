"""One recipe, several seeds: each seed's scores before and after DiaTool-DPO, the mean, and the change.

A single run of a small model moves by .07-.13 per turn type from seed to seed (``docs/experiments.md``), so a
claim about the method rests on the mean over seeds and on every seed moving the same way. ``results/<run>/seed<k>/
results.json`` (``scripts/reproduce.py``) holds one seed; :func:`load_seeds` reads them all and :func:`seeds_table`
lays them out.

For a turn type t and seeds k = 1..K, with a_k(t) the accuracy of model ``after`` and b_k(t) that of ``before``:

    change_k(t) = a_k(t) - b_k(t),     mean change(t) = (1/K) sum_k change_k(t)
"""

from __future__ import annotations

import json
from pathlib import Path

from .judge import OUTPUT_TYPES

BEFORE, AFTER = "SFT only", "SFT + DiaTool-DPO"


def load_seeds(run_dir) -> dict[str, dict]:
    """``{"seed0": results, ...}`` from ``run_dir/seed<k>/results.json``, in seed order; an error names a seed
    folder without results or a run that stopped before DPO was scored."""
    run_dir = Path(run_dir)
    folders = sorted(run_dir.glob("seed*"), key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1)
    if not folders:
        raise FileNotFoundError(f"no seed<k>/ folders in {run_dir}")
    runs = {}
    for folder in folders:
        path = folder / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: that seed has not finished")
        results = json.loads(path.read_text())
        missing = [name for name in (BEFORE, AFTER) if name not in results["summaries"]]
        if missing:
            raise ValueError(f"{path} has no scores for {', '.join(missing)} (not run: {results.get('not_run')})")
        runs[folder.name] = results
    return runs


def accuracies(summary: dict) -> dict[str, float]:
    """Accuracy per turn type plus the micro average, from one evaluation summary."""
    return {**{kind: summary["per_type"][kind]["accuracy"] for kind in OUTPUT_TYPES}, "micro avg": summary["micro_avg"]}


def seed_changes(runs: dict[str, dict], before: str = BEFORE, after: str = AFTER) -> dict[str, dict[str, float]]:
    """``{seed: {turn type: change}}`` and ``"mean"``: after minus before, per seed and averaged over seeds."""
    changes = {}
    for seed, results in runs.items():
        a, b = accuracies(results["summaries"][after]), accuracies(results["summaries"][before])
        changes[seed] = {kind: a[kind] - b[kind] for kind in a}
    kinds = next(iter(changes.values()))
    changes["mean"] = {kind: sum(c[kind] for c in changes.values()) / len(runs) for kind in kinds}
    return changes


def seeds_table(runs: dict[str, dict], before: str = BEFORE, after: str = AFTER) -> str:
    """Markdown: each seed's two models and their change, then the mean over seeds of each."""
    kinds = [*OUTPUT_TYPES, "micro avg"]
    lines = ["| seed | model | " + " | ".join(kinds) + " |", "|---|---" + "|---:" * len(kinds) + "|"]
    mean = {name: dict.fromkeys(kinds, 0.0) for name in (before, after)}
    for seed, results in runs.items():
        for name in (before, after):
            scores = accuracies(results["summaries"][name])
            lines.append(f"| {seed} | {name} | " + " | ".join(f"{scores[k]:.3f}" for k in kinds) + " |")
            for k in kinds:
                mean[name][k] += scores[k] / len(runs)
    changes = seed_changes(runs, before, after)
    for name in (before, after):
        lines.append(f"| mean | {name} | " + " | ".join(f"{mean[name][k]:.3f}" for k in kinds) + " |")
    for seed in [*runs, "mean"]:
        lines.append(f"| {seed} | change | " + " | ".join(f"{changes[seed][k]:+.3f}" for k in kinds) + " |")
    return "\n".join(lines)
