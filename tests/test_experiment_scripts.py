"""The experiment drivers in experiments/, end to end on the tiny model."""

import json
import runpy

import pytest
import torch
from safetensors.torch import load_file

from diatool_utils.paths import REPO_ROOT
from diatool_utils.synthetic_tools import tools_in

SEARCH = runpy.run_path(str(REPO_ROOT / "experiments" / "row_mix_search.py"))
FIRST_ACTION = runpy.run_path(str(REPO_ROOT / "experiments" / "first_action.py"))
SFT_SEARCH = runpy.run_path(str(REPO_ROOT / "experiments" / "sft_search.py"))
TRAJECTORY = runpy.run_path(str(REPO_ROOT / "experiments" / "dpo_trajectory.py"))


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_model, tiny_tokenizer, sft_markers):
    folder = tmp_path / "tiny"  # as an SFT stage leaves it: the Functionary tokens added, their rows trained
    sft_markers(tiny_model, tiny_tokenizer)
    tiny_model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def test_a_mix_is_a_name_rows_and_recipe_fields():
    parse = SEARCH["parse_mix"]
    assert parse(["decline-x2", "5,6,9,9", "steps=3", "lr=1e-4"]) == (
        "decline-x2", {"dpo_rows": (5, 6, 9, 9), "dpo_steps": 3, "dpo_learning_rate": 1e-4})
    assert parse(["all-rows", "all", "beta=0.1"]) == ("all-rows", {"dpo_rows": None, "beta": 0.1})
    # values parse by the Recipe field's type, as reproduce.py's flags do (a string field was float() before)
    assert parse(["np", "5,6", "ablation=no_psi"])[1] == {"dpo_rows": (5, 6), "ablation": "no_psi"}
    with pytest.raises(ValueError, match="give a name and the rows"):
        parse(["lonely"])
    with pytest.raises(ValueError, match="--mix m: 'stepz=3' is not FIELD=VALUE"):
        parse(["m", "5", "stepz=3"])


def test_search_trains_each_mix_and_tabulates_it(tmp_path, tiny_checkpoint):
    out = tmp_path / "search"
    results = SEARCH["main"](["--sft", str(tiny_checkpoint), "--out", str(out), "--eval-limit", "3",
                              "--base", "max_new_tokens=4", "--mix", "decline", "9,10", "steps=1"])
    assert list(results["mixes"]) == ["decline"]
    assert results["mixes"]["decline"]["overrides"]["dpo_rows"] == (9, 10)
    assert (results["base"]["eval_limit"], results["base"]["max_new_tokens"]) == (3, 4)  # --eval-limit, --base
    table = (out / "search.md").read_text()
    assert "| decline |" in table and "| SFT only |" in table and "What the replies did" in table
    saved = json.loads((out / "search.json").read_text())
    assert saved["mixes"]["decline"]["summary"]["total"] == 3
    assert saved["command"].startswith("python experiments/row_mix_search.py --sft ")


def test_first_action_script_writes_its_table_and_numbers(tmp_path, tiny_checkpoint):
    out = tmp_path / "fa.md"
    stats = FIRST_ACTION["main"](["--out", str(out), f"tiny model={tiny_checkpoint}"])
    assert 0.0 <= stats["tiny model"]["auc_slot_vs_call"] <= 1.0
    text = out.read_text()
    assert "| tiny model |" in text and "199 turns of data/eval_dialog.jsonl" in text
    command = json.loads(out.with_suffix(".json").read_text())["command"]
    assert command.startswith("python experiments/first_action.py --out ")
    assert "'tiny model=" in command  # quoted: it has a space
    with pytest.raises(SystemExit):
        FIRST_ACTION["main"](["--out", str(out), "no-equals-sign"])


def test_first_action_script_can_score_the_plan_on_the_training_tools(tmp_path, tiny_checkpoint):
    out = tmp_path / "fa.md"
    FIRST_ACTION["main"](["--out", str(out), "--tools", "train", "--tools-seed", "3", f"t={tiny_checkpoint}"])
    assert "199 turns of generate_eval(seed=3, split='train')" in out.read_text()
    assert json.loads(out.with_suffix(".json").read_text())["benchmark"] == "generate_eval(seed=3, split='train')"
    cases, _ = FIRST_ACTION["benchmark"](None, "train", 3)
    offered = {tool["function"]["name"] for case in cases for tool in case.tools}
    assert offered and offered <= {tool.name for tool in tools_in("train")}


def test_sft_search_trains_measures_and_tabulates_each_variant(tmp_path):
    out = tmp_path / "sft_search"
    # 2 SFT steps: the first runs at the warm-up's learning rate of 0 and leaves the markers' rows untrained
    base = ["model_name=tiny-random", "steps=2", "dpo_steps=1", "eval_limit=3", "max_new_tokens=4", "max_length=512"]
    results = SFT_SEARCH["main"](["--out", str(out), "--dpo", "--base", *base,
                                  "--variant", "plain", "--variant", "x5", "weight=5"])
    assert results["variants"]["x5"]["overrides"] == {"sft_decision_weight": 5.0}
    assert results["base"]["sft_steps"] == 2
    for entry in results["variants"].values():
        for stage in ("sft", "dpo"):
            assert entry[stage]["summary"]["total"] == 3
            assert set(entry[stage]["first_action"]) == {"mean_p_text", "auc_slot_vs_call", "auc_relevance_vs_call"}
    table = (out / "search.md").read_text()
    assert "| x5 SFT |" in table and "| x5 +DPO |" in table and "First action" in table
    with pytest.raises(ValueError, match="--variant bad: 'wieght=5' is not FIELD=VALUE"):
        SFT_SEARCH["main"](["--out", str(out), "--variant", "bad", "wieght=5"])


def test_trajectory_measures_every_kept_step_and_evaluates_the_chosen_ones(tmp_path, tiny_checkpoint):
    out = tmp_path / "trajectory"
    result = TRAJECTORY["main"](["--sft", str(tiny_checkpoint), "--out", str(out), "--every", "2",
                                 "--eval-steps", "0", "2", "--", "steps=3", "rows=9,10", "eval_limit=3",
                                 "max_new_tokens=4"])
    # step 0 is the SFT model, 2 a kept adapter, 3 the end of the run (not a multiple of --every)
    assert sorted(result["steps"]) == [0, 2, 3]
    assert (out / "dpo-full" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert (out / "dpo-full" / "checkpoint-2" / "optimizer.pt").is_file()  # the whole state: a run cut off resumes
    assert {step: summary["total"] for step, summary in result["evaluations"].items()} == {0: 3, 2: 3}
    # the kept adapter is the model at that step: its weights are neither the SFT model's nor the final ones
    weights = {name: load_file(folder / "model.safetensors") for name, folder in
               [("sft", tiny_checkpoint), ("step 2", out / "dpo-full" / "step-2"), ("end", out / "dpo-full" / "merged")]}
    changed = {other: any(not torch.equal(tensor, weights[other][key]) for key, tensor in weights["step 2"].items())
               for other in ("sft", "end")}
    assert changed == {"sft": True, "end": True}
    text = (out / "trajectory.md").read_text()
    assert all(f"| step {step} |" in text for step in (0, 2, 3))
    assert "| slot | step 2 |" in text and "| slot | step 3 |" not in text  # greedy evaluation at the chosen steps only
    assert (out / "trajectory.png").stat().st_size > 0
    with pytest.raises(SystemExit):  # a step that is never measured
        TRAJECTORY["main"](["--sft", str(tiny_checkpoint), "--out", str(out), "--every", "2", "--eval-steps", "1",
                            "--", "steps=3"])


SFT_DOSE = runpy.run_path(str(REPO_ROOT / "experiments" / "sft_dose.py"))


def test_sft_dose_judges_every_kept_step_on_the_dev_file_and_resumes(tmp_path):
    out = tmp_path / "dose"
    settings = ["model_name=tiny-random", "steps=3", "eval_limit=3", "max_new_tokens=4", "max_length=512"]
    result = SFT_DOSE["main"](["--out", str(out), "--every", "2", *settings])
    assert sorted(result["steps"]) == [2, 3]  # every kept step, and the end of the run
    assert result["recipe"]["eval_data"] == "data/dev_dialog.jsonl"
    assert {step: row["dev"]["total"] for step, row in result["steps"].items()} == {2: 3, 3: 3}
    assert result["steps"][3]["epochs"] == round(3 * 4 / 1500, 2)
    text = (out / "sft_dose.md").read_text()
    assert "| step 2 |" in text and "| slot | step 3 |" in text
    again = SFT_DOSE["main"](["--out", str(out), "--every", "2", *settings])  # all finished: read back, not retrained
    assert again["steps"][3]["dev"] == result["steps"][3]["dev"] and again["seconds"]["sft"] < result["seconds"]["sft"]
