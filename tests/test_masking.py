"""The per-turn token index: which tokens each assistant turn is trained on."""

import pytest
from conversations import CONVERSATIONS, EXPECTED_TURN_TEXTS, TOOLS, conversation

from diatool_utils.masking import (
    TokenizedConversation,
    plot_turns,
    tokenize_conversation,
    turn_texts,
    turns_html,
)
from diatool_utils.models import load_tokenizer
from diatool_utils.templating import (
    ASSISTANT_PREFIX,
    STOP_TOKEN,
    add_functionary_tokens,
    render_conversation,
)


@pytest.fixture(scope="module", params=["smollm2-135m", "tiny-random"])
def tokenizer(request):
    """The embedded model's tokenizer and the tiny test model's, both with the markers added."""
    tok = load_tokenizer(request.param)
    add_functionary_tokens(tok)
    return tok


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_segment_tokenization_equals_tokenizing_the_whole_text(tokenizer, name):
    tok = tokenize_conversation(tokenizer, conversation(name), TOOLS)
    assert tok.input_ids == ids_of(tokenizer, render_conversation(conversation(name), TOOLS))
    assert len(tok.turn_index) == len(tok.input_ids)


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_each_turn_decodes_to_exactly_its_assistant_message(tokenizer, name):
    tok = tokenize_conversation(tokenizer, conversation(name), TOOLS)
    assert turn_texts(tokenizer, tok) == EXPECTED_TURN_TEXTS[name]
    assert tok.num_turns == sum(m["role"] == "assistant" for m in conversation(name))
    assert tok.dropped_turns == 0


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_context_tokens_decode_to_everything_else(tokenizer, name):
    """Untrained tokens + trained tokens, put back in order, are the whole rendered text."""
    tok = tokenize_conversation(tokenizer, conversation(name), TOOLS)
    context = tokenizer.decode([i for i, t in zip(tok.input_ids, tok.turn_index, strict=True) if t < 0],
                               skip_special_tokens=False)
    text = render_conversation(conversation(name), TOOLS)
    for turn_text in EXPECTED_TURN_TEXTS[name]:
        text = text.replace(turn_text, "", 1)
    assert context == text
    assert context.count(ASSISTANT_PREFIX) == len(EXPECTED_TURN_TEXTS[name])  # prefixes are context


def test_turn_indices_run_in_order_and_each_turn_ends_with_stop_then_untrained_newline(tokenizer):
    tok = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS)
    stop_id = tokenizer.convert_tokens_to_ids(STOP_TOKEN)
    trained = [t for t in tok.turn_index if t >= 0]
    assert trained == sorted(trained) and set(trained) == {0, 1, 2, 3}
    for turn in range(tok.num_turns):
        positions = [p for p, t in enumerate(tok.turn_index) if t == turn]
        assert positions == list(range(positions[0], positions[-1] + 1))  # contiguous
        assert tok.input_ids[positions[-1]] == stop_id
        assert tok.turn_index[positions[-1] + 1] == -1
        assert tokenizer.decode(tok.input_ids[positions[-1] + 1]) == "\n"


def test_generation_prompt_tokens_are_all_context(tokenizer):
    messages = [{"role": "user", "content": "What's the weather in Seoul?"}]
    tok = tokenize_conversation(tokenizer, messages, TOOLS)
    assert tok.num_turns == 0 and set(tok.turn_index) == {-1}


def test_missing_markers_raise_a_clear_error(tiny_tokenizer):
    with pytest.raises(ValueError, match="call diatool_utils.templating.add_functionary_tokens"):
        tokenize_conversation(tiny_tokenizer, conversation("text_reply"))


def test_tokens_added_later_give_the_same_result(tiny_tokenizer, tokenizer):
    add_functionary_tokens(tiny_tokenizer)
    mine = tokenize_conversation(tiny_tokenizer, conversation("parallel_calls"), TOOLS)
    assert mine == tokenize_conversation(tokenizer, conversation("parallel_calls"), TOOLS)


# --------------------------------------------------------------------------- truncation


def turn_spans(tok: TokenizedConversation):
    """turn -> (first position, last position)."""
    spans = {}
    for p, t in enumerate(tok.turn_index):
        if t >= 0:
            spans[t] = (spans.get(t, (p, p))[0], p)
    return spans


def test_truncation_inside_a_turn_drops_that_turn_and_all_later_ones(tokenizer):
    full = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS)
    first, last = turn_spans(full)[2]
    for max_length in (first + 1, (first + last) // 2, last):  # cuts turn 2 before its <|stop|>
        tok = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS, max_length=max_length)
        assert tok.input_ids == full.input_ids[:max_length]
        assert tok.num_turns == 2 and tok.dropped_turns == 2
        assert turn_texts(tokenizer, tok) == EXPECTED_TURN_TEXTS["slot_filling"][:2]
        assert max(tok.turn_index) == 1  # the half turn is context now


def test_truncation_right_after_stop_keeps_the_turn(tokenizer):
    full = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS)
    _, last = turn_spans(full)[2]
    tok = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS, max_length=last + 1)
    assert tok.num_turns == 3 and tok.dropped_turns == 1
    assert turn_texts(tokenizer, tok) == EXPECTED_TURN_TEXTS["slot_filling"][:3]


def test_truncation_in_context_keeps_earlier_turns_whole(tokenizer):
    full = tokenize_conversation(tokenizer, conversation("single_call"), TOOLS)
    _, last = turn_spans(full)[0]
    tok = tokenize_conversation(tokenizer, conversation("single_call"), TOOLS, max_length=last + 5)
    assert tok.num_turns == 1 and tok.dropped_turns == 1
    assert tok.turn_index == full.turn_index[: last + 5]


def test_context_turns_are_not_trained_and_later_turns_count_from_zero(tokenizer):
    full = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS)
    tok = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS, context_turns=2)
    assert tok.input_ids == full.input_ids
    assert tok.turn_index == [t - 2 if t >= 2 else -1 for t in full.turn_index]
    assert tok.num_turns == 2 and tok.dropped_turns == 0
    assert turn_texts(tokenizer, tok) == EXPECTED_TURN_TEXTS["slot_filling"][2:]


def test_truncation_counts_only_the_trained_turns_it_drops(tokenizer):
    full = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS)
    first, _ = turn_spans(full)[2]
    tok = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS, max_length=first + 1,
                                context_turns=2)
    assert tok.num_turns == 0 and tok.dropped_turns == 2 and set(tok.turn_index) == {-1}
    with pytest.raises(ValueError, match="context_turns=-1"):
        tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS, context_turns=-1)


def test_truncation_before_any_turn_keeps_none(tokenizer):
    tok = tokenize_conversation(tokenizer, conversation("slot_filling"), TOOLS, max_length=10)
    assert len(tok) == 10 and tok.num_turns == 0 and tok.dropped_turns == 4
    assert turn_texts(tokenizer, tok) == []


def test_max_length_longer_than_the_conversation_changes_nothing(tokenizer):
    full = tokenize_conversation(tokenizer, conversation("single_call"), TOOLS)
    assert tokenize_conversation(tokenizer, conversation("single_call"), TOOLS, max_length=len(full)) == full
    with pytest.raises(ValueError, match="max_length=0"):
        tokenize_conversation(tokenizer, conversation("single_call"), TOOLS, max_length=0)


# --------------------------------------------------------------------------- views


def test_html_view_colours_each_turn_and_escapes_text(tokenizer):
    messages = [{"role": "user", "content": "Is 1 < 2?"}, {"role": "assistant", "content": "Yes."}]
    tok = tokenize_conversation(tokenizer, messages)
    view = turns_html(tokenizer, tok)
    assert "&lt;" in view and "Is 1 < 2" not in view
    assert view.count('title="turn 0"') == tok.turn_index.count(0)


def test_plot_draws_one_box_per_token(tokenizer):
    import matplotlib

    matplotlib.use("Agg")
    tok = tokenize_conversation(tokenizer, conversation("text_reply"))
    ax = plot_turns(tokenizer, tok, start=len(tok) - 40)
    assert len(ax.patches) == 40
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
