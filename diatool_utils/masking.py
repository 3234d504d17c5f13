"""Which token belongs to which assistant turn: the per-turn token index behind the loss.

DiaTool-DPO scores a trajectory turn by turn (docs/method.md, "The loss"), so every token needs
a label saying which assistant message it belongs to::

    turn_index[i] = -1     system, user and tool tokens, each assistant message's
                           "<|from|>assistant\\n<|recipient|>" prefix and the "\\n" after <|stop|>
    turn_index[i] = t      tokens of assistant message t (0 .. T-1), from the recipient
                           through <|stop|> -- exactly what the model writes after the prompt

    tok = tokenize_conversation(tokenizer, messages, tools, max_length=1024)
    tok.input_ids, tok.turn_index, tok.num_turns, tok.dropped_turns
    turn_texts(tokenizer, tok)        # the decoded text of each kept turn

The tokenizer must already know the Functionary markers: call
``templating.add_functionary_tokens(tokenizer, model)`` first. ``tokenize_conversation``
does not add them itself, because adding tokens without resizing the model's embeddings
would give ids the model can't look up; it raises a ``ValueError`` saying so instead.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from .templating import functionary_token_ids, render_segments


@dataclass
class TokenizedConversation:
    """A conversation as token ids plus, per token, the assistant turn it is trained for.

    Attributes:
        input_ids: token ids, length L (L <= max_length when one was given).
        turn_index: length L; -1 for context tokens, t for tokens of assistant turn t.
        num_turns: turns kept whole (they are numbered 0 .. num_turns - 1).
        dropped_turns: assistant turns lost to truncation (cut in half or beyond max_length).
    """

    input_ids: list[int]
    turn_index: list[int]
    num_turns: int
    dropped_turns: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)


def tokenize_conversation(tokenizer, messages: list[dict], tools: list[dict] | None = None, *,
                          max_length: int | None = None, context_turns: int = 0) -> TokenizedConversation:
    """Tokenize a rendered conversation and label each token with its assistant turn.

    The text is tokenized piece by piece at special-token boundaries (the pieces come from
    ``templating.render_segments``), which gives the same ids as tokenizing the whole string
    and tells us where each turn starts and ends without searching the ids.

    Truncation keeps the first ``max_length`` tokens. A turn that no longer ends with its
    ``<|stop|>`` inside the kept tokens is not trained: its tokens stay as context with
    index -1, and it and all later turns are counted in ``dropped_turns``.

    ``context_turns``: the first that many assistant messages are context, not trained (index
    -1), and turn 0 is the next one. A DPO prompt that already holds earlier assistant turns
    passes their number, so only the chosen / rejected continuation is scored.
    """
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length={max_length}: expected a positive number of tokens or None")
    if context_turns < 0:
        raise ValueError(f"context_turns={context_turns}: expected 0 or more assistant messages")
    marker_ids = functionary_token_ids(tokenizer)  # raises if add_functionary_tokens was not called
    segments = render_segments(messages, tools)
    texts = [text for text, _ in segments if text not in marker_ids]
    encoded = iter(_encode_batch(tokenizer, texts))
    input_ids: list[int] = []
    turn_index: list[int] = []
    for text, turn in segments:
        ids = [marker_ids[text]] if text in marker_ids else next(encoded)
        input_ids.extend(ids)
        turn_index.extend([turn - context_turns if turn >= context_turns else -1] * len(ids))
    num_turns = max(turn_index, default=-1) + 1
    if max_length is None or len(input_ids) <= max_length:
        return TokenizedConversation(input_ids, turn_index, num_turns, 0)
    return _truncate(input_ids, turn_index, num_turns, max_length)


def _encode_batch(tokenizer, texts: list[str]) -> list[list[int]]:
    """Ids of each text, no BOS/EOS; the Rust tokenizer directly when there is one (~2x faster)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [encoding.ids for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _truncate(input_ids, turn_index, num_turns, max_length) -> TokenizedConversation:
    # A turn's tokens are contiguous, so only the turn running across the cut can be cut in half:
    # the one at position max_length - 1 when the first dropped token still belongs to it.
    boundary = turn_index[max_length - 1]
    cut_in_half = boundary >= 0 and turn_index[max_length] == boundary
    input_ids, turn_index = input_ids[:max_length], turn_index[:max_length]
    if cut_in_half:
        turn_index = [-1 if t == boundary else t for t in turn_index]
    kept = max(turn_index, default=-1) + 1
    return TokenizedConversation(input_ids, turn_index, kept, num_turns - kept)


def turn_texts(tokenizer, tokenized: TokenizedConversation) -> list[str]:
    """The decoded text of each kept turn, special tokens included: ``["all\\n<|content|>Hi<|stop|>", ...]``."""
    return [
        tokenizer.decode([i for i, t in zip(tokenized.input_ids, tokenized.turn_index, strict=True) if t == turn],
                         skip_special_tokens=False)
        for turn in range(tokenized.num_turns)
    ]


# One colour per turn (cycled); context tokens are grey. ColorBrewer Set2: light enough for black text.
TURN_COLOURS = ["#66C2A5", "#FC8D62", "#8DA0CB", "#E78AC3", "#A6D854", "#FFD92F", "#E5C494"]
CONTEXT_COLOUR = "#DDDDDD"


def turn_colour(turn: int) -> str:
    return CONTEXT_COLOUR if turn < 0 else TURN_COLOURS[turn % len(TURN_COLOURS)]


def token_pieces(tokenizer, tokenized: TokenizedConversation) -> list[tuple[str, int]]:
    """``(decoded token, turn)`` for every token, in order."""
    return [(tokenizer.decode([i], skip_special_tokens=False), t)
            for i, t in zip(tokenized.input_ids, tokenized.turn_index, strict=True)]


def turns_html(tokenizer, tokenized: TokenizedConversation, *, start: int = 0, end: int | None = None) -> str:
    """An HTML view of tokens ``start:end``, each on a background coloured by its turn (grey = context).

    Show it in a notebook with ``IPython.display.HTML(turns_html(tokenizer, tok))``.
    """
    spans = []
    for text, turn in token_pieces(tokenizer, tokenized)[start:end]:
        shown = html.escape(text).replace("\n", "\u21b5<br>")
        title = "context (no loss)" if turn < 0 else f"turn {turn}"
        spans.append(f'<span title="{title}" style="background:{turn_colour(turn)};'
                     f'border-right:1px solid white">{shown}</span>')
    legend = " ".join(f'<span style="background:{turn_colour(t)};padding:0 4px">turn {t}</span>'
                      for t in range(tokenized.num_turns))
    legend += f' <span style="background:{CONTEXT_COLOUR};padding:0 4px">context (no loss)</span>'
    return (f'<div style="font-family:monospace;font-size:12px;line-height:1.7">{legend}<hr>'
            + "".join(spans) + "</div>")


def plot_turns(tokenizer, tokenized: TokenizedConversation, *, start: int = 0, end: int | None = None,
               width: int = 100, ax=None):
    """Draw tokens ``start:end`` as text on boxes coloured by turn (a figure GitHub shows as is).

    Tokens flow left to right and wrap at ``width`` characters; a "\\n" token ends the line.
    The figure is as wide as the longest line. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    pieces = token_pieces(tokenizer, tokenized)[start:end]
    rows, row, used = [], [], 0
    for text, turn in pieces:
        label = text.replace("\n", "\u21b5")
        if used + len(label) > width and row:
            rows.append(row)
            row, used = [], 0
        row.append((label, turn, used))
        used += len(label)
        if "\n" in text:
            rows.append(row)
            row, used = [], 0
    if row:
        rows.append(row)
    width = max([40] + [x + len(label) for row in rows for label, _, x in row])  # fit the longest line
    if ax is None:
        figure, ax = plt.subplots(figsize=(width * 0.09, 0.3 * len(rows) + 0.6))
        figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01)
    # Font size that makes one monospace character (~0.6 em wide) fill one unit of the x axis.
    axes_inches = ax.get_position().width * ax.figure.get_figwidth()
    fontsize = 0.95 * axes_inches / width * 72 / 0.6
    for y, row in enumerate(rows):
        for label, turn, x in row:
            ax.add_patch(Rectangle((x, -y - 0.9), len(label), 0.8, facecolor=turn_colour(turn),
                                   edgecolor="white", lw=0.8))
            ax.text(x, -y - 0.5, label, fontsize=fontsize, family="monospace", va="center")
    ax.set_xlim(0, width)
    ax.set_ylim(-len(rows) - 0.1, 0.1)
    ax.axis("off")
    handles = [Patch(color=turn_colour(t), label=f"turn {t}") for t in range(tokenized.num_turns)]
    handles.append(Patch(color=CONTEXT_COLOUR, label="context (no loss)"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
              frameon=False)
    return ax
