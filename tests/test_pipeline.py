"""The one-command reproduction (scripts/reproduce.py) end to end on the tiny model."""

import json
import runpy

import pytest

from diatool_utils.paths import REPO_ROOT
from diatool_utils.pipeline import ABLATIONS, Recipe, dpo_config


@pytest.mark.slow
def test_reproduce_writes_the_table_plots_and_cases(tmp_path):
    reproduce = runpy.run_path(str(REPO_ROOT / "scripts" / "reproduce.py"))
    results = reproduce["main"](["--out", str(tmp_path), "--smoke", "--sft-limit", "8", "--dpo-limit", "4",
                                 "--eval-limit", "4"])
    assert list(results["summaries"]) == ["SFT only", "SFT + DiaTool-DPO"]
    for summary in results["summaries"].values():
        assert summary["total"] == 4
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["recipe"]["model_name"] == "tiny-random" and saved["recipe"]["quantization"] == "4bit"
    assert "| SFT + DiaTool-DPO |" in (tmp_path / "results.md").read_text()
    for name in ["accuracy.png", "training_curves.png", "eval_sft.jsonl", "eval_full.jsonl"]:
        assert (tmp_path / name).stat().st_size > 0, name
    cases = (tmp_path / "eval_full.jsonl").read_text().splitlines()
    assert len(cases) == 4 and "reason" in json.loads(cases[0])


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_each_ablation_sets_the_paper_switches(ablation, tmp_path):
    config = dpo_config(Recipe(ablation=ablation), tmp_path)
    expected = {"use_phi": True, "use_psi": True, "use_margin": True, **ABLATIONS[ablation]}
    assert {k: getattr(config, k) for k in expected} == expected


def test_nll_weight_adds_the_sft_term_and_zero_removes_it(tmp_path):
    assert dpo_config(Recipe(nll_weight=0.5), tmp_path).loss_weights == [1.0, 0.5]
    assert dpo_config(Recipe(nll_weight=0.0), tmp_path).loss_type == ["sigmoid"]
