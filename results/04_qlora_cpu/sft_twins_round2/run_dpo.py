"""DiaTool-DPO from the SFT model of run_sft.py, then the evaluation on all 199 turns. The five runs of stop 18:

    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows5-10
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py twins_all dpo_data=data/dpo_twins.jsonl dpo_rows=none
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows5-7_9 dpo_rows=5,6,7,9
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows5-7_9x3 dpo_rows=5,6,7,9,9,9
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows5-7_9_10 dpo_rows=5,6,7,9,10

and four more, at stop 19 (README, "From the twins-round model: twins beside pairs, question against question, a
smaller step"):

    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7 dpo_rows=7
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7_10 dpo_rows=7,10
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows5-7_9_lr1e-4 dpo_rows=5,6,7,9 dpo_learning_rate=1e-4
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows5-7_9_lr2e-4 dpo_rows=5,6,7,9 dpo_learning_rate=2e-4

and four with SFT replay, at stop 21 (README, "Replay from the twins-round model"):

    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7_replay1 dpo_rows=7 dpo_replay_weight=1
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7_10_replay1 dpo_rows=7,10 dpo_replay_weight=1
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7_replay1_seed1 dpo_rows=7 dpo_replay_weight=1 seed=1
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7_replay1_declines dpo_rows=7 dpo_replay_weight=1 \
        dpo_replay_data=runs/exp18/sft_declines.jsonl

(the last replays only the SFT conversations that hold a decline: `replay_subset.py` writes them).

Arguments: a name for the run's folder under runs/exp18, then Recipe fields as FIELD=VALUE.
"""
import sys
import time
from pathlib import Path

from diatool_utils.pipeline import Recipe, evaluate_checkpoint, recipe_overrides, train_dpo

out = Path("runs/exp18")
name = sys.argv[1]
recipe = Recipe(**recipe_overrides(sys.argv[2:]))
stage = train_dpo(recipe, out / "sft-twins/merged", out / name, reuse=True)
print(f"DPO {stage.seconds / 60:.1f} min", flush=True)
start = time.time()
report = evaluate_checkpoint(stage.path, recipe, out / name / "eval_dpo.jsonl", reuse=True)
print(f"eval {(time.time() - start) / 60:.1f} min", report.summary, flush=True)
