"""DiaTool-DPO on plain pairs and twins in one run, from the twins-round SFT model (../sft_twins_round2/run_sft.py).

The plain pairs teach what one behaviour beats; a twin (data/README.md, "dpo_twins.jsonl") holds the same
reply chosen in one context and rejected in the other, so only the context is left to learn. The trainer keeps
twins whole by sampling in file order with batches of two, so the mixed file is a twin file: every two plain pairs
of one Table-1 row share a made-up twin id ("plain-<row>-<k>"), and the run shuffles whole twins with its seed.

    python results/04_qlora_cpu/twins_mixed/run_mixed.py NAME PLAIN_ROWS PER_ROW TWIN_ROWS [FIELD=VALUE ...]

PLAIN_ROWS: Table-1 rows of data/dpo_pairs.jsonl (e.g. 5,6,7,9), PER_ROW pairs of each, sampled with seed 0;
TWIN_ROWS: twin kinds of data/dpo_twins.jsonl (e.g. 8/10 or 8/10,4/9), all of each. Then Recipe fields.
The run's folder is runs/exp19/NAME; its evaluation covers all 199 turns. The run of stop 19 (600 pairs: 100 of
each of rows 5, 6, 7, 9 and the 100 twins of rows 8/10; the mixed file's sha256 is 5c6b30d5...b4bc):

    python results/04_qlora_cpu/twins_mixed/run_mixed.py p5679_t810 5,6,7,9 100 8/10
"""
import random
import sys
import time
from collections import Counter
from pathlib import Path

from diatool_utils.dialogues_io import read_jsonl, write_jsonl
from diatool_utils.pipeline import Recipe, evaluate_checkpoint, recipe_overrides, train_dpo

name, plain_rows, per_row, twin_kinds, *fields = sys.argv[1:]
out = Path("runs/exp19") / name
out.mkdir(parents=True, exist_ok=True)
plain_rows = [int(row) for row in plain_rows.split(",") if row]
twin_kinds = {frozenset(map(int, kind.split("/"))) for kind in twin_kinds.split(",") if kind}

chosen = random.Random(0)
pairs = [pair for _, pair in read_jsonl("data/dpo_pairs.jsonl")]
mixed = []
for row in plain_rows:
    sample = chosen.sample([pair for pair in pairs if pair["row"] == row], int(per_row))
    mixed += [dict(pair, twin=f"plain-{row}-{k // 2}") for k, pair in enumerate(sample[: len(sample) // 2 * 2])]
twins: dict[str, list[dict]] = {}
for _, pair in read_jsonl("data/dpo_twins.jsonl"):
    twins.setdefault(pair["twin"], []).append(pair)
mixed += [pair for members in twins.values() if frozenset(p["row"] for p in members) in twin_kinds for pair in members]
data = out / "dpo_mixed.jsonl"
write_jsonl(mixed, data)
print(f"{len(mixed)} pairs by row: {dict(sorted(Counter(pair['row'] for pair in mixed).items()))}", flush=True)

recipe = Recipe(**recipe_overrides([f"dpo_data={data}", "dpo_rows=none", *fields]))
stage = train_dpo(recipe, "runs/exp18/sft-twins/merged", out, reuse=True)
print(f"DPO {stage.seconds / 60:.1f} min", flush=True)
start = time.time()
report = evaluate_checkpoint(stage.path, recipe, out / "eval_dpo.jsonl", reuse=True)
print(f"eval {(time.time() - start) / 60:.1f} min", report.summary, flush=True)
