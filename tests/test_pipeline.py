"""The one-command reproduction (scripts/reproduce.py) end to end on the tiny model."""

import json
import math
import random
import runpy
from collections import Counter
from pathlib import Path

import pytest

from diatool_utils.dialogues_io import InvalidDialogue
from diatool_utils.hardware import default_precision, default_quantization
from diatool_utils.paths import DATA_DIR, REPO_ROOT
from diatool_utils.pipeline import (
    ABLATIONS,
    Recipe,
    dpo_config,
    dpo_pairs,
    group_twins,
    key_digest,
    read_record,
    replay_dataset,
    row_balanced,
    sample_jsonl,
    select_rows,
    stage_key,
    train_dpo,
    train_sft,
    write_record,
)


@pytest.mark.slow
def test_reproduce_writes_the_table_plots_and_cases(tmp_path, capsys):
    reproduce = runpy.run_path(str(REPO_ROOT / "scripts" / "reproduce.py"))
    results = reproduce["main"](["--out", str(tmp_path), "--smoke", "--sft-limit", "8", "--dpo-limit", "4",
                                 "--eval-limit", "4"])
    assert list(results["summaries"]) == ["SFT only", "SFT + DiaTool-DPO"]
    for summary in results["summaries"].values():
        assert summary["total"] == 4
    saved = json.loads((tmp_path / "results.json").read_text())
    # the record says what ran on this machine: the device's defaults, filled in
    assert saved["recipe"]["model_name"] == "tiny-random"
    assert (saved["recipe"]["quantization"], saved["recipe"]["precision"]) == (default_quantization(),
                                                                               default_precision())
    results_md = (tmp_path / "results.md").read_text()
    assert "| SFT + DiaTool-DPO |" in results_md
    assert "| slot | SFT + DiaTool-DPO |" in results_md  # the behaviour table
    assert "Not run yet" not in results_md and saved["not_run"] == []
    for name in ["accuracy.png", "training_curves.png", "eval_sft.jsonl", "eval_full.jsonl"]:
        assert (tmp_path / name).stat().st_size > 0, name
    cases = (tmp_path / "eval_full.jsonl").read_text().splitlines()
    assert len(cases) == 4 and "reason" in json.loads(cases[0])
    # what the trainers consumed: SFT 2 steps x 4 conversations, DPO 2 steps x 2 pairs
    assert (saved["sft_conversations_seen"], saved["dpo_pairs_seen"]) == (8, 4)
    assert "dev_curves" not in saved and not (tmp_path / "dev_curves.png").exists()  # not watched unless asked

    # --reuse: finished stages with the same settings are read back, not run again ...
    checkpoint = tmp_path / "dpo-full" / "merged" / "model.safetensors"
    written = checkpoint.stat().st_mtime_ns
    args = ["--out", str(tmp_path), "--smoke", "--sft-limit", "8", "--dpo-limit", "4", "--eval-limit", "4", "--reuse"]
    saved_cases = tmp_path / "eval_full.jsonl"
    rows = [json.loads(line) for line in saved_cases.read_text().splitlines()]
    rows[0]["passed"] = not rows[0]["passed"]  # a verdict an older judge gave: reuse judges the replies again
    saved_cases.write_text("".join(json.dumps(row) + "\n" for row in rows))
    again = reproduce["main"](args)
    assert checkpoint.stat().st_mtime_ns == written
    assert again["summaries"] == results["summaries"] and again["seconds"] == results["seconds"]
    assert json.loads(saved_cases.read_text().splitlines()[0])["passed"] != rows[0]["passed"]
    # ... while a changed DPO setting trains DPO again but keeps the SFT model
    sft_checkpoint = tmp_path / "sft" / "merged" / "model.safetensors"
    sft_written = sft_checkpoint.stat().st_mtime_ns
    # (replies copied without their summary file still reuse; their wall time is then unknown, not a crash)
    (tmp_path / "eval_sft.summary.json").unlink()
    changed = reproduce["main"](args + ["--beta", "0.3", "--dpo-rows", "9,10"])
    assert checkpoint.stat().st_mtime_ns != written and sft_checkpoint.stat().st_mtime_ns == sft_written
    assert "DPO pairs: 600 of 3000, from Table-1 rows 9 (300), 10 (300)" in capsys.readouterr().out
    assert changed["seconds"]["SFT train"] == results["seconds"]["SFT train"]
    assert changed["seconds"]["SFT eval"] is None and changed["summaries"]["SFT only"] == results["summaries"]["SFT only"]
    assert "| SFT eval | not recorded |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_reproduce_watches_dpo_on_the_dev_split_and_keeps_checkpoints(tmp_path):
    reproduce = runpy.run_path(str(REPO_ROOT / "scripts" / "reproduce.py"))
    results = reproduce["main"](["--out", str(tmp_path), "--smoke", "--sft-limit", "8", "--dpo-limit", "4",
                                 "--eval-limit", "4", "--checkpoint-every", "1", "--dev-every", "1", "--dev-limit", "1"])
    curves = results["dev_curves"]["SFT + DiaTool-DPO"]
    assert list(curves) == [0, 1, 2] and sorted(curves[2]["pair_accuracy"]) == list(range(1, 11))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["dev_curves"]["SFT + DiaTool-DPO"]) == ["0", "1", "2"]  # JSON keys are strings
    assert (tmp_path / "dev_curves.png").stat().st_size > 0
    assert "watched on the dev split" in (tmp_path / "results.md").read_text()
    assert reproduce["slug"]("SFT + DiaTool-DPO") == "SFT_DiaTool-DPO"
    for stage in ("sft", "dpo-full"):
        assert (tmp_path / stage / "checkpoint-2" / "trainer_state.json").is_file(), stage


@pytest.mark.slow
def test_reproduce_keeps_the_finished_variants_when_the_run_stops(tmp_path):
    # On 2 CPU cores the four ablations take hours; a run stopped in the middle must still leave the table
    # of what it finished and name what it did not reach.
    reproduce = runpy.run_path(str(REPO_ROOT / "scripts" / "reproduce.py"))
    module = reproduce["main"].__globals__  # the namespace main() looks its helpers up in
    real_train_dpo = module["train_dpo"]

    def train_dpo(recipe, *args, **kwargs):
        if recipe.ablation == "no_psi":
            raise KeyboardInterrupt  # the run is stopped while training the second variant
        return real_train_dpo(recipe, *args, **kwargs)

    module["train_dpo"] = train_dpo
    with pytest.raises(KeyboardInterrupt):
        reproduce["main"](["--out", str(tmp_path), "--smoke", "--sft-limit", "8", "--dpo-limit", "4",
                           "--eval-limit", "4", "--ablations", "full", "no_psi", "no_margin"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["summaries"]) == ["SFT only", "SFT + DiaTool-DPO"]
    assert saved["not_run"] == ["no_psi", "no_margin"]
    assert "full train" in saved["seconds"] and "no_psi train" not in saved["seconds"]
    results_md = (tmp_path / "results.md").read_text()
    assert "| SFT + DiaTool-DPO |" in results_md and "Not run yet" in results_md and "no_psi, no_margin" in results_md
    assert (tmp_path / "accuracy.png").stat().st_size > 0 and (tmp_path / "training_curves.png").stat().st_size > 0


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_each_ablation_sets_the_paper_switches(ablation, tmp_path):
    config = dpo_config(Recipe(ablation=ablation), tmp_path)
    expected = {"use_phi": True, "use_psi": True, "use_margin": True, **ABLATIONS[ablation]}
    assert {k: getattr(config, k) for k in expected} == expected


def test_nll_weight_adds_the_sft_term_and_zero_removes_it(tmp_path):
    assert dpo_config(Recipe(nll_weight=0.5), tmp_path).loss_weights == [1.0, 0.5]
    assert dpo_config(Recipe(nll_weight=0.0), tmp_path).loss_type == ["sigmoid"]


def test_a_stage_record_matches_only_the_settings_it_was_written_for(tmp_path, capsys):
    record = tmp_path / "stage.json"
    key = stage_key(Recipe(), "sft")
    write_record(record, key, seconds=1.0, history=[])
    assert read_record(record, key)["seconds"] == 1.0
    assert read_record(record, stage_key(Recipe(sft_steps=7), "sft")) is None
    assert "settings changed (sft_steps)" in capsys.readouterr().out
    assert read_record(tmp_path / "missing.json", key) is None
    # the DPO key ignores SFT-only settings but not the model it starts from
    assert stage_key(Recipe(), "dpo", upstream="a") != stage_key(Recipe(), "dpo", upstream="b")


def test_dpo_recomputes_activations_only_on_a_gpu(tmp_path):
    import torch

    assert dpo_config(Recipe(), tmp_path).gradient_checkpointing == torch.cuda.is_available()


def test_dpo_rows_selects_table_1_rows_and_keys_the_stage(tmp_path):
    assert stage_key(Recipe(dpo_rows=(4, 5)), "dpo")["dpo_rows"] == [4, 5]
    assert stage_key(Recipe(dpo_rows=(4, 5)), "dpo") != stage_key(Recipe(), "dpo")


def test_select_rows_keeps_the_asked_rows_and_refuses_unusable_files():
    pairs = [{"id": f"p{i}", "row": row} for i, row in enumerate([1, 4, 9, 4, 2])]
    assert [p["id"] for p in select_rows(pairs, (4, 9), "pairs.jsonl")] == ["p1", "p2", "p3"]
    with pytest.raises(ValueError, match=r"rows \[5\] \(it has rows \[1, 2, 4, 9\]\)"):
        select_rows(pairs, (5,), "pairs.jsonl")
    with pytest.raises(ValueError, match=r"rows \[5\]"):  # one absent row is an error, not a smaller mix
        select_rows(pairs, (4, 5), "pairs.jsonl")
    own = pairs + [{"id": "mine", "prompt": []}]  # a user's pair file without Table-1 labels
    with pytest.raises(ValueError, match="1 of 6 pairs in own.jsonl have no 'row'.*'mine'.*dpo_rows=None"):
        select_rows(own, (4,), "own.jsonl")


def test_a_row_named_twice_weighs_twice_and_the_order_is_kept(capsys):
    pairs = [{"id": f"p{i}", "row": row} for i, row in enumerate([5, 9, 5, 9, 5, 9, 5, 9, 1])]
    kept = select_rows(pairs, (5, 9, 9), "pairs.jsonl")
    assert [p["id"] for p in kept] == ["p0", "p1", "p2", "p3", "p5", "p7"]  # half of row 5, all of row 9
    assert "DPO pairs: 6 of 9, from Table-1 rows 5 (2 of 4), 9 (4)" in capsys.readouterr().out
    # unequal row sizes: a row's share is its size times its weight (10 x 2 : 4 x 1)
    uneven = [{"id": f"q{i}", "row": row} for i, row in enumerate([5] * 10 + [9] * 4)]
    assert Counter(p["row"] for p in select_rows(uneven, (5, 5, 9), "pairs.jsonl")) == {5: 10, 9: 2}


def test_recipe_json_shows_repository_files_relative_to_its_root(tmp_path):
    shown = json.loads(Recipe(eval_data=str(tmp_path / "mine.jsonl")).to_json())
    assert shown["sft_data"] == "data/sft.jsonl" and shown["dpo_data"] == "data/dpo_pairs.jsonl"
    assert shown["eval_data"] == str(tmp_path / "mine.jsonl")  # outside the repository: kept whole
    assert shown["dpo_rows"] is None and json.loads(Recipe(dpo_rows=(5, 6)).to_json())["dpo_rows"] == [5, 6]


def test_reproduce_flags_override_the_recipe_and_none_means_all_rows():
    reproduce = runpy.run_path(str(REPO_ROOT / "scripts" / "reproduce.py"))
    recipe = lambda *flags: reproduce["recipe_from_args"](reproduce["parse_args"](["--out", "x", *flags]))  # noqa: E731
    assert recipe() == Recipe()
    assert recipe("--dpo-rows", "none").dpo_rows is None  # all ten rows, as select_rows' error advises
    assert recipe("--dpo-rows", "9,10", "--beta", "0.3").dpo_rows == (9, 10)
    assert recipe("--smoke", "--dpo-steps", "5").model_name == "tiny-random"
    assert recipe("--smoke", "--dpo-steps", "5").dpo_steps == 5


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_stage_keys_gain_the_decision_weight_only_when_it_is_set(stage):
    name = f"{stage}_decision_weight"
    plain = stage_key(Recipe(**{name: 1.0}), stage)
    assert name not in plain  # stages trained before the field existed still match
    weighted = stage_key(Recipe(**{name: 10.0}), stage)
    assert weighted == {**plain, name: 10.0}


def test_the_dpo_decision_weight_reaches_the_trainer_config(tmp_path):
    assert dpo_config(Recipe(), tmp_path).decision_weight == 1.0
    assert dpo_config(Recipe(dpo_decision_weight=8.0), tmp_path).decision_weight == 8.0


def test_twin_pairs_are_shuffled_as_whole_twins_and_kept_adjacent(tmp_path):
    twins = DATA_DIR / "dpo_twins.jsonl"
    pairs, are_twins = dpo_pairs(Recipe(dpo_data=str(twins), dpo_rows=None))
    assert are_twins and len(pairs) == 1000
    assert all(a["twin"] == b["twin"] for a, b in zip(pairs[::2], pairs[1::2], strict=True))
    in_file = [json.loads(line)["twin"] for line in twins.read_text().splitlines()[::2]]
    assert [p["twin"] for p in pairs[::2]] != in_file  # shuffled (by the recipe's seed), as whole twins
    assert [p["twin"] for p in dpo_pairs(Recipe(dpo_data=str(twins), dpo_rows=None), limit=7)[0]] == \
        [p["twin"] for p in pairs[:6]]  # a limit keeps whole twins
    assert dpo_config(Recipe(), tmp_path, train_sampling_strategy="sequential").train_sampling_strategy == "sequential"

    kept, _ = dpo_pairs(Recipe(dpo_data=str(twins), dpo_rows=(1, 2, 4, 5, 6, 8, 9, 10)))
    assert len(kept) == 800 and {tuple(sorted((a["row"], b["row"]))) for a, b in zip(kept[::2], kept[1::2], strict=True)} == \
        {(1, 5), (2, 6), (4, 9), (8, 10)}  # twins 3/7 left out whole
    assert [p["twin"] for p in kept[::2]] == [p["twin"] for p in pairs[::2] if p["row"] not in (3, 7)]  # order kept
    with pytest.raises(ValueError, match=r"no twin .* rows \[5, 6, 7\]; its twins pair rows \[\(1, 5\)"):
        dpo_pairs(Recipe(dpo_data=str(twins), dpo_rows=(5, 6, 7)))
    with pytest.raises(ValueError, match="name each row once"):
        dpo_pairs(Recipe(dpo_data=str(twins), dpo_rows=(1, 5, 5)))
    with pytest.raises(ValueError, match="even dpo_batch_size.*got 3"):
        dpo_pairs(Recipe(dpo_data=str(twins), dpo_rows=None, dpo_batch_size=3))
    plain, are_twins = dpo_pairs(Recipe(dpo_rows=None), limit=10)
    assert not are_twins and len(plain) == 10


def test_group_twins_refuses_mixed_files_and_broken_twins():
    pairs = [{"id": "a", "twin": "t1"}, {"id": "b", "twin": "t2"}, {"id": "c", "twin": "t1"}, {"id": "d", "twin": "t2"}]
    assert [p["id"] for p in group_twins(pairs, "f.jsonl")] == ["a", "c", "b", "d"]
    with pytest.raises(ValueError, match="pair 'e' in f.jsonl has no 'twin' id"):
        group_twins([*pairs, {"id": "e"}], "f.jsonl")
    with pytest.raises(ValueError, match="twin 't2' in f.jsonl has 3 pairs"):
        group_twins([*pairs, {"id": "e", "twin": "t2"}], "f.jsonl")
    with pytest.raises(ValueError, match="twin 't1' in f.jsonl has 1 pair;"):
        group_twins(pairs[:2], "f.jsonl")


@pytest.mark.slow
def test_a_second_sft_round_continues_from_the_first(tmp_path):
    one_round = Recipe(model_name="tiny-random", sft_steps=2, max_length=512)
    stage = train_sft(Recipe(**{**one_round.__dict__, "sft_rounds": 2}), tmp_path, limit=8)
    assert stage.path == tmp_path / "sft-round2" / "merged"
    first, second = (json.loads((tmp_path / folder / "stage.json").read_text()) for folder in ("sft", "sft-round2"))
    # round 1 is the one-round recipe's stage; round 2 has the next seed and names round 1 as its start
    assert first["key"] == stage_key(one_round, "sft", 8)
    assert second["key"] == stage_key(Recipe(**{**one_round.__dict__, "seed": 1}), "sft", 8,
                                      upstream=key_digest(first["key"]))
    adapter = json.loads((tmp_path / "sft-round2" / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tmp_path / "sft" / "merged")
    assert [entry["step"] for entry in stage.history if "loss" in entry] == [1, 2, 3, 4]
    assert stage.seconds == pytest.approx(first["seconds"] + second["seconds"]) and not stage.reused
    # both rounds found again: reused as a whole
    assert train_sft(Recipe(**{**one_round.__dict__, "sft_rounds": 2}), tmp_path, limit=8, reuse=True).reused
    # the one-round recipe finds its stage already trained
    again = train_sft(one_round, tmp_path, limit=8, reuse=True)
    assert again.reused and again.path == tmp_path / "sft" / "merged"
    with pytest.raises(ValueError, match="sft_rounds must be at least 1, got 0"):
        train_sft(Recipe(sft_rounds=0), tmp_path)


def test_replay_keys_the_dpo_stage_only_when_it_is_on(tmp_path):
    plain = stage_key(Recipe(), "dpo")
    assert not any("replay" in name for name in plain)  # stages trained before replay existed still match
    replaying = stage_key(Recipe(dpo_replay_weight=1.0), "dpo")
    assert {name for name in replaying if name not in plain} == \
        {"dpo_replay_weight", "dpo_replay_batch_size", "sft_decision_weight", "replay_sha256"}
    assert replaying["replay_sha256"] == stage_key(Recipe(), "sft")["data_sha256"]  # the SFT data by default
    config = dpo_config(Recipe(dpo_replay_weight=2.0, dpo_replay_batch_size=4), tmp_path)
    # a step is dpo_batch_size one-pair forwards; each trains its share of the step's replay conversations
    assert (config.replay_weight, config.replay_batch_size, config.gradient_accumulation_steps) == (2.0, 2, 2)
    with pytest.raises(ValueError, match="dpo_replay_batch_size=3 must split evenly over the 2 one-pair forwards"):
        dpo_config(Recipe(dpo_replay_weight=2.0, dpo_replay_batch_size=3), tmp_path)
    assert replay_dataset(Recipe(), tokenizer=None) is None


def _sample_the_old_way(path, limit=None, seed=0):
    """How the pipeline sampled JSONL rows before it read them through dialogues_io.read_jsonl."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:limit] if limit else rows


@pytest.mark.parametrize("name", ["sft.jsonl", "dpo_pairs.jsonl", "dpo_twins.jsonl"])
@pytest.mark.parametrize(("limit", "seed"), [(None, 0), (None, 3), (0, 1), (8, 0), (100, 7), (10**6, 2)])
def test_sample_jsonl_gives_the_rows_the_pipeline_always_sampled(name, limit, seed):
    expected = _sample_the_old_way(DATA_DIR / name, limit, seed)
    got = sample_jsonl(DATA_DIR / name, limit, seed)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_sample_jsonl_skips_blank_lines_reads_crlf_and_names_a_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\r\n{"a": 2}\n   \n{"a": 3}\n')
    assert sample_jsonl(path, None, 5) == _sample_the_old_way(path, None, 5)
    assert sorted(row["a"] for row in sample_jsonl(path)) == [1, 2, 3]
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(InvalidDialogue, match="line 2: not valid JSON"):
        sample_jsonl(path)


@pytest.mark.slow
def test_the_bf16_path_trains_on_any_cpu_and_merges_into_full_precision(tmp_path):
    """bf16 base + autocast (the default on CPUs with bf16 dot products), run explicitly so every CPU tests it."""
    import torch

    from diatool_utils.models import load_model_and_tokenizer

    recipe = Recipe(model_name="tiny-random", precision="bf16", quantization=None, sft_steps=2, dpo_steps=4,
                    max_length=512)
    sft = train_sft(recipe, tmp_path, limit=8)
    assert json.loads((sft.path.parent / "stage.json").read_text())["key"]["precision"] == "bf16"
    assert sft.history[0]["loss"] > 0
    dpo = train_dpo(recipe, sft.path, tmp_path, limit=8)
    first = next(entry for entry in dpo.history if "loss" in entry)
    # step 0: the policy is the reference, to the last bit (one pair per forward in both passes), so every reward
    # is 0 and the loss is log(1 + e^(beta * margin))
    assert first["rewards/chosen"] == first["rewards/rejected"] == 0.0
    assert first["loss"] == pytest.approx(math.log1p(math.exp(recipe.beta * recipe.margin)), abs=1e-6)
    assert list((tmp_path / "sft" / "reference_logps").glob("*.json")), "the reference log-probs are kept"
    merged, _ = load_model_and_tokenizer(str(dpo.path))
    assert next(merged.parameters()).dtype == torch.float32


def test_row_balanced_steps_take_one_pair_of_every_row():
    pairs, _ = dpo_pairs(Recipe(dpo_row_balanced=True, dpo_batch_size=10))
    assert len(pairs) == 3000  # 300 pairs a row: 300 whole blocks
    for start in range(0, 200, 10):
        assert sorted(pair["row"] for pair in pairs[start:start + 10]) == list(range(1, 11))
    assert [pair["row"] for pair in pairs[:10]] != list(range(1, 11))  # shuffled within the block
    assert dpo_pairs(Recipe(dpo_row_balanced=True, dpo_batch_size=10))[0] == pairs  # the same seed, the same order


def test_row_balanced_blocks_follow_the_row_weights_and_say_what_is_left_out(capsys):
    pairs = [{"id": f"{row}-{k}", "row": row} for row in (5, 6, 9) for k in range(4 if row == 9 else 3)]
    ordered = row_balanced(pairs, (5, 9, 9), 6, 0, "pairs.jsonl")
    assert [sorted(p["row"] for p in ordered[i:i + 3]) for i in range(0, len(ordered), 3)] == [[5, 9, 9]] * 2
    assert "2 row-balanced blocks of 3 (rows [5, 9, 9]); 4 pairs in no whole block left out" in \
        capsys.readouterr().out
    with pytest.raises(ValueError, match=r"dpo_batch_size=4 is not a multiple of 3"):
        row_balanced(pairs, (5, 9, 9), 4, 0, "pairs.jsonl")
    with pytest.raises(ValueError, match=r"1 of 2 pairs in pairs.jsonl have no 'row'"):
        row_balanced([{"row": 1}, {"id": "x"}], None, 2, 0, "pairs.jsonl")


def test_row_balanced_training_reads_the_pairs_in_their_blocks(tmp_path):
    recipe = Recipe(dpo_row_balanced=True, dpo_batch_size=10)
    assert dpo_config(recipe, tmp_path).gradient_accumulation_steps == 10  # one pair per forward, ten per step
    assert stage_key(recipe, "dpo")["dpo_row_balanced"] is True and "dpo_row_balanced" not in stage_key(Recipe(), "dpo")
    with pytest.raises(ValueError, match="twin pairs"):
        dpo_pairs(Recipe(dpo_data=str(DATA_DIR / "dpo_twins.jsonl"), dpo_row_balanced=True, dpo_batch_size=10))


class _CutOff(Exception):
    """Stands for a session ending mid-run."""


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_a_stage_cut_off_goes_on_from_its_last_checkpoint(tmp_path, monkeypatch, capsys, stage):
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from diatool_utils import pipeline

    recipe = Recipe(model_name="tiny-random", precision="fp32", quantization=None, sft_steps=4, dpo_steps=4,
                    max_length=512)
    sft_dir = None if stage == "sft" else train_sft(Recipe(**{**recipe.__dict__, "sft_steps": 2}),
                                                    tmp_path / "base", limit=8).path

    show, steps_run = pipeline.show_trainer_progress, []

    def run(folder, reuse, cut_at=None):
        steps_run.clear()

        class Cut(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == cut_at:
                    raise _CutOff

            def on_step_end(self, args, state, control, **kwargs):
                steps_run.append(state.global_step)

        def progress_and_cut(trainer, desc):
            show(trainer, desc)
            trainer.add_callback(Cut())

        monkeypatch.setattr(pipeline, "show_trainer_progress", progress_and_cut)
        if stage == "sft":
            return train_sft(recipe, folder, limit=16, reuse=reuse, checkpoint_every=2)
        return train_dpo(recipe, sft_dir, folder, limit=8, reuse=reuse, checkpoint_every=2)

    whole = run(tmp_path / "whole", reuse=False)
    with pytest.raises(_CutOff):
        run(tmp_path / "cut", reuse=True, cut_at=3)  # steps 1-3 done, the checkpoint of step 2 kept
    folder = tmp_path / "cut" / ("sft" if stage == "sft" else "dpo-full")
    assert [path.name for path in sorted(folder.glob("checkpoint-*"))] == ["checkpoint-2"]
    assert "checkpoint-2" in json.loads((folder / "stage.running.json").read_text())["seconds_at"]
    capsys.readouterr()
    resumed = run(tmp_path / "cut", reuse=True)
    assert f"resuming {folder} from checkpoint-2" in capsys.readouterr().out
    assert steps_run == [3, 4], "steps 1-2 were run again"
    assert [e["step"] for e in resumed.history if "loss" in e] == [1, 2, 3, 4]  # the whole log, across the cut
    assert not (folder / "stage.running.json").exists() and (folder / "stage.json").is_file()
    expected, got = load_file(whole.path / "model.safetensors"), load_file(resumed.path / "model.safetensors")
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_dev_watch_scores_every_row_and_the_lean_without_changing_training(tmp_path):
    from safetensors.torch import load_file

    from diatool_utils.benchmark import load_dialog_benchmark
    from diatool_utils.dev_watch import dev_curves, first_of_each_type
    from diatool_utils.first_action import first_action_of_checkpoint
    from diatool_utils.models import load_model_and_tokenizer
    from diatool_utils.paths import DEV_DIALOGS

    recipe = Recipe(model_name="tiny-random", precision="fp32", quantization=None, sft_steps=2, dpo_steps=4,
                    dpo_batch_size=2, max_length=512)
    sft = train_sft(recipe, tmp_path / "base", limit=8)
    assert sft.examples_seen == 2 * 4  # SFT steps x conversations per step
    plain = train_dpo(recipe, sft.path, tmp_path / "plain", limit=8)
    watched = train_dpo(recipe, sft.path, tmp_path / "watched", limit=8, dev_every=2, dev_limit=2)
    assert plain.examples_seen == watched.examples_seen == 4 * 2
    curves = dev_curves(watched.history)
    assert list(curves) == [0, 2, 4]
    assert "pair_accuracy" not in curves[0]  # at step 0 the policy is the reference: every reward is 0
    for step in (2, 4):
        assert sorted(curves[step]["pair_accuracy"]) == list(range(1, 11))
        assert all(0 <= acc <= 1 for acc in curves[step]["pair_accuracy"].values())
    for point in curves.values():
        lean = point["first_action"]["mean_p_text"]
        assert set(lean) == {"call", "completion", "slot", "relevance"} and all(0 <= p <= 1 for p in lean.values())
    cases = first_of_each_type(load_dialog_benchmark(DEV_DIALOGS), 2)
    for step, folder in ((0, sft.path), (4, watched.path)):  # the lean is that of the model at that step
        model, tokenizer = load_model_and_tokenizer(str(folder))
        expected = first_action_of_checkpoint(model, tokenizer, cases)
        assert curves[step]["first_action"]["mean_p_text"] == pytest.approx(expected["mean_p_text"], abs=1e-3)
    expected, got = load_file(plain.path / "model.safetensors"), load_file(watched.path / "model.safetensors")
    assert all((got[name] == tensor).all() for name, tensor in expected.items()), "watching changed training"
    record = json.loads((tmp_path / "watched" / "dpo-full" / "stage.json").read_text())
    assert record["examples_seen"] == 8


def test_dev_pairs_are_grouped_by_row_and_unlabelled_pairs_are_refused():
    from diatool_utils.pipeline import pairs_by_row

    groups = pairs_by_row([{"id": "a", "row": 10}, {"id": "b", "row": 2}, {"id": "c", "row": 10}], "dev.jsonl", "why")
    assert list(groups) == [10, 2] and [p["id"] for p in groups[10]] == ["a", "c"]  # rows as they first appear
    with pytest.raises(ValueError, match=r"1 of 2 pairs in dev.jsonl have no 'row'.*'b': scored per row"):
        pairs_by_row([{"id": "a", "row": 1}, {"id": "b"}], "dev.jsonl", "scored per row")


def test_the_dev_curves_table_has_a_line_per_step_and_dashes_where_nothing_was_measured():
    from diatool_utils.dev_watch import dev_curves_table

    lean = {"mean_p_text": {"call": 0.25, "slot": 0.5, "relevance": 0.75, "completion": 1.0},
            "auc_slot_vs_call": 0.7, "auc_relevance_vs_call": 0.9}
    table = dev_curves_table({0: {"first_action": lean}, 25: {"pair_accuracy": {1: 0.5, 10: 1.0}}})
    lines = table.splitlines()
    assert lines[0].startswith("| step | row 1 | row 10 | P(text) call |") and len(lines) == 4
    assert lines[2] == "| 0 | - | - | 0.250 | 0.500 | 0.750 | 0.700 | 0.900 |"
    assert lines[3] == "| 25 | 0.50 | 1.00 | - | - | - | - | - |"


def test_a_quick_dev_watch_keeps_the_first_turns_of_every_type():
    from diatool_utils.benchmark import load_dialog_benchmark
    from diatool_utils.dev_watch import first_of_each_type
    from diatool_utils.paths import DEV_DIALOGS

    cases = load_dialog_benchmark(DEV_DIALOGS)
    kept = first_of_each_type(cases, 2)
    assert sorted(case.type_of_output for case in kept) == sorted(["call", "completion", "slot", "relevance"] * 2)
    assert [case.serial_num for case in kept] == sorted(case.serial_num for case in kept)  # file order
    assert first_of_each_type(cases, None) == cases
