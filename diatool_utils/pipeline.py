"""The whole recipe of notebook 04 as functions: QLoRA SFT -> evaluate -> DiaTool-DPO -> evaluate.

    recipe = Recipe(model_name="smollm2-135m")
    sft_dir = train_sft(recipe, "runs/demo")               # LoRA (+ Functionary token rows), merged
    dpo_dir = train_dpo(recipe, sft_dir, "runs/demo")      # a fresh LoRA; reference = the SFT model
    report = evaluate_checkpoint(dpo_dir, recipe)

Why the SFT adapter is merged before DPO: SFT trains the rows of the four new Functionary
tokens (they start as one shared mean embedding), and TRL's fused LM head can't train through
PEFT's trainable-token wrapper. Merging bakes those rows and the SFT LoRA into the weights; DPO
then starts a fresh LoRA on top, so "adapter disabled" is exactly the SFT model: the reference.

``scripts/reproduce.py`` runs it end to end, plus the paper's ablations (``ABLATIONS``).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from transformers import TrainingArguments

from .evaluation import EvalReport, evaluate
from .models import load_model_and_tokenizer
from .paths import DATA_DIR
from .sft import attach_lora, sft_trainer
from .templating import add_functionary_tokens
from .trainer import DiaToolDPOConfig, DiaToolDPOTrainer

# The paper's ablations (Table 4): which terms of the loss each variant keeps.
ABLATIONS = {
    "full": {},
    "no_psi": {"use_psi": False},
    "no_margin": {"use_margin": False},
    "plain_multiturn": {"use_phi": False, "use_psi": False, "use_margin": False},
}


@dataclass
class Recipe:
    """Every knob of the SFT -> DPO recipe, with the values the README's results used."""

    model_name: str = "smollm2-135m"
    quantization: str | None = "4bit"  # QLoRA: NF4 base weights; None trains a full-precision base
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 768
    seed: int = 0
    # SFT
    sft_data: str = str(DATA_DIR / "sft.jsonl")
    sft_steps: int = 100
    sft_batch_size: int = 4
    sft_learning_rate: float = 5e-4
    # DiaTool-DPO
    dpo_data: str = str(DATA_DIR / "dpo_pairs.jsonl")
    dpo_steps: int = 60
    dpo_batch_size: int = 2
    dpo_learning_rate: float = 5e-5
    beta: float = 0.5
    gamma: float = 0.5
    margin: float = 0.5
    nll_weight: float = 1.0  # NLL on the chosen trajectory's assistant tokens (0 = pure DPO)
    ablation: str = "full"
    # evaluation
    eval_data: str = str(DATA_DIR / "eval_dialog.jsonl")
    eval_limit: int | None = None
    eval_batch_size: int = 16
    max_new_tokens: int = 64
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def read_jsonl(path, limit: int | None = None, seed: int = 0) -> list[dict]:
    """Rows of a JSONL file, shuffled with ``seed`` (so a limit takes a fair sample)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:limit] if limit else rows


def _training_arguments(out: Path, steps: int, batch: int, lr: float, seed: int) -> dict:
    on_gpu = torch.cuda.is_available()
    return dict(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr,
                warmup_steps=max(1, steps // 10), lr_scheduler_type="cosine", logging_steps=max(1, steps // 20),
                save_strategy="no", report_to=[], seed=seed, bf16=on_gpu, use_cpu=not on_gpu,
                disable_tqdm=True)


def merge_adapter(base_name: str, adapter_dir: Path, out: Path) -> Path:
    """Base model (full precision) + LoRA adapter -> one plain checkpoint at ``out``."""
    base, tokenizer = load_model_and_tokenizer(base_name)
    add_functionary_tokens(tokenizer, base)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def train_sft(recipe: Recipe, run_dir, limit: int | None = None) -> tuple[Path, list[dict]]:
    """QLoRA SFT on assistant turns; returns (merged checkpoint folder, log history)."""
    run_dir = Path(run_dir)
    torch.manual_seed(recipe.seed)
    model, tokenizer = load_model_and_tokenizer(recipe.model_name, quantization=recipe.quantization)
    model = attach_lora(model, tokenizer, r=recipe.lora_r, alpha=recipe.lora_alpha)
    args = TrainingArguments(**_training_arguments(run_dir / "sft", recipe.sft_steps, recipe.sft_batch_size,
                                                   recipe.sft_learning_rate, recipe.seed))
    rows = read_jsonl(recipe.sft_data, limit, recipe.seed)
    trainer = sft_trainer(model, tokenizer, rows, args, max_length=recipe.max_length)
    trainer.train()
    adapter_dir = run_dir / "sft" / "adapter"
    model.save_pretrained(adapter_dir)
    merged = merge_adapter(recipe.model_name, adapter_dir, run_dir / "sft" / "merged")
    return merged, trainer.state.log_history


def dpo_config(recipe: Recipe, out: Path) -> DiaToolDPOConfig:
    """The DiaToolDPOConfig of a recipe, with its ablation switches applied."""
    nll = recipe.nll_weight > 0
    return DiaToolDPOConfig(
        **_training_arguments(out, recipe.dpo_steps, recipe.dpo_batch_size, recipe.dpo_learning_rate, recipe.seed),
        beta=recipe.beta, gamma=recipe.gamma, margin=recipe.margin, max_length=recipe.max_length,
        loss_type=["sigmoid", "sft"] if nll else ["sigmoid"],
        loss_weights=[1.0, recipe.nll_weight] if nll else None,
        **ABLATIONS[recipe.ablation],
    )


def train_dpo(recipe: Recipe, sft_dir, run_dir, limit: int | None = None) -> tuple[Path, list[dict]]:
    """DiaTool-DPO with a fresh LoRA on the (4-bit) SFT model; returns (merged folder, log history)."""
    run_dir = Path(run_dir) / f"dpo-{recipe.ablation}"
    torch.manual_seed(recipe.seed)
    model, tokenizer = load_model_and_tokenizer(str(sft_dir), quantization=recipe.quantization)
    peft_config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=0.0,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    pairs = read_jsonl(recipe.dpo_data, limit, recipe.seed)
    trainer = DiaToolDPOTrainer(model, args=dpo_config(recipe, run_dir), train_dataset=pairs,
                                processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    adapter_dir = run_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    merged = merge_adapter(str(sft_dir), adapter_dir, run_dir / "merged")
    return merged, trainer.state.log_history


def evaluate_checkpoint(folder, recipe: Recipe, output_path=None) -> EvalReport:
    """Load a merged checkpoint and run the Call / Completion / Slot / Relevance evaluation."""
    model, tokenizer = load_model_and_tokenizer(str(folder))
    model.eval()
    cases = recipe.eval_data
    if recipe.eval_limit:
        from .evaluation import load_dialog_benchmark

        cases = load_dialog_benchmark(cases)[: recipe.eval_limit]
    return evaluate(model, tokenizer, cases, batch_size=recipe.eval_batch_size,
                    max_new_tokens=recipe.max_new_tokens, output_path=output_path, show_progress=False)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start
