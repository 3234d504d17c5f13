"""The DiaTool-DPO loss, checked against numbers worked out by hand and against plain DPO."""

import math
import time

import pytest
import torch
import torch.nn.functional as F

from diatool_utils.loss import (
    decision_token_weights,
    diatool_dpo_loss,
    dmpo_loss,
    dmpo_turn_weights,
    per_turn_logps,
    psi,
    trajectory_reward,
    turn_weights,
)


def close(actual, expected, tol=1e-6):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float64),
                               torch.as_tensor(expected, dtype=torch.float64), atol=tol, rtol=tol)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


# --- phi and psi, by hand --------------------------------------------------------------------

def test_turn_weights_two_turns_gamma_half_by_hand():
    # phi(t, T) = (1 - g^(T-t)) / (1 - g^T), T = 2, g = 0.5, 1 - g^2 = 0.75:
    #   t = 0: (1 - 0.25) / 0.75 = 1;  t = 1: (1 - 0.5) / 0.75 = 2/3;  padding column t = 2: 0
    close(turn_weights(torch.tensor([2]), 3, 0.5), [[1.0, 2 / 3, 0.0]])
    # psi(2) = 1 + 2/3 = 5/3
    close(psi(torch.tensor([2]), 0.5), [5 / 3])


def test_turn_weights_three_turns_gamma_half_by_hand():
    # T = 3, g = 0.5, 1 - g^3 = 7/8: t = 0: (7/8)/(7/8) = 1; t = 1: (3/4)/(7/8) = 6/7; t = 2: (1/2)/(7/8) = 4/7
    close(turn_weights(torch.tensor([3]), 3, 0.5), [[1.0, 6 / 7, 4 / 7]])
    # psi(3) = (7 + 6 + 4) / 7 = 17/7
    close(psi(torch.tensor([3]), 0.5), [17 / 7])


def test_first_turn_weighs_one_and_last_turn_weighs_1_minus_gamma_over_1_minus_gamma_T():
    gamma, turns = 0.3, torch.tensor([1, 2, 5, 9])
    weights = turn_weights(turns, 9, gamma)
    close(weights[:, 0], [1.0] * 4)
    last = weights[torch.arange(4), turns - 1]
    close(last, [(1 - gamma) / (1 - gamma**T) for T in turns.tolist()])


def test_padding_turns_get_zero_weight():
    weights = turn_weights(torch.tensor([1, 3]), 5, 0.5)
    assert weights[0, 1:].eq(0).all() and weights[1, 3:].eq(0).all()
    assert weights[1, :3].gt(0).all()


def test_gamma_one_gives_linear_weights_exactly():
    # phi(t, T) = (T - t) / T at gamma = 1; psi(T) = (T + 1) / 2
    weights = turn_weights(torch.tensor([4]), 4, 1.0)
    assert weights.tolist() == [[1.0, 0.75, 0.5, 0.25]]
    close(psi(torch.tensor([1, 4, 7]), 1.0), [1.0, 2.5, 4.0])


def test_weights_are_continuous_as_gamma_approaches_one():
    turns = torch.tensor([1, 2, 6, 20])
    at_one = turn_weights(turns, 20, 1.0, dtype=torch.float64)
    for gamma in [1 - 1e-7, 1 - 1e-12]:
        near_one = turn_weights(turns, 20, gamma, dtype=torch.float64)
        assert torch.isfinite(near_one).all()
        close(near_one, at_one, tol=1e-5)
    close(psi(turns, 1 - 1e-7), psi(turns, 1.0), tol=1e-5)


def test_gamma_zero_gives_uniform_weights_and_psi_equal_to_T():
    # g^0 = 1 and g^k = 0 for k >= 1, so (1 - 0) / (1 - 0) = 1 for every real turn
    turns = torch.tensor([1, 3, 4])
    close(turn_weights(turns, 4, 0.0), [[1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    close(psi(turns, 0.0), [1.0, 3.0, 4.0])


def test_single_turn_has_weight_one_and_psi_one_for_every_gamma():
    for gamma in [0.0, 0.1, 0.5, 0.99, 1 - 1e-7, 1.0]:
        close(turn_weights(torch.tensor([1]), 1, gamma), [[1.0]])
        close(psi(torch.tensor([1]), gamma), [1.0])


def test_weights_decrease_over_turns_when_gamma_below_one():
    weights = turn_weights(torch.tensor([8]), 8, 0.7)[0]
    assert (weights[1:] < weights[:-1]).all()


def test_psi_matches_closed_form():
    # sum_{t<T} (1 - g^(T-t)) / (1 - g^T) = (T - g (1 - g^T) / (1 - g)) / (1 - g^T)
    gamma, turns = 0.5, torch.arange(1, 12)
    expected = [(T - gamma * (1 - gamma**T) / (1 - gamma)) / (1 - gamma**T) for T in turns.tolist()]
    close(psi(turns, gamma), expected)


def test_dmpo_weights_add_a_gamma_to_the_t_discount():
    # T = 2, g = 0.5: gamma^t * phi = [1 * 1, 0.5 * 2/3] = [1, 1/3]
    close(dmpo_turn_weights(torch.tensor([2]), 2, 0.5), [[1.0, 1 / 3]])


# --- the reward and the loss, by hand ---------------------------------------------------------

def test_trajectory_reward_by_hand():
    # T = 2, g = 0.5, lr = [3, -1] -> (1 * 3 + 2/3 * -1) / (5/3) = (7/3) / (5/3) = 7/5
    # T = 1, lr = [2, <padding 99>] -> 2 / 1 = 2 (the padding is ignored)
    lr = torch.tensor([[3.0, -1.0], [2.0, 99.0]])
    close(trajectory_reward(lr, torch.tensor([2, 1]), 0.5), [7 / 5, 2.0])
    # without psi: 7/3 and 2; without phi (psi then = T): mean (3 - 1) / 2 = 1 and 2
    close(trajectory_reward(lr, torch.tensor([2, 1]), 0.5, use_psi=False), [7 / 3, 2.0])
    close(trajectory_reward(lr, torch.tensor([2, 1]), 0.5, use_phi=False), [1.0, 2.0])
    close(trajectory_reward(lr, torch.tensor([2, 1]), 0.5, use_phi=False, use_psi=False), [2.0, 2.0])


def test_padding_values_never_leak_even_when_not_finite():
    lr = torch.tensor([[1.0, float("nan"), float("-inf")]])
    close(trajectory_reward(lr, torch.tensor([1]), 0.5), [1.0])


def test_loss_on_a_toy_pair_by_hand():
    # chosen T = 2, lr = [3, -1] -> R_c = 7/5 (above); rejected T = 3, lr = [1, 1, 1] -> R_r = 1 (a mean of 1s)
    # beta = 0.5, margin = 0.2: logit = 7/5 - 1 - 0.2 = 0.2; loss = -log sigmoid(0.5 * 0.2) = -log sigmoid(0.1)
    losses, chosen_rewards, rejected_rewards = diatool_dpo_loss(
        torch.tensor([[3.0, -1.0]]), torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([2]), torch.tensor([3]),
        beta=0.5, gamma=0.5, margin=0.2)
    close(losses, [-math.log(sigmoid(0.1))])
    close(chosen_rewards, [0.5 * 7 / 5])  # logged rewards are beta * R
    close(rejected_rewards, [0.5])
    # use_margin=False: logit 0.4 -> -log sigmoid(0.2)
    losses, _, _ = diatool_dpo_loss(
        torch.tensor([[3.0, -1.0]]), torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([2]), torch.tensor([3]),
        beta=0.5, gamma=0.5, margin=0.2, use_margin=False)
    close(losses, [-math.log(sigmoid(0.2))])


def test_single_turn_without_margin_equals_dpo():
    torch.manual_seed(0)
    policy_chosen, ref_chosen, policy_rejected, ref_rejected = torch.randn(4, 16) * 5
    beta = 0.3
    expected = -F.logsigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)))
    one = torch.ones(16, dtype=torch.long)
    for gamma in [0.0, 0.5, 1.0]:
        losses, chosen_rewards, _ = diatool_dpo_loss(
            (policy_chosen - ref_chosen)[:, None], (policy_rejected - ref_rejected)[:, None], one, one,
            beta=beta, gamma=gamma, margin=1.5, use_margin=False)
        close(losses, expected, tol=1e-5)
        close(chosen_rewards, beta * (policy_chosen - ref_chosen), tol=1e-5)
        # margin = 0 with use_margin=True is the same thing
        losses, _, _ = diatool_dpo_loss(
            (policy_chosen - ref_chosen)[:, None], (policy_rejected - ref_rejected)[:, None], one, one,
            beta=beta, gamma=gamma, margin=0.0)
        close(losses, expected, tol=1e-5)


def test_every_switch_off_equals_sequence_dpo_over_all_assistant_tokens():
    torch.manual_seed(1)
    B, L, Tc, Tr = 5, 40, 4, 3
    chosen_turns, rejected_turns = torch.tensor([4, 1, 2, 3, 4]), torch.tensor([1, 3, 2, 3, 1])
    chosen_index, rejected_index = random_turn_index(B, L, chosen_turns), random_turn_index(B, L, rejected_turns)
    token_lr_c, token_lr_r = torch.randn(B, L), torch.randn(B, L)
    beta = 0.5
    # sequence DPO: sum of log-ratios over every assistant token (index >= 0)
    seq_c, seq_r = (token_lr_c * (chosen_index >= 0)).sum(-1), (token_lr_r * (rejected_index >= 0)).sum(-1)
    expected = -F.logsigmoid(beta * (seq_c - seq_r))
    losses, _, _ = diatool_dpo_loss(
        per_turn_logps(token_lr_c, chosen_index, Tc), per_turn_logps(token_lr_r, rejected_index, Tr),
        chosen_turns, rejected_turns, beta=beta, gamma=0.5, margin=2.0,
        use_phi=False, use_psi=False, use_margin=False)
    close(losses, expected, tol=1e-5)


def test_psi_keeps_a_long_trajectory_on_the_scale_of_a_short_one():
    # equal per-turn log-ratio 1: with psi R = 1 for every T; without psi R = psi(T) grows with T
    turns = torch.arange(1, 9)
    lr = torch.ones(8, 8)
    close(trajectory_reward(lr, turns, 0.5), torch.ones(8))
    without = trajectory_reward(lr, turns, 0.5, use_psi=False)
    close(without, psi(turns, 0.5))
    assert (without[1:] > without[:-1]).all()


def test_dmpo_loss_by_hand():
    # chosen T = 2, lr = [3, -1]: R = 1 * 3 + 1/3 * -1 = 8/3; rejected T = 1, lr = [2]: R = 2
    # beta = 1: loss = -log sigmoid(8/3 - 2) = -log sigmoid(2/3)
    losses, chosen_rewards, rejected_rewards = dmpo_loss(
        torch.tensor([[3.0, -1.0]]), torch.tensor([[2.0]]), torch.tensor([2]), torch.tensor([1]), beta=1.0, gamma=0.5)
    close(losses, [-math.log(sigmoid(2 / 3))])
    close(chosen_rewards, [8 / 3])
    close(rejected_rewards, [2.0])


# --- gradients -------------------------------------------------------------------------------

def test_gradient_pushes_chosen_turns_up_and_rejected_turns_down():
    chosen = torch.tensor([[0.5, -0.2, 0.1, 0.0]], requires_grad=True)
    rejected = torch.tensor([[0.3, 0.4, 0.0]], requires_grad=True)
    losses, _, _ = diatool_dpo_loss(chosen, rejected, torch.tensor([4]), torch.tensor([3]),
                                    beta=0.5, gamma=0.5, margin=2.0)
    losses.sum().backward()
    # gradient descent moves lr by -grad: chosen up (grad < 0), rejected down (grad > 0)
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()


def test_later_turns_get_smaller_gradient_weight_when_gamma_below_one():
    chosen = torch.zeros(1, 5, requires_grad=True)
    rejected = torch.zeros(1, 5, requires_grad=True)
    losses, _, _ = diatool_dpo_loss(chosen, rejected, torch.tensor([5]), torch.tensor([5]),
                                    beta=0.5, gamma=0.5, margin=0.5)
    losses.sum().backward()
    magnitude = chosen.grad.abs()[0]
    assert (magnitude[1:] < magnitude[:-1]).all()
    # exactly: d loss / d lr_t = -beta * sigmoid(-beta * logit) * phi(t, 5) / psi(5), logit = -margin
    expected = -0.5 * sigmoid(0.5 * 0.5) * turn_weights(torch.tensor([5]), 5, 0.5)[0] / psi(torch.tensor([5]), 0.5)
    close(chosen.grad[0], expected)
    close(rejected.grad[0], -expected)


def test_padding_gets_no_gradient():
    chosen = torch.tensor([[1.0, 5.0, 5.0]], requires_grad=True)
    losses, _, _ = diatool_dpo_loss(chosen, torch.zeros(1, 1), torch.tensor([1]), torch.tensor([1]),
                                    beta=0.1, gamma=0.5, margin=0.0)
    losses.sum().backward()
    assert chosen.grad[0, 1:].eq(0).all() and chosen.grad[0, 0] != 0


def test_logged_rewards_are_detached():
    chosen = torch.zeros(1, 1, requires_grad=True)
    _, chosen_rewards, rejected_rewards = diatool_dpo_loss(chosen, chosen, torch.tensor([1]), torch.tensor([1]),
                                                           beta=0.1, gamma=0.5, margin=0.0)
    assert not chosen_rewards.requires_grad and not rejected_rewards.requires_grad


def test_half_precision_log_ratios_are_summed_in_float32():
    lr = torch.tensor([[3.0, -1.0]], dtype=torch.bfloat16)
    reward = trajectory_reward(lr, torch.tensor([2]), 0.5)
    assert reward.dtype == torch.float32
    close(reward, [7 / 5])


# --- per_turn_logps --------------------------------------------------------------------------

def random_turn_index(B, L, num_turns, generator=None):
    """Ragged turns: each sample's turns 0..T-1 in order as contiguous blocks, -1 between and after them."""
    index = torch.full((B, L), -1, dtype=torch.long)
    for b, T in enumerate(num_turns.tolist()):
        cuts = torch.randperm(L - 1, generator=generator)[: 2 * T].sort().values + 1
        for t in range(T):
            index[b, cuts[2 * t]: cuts[2 * t + 1]] = t
    return index


def slow_per_turn_logps(token_logps, turn_index, max_turns):
    out = torch.zeros(token_logps.shape[0], max_turns, dtype=torch.float64)
    for b in range(token_logps.shape[0]):
        for i in range(token_logps.shape[1]):
            if turn_index[b, i] >= 0:
                out[b, turn_index[b, i]] += float(token_logps[b, i])
    return out


def test_per_turn_logps_matches_a_slow_loop_on_ragged_turns():
    generator = torch.Generator().manual_seed(2)
    B, L, max_turns = 6, 50, 5
    num_turns = torch.randint(1, max_turns + 1, (B,), generator=generator)
    turn_index = random_turn_index(B, L, num_turns, generator)
    token_logps = -torch.rand(B, L, generator=generator) * 10
    close(per_turn_logps(token_logps, turn_index, max_turns), slow_per_turn_logps(token_logps, turn_index, max_turns),
          tol=1e-5)


def test_per_turn_logps_by_hand_ignores_untrained_tokens_even_if_infinite():
    token_logps = torch.tensor([[float("-inf"), -1.0, -2.0, -0.5, -3.0, float("nan")]])
    turn_index = torch.tensor([[-1, 0, 0, -1, 1, -1]])
    # turn 0: -1 - 2 = -3; turn 1: -3; turn 2 (absent): 0
    close(per_turn_logps(token_logps, turn_index, 3), [[-3.0, -3.0, 0.0]])


def test_per_turn_logps_adds_bfloat16_tokens_in_float32():
    # 1000 tokens of -2.3 in one turn: float32 gives -2300 to ~1e-3; bf16 accumulation would be off by units
    token_logps = torch.full((1, 1000), -2.3).to(torch.bfloat16)
    out = per_turn_logps(token_logps, torch.zeros(1, 1000, dtype=torch.long), 1)
    assert out.dtype == torch.float32
    close(out, token_logps.float().sum(-1, keepdim=True), tol=1e-6)


def test_per_turn_logps_passes_gradients_to_trained_tokens_only():
    token_logps = torch.zeros(1, 4, requires_grad=True)
    per_turn_logps(token_logps, torch.tensor([[-1, 0, 1, 1]]), 2).sum().backward()
    assert token_logps.grad.tolist() == [[0.0, 1.0, 1.0, 1.0]]


# --- decision weighting ----------------------------------------------------------------------

def test_decision_token_weights_mark_the_first_token_of_each_turn_even_when_turns_touch():
    turn_index = torch.tensor([[-1, 0, 0, 0, -1, 1, 1, 2, 2, -1],
                               [0, 0, -1, -1, -1, -1, -1, -1, -1, -1]])
    expected = [[0, 5, 1, 1, 0, 5, 1, 5, 1, 0],
                [5, 1, 0, 0, 0, 0, 0, 0, 0, 0]]
    assert decision_token_weights(turn_index, 5.0).tolist() == expected


def test_decision_token_weights_refuse_a_non_positive_weight():
    with pytest.raises(ValueError, match="decision weight must be positive"):
        decision_token_weights(torch.zeros(1, 3, dtype=torch.long), 0.0)


def test_weighted_per_turn_logps_count_the_first_token_w_times():
    token_logps = torch.tensor([[float("-inf"), -1.0, -2.0, -0.5, -3.0, -4.0, float("nan")]])
    turn_index = torch.tensor([[-1, 0, 0, -1, 1, 1, -1]])
    weights = decision_token_weights(turn_index, 10.0)
    # turn 0: 10 * -1 - 2 = -12; turn 1: 10 * -3 - 4 = -34; the -inf and NaN outside turns never count
    close(per_turn_logps(token_logps, turn_index, 2, weights), [[-12.0, -34.0]])


def test_weighted_per_turn_logps_match_a_slow_loop_and_equal_plain_sums_at_weight_one():
    generator = torch.Generator().manual_seed(5)
    B, L, max_turns, w = 6, 60, 4, 7.0
    num_turns = torch.randint(1, max_turns + 1, (B,), generator=generator)
    turn_index = random_turn_index(B, L, num_turns, generator)
    token_logps = -torch.rand(B, L, generator=generator) * 10
    scaled = token_logps.clone()
    for b in range(B):  # the slow way: scale each turn's first token by w
        for i in range(L):
            if turn_index[b, i] >= 0 and (i == 0 or turn_index[b, i - 1] != turn_index[b, i]):
                scaled[b, i] *= w
    weighted = per_turn_logps(token_logps, turn_index, max_turns, decision_token_weights(turn_index, w))
    close(weighted, slow_per_turn_logps(scaled, turn_index, max_turns), tol=1e-5)
    close(per_turn_logps(token_logps, turn_index, max_turns, decision_token_weights(turn_index, 1.0)),
          per_turn_logps(token_logps, turn_index, max_turns))


def test_weighted_per_turn_logps_pass_weighted_gradients_and_none_to_padding():
    token_logps = torch.tensor([[float("-inf"), 0.0, 0.0, 0.0]], requires_grad=True)
    turn_index = torch.tensor([[-1, 0, 0, 1]])
    per_turn_logps(token_logps, turn_index, 2, decision_token_weights(turn_index, 3.0)).sum().backward()
    assert token_logps.grad.tolist() == [[0.0, 3.0, 1.0, 3.0]]


def test_weighted_per_turn_logps_check_the_weights_shape():
    with pytest.raises(ValueError, match="token_weights must be"):
        per_turn_logps(torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.long), 1, torch.ones(1, 3))


def test_per_turn_logps_is_vectorised_on_a_long_batch():
    # B = 8 sequences of 8192 tokens, 12 turns. One scatter_add takes about a millisecond on one CPU
    # thread; a Python loop over the 65k tokens would take over a second. One thread, so that other
    # processes on a busy machine do not turn thread hand-offs into the measurement.
    generator = torch.Generator().manual_seed(3)
    B, L, max_turns = 8, 8192, 12
    turn_index = torch.randint(-1, max_turns, (B, L), generator=generator)
    token_logps = torch.randn(B, L, generator=generator)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            out = per_turn_logps(token_logps, turn_index, max_turns)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 0.05
    expected = torch.stack([(token_logps * (turn_index == t)).sum(-1) for t in range(max_turns)], dim=1)
    close(out, expected, tol=1e-4)


# --- bad input -------------------------------------------------------------------------------

def test_a_sample_with_zero_turns_is_an_error_naming_the_sample():
    with pytest.raises(ValueError, match="sample 2 in the batch has 0 chosen turns"):
        diatool_dpo_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([1, 2, 0]), torch.tensor([1, 1, 1]),
                         beta=0.1, gamma=0.5, margin=0.0)
    with pytest.raises(ValueError, match="sample 0 in the batch has 0 num turns"):
        turn_weights(torch.tensor([0, 1]), 2, 0.5)


def test_mismatched_batch_sizes_are_an_error():
    with pytest.raises(ValueError, match="batch sizes differ: 3 chosen rows but 2 rejected rows"):
        diatool_dpo_loss(torch.zeros(3, 2), torch.zeros(2, 2), torch.tensor([1, 1, 1]), torch.tensor([1, 1]),
                         beta=0.1, gamma=0.5, margin=0.0)
    with pytest.raises(ValueError, match="batch sizes differ: turn_logratios has 2 rows"):
        trajectory_reward(torch.zeros(2, 2), torch.tensor([1, 1, 1]), 0.5)


def test_more_turns_than_the_padded_width_is_an_error():
    with pytest.raises(ValueError, match="sample 1 in the batch has 4 rejected turns but the padded turn tensor has only 3"):
        diatool_dpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([1, 1]), torch.tensor([2, 4]),
                         beta=0.1, gamma=0.5, margin=0.0)


def test_turn_index_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="sample 1 in the batch has turn index 3 at token 2"):
        per_turn_logps(torch.zeros(2, 4), torch.tensor([[0, 0, 1, -1], [0, 1, 3, -1]]), 3)
    with pytest.raises(ValueError, match="must both be \\[B, L\\]"):
        per_turn_logps(torch.zeros(2, 4), torch.zeros(2, 5, dtype=torch.long), 3)


def test_gamma_outside_zero_one_and_non_positive_beta_are_errors():
    with pytest.raises(ValueError, match="gamma"):
        turn_weights(torch.tensor([2]), 2, 1.5)
    with pytest.raises(ValueError, match="beta must be positive"):
        diatool_dpo_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([1]), torch.tensor([1]),
                         beta=0.0, gamma=0.5, margin=0.0)


def test_float_turn_counts_are_an_error():
    with pytest.raises(ValueError, match="must hold integers"):
        psi(torch.tensor([1.0, 2.0]), 0.5)


# --- the notebook's plots draw the library's numbers -------------------------------------------

def test_turn_weight_plot_draws_phi_for_each_gamma():
    import matplotlib

    matplotlib.use("Agg")
    from diatool_utils.loss_plots import plot_turn_weights

    ax = plot_turn_weights(num_turns=4, gammas=(0.0, 0.5, 1.0))
    drawn = torch.stack([torch.as_tensor(line.get_ydata()) for line in ax.get_lines()])
    # gamma 0: all 1; gamma 0.5: (1 - 0.5^(4-t)) / (1 - 0.5^4) = (15/16, 14/16, 12/16, 8/16) / (15/16); gamma 1: (4-t)/4
    close(drawn, [[1, 1, 1, 1], [1, 14 / 15, 12 / 15, 8 / 15], [1, 3 / 4, 1 / 2, 1 / 4]])


def test_reward_plot_shows_psi_keeping_the_scale_flat():
    import matplotlib

    matplotlib.use("Agg")
    from diatool_utils.loss_plots import plot_reward_vs_turns

    with_psi, without_psi, summed = (line.get_ydata() for line in plot_reward_vs_turns(0.5, 1.0, 5).get_lines())
    close(with_psi, [1.0] * 5)
    close(without_psi, psi(torch.arange(1, 6), 0.5))
    close(summed, [1.0, 2.0, 3.0, 4.0, 5.0])
