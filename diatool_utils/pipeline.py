"""The whole recipe of notebook 04 as functions: QLoRA SFT -> evaluate -> DiaTool-DPO -> evaluate.

    recipe = Recipe(model_name="smollm2-135m")
    sft = train_sft(recipe, "runs/demo")                   # LoRA (+ Functionary token rows), merged
    dpo = train_dpo(recipe, sft.path, "runs/demo")         # a fresh LoRA; reference = the SFT model
    report = evaluate_checkpoint(dpo.path, recipe)

Each stage keeps a record of the settings that produced it; ``reuse=True`` skips a stage whose
saved result matches (a restarted runtime, or ablations sharing one SFT model).

Why the SFT adapter is merged before DPO: SFT trains the rows of the four new Functionary
tokens (they start as one shared mean embedding), and TRL's fused LM head can't train through
PEFT's trainable-token wrapper. Merging bakes those rows and the SFT LoRA into the weights; DPO
then starts a fresh LoRA on top, so "adapter disabled" is exactly the SFT model: the reference.

``scripts/reproduce.py`` runs it end to end, plus the paper's ablations (``ABLATIONS``).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from transformers import TrainerCallback, TrainingArguments

from .benchmark import load_dialog_benchmark
from .dev_watch import FirstActionWatch, first_of_each_type
from .dialogues_io import read_jsonl
from .evaluation import EvalReport, evaluate, rejudge
from .hardware import check_precision, default_precision, default_quantization
from .models import load_model_and_tokenizer
from .paths import DATA_DIR, DEV_DIALOGS, DEV_PAIRS, REPO_ROOT
from .progress import show_trainer_progress
from .sft import attach_lora, build_sft_dataset, lora_inputs_follow_autocast, quiet_peft_wrapping, sft_trainer
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
    """Every knob of the SFT -> DiaTool-DPO recipe. The defaults are the paper's method, sized for the
    embedded 135M model on 2 CPU cores (``docs/method.md``, "The recipe this repository runs").

    From the paper: SFT with a plain next-token loss on assistant tokens; DiaTool-DPO on all ten Table-1
    rows with the DiaTool-DPO loss alone (no NLL term), beta 0.5, gamma 0.5, margin 2.0.
    Scaled for a small model: LoRA r=16 instead of full fine-tuning, so learning rates of 1e-3 (SFT) and
    1e-4 (DPO) instead of the paper's 1e-7 (a LoRA adapter starts at zero and needs far larger steps than a
    full model does); SFT_STEPS / DPO_STEPS sized for notebook 04 on 2 CPU cores; ``max_length`` 768, which
    holds every conversation in ``data/``.

    Where it runs (``docs/method.md``, "The recipe on a CPU"): on a GPU, QLoRA (a 4-bit NF4 base) with bf16
    compute. On a CPU, a base without quantization, in bf16 (weights and autocast) where the processor has
    bf16 dot products (``hardware.default_precision``), fp32 elsewhere. Both defaults are filled in when a
    Recipe is made, so its record says what ran.

    The fields under "Extensions" are not part of the paper's method. They are off by default; each was
    measured on the embedded model, and ``docs/experiments.md`` has what it did.
    """

    model_name: str = "smollm2-135m"
    # "4bit": QLoRA's NF4 base weights (the GPU default); None: a full-precision base (the CPU default)
    quantization: str | None = field(default_factory=default_quantization)
    # "bf16": bf16 base weights and autocast (a GPU, or a CPU with AVX512-BF16/AMX); "fp32" elsewhere
    precision: str = field(default_factory=default_precision)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0  # 0.05 before: on a CPU its random masks took a fifth to a third of a training step
    max_length: int = 768
    seed: int = 0
    # SFT
    sft_data: str = str(DATA_DIR / "sft.jsonl")
    sft_steps: int = 64
    sft_batch_size: int = 4
    sft_learning_rate: float = 1e-3
    # DiaTool-DPO
    dpo_data: str = str(DATA_DIR / "dpo_pairs.jsonl")
    dpo_steps: int = 24
    dpo_batch_size: int = 2
    dpo_learning_rate: float = 1e-4
    beta: float = 0.5
    gamma: float = 0.5
    margin: float = 2.0
    ablation: str = "full"  # the paper's Table-4 variants: ABLATIONS
    # evaluation
    eval_data: str = str(DATA_DIR / "eval_dialog.jsonl")
    eval_limit: int | None = None
    eval_batch_size: int = 32  # replies written side by side (on a CPU: turns of a few dialogues, each read once)
    max_new_tokens: int = 64

    # ---- Extensions: not the paper's method, off by default (docs/experiments.md has each one's runs)
    # Extension. Loss weight of each assistant turn's first token in SFT (the call-or-text decision; sft module
    # docstring); 1 = the plain mean. Measured: docs/experiments.md.
    sft_decision_weight: float = 1.0
    # Extension. Rounds of SFT: round k > 1 trains a fresh LoRA for sft_steps more steps on round k-1's merged
    # model, with seed + k - 1.
    sft_rounds: int = 1
    # Extension. NLL on the chosen trajectory's assistant tokens, weighted (TRL's RPO term); 0 = pure DiaTool-DPO.
    nll_weight: float = 0.0
    # Extension. Weight of each turn's first token in the DPO per-turn log-ratio (trainer's decision_weight).
    dpo_decision_weight: float = 1.0
    # Extension. Table-1 rows to train DPO on; None = all ten (the paper). A row named twice weighs twice.
    dpo_rows: tuple[int, ...] | None = None
    # Extension. Every DPO step takes one pair of each row (of dpo_rows, or all ten), so no step carries one row's
    # lean; dpo_batch_size must then be a multiple of the number of rows. False: pairs in random order.
    dpo_row_balanced: bool = False
    # Extension. Replay: every DPO step also trains dpo_replay_batch_size SFT conversations (the SFT loss)
    # times this weight (trainer docstring); 0 = off. dpo_replay_data None replays recipe.sft_data.
    dpo_replay_weight: float = 0.0
    dpo_replay_batch_size: int = 2
    dpo_replay_data: str | None = None

    def __post_init__(self):
        check_precision(self.precision)

    @property
    def training_dtype(self) -> torch.dtype | None:
        """The base weights' dtype while training: bf16 when computing in bf16 (a 4-bit base keeps its own)."""
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    @property
    def replay_data(self) -> str:
        """The conversations DPO replays: ``dpo_replay_data``, else the SFT data."""
        return self.dpo_replay_data or self.sft_data

    def to_json(self) -> str:
        """The recipe as JSON; files inside this repository are shown relative to its root (same on every machine)."""
        return json.dumps({name: shown_path(value) for name, value in asdict(self).items()}, indent=2)


def shown_path(value):
    """A path inside this repository as relative to its root (same on every machine); anything else unchanged."""
    if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(REPO_ROOT):
        return str(Path(value).relative_to(REPO_ROOT))
    return value


def recipe_field_parser(name: str):
    """Text -> value of the Recipe field ``name`` (for command-line flags): ints, floats, booleans,
    row tuples ("5,6,9,9"; "none" for None), strings ("none" for None where the field allows it)."""
    annotation = str({f.name: f.type for f in fields(Recipe)}[name])
    if annotation.startswith("bool"):
        return lambda text: text.lower() in ("1", "true", "yes")
    if annotation.startswith("tuple[int"):
        return lambda text: None if text.lower() == "none" else tuple(int(x) for x in text.split(","))
    if annotation.startswith("str | None"):
        return lambda text: None if text.lower() == "none" else text
    return {"int": int, "float": float}.get(annotation.split(" ")[0], str)


def recipe_overrides(settings: list[str], short: dict | None = None, context: str = "") -> dict:
    """``["FIELD=VALUE", ...]`` -> {field: value} for Recipe fields; ``short`` maps abbreviations to field names."""
    names = {f.name for f in fields(Recipe)}
    overrides = {}
    for setting in settings:
        field_name, _, value = setting.partition("=")
        field_name = (short or {}).get(field_name, field_name)
        if field_name not in names or not value:
            raise ValueError(f"{context}{setting!r} is not FIELD=VALUE with a Recipe field")
        overrides[field_name] = recipe_field_parser(field_name)(value)
    return overrides


def sample_jsonl(path, limit: int | None = None, seed: int = 0) -> list[dict]:
    """Rows of a JSONL file, shuffled with ``seed``, the first ``limit`` of them (all when ``limit`` is None or 0).

    Shuffling first makes a limit take a fair sample; the same file, seed and limit always give the same
    rows in the same order. A line that is not JSON raises, naming the file and the line
    (``dialogues_io.read_jsonl``).
    """
    rows = [row for _, row in read_jsonl(path)]
    random.Random(seed).shuffle(rows)
    return rows[:limit] if limit else rows


def _training_arguments(recipe: Recipe, out: Path, steps: int, batch: int, lr: float, seed: int,
                        per_forward: int | None = None, **extra) -> dict:
    """TrainingArguments shared by both stages (bf16 autocast when the recipe computes in bf16): ``batch`` examples
    per optimizer step, ``per_forward`` of them in each forward (gradient accumulation over the rest; default all).

    ``disable_tqdm``: the stages show their steps with ``progress.show_trainer_progress`` instead (a bar in
    Jupyter, console lines under the notebook runner).
    """
    on_gpu = torch.cuda.is_available()
    per_forward = per_forward or batch
    if batch % per_forward:
        raise ValueError(f"a batch of {batch} does not split into forwards of {per_forward}")
    return dict(output_dir=str(out), max_steps=steps, per_device_train_batch_size=per_forward,
                gradient_accumulation_steps=batch // per_forward, learning_rate=lr,
                warmup_steps=max(1, steps // 10), lr_scheduler_type="cosine", logging_steps=max(1, steps // 20),
                save_strategy="no", report_to=[], seed=seed, bf16=recipe.precision == "bf16", use_cpu=not on_gpu,
                disable_tqdm=True) | extra


# ------------------------------------------------------------------ finished stages, kept and reused
#
# Each stage writes a record beside its output: the settings that produced it (its *key*), its
# training log and its wall time. With ``reuse=True`` a stage whose record has the same key is not
# run again: a restarted Colab runtime, or the ablations that share one SFT model, pick it up.

SFT_KEY_FIELDS = ("model_name", "quantization", "precision", "lora_r", "lora_alpha", "lora_dropout", "max_length",
                  "seed", "sft_steps", "sft_batch_size", "sft_learning_rate")
DPO_KEY_FIELDS = ("precision", "dpo_steps", "dpo_batch_size", "dpo_learning_rate", "beta", "gamma", "margin",
                  "nll_weight", "ablation", "dpo_rows")
EVAL_KEY_FIELDS = ("eval_limit", "max_new_tokens")


@dataclass
class Stage:
    """What a training stage left behind: the merged checkpoint, its log history, wall time, and how many
    examples (SFT conversations, DPO pairs) its trainer consumed: optimizer steps x examples per step, repeats
    included (None for a stage recorded before this was kept)."""

    path: Path
    history: list[dict]
    seconds: float
    reused: bool = False
    examples_seen: int | None = None


def file_digest(path) -> str:
    """sha256 of a file (data files are keyed by content, not by where the clone lives)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stage_key(recipe: Recipe, stage: str, limit: int | None = None, upstream: str | None = None) -> dict:
    """The settings a stage's result depends on. ``upstream``: the key digest of the model it starts from."""
    names = {"sft": SFT_KEY_FIELDS, "dpo": DPO_KEY_FIELDS, "eval": EVAL_KEY_FIELDS}[stage]
    key = {name: getattr(recipe, name) for name in names}
    # absent at 1, so stages trained before these fields existed still match
    if stage == "sft" and recipe.sft_decision_weight != 1:
        key["sft_decision_weight"] = recipe.sft_decision_weight
    if stage == "dpo" and recipe.dpo_decision_weight != 1:
        key["dpo_decision_weight"] = recipe.dpo_decision_weight
    if stage == "dpo" and recipe.dpo_row_balanced:
        key["dpo_row_balanced"] = True
    if stage == "dpo" and recipe.dpo_replay_weight:
        key.update(dpo_replay_weight=recipe.dpo_replay_weight, dpo_replay_batch_size=recipe.dpo_replay_batch_size,
                   sft_decision_weight=recipe.sft_decision_weight, replay_sha256=file_digest(recipe.replay_data))
    data = {"sft": recipe.sft_data, "dpo": recipe.dpo_data, "eval": recipe.eval_data}[stage]
    key.update(stage=stage, data_sha256=file_digest(data), limit=limit, upstream=upstream)
    return json.loads(json.dumps(key))  # as it reads back from the record (tuples become lists)


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def read_record(record: Path, key: dict) -> dict | None:
    """The saved record if it exists and was written for ``key``; else None (and says why)."""
    if not record.is_file():
        return None
    saved = json.loads(record.read_text(encoding="utf-8"))
    changed = sorted(k for k in set(key) | set(saved.get("key", {})) if saved.get("key", {}).get(k) != key.get(k))
    if changed:
        print(f"{record}: settings changed ({', '.join(changed)}); running this stage again")
        return None
    return saved


def write_record(record: Path, key: dict, **payload) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"key": key, **payload}, indent=1) + "\n", encoding="utf-8")


def _finished_stage(folder: Path, key: dict) -> Stage | None:
    saved = read_record(folder / "stage.json", key)
    if saved is None or not (folder / "merged" / "model.safetensors").is_file():
        return None
    print(f"reusing {folder / 'merged'}: trained earlier in {saved['seconds'] / 60:.1f} min with the same settings")
    return Stage(folder / "merged", saved["history"], saved["seconds"], reused=True,
                 examples_seen=saved.get("examples_seen"))


def _stage_digest(folder) -> str | None:
    """The key digest of the stage that wrote checkpoint ``folder`` (None for a model not made here)."""
    record = Path(folder).parent / "stage.json"
    return key_digest(json.loads(record.read_text())["key"]) if record.is_file() else None


def merge_adapter(base_name: str, adapter_dir: Path, out: Path) -> Path:
    """Base model (full precision) + LoRA adapter -> one plain checkpoint at ``out``."""
    base, tokenizer = load_model_and_tokenizer(base_name)
    add_functionary_tokens(tokenizer, base)
    with quiet_peft_wrapping():
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def save_adapter(model, folder: Path) -> None:
    """Save a LoRA adapter and the trained rows of the Functionary tokens, without the embedding matrices.

    PEFT would also store the whole (resized) input and output matrices beside the adapter: 1.1 GB for
    Qwen2.5-Coder-0.5B's untied 151,936-row head. They are not needed: ``merge_adapter`` rebuilds them the
    way training started (``add_functionary_tokens`` on the base is deterministic), and the trained rows
    travel as PEFT's ``trainable_tokens_delta``.
    """
    model.save_pretrained(folder, save_embedding_layers=False)


def _save_stage(folder: Path, trainer, base_name: str, key: dict, start: float) -> Stage:
    """Save the trained adapter, merge it into ``base_name`` and write the stage's record."""
    save_adapter(trainer.model, folder / "adapter")
    merged = merge_adapter(base_name, folder / "adapter", folder / "merged")
    seconds = time.perf_counter() - start
    args = trainer.args
    seen = trainer.state.global_step * args.per_device_train_batch_size * args.gradient_accumulation_steps \
        * args.world_size
    write_record(folder / "stage.json", key, history=trainer.state.log_history, seconds=seconds, examples_seen=seen)
    (folder / RUNNING).unlink(missing_ok=True)
    return Stage(merged, trainer.state.log_history, seconds, examples_seen=seen)


# ------------------------------------------------------------------ a stage cut off, resumed
#
# With ``checkpoint_every`` N a stage keeps its whole training state (adapter, optimizer, scheduler, data
# position, random state) every N steps in ``<stage>/checkpoint-<step>``, and writes ``stage.running.json``:
# its key and the wall time at each checkpoint. Run again with ``reuse=True`` and the same settings, it goes on
# from its last checkpoint instead of starting over: a run longer than a working session loses at most N steps.

RUNNING = "stage.running.json"


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("checkpoint-*"), key=lambda path: int(path.name.rpartition("-")[2]))


def _train(trainer, folder: Path, key: dict, reuse: bool) -> float:
    """Run ``trainer``, from the last checkpoint of an interrupted run with the same settings when ``reuse`` finds
    one; returns the wall time that run had spent before it (0 for a fresh start)."""
    saved = read_record(folder / RUNNING, key) if reuse else None
    checkpoints = _checkpoints(folder) if saved else []
    resume = checkpoints[-1] if checkpoints else None
    before = saved["seconds_at"].get(resume.name, 0.0) if resume else 0.0
    if resume:
        print(f"resuming {folder} from {resume.name} ({before / 60:.1f} min trained before)")
    else:
        for stale in _checkpoints(folder):  # a run with other settings, or not to be resumed: start over
            shutil.rmtree(stale)
    write_record(folder / RUNNING, key, seconds_at=saved["seconds_at"] if resume else {})
    trainer.add_callback(_CheckpointClock(folder / RUNNING, time.perf_counter() - before))
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return before


class _CheckpointClock(TrainerCallback):
    """Writes the stage's wall time so far into its running record at every checkpoint."""

    def __init__(self, record: Path, start: float):
        self.record, self.start = record, start

    def on_save(self, args, state, control, **kwargs):
        running = json.loads(self.record.read_text(encoding="utf-8"))
        running["seconds_at"][f"checkpoint-{state.global_step}"] = round(time.perf_counter() - self.start, 1)
        write_record(self.record, running.pop("key"), **running)


def _checkpointing(every: int | None) -> dict:
    """TrainingArguments that keep the whole training state every ``every`` steps (none when None)."""
    return dict(save_strategy="steps", save_steps=every, save_only_model=False) if every else {}


def train_sft(recipe: Recipe, run_dir, limit: int | None = None, reuse: bool = False,
              checkpoint_every: int | None = None) -> Stage:
    """SFT on assistant turns, merged into a plain checkpoint at ``run_dir/sft/merged``.

    With ``recipe.sft_rounds`` > 1, round k > 1 continues from round k-1's merged model at
    ``run_dir/sft-round<k>/merged``. The last round comes back, with the wall time of all rounds and
    their logs in one history (steps counted on from round to round).

    ``checkpoint_every`` N keeps the training state every N steps, so that a run cut off goes on from there
    (with ``reuse``; see "a stage cut off, resumed" above).
    """
    if recipe.sft_rounds < 1:
        raise ValueError(f"sft_rounds must be at least 1, got {recipe.sft_rounds}")
    run_dir = Path(run_dir)
    stage = _sft_round(recipe, run_dir / "sft", recipe.model_name, recipe.seed, None, limit, reuse, checkpoint_every)
    history, seconds, reused, seen = list(stage.history), stage.seconds, stage.reused, stage.examples_seen
    for round_number in range(2, recipe.sft_rounds + 1):
        stage = _sft_round(recipe, run_dir / f"sft-round{round_number}", str(stage.path),
                           recipe.seed + round_number - 1, _stage_digest(stage.path), limit, reuse, checkpoint_every)
        offset = (round_number - 1) * recipe.sft_steps
        history += [{**entry, "step": entry["step"] + offset} if "step" in entry else entry for entry in stage.history]
        seconds, reused = seconds + stage.seconds, reused and stage.reused
        seen = None if seen is None or stage.examples_seen is None else seen + stage.examples_seen
    return Stage(stage.path, history, seconds, reused, seen)


def _sft_round(recipe: Recipe, folder: Path, base: str, seed: int, upstream: str | None, limit: int | None,
               reuse: bool, checkpoint_every: int | None = None) -> Stage:
    """One SFT run of ``recipe.sft_steps`` steps: a fresh LoRA on ``base``, merged at ``folder/merged``.

    The key of a later round keeps the recipe's model name and names the round it continues from in
    ``upstream``, so the first round's key is that of a one-round recipe (and is reused by it).
    """
    key = stage_key(Recipe(**{**recipe.__dict__, "seed": seed}), "sft", limit, upstream=upstream)
    if reuse and (done := _finished_stage(folder, key)):
        return done
    start = time.perf_counter()
    trainer = sft_stage_trainer(recipe, base, folder, seed, limit, **_checkpointing(checkpoint_every))
    show_trainer_progress(trainer, "SFT" if folder.name == "sft" else f"SFT ({folder.name})")
    before = _train(trainer, folder, key, reuse)
    return _save_stage(folder, trainer, base, key, start - before)


def sft_stage_trainer(recipe: Recipe, base: str, folder: Path, seed: int, limit: int | None = None, **extra):
    """The SFT stage's trainer, ready to train: LoRA on ``base`` as the recipe sets it (``train_sft`` runs it).
    ``extra``: more TrainingArguments (checkpointing)."""
    torch.manual_seed(seed)
    model, tokenizer = load_model_and_tokenizer(base, quantization=recipe.quantization, dtype=recipe.training_dtype)
    model = attach_lora(model, tokenizer, r=recipe.lora_r, alpha=recipe.lora_alpha, dropout=recipe.lora_dropout)
    # batches of similar length waste less compute on padding (SFT rows run 100-1,050 tokens)
    args = TrainingArguments(**_training_arguments(recipe, folder, recipe.sft_steps, recipe.sft_batch_size,
                                                   recipe.sft_learning_rate, seed,
                                                   train_sampling_strategy="group_by_length", **extra))
    rows = sample_jsonl(recipe.sft_data, limit, seed)
    trainer = sft_trainer(model, tokenizer, rows, args, max_length=recipe.max_length,
                          decision_weight=recipe.sft_decision_weight)
    if args.bf16 and not torch.cuda.is_available():
        lora_inputs_follow_autocast(trainer.model)
    return trainer


def dpo_config(recipe: Recipe, out: Path, **extra) -> DiaToolDPOConfig:
    """The DiaToolDPOConfig of a recipe, with its ablation switches applied (``extra``: more config fields).

    The reference's log-probs are computed in one pass before training (``precompute_ref_log_probs``); give
    ``ref_logps_cache`` a folder and later runs from the same model read them back (``train_dpo`` does).

    Each forward takes one pair, in the reference pass and in training (gradient accumulation makes the batch).
    So a pair's reference values are the very numbers the policy computes for it at step 0: in bf16 the result
    of a forward depends on what it is padded with (a turn's log-prob moved by up to 0.76 nats on the 135M
    model between batches of 2 and 4 pairs), and a reference computed beside other pairs than in training
    would start every pair at a random log-ratio instead of 0.
    """
    nll = recipe.nll_weight > 0
    if recipe.dpo_replay_weight and recipe.dpo_replay_batch_size % recipe.dpo_batch_size:
        raise ValueError(f"dpo_replay_batch_size={recipe.dpo_replay_batch_size} must split evenly over the "
                         f"{recipe.dpo_batch_size} one-pair forwards of a DPO step (dpo_batch_size)")
    # TRL turns activation checkpointing on by default: it saves GPU memory by running each forward
    # twice. A CPU has the memory and not the compute, so it stays off there.
    extra = {"precompute_ref_log_probs": True, **extra}
    return DiaToolDPOConfig(
        **_training_arguments(recipe, out, recipe.dpo_steps, recipe.dpo_batch_size, recipe.dpo_learning_rate,
                              recipe.seed, per_forward=1, activation_checkpointing=torch.cuda.is_available(),
                              **extra),
        beta=recipe.beta, gamma=recipe.gamma, margin=recipe.margin, max_length=recipe.max_length,
        decision_weight=recipe.dpo_decision_weight,
        replay_weight=recipe.dpo_replay_weight,
        replay_batch_size=max(1, recipe.dpo_replay_batch_size // recipe.dpo_batch_size),  # per one-pair forward
        loss_type=["sigmoid", "sft"] if nll else ["sigmoid"],
        loss_weights=[1.0, recipe.nll_weight] if nll else None,
        **ABLATIONS[recipe.ablation],
    )


def pairs_by_row(pairs: list[dict], source, needed_for: str) -> dict[int, list[dict]]:
    """``{row: [its pairs, in file order]}``, rows in order of first appearance; a pair without its Table-1 row
    label is an error that names it and says what needed the label (``needed_for``)."""
    unlabelled = [pair for pair in pairs if "row" not in pair]
    if unlabelled:
        raise ValueError(f"{len(unlabelled)} of {len(pairs)} pairs in {source} have no 'row' (their Table-1 row), "
                         f"e.g. the pair with id {unlabelled[0].get('id', '?')!r}: {needed_for}")
    groups: dict[int, list[dict]] = {}
    for pair in pairs:
        groups.setdefault(pair["row"], []).append(pair)
    return groups


def select_rows(pairs: list[dict], rows, source) -> list[dict]:
    """The pairs of the given Table-1 ``rows``, in their order in ``pairs``.

    A row named k times weighs k times as much (its share is its size times k): ``(5, 6, 9, 9)``
    keeps every pair of row 9 and the first half of those of rows 5 and 6, so that with equal
    row sizes row 9 makes half of the training pairs. A file without row labels, or without one of those rows, is an error.
    """
    weights = Counter(rows)
    found = Counter({row: len(members) for row, members in
                     pairs_by_row(pairs, source, "set dpo_rows=None (--dpo-rows none) to train on every pair").items()})
    if absent := sorted(row for row in weights if not found[row]):
        raise ValueError(f"no pair in {source} comes from Table-1 rows {absent} (it has rows {sorted(found)})")
    heaviest = max(weights.values())
    quota = {row: round(found[row] * weight / heaviest) for row, weight in weights.items()}
    taken = Counter()
    kept = []
    for pair in pairs:
        if taken[pair["row"]] < quota.get(pair["row"], 0):
            taken[pair["row"]] += 1
            kept.append(pair)
    shares = ", ".join(f"{row} ({taken[row]}" + (f" of {found[row]})" if taken[row] < found[row] else ")")
                       for row in sorted(weights))
    print(f"DPO pairs: {len(kept)} of {len(pairs)}, from Table-1 rows {shares}")
    return kept


def dpo_pairs(recipe: Recipe, limit: int | None = None) -> tuple[list[dict], bool]:
    """The pairs DPO trains on, in training order, and whether they are twin pairs.

    Plain pairs are shuffled with the recipe's seed and cut to ``recipe.dpo_rows``. Twin pairs
    (``synthetic.generate_twin_pairs``) are shuffled as whole twins, need an even batch size, and keep
    the twins whose two rows are both in ``recipe.dpo_rows``; ``limit`` counts down to whole twins.
    """
    pairs = sample_jsonl(recipe.dpo_data, None, recipe.seed)
    twins = any("twin" in pair for pair in pairs)
    if twins:
        if recipe.dpo_batch_size % 2:
            raise ValueError(f"twin pairs ({recipe.dpo_data}) need an even dpo_batch_size so that both pairs of a "
                             f"twin share a batch; got {recipe.dpo_batch_size}")
        pairs = group_twins(pairs, recipe.dpo_data)
        if recipe.dpo_rows:
            pairs = select_twins(pairs, recipe.dpo_rows, recipe.dpo_data)
        limit = limit and max(2, limit - limit % 2)
    elif recipe.dpo_rows:
        pairs = select_rows(pairs, recipe.dpo_rows, recipe.dpo_data)
    if recipe.dpo_row_balanced:
        if twins:
            raise ValueError(f"{recipe.dpo_data} holds twin pairs, which train as whole twins: set "
                             "dpo_row_balanced=False for them")
        pairs = row_balanced(pairs, recipe.dpo_rows, recipe.dpo_batch_size, recipe.seed, recipe.dpo_data)
    return (pairs[:limit] if limit else pairs), twins


def row_balanced(pairs: list[dict], rows, batch_size: int, seed: int, source) -> list[dict]:
    """``pairs`` in blocks that hold one pair of each Table-1 row (a row named k times in ``rows``, k pairs), each
    block in a shuffled order; ``rows`` None means every row the pairs come from. Read in order, a batch of
    ``batch_size`` pairs, a multiple of the block, averages every row's pull: rows 1-4 reward a call, rows 5-10
    a text reply, and a batch of two random pairs carries whichever lean its rows have.

    Pairs that fill no whole block (a row beyond the shortest, a row not in ``rows``) are left out, and said.
    """
    by_row = pairs_by_row(pairs, source, "row-balanced batches need it")
    block = Counter(rows) if rows else Counter(dict.fromkeys(by_row, 1))
    size = sum(block.values())
    if batch_size % size:
        raise ValueError(f"row-balanced batches take one pair of each of {size} rows ({sorted(block.elements())}); "
                         f"dpo_batch_size={batch_size} is not a multiple of {size}")
    queues = {row: by_row.get(row, []) for row in block}
    blocks = min(len(queues[row]) // weight for row, weight in block.items())
    rng = random.Random(seed)
    ordered = []
    for number in range(blocks):
        chosen = [queues[row][number * weight + k] for row, weight in block.items() for k in range(weight)]
        rng.shuffle(chosen)
        ordered += chosen
    left = len(pairs) - len(ordered)
    print(f"DPO pairs: {blocks} row-balanced blocks of {size} (rows {sorted(block.elements())})"
          + (f"; {left} pairs in no whole block left out" if left else ""))
    return ordered


def select_twins(pairs: list[dict], rows, source) -> list[dict]:
    """The twins (adjacent, from :func:`group_twins`) whose two pairs both come from Table-1 ``rows``.

    A twin trains whole, so a row cannot weigh more than its twin: naming a row twice is an error.
    """
    if len(set(rows)) != len(rows):
        raise ValueError(f"{source} holds twin pairs, which train as whole twins: name each row once, got {rows}")
    wanted = set(rows)
    kept = [pair for a, b in zip(pairs[::2], pairs[1::2], strict=True) if {a["row"], b["row"]} <= wanted
            for pair in (a, b)]
    if not kept:
        raise ValueError(f"no twin in {source} has both pairs in rows {sorted(wanted)}; "
                         f"its twins pair rows {_twin_kinds(pairs)}")
    kinds = ", ".join(f"{a}/{b}" for a, b in _twin_kinds(kept))
    print(f"DPO pairs: {len(kept) // 2} of {len(pairs) // 2} twins, of rows {kinds}")
    return kept


def _twin_kinds(pairs: list[dict]) -> list[tuple[int, int]]:
    """The (row, row) kinds of adjacent twins, each sorted, without repeats."""
    return sorted({tuple(sorted((a["row"], b["row"]))) for a, b in zip(pairs[::2], pairs[1::2], strict=True)})


def group_twins(pairs: list[dict], source) -> list[dict]:
    """Twin pairs (``synthetic.generate_twin_pairs``) reordered so that the two of each twin are adjacent,
    twins in the order their first pair comes in ``pairs``. Every pair needs a ``"twin"`` id shared by exactly
    two pairs; anything else is an error naming the pair or twin."""
    groups: dict[str, list[dict]] = {}
    for number, pair in enumerate(pairs):
        if "twin" not in pair:
            raise ValueError(f"pair {pair.get('id', number)!r} in {source} has no 'twin' id, but other pairs there "
                             "do: a file holds twin pairs or plain pairs, not both")
        groups.setdefault(pair["twin"], []).append(pair)
    if odd := next((twin for twin, members in groups.items() if len(members) != 2), None):
        count = len(groups[odd])
        raise ValueError(f"twin {odd!r} in {source} has {count} pair{'' if count == 1 else 's'}; a twin is two pairs")
    return [pair for members in groups.values() for pair in members]


def train_dpo(recipe: Recipe, sft_dir, run_dir, limit: int | None = None, reuse: bool = False,
              checkpoint_every: int | None = None, dev_every: int | None = None, dev_limit: int | None = None) -> Stage:
    """DiaTool-DPO with a fresh LoRA on the SFT model, merged at ``run_dir/dpo-<ablation>/merged``.

    The pairs the run will consume (``dpo_steps`` x ``dpo_batch_size``) get their reference log-probs in one
    no-grad pass before training, kept beside the SFT model (``<sft stage>/reference_logps/``): every other
    DPO run from that model (the ablations, other rows) reads the pairs it shares with this one.

    ``checkpoint_every`` N keeps the training state after every N steps, at ``run_dir/dpo-<ablation>/checkpoint-<step>``:
    a run cut off goes on from there (with ``reuse``), and the adapters show the model change along one run
    (``experiments/dpo_trajectory.py``).

    ``dev_every`` N watches the run on the development split every N steps (:mod:`diatool_utils.dev_watch`):
    reward accuracy per Table-1 row on ``data/dev_pairs.jsonl`` and the first-action lean per turn type on
    ``data/dev_dialog.jsonl``, into the stage's history (``dev_watch.dev_curves`` reads them back). It changes
    nothing in training; about a minute and a half each time on 2 CPU cores for the 135M model. ``dev_limit`` K
    watches only the first K pairs of each row and the first K turns of each turn type (a quick look; tests).
    """
    folder = Path(run_dir) / f"dpo-{recipe.ablation}"
    key = stage_key(recipe, "dpo", limit, upstream=_stage_digest(sft_dir) or str(sft_dir))
    if reuse and (done := _finished_stage(folder, key)):
        return done
    start = time.perf_counter()
    trainer = dpo_stage_trainer(recipe, sft_dir, folder, limit, dev_every, dev_limit,
                                ref_logps_cache=str(reference_folder(sft_dir, run_dir)),
                                **_checkpointing(checkpoint_every))
    show_trainer_progress(trainer, "DiaTool-DPO" if recipe.ablation == "full" else f"DiaTool-DPO ({recipe.ablation})")
    before = _train(trainer, folder, key, reuse)
    return _save_stage(folder, trainer, str(sft_dir), key, start - before)


def dpo_stage_trainer(recipe: Recipe, sft_dir, folder: Path, limit: int | None = None, dev_every: int | None = None,
                      dev_limit: int | None = None, **config) -> DiaToolDPOTrainer:
    """The DPO stage's trainer, ready to train: a fresh LoRA on the model at ``sft_dir`` (``train_dpo`` runs it).

    ``dev_every``, ``dev_limit``: watch the development split every N steps (``train_dpo``). ``config``: more DiaToolDPOConfig
    fields (the reference-cache settings ``train_dpo`` passes, checkpointing).
    """
    pairs, twins = dpo_pairs(recipe, limit)
    pairs = pairs[: recipe.dpo_steps * recipe.dpo_batch_size]  # the pairs the run consumes (already shuffled)
    torch.manual_seed(recipe.seed)
    model, tokenizer = load_model_and_tokenizer(str(sft_dir), quantization=recipe.quantization,
                                                dtype=recipe.training_dtype)
    peft_config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    # twins stay in file order (adjacent), so each batch holds whole twins
    in_order = twins or recipe.dpo_row_balanced  # whole twins, whole row blocks: each batch as built
    if dev_every:  # one pair per forward, as in training: each dev pair's reference is its step-0 value
        config |= dict(eval_strategy="steps", eval_steps=dev_every, per_device_eval_batch_size=1)
    args = dpo_config(recipe, folder, train_sampling_strategy="sequential" if in_order else "random", **config)
    dev_pairs = None
    if dev_every:
        by_row = pairs_by_row([pair for _, pair in read_jsonl(DEV_PAIRS)], DEV_PAIRS, "the dev pairs are scored per row")
        dev_pairs = {f"row{row}": by_row[row][:dev_limit] for row in sorted(by_row)}  # one eval set per row
    with quiet_peft_wrapping():  # the trainer wraps the model with peft_config
        trainer = DiaToolDPOTrainer(model, args=args, train_dataset=pairs, eval_dataset=dev_pairs,
                                    processing_class=tokenizer, peft_config=peft_config,
                                    replay_dataset=replay_dataset(recipe, tokenizer, limit))
    if dev_every:
        trainer.add_callback(FirstActionWatch(first_of_each_type(load_dialog_benchmark(DEV_DIALOGS), dev_limit),
                                              trainer.processing_class, dev_every,
                                              recipe.eval_batch_size, torch.bfloat16 if args.bf16 else None))
    return trainer


def reference_folder(sft_dir, run_dir) -> Path:
    """Where DPO keeps the reference log-probs of the model at ``sft_dir``: beside it when a stage made it (its
    ablations share them), else in ``run_dir``. Files are keyed by the model's weights, so either place is safe."""
    sft_dir = Path(sft_dir)
    return sft_dir.parent / "reference_logps" if _stage_digest(sft_dir) else Path(run_dir) / "reference_logps"


def replay_dataset(recipe: Recipe, tokenizer, limit: int | None = None):
    """The SFT conversations DPO replays (``recipe.replay_data``), tokenized as SFT tokenizes them; None when
    ``recipe.dpo_replay_weight`` is 0."""
    if not recipe.dpo_replay_weight:
        return None
    rows = sample_jsonl(recipe.replay_data, limit, recipe.seed)
    dataset, report = build_sft_dataset(tokenizer, rows, recipe.max_length, recipe.sft_decision_weight)
    print(f"DPO replay data: {report}")
    return dataset


def evaluate_checkpoint(folder, recipe: Recipe, output_path=None, reuse: bool = False) -> EvalReport:
    """Load a merged checkpoint and run the Call / Completion / Slot / Relevance evaluation.

    With ``reuse`` and an ``output_path`` written earlier for the same checkpoint and settings, the
    saved replies are read back instead of generated again, and judged again with the current rules
    (:func:`evaluation.rejudge`), so a change to the judge never leaves a stale verdict behind.
    """
    key = stage_key(recipe, "eval", upstream=_stage_digest(folder) or str(folder))
    record = Path(f"{Path(output_path).with_suffix('')}.key.json") if output_path else None
    cases = load_dialog_benchmark(recipe.eval_data)[: recipe.eval_limit or None]
    if reuse and record and read_record(record, key) and Path(output_path).is_file():
        print(f"reusing the replies in {output_path} (same checkpoint and settings), judged again")
        report = rejudge(EvalReport.read(output_path), cases)
        report.write(output_path)
        return report
    start = time.perf_counter()
    model, tokenizer = load_model_and_tokenizer(str(folder))  # full precision: the model the scores belong to
    model.eval()
    report = evaluate(model, tokenizer, cases, batch_size=recipe.eval_batch_size,
                      max_new_tokens=recipe.max_new_tokens)
    report.timing["wall_seconds"] = round(time.perf_counter() - start, 1)  # loading included
    if output_path:
        report.write(output_path)
        write_record(record, key)
    return report
