#!/usr/bin/env bash
# The GPU check of the QLoRA path (CUDA bitsandbytes, bf16) on the tiny model, as run on a lent
# H100 (see benchmarks/README.md). Expects the pinned wheels installed on PYTHONPATH and the
# tiny checkpoint under $DIATOOL_CACHE; writes logs under ${OUT:-/tmp/gpu_check}.
set -uo pipefail
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
python3 - <<'PY' 2>&1 | tee "$out/versions.txt"
import torch, transformers, trl, peft, bitsandbytes, accelerate, datasets
print("device", torch.cuda.get_device_name(0), "torch", torch.__version__, "transformers", transformers.__version__,
      "trl", trl.__version__, "peft", peft.__version__, "bitsandbytes", bitsandbytes.__version__,
      "accelerate", accelerate.__version__, "datasets", datasets.__version__)
PY
# 1. The whole recipe (4-bit NF4 base, bf16 compute, LoRA SFT -> merge -> DiaTool-DPO -> evaluate).
python3 - "$out" <<'PY' 2>&1 | grep -vE "it/s\]|Warning|warn" | tee "$out/reproduce.log"
import sys, time, torch, runpy
out = sys.argv[1]
reproduce = runpy.run_path("scripts/reproduce.py")
torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
results = reproduce["main"](["--out", out + "/reproduce", "--smoke", "--sft-steps", "30", "--dpo-steps", "30",
                             "--eval-limit", "48", "--max-new-tokens", "32", "--sft-limit", "256", "--dpo-limit", "128"])
print(f"wall {time.perf_counter() - start:.1f} s, peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
print({k: round(v, 1) for k, v in results["seconds"].items()})
PY
# 2. The trainer, loss and SFT tests with CUDA visible (Trainer picks the GPU where tests don't pin the CPU).
python3 -m pytest tests/test_loss.py tests/test_trainer.py tests/test_sft.py -q -x -p no:cacheprovider 2>&1 | tail -15 | tee "$out/pytest.log"
