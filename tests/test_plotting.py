"""The figures draw the library's numbers: the pair notebook's, and the training and diagnostic curves."""

import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402
from collections import Counter  # noqa: E402

import pytest  # noqa: E402

from diatool_utils.pairs import ROWS, average_turns  # noqa: E402
from diatool_utils.plotting import (  # noqa: E402
    TRANSITIONS,
    draw_state_diagram,
    plot_dev_curves,
    plot_first_action_steps,
    plot_length_histogram,
    plot_pairs_per_row,
    plot_training_curves,
    plot_trajectories,
    plot_turns_per_side,
)
from diatool_utils.synthetic import generate_pairs  # noqa: E402


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(200, seed=0)


def test_state_diagram_has_five_states_and_every_transition():
    ax = draw_state_diagram()
    texts = [t.get_text() for t in ax.texts]
    assert sum(t.split("\n")[0] in "12345" for t in texts) == 5
    assert all(label in texts for _, _, label, _, _ in TRANSITIONS)


def test_pairs_per_row_bars_are_the_easy_and_hard_counts(pairs):
    ax = plot_pairs_per_row(pairs)
    counts = Counter((p["row"], p["difficulty"]) for p in pairs)
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [counts[(r, "easy")] for r in ROWS] + [counts[(r, "hard")] for r in ROWS]


def test_turns_per_side_bars_are_the_average_turns(pairs):
    ax = plot_turns_per_side(pairs, paper={2: (4.11, 2.80)})
    means = average_turns(pairs)
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [means[t][0] for t in means] + [means[t][1] for t in means]


def test_trajectories_and_lengths_plot_one_line_or_histogram_per_group():
    ax = plot_trajectories({"chosen": [1, 3, 4, 5], "rejected": [1, 1]})
    assert [len(line.get_xdata()) for line in ax.lines] == [4, 2]
    ax = plot_length_histogram({"a": [1, 2, 3], "b": [4, 5]}, bins=3)
    assert len(ax.patches) == 6


def test_training_curves_plot_the_sft_loss_and_each_dpo_runs_loss_and_accuracy():
    histories = {"SFT": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}, {"train_runtime": 3.0}],
                 "full": [{"step": 1, "loss": 0.7, "rewards/margins": 0.1, "rewards/accuracies": 0.5}],
                 "no_psi": [{"step": 1, "loss": 0.6, "rewards/margins": 0.2, "rewards/accuracies": 1.0},
                            {"step": 2, "loss": 0.5, "rewards/margins": 0.3, "rewards/accuracies": 1.0}]}
    sft, loss, accuracy = plot_training_curves(histories)
    assert list(sft.lines[0].get_ydata()) == [2.0, 1.5]
    assert [list(line.get_ydata()) for line in loss.lines] == [[0.7], [0.6, 0.5]]
    assert [line.get_label() for line in accuracy.lines] == ["full", "no_psi"]


def test_training_curves_of_sft_alone_draw_without_a_warning():
    # scripts/reproduce.py draws the curves after every stage, the first time with SFT alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sft, loss, accuracy = plot_training_curves({"SFT": [{"step": 1, "loss": 2.0}]})
    assert len(sft.lines) == 1 and not loss.lines and accuracy.get_legend() is None


def test_first_action_steps_plot_the_lean_per_turn_type_and_both_aucs():
    stats = {step: {"mean_p_text": {"call": 0.1 * step, "slot": 0.5, "relevance": 0.6, "completion": 0.9},
                    "auc_slot_vs_call": 0.7, "auc_relevance_vs_call": 0.8} for step in (0, 2, 4)}
    lean, rank = plot_first_action_steps(stats)
    assert [line.get_label() for line in lean.lines[:3]] == ["call turns", "slot turns", "relevance turns"]
    assert list(lean.lines[0].get_xdata()) == [0, 2, 4] and list(lean.lines[0].get_ydata()) == [0.0, 0.2, 0.4]
    assert [list(line.get_ydata()) for line in rank.lines[:2]] == [[0.7] * 3, [0.8] * 3]


def test_dev_curves_draw_each_row_from_its_first_scored_step_and_the_lean_from_step_zero():
    lean_at = {"mean_p_text": {"call": 0.2, "slot": 0.5, "relevance": 0.6, "completion": 0.9},
               "auc_slot_vs_call": 0.7, "auc_relevance_vs_call": 0.8}
    curves = {0: {"first_action": lean_at},
              25: {"pair_accuracy": {1: 0.5, 7: 0.25}, "first_action": lean_at},
              50: {"pair_accuracy": {1: 0.75, 7: 0.5}, "first_action": lean_at}}
    rows, lean, rank = plot_dev_curves(curves)
    row_lines = [line for line in rows.lines if line.get_label().startswith("row")]
    assert [line.get_label() for line in row_lines] == ["row 1", "row 7"]
    assert list(row_lines[0].get_xdata()) == [25, 50] and list(row_lines[1].get_ydata()) == [0.25, 0.5]
    assert [line.get_linestyle() for line in row_lines] == ["-", "--"]  # calls solid, text dashed
    assert list(lean.lines[0].get_xdata()) == [0, 25, 50]
