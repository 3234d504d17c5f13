#!/usr/bin/env bash
# Rewrites the tables of results.md below its 7-line header: bash results/04_qlora_cpu/sft_twins_round2/tables.sh
# (venv active, from the repository root).
set -euo pipefail
R=results/04_qlora_cpu/sft_twins_round2
tables=$(python scripts/results_table.py \
  "SFT, one round (runs/04_qlora/sft)=results/04_qlora_cpu/ablations/eval_sft.jsonl" \
  "SFT + twins round=$R/eval_sft.jsonl" \
  "+ DPO rows 5-10=$R/eval_dpo_rows5-10.jsonl" \
  "+ DPO all twins=$R/eval_dpo_twins_all.jsonl" \
  "+ DPO rows 5, 6, 7, 9=$R/eval_dpo_rows5-7_9.jsonl" \
  "+ DPO rows 5, 6, 7, 9 x3=$R/eval_dpo_rows5-7_9x3.jsonl" \
  "+ DPO rows 5, 6, 7, 9, 10=$R/eval_dpo_rows5-7_9_10.jsonl" \
  "+ DPO rows 5, 6, 7, 9 + twins 8/10 (stop 19)=results/04_qlora_cpu/twins_mixed/eval_dpo_p5679_t810.jsonl" \
  "+ DPO row 7 (stop 19)=$R/eval_dpo_rows7.jsonl" \
  "+ DPO rows 7, 10 (stop 19)=$R/eval_dpo_rows7_10.jsonl" \
  "+ mean of rows 7 and rows 7, 10 (stop 19)=$R/eval_soup_rows7_rows7_10.jsonl" \
  "+ 0.7 / 0.3 mean (stop 19)=$R/eval_soup_rows7_rows7_10_0.7.jsonl" \
  "+ DPO rows 5, 6, 7, 9, lr 1e-4 (stop 19)=$R/eval_dpo_rows5-7_9_lr1e-4.jsonl" \
  "+ DPO rows 5, 6, 7, 9, lr 2e-4 (stop 19)=$R/eval_dpo_rows5-7_9_lr2e-4.jsonl" \
  "+ DPO row 7, replay 1 (stop 21)=$R/eval_dpo_rows7_replay1.jsonl" \
  "+ DPO row 7, replay 1, seed 1 (stop 21)=$R/eval_dpo_rows7_replay1_seed1.jsonl" \
  "+ DPO row 7, replay 1 of the decline conversations (stop 21)=$R/eval_dpo_rows7_replay1_declines.jsonl" \
  "+ DPO rows 7, 10, replay 1 (stop 21)=$R/eval_dpo_rows7_10_replay1.jsonl" \
  "+ mean of the two replay models (stop 21)=$R/eval_soup_rows7_replay1_rows7_10_replay1.jsonl" \
  --against "SFT + twins round")
{ head -n 7 "$R/results.md"; printf '%s\n' "$tables"; } > "$R/results.md.new"
mv "$R/results.md.new" "$R/results.md"
