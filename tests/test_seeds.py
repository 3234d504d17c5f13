"""diatool_utils.seeds: the per-seed table and the mean change over seeds."""

import json

import pytest

from diatool_utils.seeds import load_seeds, seed_changes, seeds_table


def summary(call, completion, slot, relevance):
    per_type = {"call": call, "completion": completion, "slot": slot, "relevance": relevance}
    micro = sum(per_type.values()) / 4
    return {"per_type": {k: {"accuracy": v} for k, v in per_type.items()}, "micro_avg": micro}


def write_seed(run_dir, name, before, after, not_run=()):
    folder = run_dir / name
    folder.mkdir(parents=True)
    summaries = {"SFT only": summary(*before)}
    if after is not None:
        summaries["SFT + DiaTool-DPO"] = summary(*after)
    (folder / "results.json").write_text(json.dumps({"summaries": summaries, "not_run": list(not_run)}))


def test_the_mean_change_averages_each_seeds_change_and_the_table_shows_every_seed(tmp_path):
    write_seed(tmp_path, "seed0", (0.5, 0.5, 0.25, 0.5), (0.5, 0.5, 0.5, 0.75))
    write_seed(tmp_path, "seed10", (0.5, 0.5, 0.25, 0.5), (0.25, 0.5, 0.25, 0.5))
    write_seed(tmp_path, "seed2", (0.5, 0.5, 0.0, 0.5), (0.5, 0.5, 0.5, 0.5))
    runs = load_seeds(tmp_path)
    assert list(runs) == ["seed0", "seed2", "seed10"]  # numeric order, not text order
    changes = seed_changes(runs)
    assert changes["seed0"]["slot"] == 0.25 and changes["seed10"]["call"] == -0.25
    assert changes["mean"]["slot"] == pytest.approx((0.25 + 0.5 + 0.0) / 3)
    table = seeds_table(runs)
    assert "| seed10 | change | -0.250 | +0.000 | +0.000 | +0.000 | -0.062 |" in table
    assert "| mean | SFT only | 0.500 | 0.500 | 0.167 | 0.500 |" in table
    assert len(table.splitlines()) == 2 + 3 * 2 + 2 + 4  # header, two rows a seed, two means, four changes


def test_a_seed_that_has_not_finished_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no seed<k>/ folders"):
        load_seeds(tmp_path)
    write_seed(tmp_path, "seed0", (0.5, 0.5, 0.25, 0.5), None, not_run=["full"])
    with pytest.raises(ValueError, match=r"seed0/results.json has no scores for SFT \+ DiaTool-DPO.*full"):
        load_seeds(tmp_path)
    (tmp_path / "other" / "seed1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="seed1/results.json is missing"):
        load_seeds(tmp_path / "other")
