"""Figures: the pair notebook's (the state diagram, trajectories, the pair data set at a glance), and the
training and diagnostic curves that scripts/reproduce.py and experiments/dpo_trajectory.py save.

Each function draws on a matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns it; the
multi-panel ones take and return a sequence of Axes (``axes``).
"""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch

from diatool_utils.pairs import ROWS, average_turns
from diatool_utils.states import State

# Where each state sits in the diagram (x, y), and its circle's radius.
STATE_XY = {1: (0.0, 0.0), 2: (2.6, 1.7), 3: (5.2, 0.0), 4: (7.8, 0.0), 5: (10.4, 0.0)}
RADIUS = 0.62
STATE_NAMES = {
    State.INITIAL: "1\nInitial",
    State.SLOTS_INCOMPLETE: "2\nSlots\nincomplete",
    State.SLOTS_COMPLETE: "3\nSlots\ncomplete",
    State.WAITING_FOR_TOOL: "4\nWaiting\nfor tool",
    State.COMPLETE: "5\nComplete",
}
# (from, to, label, curvature, where the label goes relative to the arrow's middle)
TRANSITIONS = [
    (1, 3, "every value given", 0.0, (0.0, 0.18)),
    (1, 2, "values missing:\nask", 0.0, (-0.75, 0.1)),
    (2, 3, "all values\nknown", 0.0, (0.75, 0.1)),
    (3, 4, "call", 0.0, (0.0, 0.18)),
    (4, 5, "tool answers:\nreport", 0.0, (0.0, 0.42)),
    (5, 1, "next request", -0.25, (0.0, -0.3)),
]
SELF_LOOPS = [(1, "decline\n(Type 3)", -1), (2, "ask again", 1)]
QUERY_TYPE_COLOURS = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}


def _axes(ax, size):
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def draw_state_diagram(ax=None):
    """The five states and the transitions between them."""
    ax = _axes(ax, (11, 4.2))
    for state, (x, y) in STATE_XY.items():
        ax.add_patch(plt.Circle((x, y), RADIUS, facecolor="white", edgecolor="black", lw=1.5, zorder=2))
        ax.text(x, y, STATE_NAMES[State(state)], ha="center", va="center", fontsize=9, zorder=3)
    for start, end, label, rad, (lx, ly) in TRANSITIONS:
        mx, my = _arrow(ax, STATE_XY[start], STATE_XY[end], rad)
        ax.text(mx + lx, my + ly, label, ha="center", va="center", fontsize=8, color="dimgray")
    for state, label, side in SELF_LOOPS:
        x, y = STATE_XY[state]
        ax.add_patch(FancyArrowPatch((x - 0.3, y + side * 0.55), (x + 0.3, y + side * 0.55),
                                     connectionstyle=f"arc3,rad={-1.8 * side}", arrowstyle="-|>",
                                     mutation_scale=12, lw=1.2, zorder=1))
        ax.text(x + 0.95, y + side * 0.95, label, ha="left", va="center", fontsize=8, color="dimgray")
    ax.set_xlim(-1.0, 11.4)
    ax.set_ylim(-2.2, 2.9)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _arrow(ax, start, end, rad) -> tuple[float, float]:
    """An arrow between two circles; returns the middle of its (curved) path."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = (dx * dx + dy * dy) ** 0.5
    ux, uy = dx / length, dy / length
    a = (start[0] + ux * RADIUS, start[1] + uy * RADIUS)
    b = (end[0] - ux * RADIUS, end[1] - uy * RADIUS)
    ax.add_patch(FancyArrowPatch(a, b, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                 mutation_scale=12, lw=1.2, zorder=1))
    # matplotlib's arc3 puts the control point at middle + rad * (dy, -dx); the curve's middle is halfway
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    return mx + 0.5 * rad * (b[1] - a[1]), my - 0.5 * rad * (b[0] - a[0])


def plot_trajectories(sequences: dict[str, list[int]], ax=None):
    """Several state sequences as step lines (turn on x, state on y), e.g. a pair's two sides."""
    ax = _axes(ax, (6, 3))
    for offset, (label, states) in enumerate(sequences.items()):
        shift = 0.06 * (offset - (len(sequences) - 1) / 2)
        ax.plot(range(len(states)), [s + shift for s in states], marker="o", drawstyle="steps-post",
                label=f"{label}: {'-'.join(map(str, states))}")
    ax.set_yticks(list(STATE_XY), [STATE_NAMES[State(s)].replace("\n", " ") for s in STATE_XY])
    ax.set_xlabel("step")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_pairs_per_row(pairs: list[dict], ax=None):
    """Stacked bars: easy and hard pairs for each Table-1 row, coloured by query type."""
    ax = _axes(ax, (8, 3.2))
    counts = Counter((p["row"], p["difficulty"]) for p in pairs)
    easy = [counts[(row, "easy")] for row in ROWS]
    hard = [counts[(row, "hard")] for row in ROWS]
    ax.bar(ROWS, easy, color="lightgray", edgecolor="black", label="easy")
    ax.bar(ROWS, hard, bottom=easy, color="dimgray", edgecolor="black", label="hard")
    ax.set_xticks(ROWS, [f"row {r}" for r in ROWS], fontsize=8)
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    return ax


def plot_turns_per_side(pairs: list[dict], paper: dict[int, tuple[float, float]] | None = None, ax=None):
    """Mean assistant turns of chosen and rejected per query type (the paper's Table 2), with the
    paper's values as markers when given ({query_type: (chosen, rejected)})."""
    ax = _axes(ax, (6, 3.2))
    means = average_turns(pairs)
    types = list(means)
    ax.bar([t - 0.18 for t in types], [means[t][0] for t in types], width=0.36, label="chosen", color="tab:green")
    ax.bar([t + 0.18 for t in types], [means[t][1] for t in types], width=0.36, label="rejected", color="tab:red")
    for t, (chosen, rejected) in (paper or {}).items():
        ax.plot([t - 0.18, t + 0.18], [chosen, rejected], "k_", markersize=18, mew=2)
    if paper:
        ax.plot([], [], "k_", markersize=12, mew=2, label="paper")
    ax.set_xticks(types, [f"Type {t}" for t in types])
    ax.set_ylabel("assistant turns (mean)")
    ax.legend(fontsize=8)
    return ax


def plot_length_histogram(lengths: dict[str, list[int]], ax=None, bins: int = 30):
    """Histograms of token counts, one per named group (e.g. SFT conversations, pair sides)."""
    ax = _axes(ax, (6, 3))
    for label, values in lengths.items():
        ax.hist(values, bins=bins, alpha=0.55, label=f"{label} (mean {sum(values) / len(values):.0f})")
    ax.set_xlabel("tokens")
    ax.set_ylabel("conversations")
    ax.legend(fontsize=8)
    return ax


def plot_training_curves(histories: dict[str, list[dict]], axes=None):
    """Trainer log histories against the step: the SFT loss (``histories["SFT"]``), then the loss and the
    reward accuracy of every other entry (one DiaTool-DPO run each), on three panels."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    sft = [(h["step"], h["loss"]) for h in histories["SFT"] if "loss" in h]
    axes[0].plot(*zip(*sft, strict=True), marker=".")
    axes[0].set(title="SFT loss (assistant tokens)", xlabel="step")
    for name, history in histories.items():
        if name == "SFT":
            continue
        rows = [h for h in history if "rewards/margins" in h]
        steps = [h["step"] for h in rows]
        axes[1].plot(steps, [h["loss"] for h in rows], marker=".", label=name)
        axes[2].plot(steps, [h["rewards/accuracies"] for h in rows], marker=".", label=name)
    axes[1].set(title="DiaTool-DPO loss", xlabel="step")
    axes[2].set(title="reward accuracy", xlabel="step", ylim=(-0.05, 1.05))
    if len(histories) > 1:  # before the first DPO run finishes there is nothing to name
        axes[2].legend()
    return axes


FIRST_ACTION_TURN_TYPES = ("call", "slot", "relevance")


def plot_first_action_steps(steps: dict[int, dict], axes=None):
    """The first-action diagnostic along a DPO run (``{step: first_action.first_action_stats(...)}``), on two
    panels: mean P(text) per turn type, and the AUCs of slot and relevance turns against call turns."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    lean, rank = axes
    xs = list(steps)
    for kind in FIRST_ACTION_TURN_TYPES:
        lean.plot(xs, [steps[x]["mean_p_text"][kind] for x in xs], marker="o", label=f"{kind} turns")
    lean.axhline(0.5, color="grey", lw=0.8, ls="--")
    lean.set(xlabel="DPO step", ylabel="mean P(text)", ylim=(0, 1), title="Where the model leans")
    lean.legend()
    for key, label in (("auc_slot_vs_call", "slot vs call"), ("auc_relevance_vs_call", "relevance vs call")):
        rank.plot(xs, [steps[x][key] for x in xs], marker="o", label=label)
    rank.axhline(0.5, color="grey", lw=0.8, ls="--")
    rank.set(xlabel="DPO step", ylabel="AUC", ylim=(0.4, 1), title="How well it tells turns apart")
    rank.legend()
    return axes


def plot_dev_curves(curves: dict[int, dict], axes=None):
    """A DPO run watched on the dev split (``dev_watch.dev_curves``), on three panels: held-out reward accuracy
    per Table-1 row (rows 1-4, where the chosen reply calls, solid; rows 5-10, where it is text, dashed), then
    the first-action lean per turn type and the AUCs (:func:`plot_first_action_steps`).

    A run that teaches the rows lifts both families of lines; a run that moves one lean lifts one and drops the
    other."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    scored = {step: point["pair_accuracy"] for step, point in curves.items() if "pair_accuracy" in point}
    rows = sorted({row for accuracy in scored.values() for row in accuracy})
    for row in rows:
        xs = [step for step in scored if row in scored[step]]
        axes[0].plot(xs, [scored[x][row] for x in xs], marker=".", ls="-" if row <= 4 else "--",
                     label=f"row {row}")
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel="DPO step", ylabel="reward accuracy", ylim=(-0.05, 1.05),
                title="Dev pairs: chosen ranked above rejected")
    axes[0].legend(ncol=2, fontsize=7)
    plot_first_action_steps({step: point["first_action"] for step, point in curves.items()
                             if "first_action" in point}, axes=axes[1:])
    return axes
