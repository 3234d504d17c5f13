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
