"""The DiaTool-DPO loss as pure tensor functions (no model, no trainer, no loop over samples).

A *turn* is one assistant message. For a trajectory tau with T assistant turns t = 0 .. T-1:

    lr_t      = log pi_theta(a_t | s_t) - log pi_ref(a_t | s_t)    (summed over the tokens of turn t)
    phi(t, T) = (1 - gamma^(T-t)) / (1 - gamma^T)                    turn weight: 1 for the first turn
    psi(T)    = sum_t phi(t, T)                                      normaliser
    R(tau)    = sum_t phi(t, T) * lr_t / psi(T)                      a phi-weighted mean of the turns
    loss      = -log sigmoid(beta * (R(chosen) - R(rejected) - margin))

Decision weighting (optional, ``decision_weight`` w, default 1 = the paper's loss): the first token of
a turn is its recipient, ``all`` for text or a function name for a call, so it alone decides what the
turn does. With w > 1 it counts w times in the turn's log-ratio,

    lr_t = w * lr(first token of turn t) + sum_{other tokens i of turn t} lr(i)

which is ``per_turn_logps`` with ``token_weights = decision_token_weights(turn_index, w)``, applied alike
to the policy and the reference log-probs (lr is linear in them).

Batches are padded: a [B, T_max] tensor of per-turn log-ratios plus a LongTensor [B] of turn
counts; the mask "t < T_b" is derived from the counts, so whatever sits in the padding is ignored.

The pipeline, once per forward pass:

    token_logps [B, L] --per_turn_logps--> turn_logps [B, T_max]      (policy and reference)
    policy - reference = turn_logratios [B, T_max]
    diatool_dpo_loss(chosen_turn_logratios, rejected_turn_logratios, chosen_turns, rejected_turns, ...)

Switches for the paper's ablations: ``use_phi=False`` (uniform turn weights), ``use_psi=False``
(sum instead of weighted mean), ``use_margin=False`` (margin 0). All three off gives plain
sequence-level DPO over every assistant token. ``dmpo_loss`` is the DMPO weighting for comparison.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "geometric_sums",
    "turn_mask",
    "turn_weights",
    "psi",
    "dmpo_turn_weights",
    "decision_token_weights",
    "per_turn_logps",
    "trajectory_reward",
    "diatool_dpo_loss",
    "dmpo_loss",
]


# ---------------------------------------------------------------------------------------------
# Input checks: every error says which sample of the batch is wrong and what to do.
# ---------------------------------------------------------------------------------------------

def _compute_dtype(values: torch.Tensor) -> torch.dtype:
    """bf16 / fp16 inputs are summed and weighted in float32; float64 stays float64."""
    return torch.promote_types(values.dtype, torch.float32)


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma (the reward scaling factor) must lie in [0, 1], got {gamma}")
    return gamma


def _check_counts_type(num_turns: torch.Tensor, name: str) -> None:
    if not isinstance(num_turns, torch.Tensor) or num_turns.dim() != 1:
        raise ValueError(f"{name} must be a 1-D LongTensor [B] of assistant-turn counts, "
                         f"got {type(num_turns).__name__} with shape {tuple(getattr(num_turns, 'shape', ()))}")
    if num_turns.dtype.is_floating_point or num_turns.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers (assistant-turn counts), got dtype {num_turns.dtype}")


def _check_num_turns(num_turns: torch.Tensor, max_turns: int | None = None, name: str = "num_turns") -> None:
    _check_counts_type(num_turns, name)
    bad = num_turns < 1
    if max_turns is not None:
        bad = bad | (num_turns > max_turns)
    if not bad.any():  # the only host sync on the happy path
        return
    i = int(bad.nonzero()[0, 0])
    count, label = int(num_turns[i]), name.replace("_", " ")
    if count < 1:
        raise ValueError(f"sample {i} in the batch has {count} {label}: every trajectory needs at least one "
                         "assistant turn (check its messages and turn index)")
    raise ValueError(f"sample {i} in the batch has {count} {label} but the padded turn tensor has only "
                     f"{max_turns} columns: pad to the batch's largest turn count")


def _check_turn_tensor(turn_values: torch.Tensor, num_turns: torch.Tensor, name: str) -> None:
    if turn_values.dim() != 2:
        raise ValueError(f"{name} must be [B, max_turns], got shape {tuple(turn_values.shape)}")
    if turn_values.shape[0] != num_turns.shape[0]:
        raise ValueError(f"batch sizes differ: {name} has {turn_values.shape[0]} rows but its turn counts "
                         f"have {num_turns.shape[0]}")


# ---------------------------------------------------------------------------------------------
# Turn weights phi(t, T) and the normaliser psi(T)
# ---------------------------------------------------------------------------------------------

def geometric_sums(max_turns: int, gamma: float) -> torch.Tensor:
    """S[n] = sum_{k<n} gamma^k for n = 0 .. max_turns, in float64 on the CPU.

    Shape [max_turns + 1]; S[0] = 0, S[1] = 1. It equals (1 - gamma^n) / (1 - gamma) for gamma < 1
    and n at gamma = 1, without dividing by 1 - gamma, so it is exact and smooth as gamma -> 1.
    gamma^0 = 1 also at gamma = 0 (then S[n] = 1 for every n >= 1).
    """
    gamma = _check_gamma(gamma)
    powers = torch.full((max_turns,), gamma, dtype=torch.float64).pow(torch.arange(max_turns, dtype=torch.float64))
    return torch.cat([torch.zeros(1, dtype=torch.float64), powers.cumsum(0)])


def turn_mask(num_turns: torch.Tensor, max_turns: int) -> torch.Tensor:
    """mask[b, t] = t < T_b. num_turns: LongTensor [B] -> BoolTensor [B, max_turns]."""
    return torch.arange(max_turns, device=num_turns.device)[None, :] < num_turns[:, None]


def turn_weights(num_turns: torch.Tensor, max_turns: int, gamma: float,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """phi(t, T) = (1 - gamma^(T-t)) / (1 - gamma^T) for t < T, 0 in the padding (t >= T).

    num_turns: LongTensor [B] (T_b >= 1) -> Tensor [B, max_turns].

    Computed as a ratio of geometric sums, S[T-t] / S[T] with S[n] = sum_{k<n} gamma^k, which is the
    same number but needs no division by 1 - gamma^T. Limits: gamma = 1 gives (T - t) / T exactly;
    gamma = 0 gives 1 for every turn; T = 1 gives phi = 1. The first turn always weighs 1, the last
    (1 - gamma) / (1 - gamma^T): with gamma < 1 earlier turns count more than later ones.
    """
    _check_num_turns(num_turns, max_turns)
    return _turn_weights(num_turns, max_turns, gamma, dtype)


def _turn_weights(num_turns, max_turns, gamma, dtype):
    exact = torch.float32 if num_turns.device.type == "mps" else torch.float64  # MPS has no float64
    sums = geometric_sums(max_turns, gamma).to(device=num_turns.device, dtype=exact)
    turns_left = (num_turns[:, None] - torch.arange(max_turns, device=num_turns.device)[None, :]).clamp(min=0)
    # S[0] = 0, so the padding (turns_left = 0) gets weight 0 by itself.
    return (sums[turns_left] / sums[num_turns][:, None]).to(dtype)


def psi(num_turns: torch.Tensor, gamma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """psi(T) = sum_{t<T} phi(t, T). num_turns: LongTensor [B] -> Tensor [B].

    psi(1) = 1; at gamma = 1, psi(T) = (T + 1) / 2; at gamma = 0, psi(T) = T. Dividing by psi makes
    R(tau) a weighted *mean* of the per-turn log-ratios, so trajectories of different lengths
    (a 6-turn chosen against a 1-turn rejected) are compared on the same scale.
    """
    _check_num_turns(num_turns)
    max_turns = int(num_turns.max()) if num_turns.numel() else 0
    return _turn_weights(num_turns, max_turns, gamma, dtype).sum(-1)


def dmpo_turn_weights(num_turns: torch.Tensor, max_turns: int, gamma: float,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """DMPO's turn weight gamma^t * (1 - gamma^(T-t)) / (1 - gamma^T) = gamma^t * phi(t, T); 0 for t >= T.

    num_turns: LongTensor [B] -> Tensor [B, max_turns]. Decays faster than phi (an extra gamma^t).
    """
    _check_num_turns(num_turns, max_turns)
    return _dmpo_turn_weights(num_turns, max_turns, gamma, dtype)


def _dmpo_turn_weights(num_turns, max_turns, gamma, dtype):
    discount = torch.full((max_turns,), _check_gamma(gamma), dtype=torch.float64).pow(
        torch.arange(max_turns, dtype=torch.float64))
    return (discount.to(num_turns.device, dtype)[None, :] * _turn_weights(num_turns, max_turns, gamma, dtype))


# ---------------------------------------------------------------------------------------------
# Token log-probs -> per-turn log-probs
# ---------------------------------------------------------------------------------------------

def decision_token_weights(turn_index: torch.Tensor, weight: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """m_i = ``weight`` at the first token of each assistant turn, 1 at its other tokens, 0 outside turns.

    turn_index: LongTensor [B, L] as for ``per_turn_logps`` (-1 = not trained) -> Tensor [B, L].
    A token starts a turn when its index is >= 0 and differs from the token before it (or it is the
    first position), so two turns that touch are told apart by their indices.
    """
    if not weight > 0:
        raise ValueError(f"decision weight must be positive (1 = every token alike), got {weight}")
    previous = F.pad(turn_index[:, :-1], (1, 0), value=-1)
    first = (turn_index >= 0) & (turn_index != previous)
    weights = (turn_index >= 0).to(dtype)
    return weights.masked_fill(first, float(weight))


def per_turn_logps(token_logps: torch.Tensor, turn_index: torch.Tensor, max_turns: int,
                   token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum the token log-probs of each assistant turn: out[b, t] = sum_{i: turn_index[b, i] = t} m[b, i] * token_logps[b, i].

    token_logps:   Tensor [B, L], log pi(token_i | tokens before it).
    turn_index:    LongTensor [B, L], aligned with token_logps (shifted like the labels); the
                   assistant turn (0 .. max_turns-1) each token belongs to, -1 for tokens that are
                   not trained (system, user, tool, padding).
    token_weights: optional Tensor [B, L], m above (``decision_token_weights``); None means m = 1.
    returns:       Tensor [B, max_turns] (float32 at least); turns that a sample does not have are 0.

    One scatter_add over the whole batch. Tokens with index -1 go to an extra column that is dropped,
    so even a non-finite value there (e.g. -inf at a padded position) never reaches the result.
    Differentiable with respect to token_logps.
    """
    if token_logps.dim() != 2 or turn_index.shape != token_logps.shape:
        raise ValueError(f"token_logps and turn_index must both be [B, L], got {tuple(token_logps.shape)} "
                         f"and {tuple(turn_index.shape)}")
    if token_weights is not None and token_weights.shape != token_logps.shape:
        raise ValueError(f"token_weights must be [B, L] like token_logps {tuple(token_logps.shape)}, "
                         f"got {tuple(token_weights.shape)}")
    if turn_index.dtype.is_floating_point or turn_index.dtype == torch.bool:
        raise ValueError(f"turn_index must be an integer tensor, got dtype {turn_index.dtype}")
    bad = (turn_index < -1) | (turn_index >= max_turns)
    if bad.any():
        b, i = bad.nonzero()[0].tolist()
        raise ValueError(f"sample {b} in the batch has turn index {int(turn_index[b, i])} at token {i}; indices "
                         f"must be -1 (not trained) or 0 .. {max_turns - 1} (max_turns={max_turns})")
    column = torch.where(turn_index < 0, max_turns, turn_index)  # -1 -> the dropped extra column
    dtype = _compute_dtype(token_logps)  # bf16 cannot add up hundreds of tokens: accumulate in float32
    values = token_logps.to(dtype)
    if token_weights is not None:  # where() rather than a product: 0 * -inf in the padding would be NaN
        values = torch.where(turn_index < 0, values, values * token_weights.to(dtype))
    out = token_logps.new_zeros(token_logps.shape[0], max_turns + 1, dtype=dtype)
    out = out.scatter_add(1, column, values)
    return out[:, :max_turns]


# ---------------------------------------------------------------------------------------------
# Trajectory reward and the loss
# ---------------------------------------------------------------------------------------------

def _reward(turn_logratios: torch.Tensor, num_turns: torch.Tensor, weights: torch.Tensor,
            normalise: bool) -> torch.Tensor:
    # masked_fill, not just weight 0: padded values may be anything (even NaN) and must not leak.
    padding = ~turn_mask(num_turns, turn_logratios.shape[1])
    reward = (weights * turn_logratios).masked_fill(padding, 0.0).sum(-1)
    return reward / weights.sum(-1) if normalise else reward


def trajectory_reward(turn_logratios: torch.Tensor, num_turns: torch.Tensor, gamma: float, *,
                      use_phi: bool = True, use_psi: bool = True) -> torch.Tensor:
    """R(tau) = sum_t phi(t, T) * lr_t / psi(T).

    turn_logratios: Tensor [B, T_max] (lr_t, padded; values at t >= T_b are ignored)
    num_turns:      LongTensor [B], T_b in 1 .. T_max
    returns:        Tensor [B] (float32 at least)

    use_phi=False replaces phi by 1 for every turn (uniform weights); psi is then the sum of the
    weights actually used, i.e. T, and R is the plain mean of the turns. use_psi=False drops the
    division: R = sum_t phi(t, T) * lr_t. Both off: R = sum_t lr_t, the sequence log-ratio of all
    assistant tokens, as in standard DPO.
    """
    _check_counts_type(num_turns, "num_turns")
    _check_turn_tensor(turn_logratios, num_turns, "turn_logratios")
    _check_num_turns(num_turns, turn_logratios.shape[1])
    return _trajectory_reward(turn_logratios, num_turns, gamma, use_phi, use_psi)


def _trajectory_reward(turn_logratios, num_turns, gamma, use_phi, use_psi):
    max_turns, dtype = turn_logratios.shape[1], _compute_dtype(turn_logratios)
    if use_phi:
        weights = _turn_weights(num_turns, max_turns, gamma, dtype)
    else:
        _check_gamma(gamma)
        weights = turn_mask(num_turns, max_turns).to(dtype)
    return _reward(turn_logratios.to(dtype), num_turns, weights, normalise=use_psi)


def _check_pair(chosen_turn_logratios, rejected_turn_logratios, chosen_turns, rejected_turns, beta) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    _check_counts_type(chosen_turns, "chosen_turns")
    _check_counts_type(rejected_turns, "rejected_turns")
    _check_turn_tensor(chosen_turn_logratios, chosen_turns, "chosen_turn_logratios")
    _check_turn_tensor(rejected_turn_logratios, rejected_turns, "rejected_turn_logratios")
    if chosen_turn_logratios.shape[0] != rejected_turn_logratios.shape[0]:
        raise ValueError(f"batch sizes differ: {chosen_turn_logratios.shape[0]} chosen rows but "
                         f"{rejected_turn_logratios.shape[0]} rejected rows")
    _check_num_turns(chosen_turns, chosen_turn_logratios.shape[1], name="chosen_turns")
    _check_num_turns(rejected_turns, rejected_turn_logratios.shape[1], name="rejected_turns")


def diatool_dpo_loss(
    chosen_turn_logratios: torch.Tensor,
    rejected_turn_logratios: torch.Tensor,
    chosen_turns: torch.Tensor,
    rejected_turns: torch.Tensor,
    *,
    beta: float,
    gamma: float,
    margin: float,
    use_phi: bool = True,
    use_psi: bool = True,
    use_margin: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """loss = -log sigmoid(beta * (R(chosen) - R(rejected) - margin)), per pair.

    chosen_turn_logratios:   Tensor [B, Tc]  per-turn log pi_theta - log pi_ref of the chosen side
    rejected_turn_logratios: Tensor [B, Tr]  the same for the rejected side (Tc and Tr may differ)
    chosen_turns, rejected_turns: LongTensor [B], turn counts (>= 1, <= the padded width)
    returns (losses [B], chosen_rewards [B], rejected_rewards [B])

    The rewards are beta * R(tau), detached: what a trainer logs (rewards/chosen, rewards/margins).
    The margin sits inside beta, so the effective margin on the log-sigmoid is beta * margin.
    use_margin=False sets the margin to 0; use_phi / use_psi as in ``trajectory_reward``.
    With T = 1 on both sides and margin 0 this is standard DPO; with every switch off it is DPO on
    the sum of all assistant-token log-ratios.

    The gradient: d loss / d lr_t(chosen) = -beta * sigmoid(-beta * logit) * phi(t, Tc) / psi(Tc), so
    each pair is weighted by how wrong the model still is, and each turn by phi / psi.
    """
    _check_pair(chosen_turn_logratios, rejected_turn_logratios, chosen_turns, rejected_turns, beta)
    chosen_reward = _trajectory_reward(chosen_turn_logratios, chosen_turns, gamma, use_phi, use_psi)
    rejected_reward = _trajectory_reward(rejected_turn_logratios, rejected_turns, gamma, use_phi, use_psi)
    logit = chosen_reward - rejected_reward - (float(margin) if use_margin else 0.0)
    losses = -F.logsigmoid(beta * logit)
    return losses, beta * chosen_reward.detach(), beta * rejected_reward.detach()


def dmpo_loss(
    chosen_turn_logratios: torch.Tensor,
    rejected_turn_logratios: torch.Tensor,
    chosen_turns: torch.Tensor,
    rejected_turns: torch.Tensor,
    *,
    beta: float,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DMPO for comparison: R(tau) = sum_t gamma^t * phi(t, T) * lr_t (no psi, no margin).

    Same shapes and returns as ``diatool_dpo_loss``: (losses [B], beta * R_c [B], beta * R_r [B]).
    """
    _check_pair(chosen_turn_logratios, rejected_turn_logratios, chosen_turns, rejected_turns, beta)
    rewards = []
    for values, turns in ((chosen_turn_logratios, chosen_turns), (rejected_turn_logratios, rejected_turns)):
        dtype = _compute_dtype(values)
        weights = _dmpo_turn_weights(turns, values.shape[1], gamma, dtype)
        rewards.append(_reward(values.to(dtype), turns, weights, normalise=False))
    chosen_reward, rejected_reward = rewards
    losses = -F.logsigmoid(beta * (chosen_reward - rejected_reward))
    return losses, beta * chosen_reward.detach(), beta * rejected_reward.detach()
