#!/usr/bin/env bash
# DPO variants from one SFT checkpoint on a lent GPU (issue 6): benchmarks/row_mix_search.py, then
# benchmarks/first_action.py on every model it trained. Used for the decision-weight search in
# benchmarks/results/decision_weight_search_*.md.
#
# The device machine has PyTorch but not the pinned stack nor the model, and takes at most 64 MiB a
# call, so the payload travels in parts: a tar of the pinned wheels (whl/) and the SFT model saved in
# NF4 (sft_nf4/, 112 MB: the merged fp32 SFT checkpoint loaded with the recipe's 4-bit loader, its
# embedding and norms cast to bf16), split into 37 MB parts in .gx0 .. .gx4 (the repository itself takes
# ~23 MB of each call). Each part is carried by one call whose command moves it to /tmp/gx: a carried path
# that the next call does not name is removed from the checkout there, /tmp is kept while the machine is warm.
# Here it is put back together, the SFT model dequantized to bf16, and the search run.
#
#   usage: bash benchmarks/gpu_dpo_search.sh SEARCH_MINUTES  (writes into ${OUT:-/tmp/gpu_search})
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
out=${OUT:-/tmp/gpu_search}
minutes=${1:-5}
mkdir -p "$out" /tmp/payload
cat "${PARTS:-/tmp/gx}"/part* | tar -x -C /tmp/payload || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    /tmp/payload/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
python3 - <<'PY' 2>&1 | grep -vi warn
import torch, transformers, trl, peft, bitsandbytes
from transformers import AutoModelForCausalLM, AutoTokenizer
print("device", torch.cuda.get_device_name(0), "torch", torch.__version__, "transformers", transformers.__version__,
      "trl", trl.__version__, "peft", peft.__version__, "bitsandbytes", bitsandbytes.__version__)
model = AutoModelForCausalLM.from_pretrained("/tmp/payload/sft_nf4", dtype=torch.bfloat16, device_map={"": 0})
model.dequantize().save_pretrained("/tmp/sft")
AutoTokenizer.from_pretrained("/tmp/payload/sft_nf4").save_pretrained("/tmp/sft")
PY
start=$(date +%s)
python3 benchmarks/row_mix_search.py --sft /tmp/sft --out /tmp/search --minutes "$minutes" \
    --mix twins-dw1 all dpo_data=data/dpo_twins.jsonl \
    --mix twins-dw20 all dpo_data=data/dpo_twins.jsonl dpo_decision_weight=20 \
    --mix twins-dw5 all dpo_data=data/dpo_twins.jsonl dpo_decision_weight=5 \
    --mix twins-dw50 all dpo_data=data/dpo_twins.jsonl dpo_decision_weight=50 \
    --mix all-rows-dw20 all dpo_decision_weight=20 \
    --mix rows5-10-dw20 5,6,7,8,9,10 dpo_decision_weight=20 \
    --mix twins-dw20-beta0.1 all dpo_data=data/dpo_twins.jsonl dpo_decision_weight=20 beta=0.1 \
    2>&1 | grep -vE "it/s\]|s/it\]|[Ww]arn" > "$out/search.log"
echo "search: $(( $(date +%s) - start )) s"
cp /tmp/search/search.md /tmp/search/search.json "$out/"
models=("SFT=/tmp/sft")
for merged in /tmp/search/*/dpo-full/merged; do
    models+=("$(basename "$(dirname "$(dirname "$merged")")")=$merged")
done
python3 benchmarks/first_action.py --out "$out/first_action.md" "${models[@]}" 2>&1 | grep -vE "it/s\]|[Ww]arn" | tail -3
echo "total: $(( $(date +%s) - start )) s"
