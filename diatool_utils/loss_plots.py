"""Plots for notebook 03: turn weights, why psi matters, and what the margin does.

Every function draws on a matplotlib Axes (a new figure when none is given) and returns it, so
a notebook can place several plots side by side. The numbers come from ``diatool_utils.loss``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from diatool_utils.loss import dmpo_turn_weights, trajectory_reward, turn_weights


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    return ax


def plot_turn_weights(num_turns: int = 6, gammas=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0), *, dmpo: bool = False, ax=None):
    """phi(t, T) against the turn t for several gamma (DMPO's gamma^t * phi with ``dmpo=True``)."""
    ax = _axes(ax)
    turns = torch.tensor([num_turns])
    weigh = dmpo_turn_weights if dmpo else turn_weights
    for gamma in gammas:
        ax.plot(range(num_turns), weigh(turns, num_turns, gamma)[0], marker="o", label=f"gamma = {gamma:g}")
    name = "gamma^t (1 - gamma^(T-t)) / (1 - gamma^T)" if dmpo else "phi(t, T) = (1 - gamma^(T-t)) / (1 - gamma^T)"
    ax.set(xlabel="assistant turn t", ylabel="weight", ylim=(-0.05, 1.05), xticks=range(num_turns))
    ax.set_title(f"{'DMPO' if dmpo else 'DiaTool'} turn weights, T = {num_turns}\n{name}", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_reward_vs_turns(gamma: float = 0.5, per_turn_logratio: float = 1.0, max_turns: int = 10, ax=None):
    """R(tau) of a trajectory whose every turn has the same log-ratio, against its turn count T.

    With psi, R is a weighted mean and stays at the per-turn value; without psi it grows like psi(T)
    (and like T when phi is off too), so a longer trajectory looks "better" just by being longer.
    """
    ax = _axes(ax)
    turns = torch.arange(1, max_turns + 1)
    lr = torch.full((max_turns, max_turns), per_turn_logratio)
    variants = [("phi and psi (DiaTool)", {}), ("phi, no psi", {"use_psi": False}),
                ("no phi, no psi (turn-summed DPO)", {"use_phi": False, "use_psi": False})]
    for label, switches in variants:
        ax.plot(turns, trajectory_reward(lr, turns, gamma, **switches), marker="o", label=label)
    ax.set(xlabel="number of assistant turns T", ylabel="R(tau)", xticks=turns,
           title=f"same log-ratio {per_turn_logratio:g} on every turn, gamma = {gamma:g}")
    ax.legend(fontsize=8)
    return ax


def plot_loss_vs_reward_gap(beta: float = 0.5, margins=(0.0, 0.5, 2.0), gap_range=(-6.0, 8.0), axes=None):
    """Loss -log sigmoid(beta (gap - margin)) and its gradient weight sigmoid(-beta (gap - margin)).

    gap = R(chosen) - R(rejected). The gradient of the loss with respect to the gap is
    -beta * sigmoid(-beta * (gap - margin)): a pair stops pulling only once its gap is well past the margin.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    gap = torch.linspace(*gap_range, 281)
    for margin in margins:
        logit = beta * (gap - margin)
        axes[0].plot(gap, -F.logsigmoid(logit), label=f"margin = {margin:g}")
        axes[1].plot(gap, torch.sigmoid(-logit), label=f"margin = {margin:g}")
    axes[0].set(xlabel="reward gap R(chosen) - R(rejected)", ylabel="loss", title=f"loss, beta = {beta:g}")
    axes[1].set(xlabel="reward gap R(chosen) - R(rejected)", ylabel="sigmoid(-beta (gap - margin))",
                title="gradient weight of the pair", ylim=(0, 1.02))
    for ax in axes:
        ax.axvline(0, color="grey", lw=0.6)
        ax.legend(fontsize=8)
    return axes


def plot_loss_vs_margin(beta: float = 0.5, gaps=(0.0, 1.0, 2.0, 4.0), margin_range=(0.0, 5.0), axes=None):
    """Loss and gradient weight against the margin, for a few fixed reward gaps."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    margin = torch.linspace(*margin_range, 201)
    for gap in gaps:
        logit = beta * (gap - margin)
        axes[0].plot(margin, -F.logsigmoid(logit), label=f"gap = {gap:g}")
        axes[1].plot(margin, torch.sigmoid(-logit), label=f"gap = {gap:g}")
    axes[0].set(xlabel="margin", ylabel="loss", title=f"loss against the margin, beta = {beta:g}")
    axes[1].set(xlabel="margin", ylabel="sigmoid(-beta (gap - margin))", title="gradient weight against the margin",
                ylim=(0, 1.02))
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


def plot_per_turn_values(chosen, rejected, *, ylabel: str, title: str, ax=None):
    """Bars of one value per turn (e.g. per-turn log-probs) for a chosen and a rejected trajectory."""
    ax = _axes(ax)
    chosen, rejected = torch.as_tensor(chosen, dtype=torch.float32), torch.as_tensor(rejected, dtype=torch.float32)
    ax.bar(torch.arange(len(chosen)) - 0.2, chosen, width=0.4, label="chosen")
    ax.bar(torch.arange(len(rejected)) + 0.2, rejected, width=0.4, label="rejected")
    ax.set(xlabel="assistant turn t", ylabel=ylabel, title=title,
           xticks=range(max(len(chosen), len(rejected))))
    ax.axhline(0, color="grey", lw=0.6)
    ax.legend(fontsize=8)
    return ax
