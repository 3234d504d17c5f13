"""DiaTool-DPO with SFT replay from notebook 04's SFT model (runs/04_qlora/sft, `make reproduce`), then the
evaluation on all 199 turns. Stop 20's runs (README, "Replay: SFT conversations beside the pairs"):

    python results/04_qlora_cpu/replay/run_replay.py rows5-10_replay1 dpo_replay_weight=1
    python results/04_qlora_cpu/replay/run_replay.py rows5-7_9_10_replay1 dpo_rows=5,6,7,9,10 dpo_replay_weight=1
    python results/04_qlora_cpu/replay/run_replay.py rows5-10_half8_replay1 dpo_rows=5,5,6,6,7,7,8,9,9,10,10 \
        dpo_replay_weight=1
    python results/04_qlora_cpu/replay/run_replay.py rows5-10_half8_replay1_seed1 dpo_rows=5,5,6,6,7,7,8,9,9,10,10 \
        dpo_replay_weight=1 seed=1
    python results/04_qlora_cpu/replay/run_replay.py rows5-10_half8_replay0.5 dpo_rows=5,5,6,6,7,7,8,9,9,10,10 \
        dpo_replay_weight=0.5

Arguments: a name for the run's folder under runs/exp20, then Recipe fields as FIELD=VALUE.
"""
import sys
import time
from pathlib import Path

from diatool_utils.pipeline import Recipe, evaluate_checkpoint, recipe_overrides, train_dpo

out = Path("runs/exp20")
name = sys.argv[1]
recipe = Recipe(**recipe_overrides(sys.argv[2:]))
stage = train_dpo(recipe, "runs/04_qlora/sft/merged", out / name, reuse=True)
print(f"DPO {stage.seconds / 60:.1f} min", flush=True)
start = time.time()
report = evaluate_checkpoint(stage.path, recipe, out / name / "eval_dpo.jsonl", reuse=True)
print(f"eval {(time.time() - start) / 60:.1f} min", report.summary, flush=True)
