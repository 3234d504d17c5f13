"""Greedy replies to many prompts, the three ways this repository writes them.

Every benchmark turn is a prompt (the gold history so far, ending with ``<|recipient|>``) and a reply the
model writes greedily, up to ``<|stop|>``. The replies are the same whichever way they are written; what
differs is what the computer does twice:

    generate_replies                  left-padded batches through ``model.generate``: each prompt read whole
                                      (a GPU has the parallel compute for it)
    generate_replies_sharing_prefix   one prompt at a time, keeping the cache of the previous prompt: each
                                      dialogue's history read once, but one token per forward
    generate_replies_by_dialog        each dialogue's longest prompt read once, and all of its turns' replies
                                      written together as the rows of one batch (the CPU default)

On 2 CPU cores a forward of the 135M model over one new token costs about as much as over eight: it is
bound by the work around the matrix products, not by them. So writing a dialogue's turns side by side
costs about what writing one does, and reading the history once keeps the prompts cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache, StaticCache

from diatool_utils import templating
from diatool_utils.progress import stage_progress


@dataclass
class Generation:
    """One generated turn.

    ``text`` is what the model wrote after the prompt, through ``<|stop|>`` when it wrote one;
    ``finish`` is ``"stop"`` (it did), ``"eos"`` (it ended with the tokenizer's eos instead) or
    ``"length"`` (it hit ``max_new_tokens``); ``num_tokens`` counts the new tokens kept and
    ``prompt_tokens`` the prompt's (on a CPU, reading the prompt usually costs more than writing).
    """

    text: str
    finish: str
    num_tokens: int
    prompt_tokens: int = 0


@torch.no_grad()
def generate_replies(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    show_progress: bool = True,
) -> list[Generation]:
    """Greedy generation for many prompts, in left-padded batches, each stopping at ``<|stop|>``.

    Prompts are sorted by length so a batch holds similar lengths (less padding); the results
    come back in the prompts' order. Per batch: ``input_ids`` and ``attention_mask`` (B, L),
    padded on the left so every prompt ends where generation starts.
    """
    stop_id = templating.functionary_token_ids(tokenizer)[templating.STOP_TOKEN]
    eos_id = tokenizer.eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[Generation | None] = [None] * len(prompts)
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    progress = stage_progress("evaluation", len(prompts), "turn", show=show_progress)
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            output = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=[stop_id] + ([eos_id] if eos_id is not None else []),
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id,
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
            prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()
            for i, row, n_prompt in zip(indices, new_tokens, prompt_tokens, strict=True):
                results[i] = _cut_at_end(row, stop_id, eos_id, tokenizer)
                results[i].prompt_tokens = n_prompt
            progress.update(len(indices))
    finally:
        progress.close()
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return results


@torch.no_grad()
def generate_replies_sharing_prefix(
    model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 96, show_progress: bool = True
) -> list[Generation]:
    """Greedy generation one prompt at a time, reusing the key/value cache of the previous prompt.

    The turns of one benchmark dialog extend each other: prompt k+1 is prompt k, the gold
    assistant turn and the next user message. Keeping the cache of the longest shared token
    prefix means each dialog's history is read once, not once per turn (on our eval set 97k
    prompt tokens become about 25k). Same results as :func:`generate_replies`, in the order given.
    """
    from transformers import DynamicCache

    stop_id = templating.functionary_token_ids(tokenizer)[templating.STOP_TOKEN]
    eos_id = tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    cache, cached_ids, results = DynamicCache(), [], []
    progress = stage_progress("evaluation", len(prompts), "turn", show=show_progress)
    try:
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            shared = 0
            while shared < min(len(ids) - 1, len(cached_ids)) and ids[shared] == cached_ids[shared]:
                shared += 1  # at least one prompt token stays uncached: generate needs an input
            _keep_first(cache, shared)
            output = model.generate(
                torch.tensor([ids], device=model.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device),
                cache=cache,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=[stop_id] + ([eos_id] if eos_id is not None else []),
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id,
            )
            cached_ids = ids
            _keep_first(cache, len(ids))  # drop the generated tokens
            generation = _cut_at_end(output[0, len(ids) :].tolist(), stop_id, eos_id, tokenizer)
            generation.prompt_tokens = len(ids)
            results.append(generation)
            progress.update()
    finally:
        progress.close()
        model.train(was_training)
    return results


@torch.no_grad()
def generate_replies_by_dialog(
    model, tokenizer, prompts: Sequence[str], *, batch_size: int = 16, max_new_tokens: int = 96,
    show_progress: bool = True,
) -> list[Generation]:
    """Greedy replies, reading each dialogue's history once and writing its turns' replies side by side.

    The turns of one benchmark dialogue extend each other: prompt k + 1 is prompt k, the gold assistant turn
    and what follows. In a causal model the keys and values at position j depend on tokens <= j only, so one
    forward over a chain's longest prompt p_n gives every prompt p_k of the chain its cache (the first |p_k|
    positions) and its first new token (the logits at position |p_k| - 1). Then the chain's turns decode as
    rows of one batch, with several chains per batch (up to ``batch_size`` rows):

        row r    cache slots 0 .. |p_r| - 1    its prompt
                 slots |p_r| .. S - 1          masked: the rest of a longer prompt, or padding
                 slots S, S + 1, ...           its new tokens, at positions |p_r|, |p_r| + 1, ...

    S is the batch's longest prompt. Replies are those of :func:`generate_replies` (a test compares them),
    in the prompts' order; a row stops at ``<|stop|>`` or eos, the batch when every row has.
    """
    stop_id = templating.functionary_token_ids(tokenizer)[templating.STOP_TOKEN]
    ends = {stop_id} | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
    ids = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
    if any(not row for row in ids):
        raise ValueError("an empty prompt: every prompt needs at least one token to start from")
    batches = _pack(prefix_chains(ids), batch_size)
    results: list[Generation | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    progress = stage_progress("evaluation", len(prompts), "turn", show=show_progress)
    try:
        for chains in batches:
            rows = [i for chain in chains for i in chain]
            for i, new_tokens in zip(rows, _decode_chains(model, ids, chains, ends, max_new_tokens), strict=True):
                results[i] = _cut_at_end(new_tokens, stop_id, tokenizer.eos_token_id, tokenizer)
                results[i].prompt_tokens = len(ids[i])
            progress.update(len(rows))
    finally:
        progress.close()
        model.train(was_training)
    return results


def prefix_chains(ids: Sequence[Sequence[int]]) -> list[list[int]]:
    """Runs of consecutive prompts (indices) in which each prompt's tokens begin with the previous prompt's."""
    chains: list[list[int]] = []
    for i, row in enumerate(ids):
        last = ids[chains[-1][-1]] if chains else None
        if last is not None and len(last) <= len(row) and list(row[: len(last)]) == list(last):
            chains[-1].append(i)
        else:
            chains.append([i])
    return chains


def _pack(chains: list[list[int]], batch_size: int) -> list[list[list[int]]]:
    """Consecutive chains grouped into batches of at most ``batch_size`` rows (a longer chain is cut in pieces)."""
    pieces = [chain[start : start + batch_size] for chain in chains for start in range(0, len(chain), batch_size)]
    batches: list[list[list[int]]] = []
    for piece in pieces:
        if batches and sum(map(len, batches[-1])) + len(piece) <= batch_size:
            batches[-1].append(piece)
        else:
            batches.append([piece])
    return batches


def _decode_chains(model, ids, chains: list[list[int]], ends: set[int], max_new_tokens: int) -> list[list[int]]:
    """New tokens of every row of one batch (rows = the chains' prompts, in order), greedy."""
    device = model.device
    width = max(len(ids[chain[-1]]) for chain in chains)  # S
    rows = [i for chain in chains for i in chain]
    keys, values, first = [], [], []
    for chain in chains:  # one forward per chain, over its longest prompt
        longest = torch.tensor([ids[chain[-1]]], device=device)
        last_positions = torch.tensor([len(ids[i]) - 1 for i in chain], device=device)
        cache = DynamicCache()
        out = model(input_ids=longest, cache=cache, use_cache=True, logits_to_keep=last_positions)
        first.append(out.logits[0].argmax(dim=-1))  # [len(chain)]
        pad = width - longest.size(1)
        keys.append([torch.nn.functional.pad(layer.keys, (0, 0, 0, pad)).expand(len(chain), -1, -1, -1)
                     for layer in cache.layers])
        values.append([torch.nn.functional.pad(layer.values, (0, 0, 0, pad)).expand(len(chain), -1, -1, -1)
                       for layer in cache.layers])
    batch = StaticCache(config=model.config, max_cache_len=width + max_new_tokens)
    for layer_index in range(len(keys[0])):
        batch.update(torch.cat([k[layer_index] for k in keys]), torch.cat([v[layer_index] for v in values]),
                     layer_index)
    lengths = torch.tensor([len(ids[i]) for i in rows], device=device)  # |p_r|
    slots = torch.arange(width + max_new_tokens, device=device)
    mask = ((slots[None, :] < lengths[:, None]) | (slots[None, :] >= width)).long()  # [R, S + max_new_tokens]

    tokens = torch.cat(first)  # [R]
    generated = [[token] for token in tokens.tolist()]
    active = [row for row, token in enumerate(tokens.tolist()) if token not in ends]  # rows still writing
    running = list(range(len(rows)))  # the rows the batch tensors hold, in order
    for step in range(1, max_new_tokens):
        if not active:
            break
        if len(active) <= 0.75 * len(running):  # drop finished rows: every step reads each row's whole cache
            keep = torch.tensor([running.index(row) for row in active], device=device)
            for layer in batch.layers:
                layer.keys, layer.values = layer.keys[keep], layer.values[keep]
            tokens, lengths, mask, running = tokens[keep], lengths[keep], mask[keep], list(active)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=(lengths + step - 1)[:, None],
                    cache=batch, use_cache=True)
        tokens = out.logits[:, -1].argmax(dim=-1)
        for row, token in zip(running, tokens.tolist(), strict=True):
            if row in active:
                generated[row].append(token)
                if token in ends:
                    active.remove(row)
    return generated


def _keep_first(cache, n: int) -> None:
    """Crop a key/value cache to its first ``n`` positions (transformers' crop takes -removed)."""
    extra = cache.get_seq_length() - n
    if extra > 0:
        cache.crop(-extra)


def _cut_at_end(row: list[int], stop_id: int, eos_id: int | None, tokenizer) -> Generation:
    """Keep new tokens through the first ``<|stop|>``; an eos ends the reply without being kept."""
    for k, token in enumerate(row):
        if token == stop_id:
            return Generation(tokenizer.decode(row[: k + 1], skip_special_tokens=False), "stop", k + 1)
        if token == eos_id:
            return Generation(tokenizer.decode(row[:k], skip_special_tokens=False), "eos", k)
    return Generation(tokenizer.decode(row, skip_special_tokens=False), "length", len(row))


