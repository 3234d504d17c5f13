"""What the machine computes fast decides the recipe's CPU defaults; the record says what ran."""

import pytest
import torch

from diatool_utils import hardware
from diatool_utils.pipeline import Recipe, stage_key

INTEL_AMX = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
INTEL_AVX512 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve\n"


@pytest.mark.parametrize(("cpuinfo", "bf16"), [(INTEL_AMX, True), (INTEL_AVX512, False), (ARM, False), ("", False)])
def test_bf16_counts_only_where_the_processor_multiplies_it_natively(cpuinfo, bf16):
    assert hardware.cpu_has_bf16(hardware.cpu_flags(cpuinfo)) is bf16


def test_arm_features_are_read_like_x86_flags():
    assert hardware.cpu_flags(ARM) == {"fp", "asimd", "sve"}


def test_the_cpu_defaults_follow_the_processor(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda flags=None: True)
    assert (Recipe().quantization, Recipe().precision) == (None, "bf16")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda flags=None: False)
    assert (Recipe().quantization, Recipe().precision) == (None, "fp32")


def test_a_gpu_keeps_qlora_in_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert (hardware.default_quantization(), hardware.default_precision()) == ("4bit", "bf16")


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision='fp16'"):
        Recipe(precision="fp16")


def test_precision_and_lora_dropout_are_part_of_a_stages_settings():
    assert stage_key(Recipe(precision="bf16"), "sft") != stage_key(Recipe(precision="fp32"), "sft")
    assert stage_key(Recipe(precision="bf16"), "dpo") != stage_key(Recipe(precision="fp32"), "dpo")
    assert stage_key(Recipe(lora_dropout=0.05), "sft") != stage_key(Recipe(), "sft")
    # the replies are written by the full-precision model whatever the training precision
    assert stage_key(Recipe(precision="bf16"), "eval") == stage_key(Recipe(precision="fp32"), "eval")


def test_the_processor_is_named_for_the_record():
    described = hardware.processor()
    assert described["name"] and described["torch_threads"] >= 1
    assert set(described["bf16_flags"]) <= set(hardware.BF16_FLAGS)
