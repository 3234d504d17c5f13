"""scripts/train_diatool_dpo.py: exported from notebook 05, a TRL-style CLI, and a real ZeRO-3 run on 2 CPU processes.

The slow tests launch the script with `accelerate launch` and DeepSpeed ZeRO stage 3 on two CPU processes
(configs/accelerate/zero3_cpu_2proc.yaml + configs/recipes/tiny_cpu_smoke.yaml): a first run of 4 steps
that saves every 2, then a relaunch that resumes from its last checkpoint and trains to step 6.
"""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import pytest
import yaml

from diatool_utils.notebooks import export_script
from diatool_utils.paths import CONFIGS_DIR, DATA_DIR, NOTEBOOKS_DIR, REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "train_diatool_dpo.py"
NOTEBOOK = NOTEBOOKS_DIR / "05_zero3_multi_gpu.ipynb"
CPU_CONFIG = CONFIGS_DIR / "accelerate" / "zero3_cpu_2proc.yaml"
TINY_RECIPE = CONFIGS_DIR / "recipes" / "tiny_cpu_smoke.yaml"
PAPER_RECIPE = CONFIGS_DIR / "recipes" / "diatool_dpo_paper.yaml"
DIATOOL_FLAGS = {
    "gamma": "Reward scaling factor",
    "margin": "Reward gap subtraction",
    "use_phi": "Weigh turns by phi",
    "use_psi": "Divide the weighted sum",
    "use_margin": "Subtract the margin",
}


@pytest.fixture(scope="module")
def script():
    """The script as a module (its functions, without running main)."""
    spec = importlib.util.spec_from_file_location("train_diatool_dpo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# The script is the notebook's export, and a documented CLI
# ---------------------------------------------------------------------------------------------

def test_committed_script_is_exactly_the_notebook_export():
    assert export_script(NOTEBOOK) == SCRIPT.read_text(), (
        "run: python -m diatool_utils.notebooks --export notebooks/05_zero3_multi_gpu.ipynb scripts/train_diatool_dpo.py")


def test_help_documents_every_diatool_flag():
    run = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    help_text = " ".join(run.stdout.split())  # argparse wraps lines
    for flag, words in DIATOOL_FLAGS.items():
        assert re.search(rf"--{flag}\b", help_text), flag
        assert words in help_text, (flag, words)
    for flag in ("--dataset_path", "--eval_split", "--max_train_samples", "--model_name_or_path", "--use_peft",
                 "--load_in_4bit", "--resume_from_checkpoint", "--config"):
        assert flag in help_text, flag


def test_command_line_overrides_the_yaml_recipe(script):
    script_args, training_args, model_args = script.parse_args(
        ["--config", str(TINY_RECIPE), "--gamma", "0.7", "--use_psi", "false", "--max_steps", "3",
         "--model_name_or_path", "smollm2-135m", "--dataset_path", "a.jsonl", "b.jsonl"])
    assert (training_args.gamma, training_args.use_psi, training_args.max_steps) == (0.7, False, 3)
    assert (training_args.margin, training_args.beta, training_args.max_length) == (2.0, 0.5, 512)  # from YAML
    assert model_args.model_name_or_path == "smollm2-135m"
    assert script_args.dataset_path == ["a.jsonl", "b.jsonl"]
    assert script_args.max_train_samples == 8


# ---------------------------------------------------------------------------------------------
# Recipes and accelerate configs
# ---------------------------------------------------------------------------------------------

def test_paper_recipe_has_the_reference_hyperparameters(script):
    recipe = yaml.safe_load(PAPER_RECIPE.read_text())
    expected = {"beta": 0.5, "gamma": 0.5, "margin": 2.0, "learning_rate": 1e-7, "warmup_steps": 150,
                "num_train_epochs": 1, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
                "bf16": True, "max_length": 8192, "eval_split": 0.05, "eval_strategy": "steps", "eval_steps": 10,
                "logging_steps": 10, "save_strategy": "epoch"}
    assert {key: recipe[key] for key in expected} == expected
    # Every key is a real flag: the recipe parses (bf16 switched off only because this machine has no GPU).
    _, training_args, model_args = script.parse_args(["--config", str(PAPER_RECIPE), "--bf16", "false"])
    assert (training_args.learning_rate, training_args.warmup_steps, training_args.max_length) == (1e-7, 150, 8192)
    assert model_args.dtype == "bfloat16"


def test_accelerate_configs_use_zero_stage_3():
    for name, processes, cpu in (("zero3_8gpu", 8, False), ("zero3_offload_8gpu", 8, False),
                                 ("zero3_cpu_2proc", 2, True)):
        config = yaml.safe_load((CONFIGS_DIR / "accelerate" / f"{name}.yaml").read_text())
        assert config["distributed_type"] == "DEEPSPEED" and config["deepspeed_config"]["zero_stage"] == 3, name
        assert (config["num_processes"], config["use_cpu"]) == (processes, cpu), name
        assert config["deepspeed_config"]["zero3_save_16bit_model"] is True, name
    offload = yaml.safe_load((CONFIGS_DIR / "accelerate" / "zero3_offload_8gpu.yaml").read_text())
    assert offload["deepspeed_config"]["offload_optimizer_device"] == "cpu"


def test_slurm_script_is_valid_bash_and_launches_the_zero3_recipe():
    sbatch = REPO_ROOT / "scripts" / "slurm_zero3.sbatch"
    assert subprocess.run(["bash", "-n", str(sbatch)]).returncode == 0
    text = sbatch.read_text()
    for needle in ("configs/accelerate/zero3_8gpu.yaml", "configs/recipes/diatool_dpo_paper.yaml",
                   "scripts/train_diatool_dpo.py", "--machine_rank", "--deepspeed_multinode_launcher standard"):
        assert needle in text
        if needle.endswith((".yaml", ".py")):
            assert (REPO_ROOT / needle).is_file(), needle


# ---------------------------------------------------------------------------------------------
# Data and checkpoints
# ---------------------------------------------------------------------------------------------

def test_split_is_95_to_5_seeded_and_disjoint(script):
    pairs = script.load_pairs([str(DATA_DIR / "dpo_pairs.jsonl")])
    train, evaluation = script.split_pairs(pairs, 0.05, seed=42)
    assert (len(train), len(evaluation)) == (2850, 150)
    assert not {p["id"] for p in train} & {p["id"] for p in evaluation}
    again, _ = script.split_pairs(pairs, 0.05, seed=42)
    other, _ = script.split_pairs(pairs, 0.05, seed=7)
    assert [p["id"] for p in again] == [p["id"] for p in train] != [p["id"] for p in other]
    everything, nothing = script.split_pairs(pairs[:10], 0.0, seed=0)
    assert sorted(p["id"] for p in everything) == sorted(p["id"] for p in pairs[:10]) and nothing == []


def test_a_line_that_is_not_a_pair_is_named(script, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": [], "chosen": [], "rejected": []}\n{"prompt": [], "chosen": []}\n')
    with pytest.raises(ValueError, match=r"pairs.jsonl, line 2: not a preference pair, missing rejected"):
        script.load_pairs([str(path)])
    with pytest.raises(ValueError, match="eval_split must lie in"):
        script.split_pairs([{}], 1.0, seed=0)


def test_resume_true_means_the_newest_checkpoint(script, tmp_path):
    for step in (2, 10, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert script.resolve_checkpoint("true", str(tmp_path)) == str(tmp_path / "checkpoint-10")
    assert script.resolve_checkpoint(str(tmp_path / "checkpoint-2"), str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert script.resolve_checkpoint(None, str(tmp_path)) is None
    with pytest.raises(FileNotFoundError, match="no checkpoint-N folder"):
        script.resolve_checkpoint("true", str(tmp_path / "empty"))


# ---------------------------------------------------------------------------------------------
# A real run: accelerate launch, DeepSpeed ZeRO-3, 2 CPU processes
# ---------------------------------------------------------------------------------------------

def launch(output_dir, *extra_args) -> str:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG), str(SCRIPT),
               "--config", str(TINY_RECIPE), "--output_dir", str(output_dir), *extra_args]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    return log


def trainer_state(checkpoint) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """4 steps on 8 pairs, checkpoints every 2 steps (only the newest kept), evaluation on 2 pairs."""
    output_dir = tmp_path_factory.mktemp("zero3") / "run"
    return output_dir, launch(output_dir, "--max_steps", "4", "--save_steps", "2")


@pytest.fixture(scope="module")
def resumed_run(first_run):
    """The same command relaunched with 2 more steps and --resume_from_checkpoint true."""
    output_dir, _ = first_run
    return output_dir, launch(output_dir, "--max_steps", "6", "--eval_strategy", "no",
                              "--resume_from_checkpoint", "true")


@pytest.mark.slow
def test_zero3_run_has_two_processes_each_holding_half_of_the_parameters(first_run):
    _, log = first_run
    line = next(line for line in log.splitlines() if "zero_stage=" in line)
    assert "world_size=2" in line and "distributed_type=DEEPSPEED" in line and "zero_stage=3" in line
    held, total = (int(n.replace(",", "")) for n in re.search(r"holds ([\d,]+) of ([\d,]+)", line).groups())
    assert abs(held / total - 0.5) < 0.01


@pytest.mark.slow
def test_zero3_loss_is_finite_and_starts_at_log_one_plus_e_beta_margin(first_run):
    output_dir, _ = first_run
    state = trainer_state(output_dir / "checkpoint-4")
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    # At step 1 the policy is the reference: every log-ratio is 0, loss = log(1 + e^(beta * margin)), beta 0.5, margin 2.
    assert losses[0] == pytest.approx(math.log1p(math.exp(0.5 * 2.0)), abs=1e-3)
    evaluations = [entry for entry in state["log_history"] if "eval_loss" in entry]
    assert evaluations and all(math.isfinite(entry["eval_loss"]) for entry in evaluations)


@pytest.mark.slow
def test_checkpoint_holds_one_optimizer_shard_per_process(first_run):
    output_dir, _ = first_run
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-4"]  # save_total_limit 1
    shards = sorted((output_dir / "checkpoint-4").glob("global_step4/*optim_states.pt"))
    assert [p.name[:15] for p in shards] == ["zero_pp_rank_0_", "zero_pp_rank_1_"]


@pytest.mark.slow
def test_saved_model_reloads_with_the_functionary_tokens_and_generates(first_run):
    import torch

    from diatool_utils.models import load_model_and_tokenizer
    from diatool_utils.templating import functionary_token_ids, render_conversation

    output_dir, _ = first_run
    model, tokenizer = load_model_and_tokenizer(str(output_dir))
    functionary_token_ids(tokenizer)  # raises if the tokens are missing
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    pair = json.loads((DATA_DIR / "dpo_pairs.jsonl").open().readline())
    inputs = tokenizer(render_conversation(pair["prompt"], pair["tools"], add_generation_prompt=True),
                       return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 5


@pytest.mark.slow
def test_relaunch_resumes_from_the_checkpoint_and_continues_the_step_count(resumed_run):
    output_dir, log = resumed_run
    assert "resuming from" in log and "checkpoint-4 at global step 4" in log
    state = trainer_state(output_dir / "checkpoint-6")
    assert state["global_step"] == 6
    steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3, 4, 5, 6]  # 1-4 restored from the checkpoint, 5-6 trained after resuming
    assert len(re.findall(r"^\{'loss'", log, flags=re.M)) == 2  # the relaunch trained 2 steps, not 6
    assert "trained to global step 6" in log
