"""The average of two merged DPO models' weights ("model soup"), then the evaluation on all 199 turns.

Rows 7 alone made the twins-round SFT model ask on every kind of turn; rows 7 and 10 made it decline on every kind.
Both start from the same SFT model, so each is SFT + a delta; their average is SFT + the mean delta. Does the
mean keep the asking where it should ask and the declining where it should decline, or only land between leans?

    python results/04_qlora_cpu/sft_twins_round2/soup.py rows7 rows7_10 [WEIGHT]

WEIGHT (default 0.5) is the first model's share. Writes runs/exp18/soup_<a>_<b>[_<weight>]/ (merged model, evaluation).
Stop 19 ran it with the default and with WEIGHT 0.7. Stop 21 ran it on the two replay models of run_dpo.py:

    python results/04_qlora_cpu/sft_twins_round2/soup.py rows7_replay1 rows7_10_replay1
"""
import shutil
import sys
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

from diatool_utils.pipeline import Recipe, evaluate_checkpoint

runs = Path("runs/exp18")
first, second = sys.argv[1], sys.argv[2]
weight = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
if not 0.0 <= weight <= 1.0:
    raise SystemExit(f"WEIGHT is the first model's share, between 0 and 1; got {weight}")
a, b = (runs / name / "dpo-full" / "merged" for name in (first, second))
out = runs / (f"soup_{first}_{second}" + ("" if weight == 0.5 else f"_{weight:g}"))
merged = out / "merged"
merged.mkdir(parents=True, exist_ok=True)
for item in a.iterdir():  # config, tokenizer and template are the same in both
    if item.name != "model.safetensors":
        shutil.copy(item, merged / item.name)
left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
if left.keys() != right.keys():
    raise SystemExit(f"{a} and {b} hold different tensors: not two fine-tunes of one model")
soup = {name: (weight * left[name].float() + (1 - weight) * right[name].float()).to(left[name].dtype)
        for name in left}
save_file(soup, merged / "model.safetensors", metadata={"format": "pt"})
start = time.time()
report = evaluate_checkpoint(merged, Recipe(), out / "eval_dpo.jsonl", reuse=True)
print(f"eval {(time.time() - start) / 60:.1f} min", report.summary, flush=True)
