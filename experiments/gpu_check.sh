#!/usr/bin/env bash
# Checks the GPU path of the recipe on a machine with one CUDA GPU, in a few minutes: the library's versions,
# then the whole QLoRA recipe on the tiny random model (4-bit NF4 base through CUDA bitsandbytes, bf16 compute,
# LoRA SFT -> merge -> DiaTool-DPO -> evaluate), then the loss, trainer and SFT tests with the GPU visible.
#
#   make setup && bash experiments/gpu_check.sh      (from the repository root; PYTHON=... for another interpreter)
#
# Writes versions.txt, reproduce.log, pytest.log and the smoke run's results under ${OUT:-runs/gpu_check}
# (runs/ is not committed).
set -uo pipefail
python=${PYTHON:-.venv/bin/python}
out=${OUT:-runs/gpu_check}
mkdir -p "$out"
"$python" - <<'PY' 2>&1 | tee "$out/versions.txt" || exit 1
import torch, transformers, trl, peft, bitsandbytes, accelerate, datasets
assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
print("device", torch.cuda.get_device_name(0), "torch", torch.__version__, "transformers", transformers.__version__,
      "trl", trl.__version__, "peft", peft.__version__, "bitsandbytes", bitsandbytes.__version__,
      "accelerate", accelerate.__version__, "datasets", datasets.__version__)
PY
# 1. The whole recipe on the tiny model, a few steps each.
"$python" - "$out" <<'PY' 2>&1 | grep -vE "it/s\]|Warning|warn" | tee "$out/reproduce.log"
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
# 2. The trainer, loss and SFT tests with CUDA visible (Trainer picks the GPU where a test does not pin the CPU).
"$python" -m pytest tests/test_loss.py tests/test_trainer.py tests/test_sft.py -q -x -p no:cacheprovider 2>&1 \
    | tail -15 | tee "$out/pytest.log"
