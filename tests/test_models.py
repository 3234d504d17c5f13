"""Loading the embedded default, the tiny model, local checkpoints and Hub ids."""

import json
import time

import pytest
import torch

from diatool_utils import models
from diatool_utils.models import (
    EMBEDDED_INSTALL_COMMAND,
    EmbeddedModelMissing,
    load_model_and_tokenizer,
    resolve_model_path,
    tiny_model_and_tokenizer,
)


@pytest.mark.slow
def test_embedded_default_answers_the_capital_of_france():
    model, tokenizer = load_model_and_tokenizer()
    assert type(model).__name__ == "LlamaForCausalLM"
    n_params = sum(p.numel() for p in model.parameters())
    assert 134_000_000 < n_params < 135_000_000
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
def test_second_load_of_embedded_default_is_fast():
    load_model_and_tokenizer()  # converts on the very first use, then reads the cache
    start = time.perf_counter()
    load_model_and_tokenizer()
    assert time.perf_counter() - start < 5.0


@pytest.mark.slow
def test_embedded_checkpoint_is_plain_safetensors_without_gguf_config():
    folder = models.embedded_checkpoint()
    assert (folder / "model.safetensors").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()


def test_missing_package_error_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))  # nothing cached here

    def not_installed(name):
        raise models.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.importlib.metadata, "distribution", not_installed)
    with pytest.raises(EmbeddedModelMissing) as error:
        load_model_and_tokenizer()
    assert EMBEDDED_INSTALL_COMMAND in str(error.value)


def test_cache_folder_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "here"))
    assert models.cache_dir() == tmp_path / "here"


def test_local_folder_without_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path))


def test_missing_local_path_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model folder"):
        resolve_model_path(str(tmp_path / "absent"))


def test_hub_id_passes_through_unchanged():
    assert resolve_model_path("HuggingFaceTB/SmolLM2-1.7B-Instruct") == "HuggingFaceTB/SmolLM2-1.7B-Instruct"


def test_unknown_quantization_is_refused():
    with pytest.raises(ValueError, match="quantization='8bit'"):
        load_model_and_tokenizer("tiny-random", quantization="8bit")


def test_tiny_model_has_a_few_million_parameters_and_the_embedded_tokenizer(tiny_model, tiny_tokenizer):
    n_params = sum(p.numel() for p in tiny_model.parameters())
    assert 2_000_000 < n_params < 4_000_000
    assert tiny_model.config.vocab_size == len(tiny_tokenizer) == 49152
    assert tiny_tokenizer.eos_token == "<|im_end|>"


def test_a_cached_tiny_checkpoint_of_another_width_is_replaced(tmp_path, monkeypatch):
    # a cache written before the tiny model was widened (to run in 4-bit on AVX512-BF16 CPUs) must not be reused
    monkeypatch.setenv("DIATOOL_CACHE", str(tmp_path))
    stale, tokenizer = tiny_model_and_tokenizer(hidden_size=16)
    stale.save_pretrained(tmp_path / models.TINY_MODEL)
    tokenizer.save_pretrained(tmp_path / models.TINY_MODEL)
    path = models.tiny_checkpoint()
    assert json.loads((path / "config.json").read_text())["hidden_size"] == models.TINY_HIDDEN_SIZE
    written = (path / "model.safetensors").stat().st_mtime_ns
    assert models.tiny_checkpoint() == path and (path / "model.safetensors").stat().st_mtime_ns == written


def test_tiny_model_is_deterministic_per_seed():
    a, _ = tiny_model_and_tokenizer(seed=3)
    b, _ = tiny_model_and_tokenizer(seed=3)
    c, _ = tiny_model_and_tokenizer(seed=4)
    assert torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_saved_model_reloads_from_its_folder(tiny_model, tiny_tokenizer, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    model, tokenizer = load_model_and_tokenizer(str(tmp_path))
    assert (tmp_path / "model.safetensors").is_file()
    assert torch.equal(model.lm_head.weight.cpu().float(), tiny_model.lm_head.weight)
    assert len(tokenizer) == len(tiny_tokenizer)


def test_tiny_random_loads_in_4bit_nf4_for_qlora():
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    model, _ = load_model_and_tokenizer("tiny-random", quantization="4bit")
    linear4bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4bit, "no 4-bit linear layers: quantisation did not apply"
    assert linear4bit[0].weight.quant_type == "nf4"
    # For inference on AVX512-BF16 CPUs (the forward below, on such a CPU) bitsandbytes repacks 4-bit weights in
    # blocks of 32 output rows and 64 inputs: a narrower layer fails there ("N must be divisible by block_n")
    assert all(m.out_features % 32 == 0 and m.in_features % 64 == 0 for m in linear4bit), \
        [(m.in_features, m.out_features) for m in linear4bit]
    ids = torch.tensor([[1, 2, 3]], device=model.device)
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits).all()


def test_a_4bit_load_prints_no_note_about_kernels_from_the_hub():
    """bitsandbytes, imported on a CPU with AVX512-BF16, would say it could not download a kernel: nothing a user
    of this offline project can act on (diatool_utils drops that one note)."""
    import subprocess
    import sys

    code = ("from diatool_utils.models import load_model_and_tokenizer\n"
            "load_model_and_tokenizer('tiny-random', quantization='4bit')\n"
            "import logging; logging.getLogger('bitsandbytes.backends.cpu.ops').warning('another note')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "kernels-community" not in run.stderr + run.stdout
    assert "another note" in run.stderr  # the module's other messages still come through
