"""The Functionary tokens' rows of an untied output layer (Qwen2.5-Coder, Llama-3) train in SFT and survive the merge.

``add_functionary_tokens`` starts the four new rows of an untied head at one shared mean, so their logits
stay equal unless those rows train: the model then never prefers ``<|content|>`` or ``<|stop|>``.
"""

import warnings

import pytest
import torch
from test_sft import ROW, TOOLS
from transformers import TrainingArguments

from diatool_utils.evaluation import generate_replies
from diatool_utils.models import load_model_and_tokenizer, tiny_model_and_tokenizer
from diatool_utils.sft import TOKEN_ROWS, attach_lora, lora_config, sft_trainer
from diatool_utils.templating import (
    CONTENT_TOKEN,
    FUNCTIONARY_SPECIAL_TOKENS,
    STOP_TOKEN,
    add_functionary_tokens,
    render_conversation,
)

GREETING = {"id": "greeting", "messages": [
    {"role": "user", "content": "Hi there!"},
    {"role": "assistant", "content": "Hello! How can I help?"},
]}
PARALLEL = {"id": "parallel", "tools": TOOLS, "messages": [  # two calls in one turn: <|from|> is trained too
    {"role": "user", "content": "Weather in Oslo and in Bergen?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'}}]},
]}
ROWS = [ROW, GREETING, PARALLEL]
PROMPTS = [  # each ends at <|recipient|>; the model should write "name\n<|content|>...<|stop|>"
    render_conversation(ROW["messages"][:1], TOOLS, add_generation_prompt=True),  # a call
    render_conversation(ROW["messages"][:3], TOOLS, add_generation_prompt=True),  # a text reply
    render_conversation(GREETING["messages"][:1], None, add_generation_prompt=True),
]
STEPS, LEARNING_RATE = 40, 1e-2  # overfits 3 conversations
# A random model's rows are noise at std 0.02, nothing to keep: in 40 steps they separate only with a step well
# above their scale (sft.default_token_learning_rate, made for trained embeddings, gives 7x lr here)
TOKEN_LEARNING_RATE = 50 * LEARNING_RATE


def untied_tiny_model():
    """The tiny Llama with an output layer of its own, scaled x10 (std 0.2).

    At the random init's std 0.02 a logit stays within ~1.3 of another (|h| = 8 after the final norm), so
    LoRA can't fit any text and only the trainable marker rows learn; a trained head has a wider range.
    """
    model, tokenizer = tiny_model_and_tokenizer(tie_word_embeddings=False)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(10.0)
    return model, tokenizer


def head_rows(model, tokenizer) -> torch.Tensor:
    """The output layer's rows of the four markers (through PEFT's wrapper: its merged weight)."""
    ids = tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
    return model.get_output_embeddings().weight[ids].detach().clone()


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    """The untied tiny model saved as a checkpoint: SFT and the merge load it by path, as the pipeline does."""
    folder = tmp_path_factory.mktemp("base")
    model, tokenizer = untied_tiny_model()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sft(base_folder, out, train_output_rows: bool):
    model, tokenizer = load_model_and_tokenizer(str(base_folder))
    model = attach_lora(model, tokenizer, r=4, alpha=8, dropout=0.0, train_output_rows=train_output_rows)
    before = head_rows(model, tokenizer)
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=3, max_steps=STEPS,
                             learning_rate=LEARNING_RATE, logging_steps=10, report_to=[], save_strategy="no",
                             use_cpu=True, seed=0, disable_tqdm=True)
    trainer = sft_trainer(model, tokenizer, ROWS, args, max_length=None, token_learning_rate=TOKEN_LEARNING_RATE)
    trainer.train()
    return model, tokenizer, before


@pytest.fixture(scope="module")
def trained(base_folder, tmp_path_factory):
    return sft(base_folder, tmp_path_factory.mktemp("sft"), train_output_rows=True)


@pytest.fixture(scope="module")
def trained_old_way(base_folder, tmp_path_factory):
    return sft(base_folder, tmp_path_factory.mktemp("sft-old"), train_output_rows=False)


def markers_where_they_belong(text: str, finish: str) -> bool:
    """The reply names a recipient, then "\\n<|content|>", then ends its turn with <|stop|>."""
    first_marker = min((text.find(m) for m in FUNCTIONARY_SPECIAL_TOKENS if m in text), default=-1)
    return (finish == "stop" and text.endswith(STOP_TOKEN) and first_marker > 0
            and text[first_marker:].startswith(CONTENT_TOKEN) and text[:first_marker].endswith("\n"))


def test_an_untied_head_gets_trainable_rows_of_its_own():
    model, tokenizer = untied_tiny_model()
    add_functionary_tokens(tokenizer, model)
    config = lora_config(tokenizer, model=model)
    ids = tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
    assert config.trainable_token_indices == {"model.embed_tokens": ids, "lm_head": ids}
    assert lora_config(tokenizer, model=model, train_output_rows=False).trainable_token_indices == {
        "model.embed_tokens": ids}

    model = attach_lora(model, tokenizer, r=4, alpha=8, dropout=0.0)
    rows = {name: p for name, p in model.named_parameters() if TOKEN_ROWS in name}
    assert len(rows) == 2 and all(p.shape == (4, model.config.hidden_size) for p in rows.values())
    batch = tokenizer(render_conversation(ROW["messages"], TOOLS), return_tensors="pt")
    model(**batch, labels=batch["input_ids"]).loss.backward()
    head_grad = next(p.grad for name, p in rows.items() if "lm_head" in name)
    assert (head_grad.abs().sum(dim=1) > 0).all(), "every marker's output row gets a gradient"


def test_a_tied_head_is_wrapped_once_and_follows_the_input_rows(tiny_model, tiny_tokenizer):
    add_functionary_tokens(tiny_tokenizer, tiny_model)
    ids = tiny_tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
    assert lora_config(tiny_tokenizer, model=tiny_model).trainable_token_indices == {"model.embed_tokens": ids}
    model = attach_lora(tiny_model, tiny_tokenizer, r=4, alpha=8, dropout=0.0)
    assert [name for name, _ in model.named_parameters() if TOKEN_ROWS in name] == [
        "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta.default"]
    head = model.get_output_embeddings()
    assert type(head.token_adapter.base_layer).__name__ == "Linear"  # one wrapper, around the plain head
    assert head.token_adapter.tied_adapter is model.get_input_embeddings().token_adapter
    with torch.no_grad():
        model.get_input_embeddings().token_adapter.trainable_tokens_delta["default"][0] += 1.0
    torch.testing.assert_close(head.weight[ids], model.get_input_embeddings().weight[ids])


def test_sft_trains_the_untied_head_rows_apart(trained):
    model, tokenizer, before = trained
    after = head_rows(model, tokenizer)
    assert torch.equal(before, before[:1].expand_as(before)), "the four rows start as one shared mean"
    assert not torch.allclose(after, before)
    distances = torch.cdist(after, after)
    assert (distances + torch.eye(4) > 1e-3).all(), "every pair of marker rows differs after training"


def test_after_sft_greedy_replies_put_content_and_stop_where_they_belong(trained):
    model, tokenizer, _ = trained
    replies = generate_replies(model, tokenizer, PROMPTS, max_new_tokens=40, show_progress=False)
    for reply in replies:
        assert markers_where_they_belong(reply.text, reply.finish), reply


def test_the_old_config_left_the_head_rows_equal_and_the_markers_unwritten(trained_old_way):
    """Without the head's rows (embed_tokens only) the same SFT run fails the test above."""
    model, tokenizer, before = trained_old_way
    after = head_rows(model, tokenizer)
    assert torch.equal(after, before) and torch.equal(after, after[:1].expand_as(after))
    replies = generate_replies(model, tokenizer, PROMPTS, max_new_tokens=40, show_progress=False)
    assert not any(markers_where_they_belong(reply.text, reply.finish) for reply in replies)


def test_the_merged_checkpoint_keeps_the_trained_head_rows(trained, base_folder, tmp_path):
    """pipeline.merge_adapter (base + adapter -> one checkpoint, what DPO loads) bakes the rows into lm_head.

    pipeline.save_adapter keeps the trained rows (PEFT's deltas) and leaves out the whole embedding and output
    matrices (1.1 GB on Qwen2.5-Coder-0.5B): the merge rebuilds them from the base, as training started.
    """
    from safetensors import safe_open

    from diatool_utils.pipeline import merge_adapter, save_adapter

    model, tokenizer, _ = trained
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Setting save_embedding_layers to True" from PEFT
        save_adapter(model, tmp_path / "adapter")
    with safe_open(tmp_path / "adapter" / "adapter_model.safetensors", "pt") as saved:
        assert not any(key.endswith("base_layer.weight") or "embed_tokens.weight" in key for key in saved.keys())
        assert any("lm_head.token_adapter.trainable_tokens_delta" in key for key in saved.keys())
        assert any("embed_tokens.token_adapter.trainable_tokens_delta" in key for key in saved.keys())
    merge_adapter(str(base_folder), tmp_path / "adapter", tmp_path / "merged")

    merged, merged_tokenizer = load_model_and_tokenizer(str(tmp_path / "merged"))
    assert type(merged.get_output_embeddings()).__name__ == "Linear"  # plain weights: TRL's fused head reads them
    assert merged.get_output_embeddings().weight is not merged.get_input_embeddings().weight
    torch.testing.assert_close(head_rows(merged, merged_tokenizer), head_rows(model, tokenizer))
    ours = generate_replies(model, tokenizer, PROMPTS[:1], max_new_tokens=40, show_progress=False)
    theirs = generate_replies(merged, merged_tokenizer, PROMPTS[:1], max_new_tokens=40, show_progress=False)
    assert theirs[0].text == ours[0].text
