"""benchmarks/bench_recipe_cpu.py on the tiny model: both paths of every stage run and the file says what it measured."""

import json
import subprocess
import sys

import pytest

from diatool_utils.paths import REPO_ROOT
from diatool_utils.pipeline import Recipe, train_sft


@pytest.mark.slow
def test_the_benchmark_times_both_paths_of_every_stage_and_records_the_processor(tmp_path):
    sft = train_sft(Recipe(model_name="tiny-random", sft_steps=2, max_length=512), tmp_path / "run", limit=8)
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_recipe_cpu.py"), "--models", "tiny-random",
                    "--sft-dir", str(sft.path), "--sft-steps", "1", "--dpo-steps", "1", "--eval-turns", "4",
                    "--out", str(out)], check=True, capture_output=True, text=True)
    results = json.loads(out.read_text())
    assert results["processor"]["name"] and "bf16_flags" in results["processor"]
    stages = results["models"]["tiny-random"]
    for stage, unit in (("sft", "assistant-loss tokens/s"), ("dpo", "pairs/s"), ("eval", "judged turns/min")):
        before, after = stages[stage]["before"], stages[stage]["after"]
        assert before["unit"] == after["unit"] == unit and before["rate"] > 0 and after["rate"] > 0
        assert stages[stage]["speedup"] == pytest.approx(after["rate"] / before["rate"])
    assert stages["sft"]["before"]["tokens"] == stages["sft"]["after"]["tokens"], "both paths train the same batches"
    assert stages["dpo"]["after"]["reference_seconds_per_pair"] > 0 and "reference_seconds_per_pair" not in \
        stages["dpo"]["before"], "only the path after computes the reference before training"
    assert stages["eval"]["identical_replies"] == 4  # fp32 both ways: the same replies
    assert "relative_difference" in stages["bf16_tolerance"]["sft_loss"]
    assert "| tiny-random | SFT |" in out.with_suffix(".md").read_text()
