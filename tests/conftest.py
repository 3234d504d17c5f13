"""Shared fixtures: the tiny random model with the embedded model's tokenizer."""

import copy

import pytest
import torch

torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session")
def _tiny_pair():
    from diatool_utils.models import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer()


@pytest.fixture
def tiny_tokenizer(_tiny_pair):
    """The embedded model's tokenizer (a fresh copy: tests may add special tokens)."""
    return copy.deepcopy(_tiny_pair[1])


@pytest.fixture
def tiny_model(_tiny_pair):
    """A ~3.2M-parameter random Llama (a fresh copy per test)."""
    return copy.deepcopy(_tiny_pair[0])


@pytest.fixture
def sft_markers():
    """``sft_markers(model, tokenizer)``: add the Functionary tokens and give their output rows values of their
    own, as SFT leaves them. ``add_functionary_tokens`` starts the four rows as one shared row, and
    DiaToolDPOTrainer rightly warns that a LoRA adapter could never tell such rows apart: DPO starts after SFT."""
    from diatool_utils.templating import FUNCTIONARY_SPECIAL_TOKENS, add_functionary_tokens

    def give(model, tokenizer):
        add_functionary_tokens(tokenizer, model)
        ids = tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)
        head = model.get_output_embeddings().weight
        nudge = torch.randn(len(ids), head.shape[1], generator=torch.Generator().manual_seed(0)) * 0.01
        with torch.no_grad():
            head[ids] += nudge.to(head.dtype)
        return model, tokenizer

    return give
