"""The notebook's figures draw the library's numbers."""

import matplotlib

matplotlib.use("Agg")

from collections import Counter  # noqa: E402

import pytest  # noqa: E402

from diatool_utils.pairs import ROWS, average_turns  # noqa: E402
from diatool_utils.plotting import (  # noqa: E402
    TRANSITIONS,
    draw_state_diagram,
    plot_length_histogram,
    plot_pairs_per_row,
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
