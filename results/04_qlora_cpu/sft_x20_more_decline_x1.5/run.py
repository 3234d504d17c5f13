# DPO rows 5-8 (weight 2) and 9-10 (weight 3) from the more-SFT model, then the greedy evaluation
from diatool_utils.pipeline import Recipe, evaluate_checkpoint, train_dpo

recipe = Recipe(dpo_rows=(5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 10))
stage = train_dpo(recipe, "runs/sft_more/sft/merged", "runs/more_decl15")
print(f"DPO {stage.seconds / 60:.1f} min", flush=True)
report = evaluate_checkpoint(stage.path, recipe, "runs/more_decl15/eval_dpo.jsonl")
print(report.summary, report.timing, flush=True)
