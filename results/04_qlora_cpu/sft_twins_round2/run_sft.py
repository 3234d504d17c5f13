"""A second SFT round on data/sft.jsonl plus the twins' chosen sides as 1,000 more conversations.

Each pair of data/dpo_twins.jsonl gives one conversation, its prompt followed by its chosen side, so SFT
sees one request answered with a call, a question or a decline as the tools and the given values require.
The round starts from the one-round SFT model of `make reproduce` (runs/04_qlora/sft/merged), with a fresh
LoRA and seed 1, at the recipe's SFT settings; then the evaluation on all 199 turns.
Run from the repository root: python results/04_qlora_cpu/sft_twins_round2/run_sft.py
"""
import time
from pathlib import Path

from diatool_utils.dialogues_io import read_jsonl, write_jsonl
from diatool_utils.pipeline import Recipe, _sft_round, _stage_digest, evaluate_checkpoint

out = Path("runs/exp18")
out.mkdir(parents=True, exist_ok=True)
mixed = out / "sft_plus_twins.jsonl"
# in file order (training shuffles them with its seed)
rows = [row for _, row in read_jsonl("data/sft.jsonl")]
rows += [{"id": f"twin-chosen-{pair['id']}", "tools": pair["tools"], "messages": pair["prompt"] + pair["chosen"],
          "query_type": pair["query_type"], "query_types": [pair["query_type"]]}
         for _, pair in read_jsonl("data/dpo_twins.jsonl")]
write_jsonl(rows, mixed)
base = Path("runs/04_qlora/sft/merged")
recipe = Recipe(sft_data=str(mixed))
start = time.time()
stage = _sft_round(recipe, out / "sft-twins", str(base), recipe.seed + 1, _stage_digest(base), None, reuse=True)
print(f"SFT {(time.time() - start) / 60:.1f} min", flush=True)
start = time.time()
report = evaluate_checkpoint(stage.path, recipe, out / "eval_sft_twins.jsonl", reuse=True)
print(f"eval {(time.time() - start) / 60:.1f} min", report.summary, flush=True)
