"""DiaToolDPOTrainer: TRL's DPOTrainer with the DiaTool-DPO loss over assistant turns.

    from diatool_utils.trainer import DiaToolDPOConfig, DiaToolDPOTrainer

    args = DiaToolDPOConfig(output_dir="out", beta=0.5, gamma=0.5, margin=2.0, max_length=1024)
    trainer = DiaToolDPOTrainer(model, args=args, train_dataset=pairs, processing_class=tokenizer)
    trainer.train()          # logs loss, rewards/{chosen,rejected,accuracies,margins}, turns/{chosen,rejected}

``pairs`` are our preference pairs (data/dpo_pairs.jsonl rows: tools + prompt / chosen / rejected
conversations), as a ``datasets.Dataset`` or a plain list of dicts.

The loss (docs/method.md, "The loss"; computed by ``loss.diatool_dpo_loss``), per pair:

    lr_t   = log pi_theta(a_t | s_t) - log pi_ref(a_t | s_t)       summed over the tokens of assistant turn t
    R(tau) = sum_t phi(t, T) * lr_t / psi(T)
    loss   = -log sigmoid(beta * (R(chosen) - R(rejected) - margin))

Built on TRL 1.16.0's DPOTrainer, overriding only what the per-turn loss needs:

    _prepare_dataset                  tokenize pairs with masking.tokenize_conversation: ids + per-token turn
                                      index; count and skip (or raise on) unusable pairs
    _set_signature_columns_if_needed  our column names, so Trainer keeps them
    data collator                     DataCollatorForDiaToolPreference: pads turn_index with -1
    compute_ref_log_probs             reference log-probs per turn [B, T] instead of per sequence [B]
                                      (used by TRL's precompute_ref_log_probs)
    _compute_loss                     TRL's fused-LM-head log-probs -> per-turn sums -> diatool_dpo_loss
                                      (+ the NLL term on chosen, + the replay term, below)

Replay (``replay_dataset`` and ``args.replay_weight`` lambda > 0): each training step also draws a
batch of SFT conversations and adds their assistant-only SFT loss (``sft.assistant_only_loss``),

    loss = DiaTool-DPO + alpha * NLL(chosen) + lambda * SFT(replay batch)

The NLL term holds the chosen side's text; the replay term holds what the SFT model does on every
kind of turn (call, ask, decline, report) while the pairs move the turns they contrast.

Everything else stays TRL's: the reference model (a separate model, the PEFT adapter disabled when
ref_model=None with a PEFT model, precompute_ref_log_probs), quantised models, DeepSpeed / FSDP,
gradient checkpointing, the optimizer, logging and checkpoints. One deliberate difference: with
ref_model=None and a full (non-PEFT) model, the reference is a copy of the model as passed in,
after the Functionary tokens were added; TRL 1.16 would reload the checkpoint from disk, which
has neither the new token rows nor any change made to the model in memory.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass, field

import torch
import trl
from accelerate.logging import get_logger
from accelerate.utils import is_peft_model
from datasets import Dataset, DatasetDict, IterableDataset

REQUIRED_TRL_VERSION = "1.16.0"


def check_trl_version(found: str | None = None) -> None:
    """Stop with a clear message unless TRL is exactly the version whose internals this trainer hooks into."""
    found = trl.__version__ if found is None else found
    if found != REQUIRED_TRL_VERSION:
        raise ImportError(
            f"diatool_utils.trainer overrides internals of TRL's DPOTrainer that change between releases; it "
            f"is written and tested for trl=={REQUIRED_TRL_VERSION}, but trl=={found} is installed. Install the "
            f"pinned version:\n    pip install trl=={REQUIRED_TRL_VERSION}\n(tests/test_trl_api.py lists every "
            "internal used, to check a newer TRL before moving the pin)."
        )


check_trl_version()

from transformers import AutoTokenizer, PreTrainedTokenizerBase, ProcessorMixin  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402
from trl.models.utils import disable_gradient_checkpointing  # noqa: E402
from trl.trainer import utils as trl_utils  # noqa: E402
from trl.trainer.utils import create_model_from_path, global_then_local_main_first, use_adapter  # noqa: E402

from .collator import (  # noqa: E402
    DataCollatorForDiaToolPreference,
    PairReport,
    pair_row_for_dataset,
    tokenize_pair,
)
from .loss import decision_token_weights, diatool_dpo_loss, per_turn_logps  # noqa: E402
from .padding import causal_only  # noqa: E402
from .progress import stage_progress  # noqa: E402
from .reference_cache import ReferenceCache, model_fingerprint, pair_key  # noqa: E402
from .sft import (  # noqa: E402
    AssistantOnlyCollator,
    assistant_only_loss,
    lora_inputs_follow_autocast,
    quiet_peft_wrapping,
)
from .shared_prefix import shared_prefix_forward, split_pair_batch  # noqa: E402
from .shared_prefix import unsupported_reason as shared_prefix_unsupported  # noqa: E402
from .templating import FUNCTIONARY_SPECIAL_TOKENS, add_functionary_tokens, missing_functionary_tokens  # noqa: E402
from .zero3 import embedding_rows, zero3_partitioned  # noqa: E402

logger = get_logger(__name__)

__all__ = ["DiaToolDPOConfig", "DiaToolDPOTrainer", "check_trl_version", "REQUIRED_TRL_VERSION"]

SUPPORTED_LOSS_TYPES = ("sigmoid", "sft")
PAIR_COLUMNS = ["chosen_input_ids", "chosen_turn_index", "rejected_input_ids", "rejected_turn_index",
                "ref_chosen_logps", "ref_rejected_logps"]


# ---------------------------------------------------------------------------------------------
# The config
# ---------------------------------------------------------------------------------------------

@dataclass
class DiaToolDPOConfig(DPOConfig):
    r"""
    Configuration for [`DiaToolDPOTrainer`]: every [`~trl.DPOConfig`] field, plus the DiaTool-DPO ones below.
    Like any TRL config it parses from the command line and YAML with [`~trl.TrlParser`]
    (`--gamma 0.5 --margin 2.0 --use_psi false`).

    Parameters:
        > The DiaTool-DPO loss: loss = -log sigmoid(beta * (R(chosen) - R(rejected) - margin)),
        > R(tau) = sum_t phi(t, T) * lr_t / psi(T) over the T assistant turns of a trajectory

        gamma (`float`, *optional*, defaults to `0.5`):
            Reward scaling factor, in [0, 1]. Turn weight phi(t, T) = (1 - gamma^(T - t)) / (1 - gamma^T): the first
            turn weighs 1, later turns less. gamma -> 1 gives phi = (T - t) / T; gamma = 0 weighs every turn 1.
        margin (`float`, *optional*, defaults to `0.5`):
            Reward gap subtraction (rho in the paper): the chosen reward must beat the rejected one by this much.
            It sits inside beta, so the effective margin on the log-sigmoid is beta * margin. The reference run
            used 2.0 with beta 0.5.
        use_phi (`bool`, *optional*, defaults to `True`):
            Ablation switch. `False` weighs every turn 1 (then R is the plain mean over turns).
        use_psi (`bool`, *optional*, defaults to `True`):
            Ablation switch. `False` drops the division by psi(T) (R becomes a weighted sum over turns).
        use_margin (`bool`, *optional*, defaults to `True`):
            Ablation switch. `False` sets the margin to 0. With T = 1 on both sides and no margin the loss is
            exactly TRL's sigmoid DPO loss.
        > Extensions (not the paper's method; off by default, measured in `docs/experiments.md`)

        decision_weight (`float`, *optional*, defaults to `1.0`):
            Extension. Weight of each assistant turn's first token (its recipient: `all` for text, a function name for a call)
            in that turn's log-ratio: lr_t = w * lr(first token) + the rest (`loss.decision_token_weights`). 1 is
            the paper's loss. Applied alike to policy and reference; the logged `logps/*` are the weighted sums.
        replay_weight (`float`, *optional*, defaults to `0.0`):
            Extension. Weight lambda of the replay term: every training step adds lambda times the assistant-only SFT loss of a
            batch of `replay_batch_size` conversations from the trainer's `replay_dataset` (module docstring).
        replay_batch_size (`int`, *optional*, defaults to `2`):
            SFT conversations in each replay batch.
        > Training mechanics (no effect on the loss)

        shared_prefix (`bool`, *optional*, defaults to `True`):
            Run the tokens a pair's two sequences share (tools, system text, the dialogue before the first differing
            token) once, through the policy and through the reference, and both continuations on its KV cache
            (`shared_prefix.py`). The same loss and gradients for fewer tokens. Where it can't apply (gradient
            checkpointing, distributed training, prompt-learning PEFT, sliding-window attention) the trainer says so
            once and runs every sequence whole; `False` always does.
        strict_pairs (`bool`, *optional*, defaults to `False`):
            What to do with pairs that can't be trained: one side has no assistant turn left after truncation to
            `max_length`, or chosen and rejected differ before their first assistant turn. `False` skips them,
            counts them by reason and logs the report (also kept in `trainer.pair_reports`); `True` raises.

        > DPOConfig fields with a DiaTool-DPO meaning

        beta (`float`, *optional*, defaults to `0.1`):
            Inverse temperature of the loss; the logged rewards are beta * R(tau). The reference run used 0.5.
        loss_type (`list[str]`, *optional*, defaults to `["sigmoid"]`):
            `"sigmoid"` is the DiaTool-DPO loss above (the paper's). Extension: add `"sft"` for an NLL term on the chosen trajectory (mean
            negative log-likelihood of its assistant tokens, as TRL's RPO recipe), weighted by `loss_weights`:
            `loss_type=["sigmoid", "sft"], loss_weights=[1.0, alpha]`. Other TRL loss types are not supported.
        max_length (`int` or `None`, *optional*, defaults to `1024`):
            Maximum tokens of prompt+chosen and of prompt+rejected, each cut by `masking.tokenize_conversation`
            (`truncation_mode="keep_start"` only). Pairs left without an assistant turn are skipped (see
            `strict_pairs`).
        precompute_ref_log_probs (`bool`, *optional*, defaults to `False`):
            As in TRL, with the reference log-probs stored per assistant turn: one no-grad pass over the training
            pairs before the first step, then every step runs the policy alone.
        ref_logps_cache (`str` or `None`, *optional*, defaults to `None`):
            With `precompute_ref_log_probs`: a folder that keeps the precomputed reference log-probs
            (`reference_cache.ReferenceCache`), keyed by the reference's frozen weights, the compute settings and
            each pair's tokens. A later run from the same reference reads the pairs it finds there instead of
            computing them again: the ablations of one SFT model, or a run resumed after a stop.

        Not supported (they raise): `ld_alpha`, `f_divergence_type` other than `"reverse_kl"`, `use_weighting`,
        `truncation_mode="keep_end"`.
    """

    gamma: float = field(
        default=0.5,
        metadata={"help": "Reward scaling factor in [0, 1]: turn weight phi(t, T) = (1 - gamma^(T - t)) / "
                          "(1 - gamma^T), so the first assistant turn weighs 1 and later turns less."},
    )
    margin: float = field(
        default=0.5,
        metadata={"help": "Reward gap subtraction (rho): loss = -log sigmoid(beta * (R(chosen) - R(rejected) - "
                          "margin)). The effective margin is beta * margin."},
    )
    use_phi: bool = field(
        default=True,
        metadata={"help": "Weigh turns by phi(t, T). False weighs every turn 1 (ablation 'without phi')."},
    )
    use_psi: bool = field(
        default=True,
        metadata={"help": "Divide the weighted sum of turn log-ratios by psi(T) = sum_t phi(t, T). False keeps the "
                          "sum (ablation 'without psi')."},
    )
    use_margin: bool = field(
        default=True,
        metadata={"help": "Subtract the margin. False sets it to 0 (ablation 'without rho')."},
    )
    decision_weight: float = field(
        default=1.0,
        metadata={"help": "Extension. Weight of each assistant turn's first token (the call-or-text decision) in the turn's "
                          "log-ratio; 1 = every token alike (the paper's loss)."},
    )
    replay_weight: float = field(
        default=0.0,
        metadata={"help": "Extension. Weight lambda of the replay term: the assistant-only SFT loss of a batch of SFT "
                          "conversations (the trainer's replay_dataset), added at every training step. 0 = off."},
    )
    replay_batch_size: int = field(
        default=2,
        metadata={"help": "SFT conversations in each replay batch."},
    )
    shared_prefix: bool = field(
        default=True,
        metadata={"help": "Run each pair's shared prefix once and both continuations on its KV cache (same loss, "
                          "fewer tokens). False runs every sequence whole."},
    )
    ref_logps_cache: str | None = field(
        default=None,
        metadata={"help": "With precompute_ref_log_probs: a folder keeping the reference's per-turn log-probs, keyed "
                          "by the reference's weights and each pair's tokens, reused by later runs."},
    )
    strict_pairs: bool = field(
        default=False,
        metadata={"help": "Raise on pairs that can't be trained (no assistant turn left after truncation, or "
                          "chosen and rejected prompts differ) instead of skipping and reporting them."},
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma (the reward scaling factor) must lie in [0, 1], got {self.gamma}")
        if not self.decision_weight > 0:
            raise ValueError(f"decision_weight must be positive (1 = every token alike), got {self.decision_weight}")
        if self.replay_weight < 0 or self.replay_batch_size < 1:
            raise ValueError(f"replay_weight must be >= 0 (0 = no replay) and replay_batch_size >= 1, got "
                             f"{self.replay_weight} and {self.replay_batch_size}")
        unsupported = [t for t in self.loss_type if t not in SUPPORTED_LOSS_TYPES]
        if unsupported or "sigmoid" not in self.loss_type:
            raise ValueError(f"DiaToolDPOTrainer supports loss_type ['sigmoid'] (the DiaTool-DPO loss) or "
                             f"['sigmoid', 'sft'] (plus NLL on chosen), got {self.loss_type}")
        for name, value, default in (("ld_alpha", self.ld_alpha, None),
                                     ("f_divergence_type", self.f_divergence_type, "reverse_kl"),
                                     ("use_weighting", self.use_weighting, False),
                                     ("truncation_mode", self.truncation_mode, "keep_start")):
            if value != default:
                raise ValueError(f"DiaToolDPOTrainer does not support {name}={value!r}; leave it at {default!r}")


@contextlib.contextmanager
def scored_positions_only():
    """TRL's fused LM head, projecting only the scored positions (label != -100) onto the vocabulary, on a CPU too.

    TRL 1.16 projects just the scored positions where Triton runs (CUDA, XPU). Elsewhere it projects every position
    and zeroes the unscored ones afterwards, so that tile shapes stay fixed for compilers that would otherwise
    recompile on every batch. Eager CPU code has nothing to recompile, while a pair's assistant tokens are about a
    tenth of its positions: projecting all of them, forward and backward (in fp32), took a third of a CPU step of
    the 135M model. The scored positions' values are the same either way (``tests/test_trl_api.py``).
    """
    decide = trl_utils._use_triton  # read by the fused head to pick the compact (scored-only) path
    trl_utils._use_triton = lambda device: device.type == "cpu" or decide(device)
    try:
        yield
    finally:
        trl_utils._use_triton = decide


# ---------------------------------------------------------------------------------------------
# Helpers for __init__
# ---------------------------------------------------------------------------------------------

def as_pair_dataset(data):
    """A list of pair dicts -> ``datasets.Dataset`` (conversations as JSON text); Datasets pass through."""
    if data is None or isinstance(data, (Dataset, IterableDataset)):
        return data
    if isinstance(data, (dict, DatasetDict)):
        return {name: as_pair_dataset(split) for name, split in data.items()}
    rows = list(data)
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise TypeError("a dataset of pairs must be a datasets.Dataset or a non-empty list of pair dicts "
                        "({'id', 'tools', 'prompt', 'chosen', 'rejected', ...})")
    return Dataset.from_list([pair_row_for_dataset(row) for row in rows])


def _tokenizer_of(processing_class):
    return processing_class.tokenizer if isinstance(processing_class, ProcessorMixin) else processing_class


def _ensure_functionary_tokens(tokenizer: PreTrainedTokenizerBase, model, role: str) -> None:
    """Add the Functionary tokens to the tokenizer and resize the model (idempotent); a PEFT model must have them."""
    if is_peft_model(model):
        missing = missing_functionary_tokens(tokenizer)
        rows = embedding_rows(model.get_input_embeddings().weight)
        if missing or max(tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)) >= rows:
            raise ValueError(
                f"the {role} is a PEFT model whose tokenizer or embeddings lack the Functionary tokens "
                f"{FUNCTIONARY_SPECIAL_TOKENS}. Add them to the base model before wrapping it "
                "(templating.add_functionary_tokens(tokenizer, base_model)), or pass the base model with peft_config."
            )
        return
    add_functionary_tokens(tokenizer, model)


def _refuse_partitioned(model) -> None:
    """A model already partitioned by ZeRO-3 can't be deep-copied into a reference: the copy holds empty shards."""
    if zero3_partitioned(model.parameters()):
        raise ValueError(
            "the model's weights are already partitioned by DeepSpeed ZeRO-3 (it was loaded while a ZeRO-3 config was "
            "registered), so copying it would give a reference model of empty shards. Load it whole and let the "
            "trainer shard it (see whole_weights() in scripts/train_diatool_dpo.py), pass ref_model= yourself, "
            "or train a PEFT adapter (the reference is then the adapter disabled)."
        )


def _check_lm_head(model) -> None:
    # TRL 1.16's fused LM head reads lm_head.weight and lm_head.bias directly; PEFT's trainable-token wrapper
    # (what trainable_token_indices puts on lm_head: a tied head follows the input rows, an untied one is
    # named by sft.lora_config) has no .bias, so the first step would crash.
    head = model.get_output_embeddings()
    if type(head).__name__ == "TrainableTokensWrapper":
        raise ValueError(
            "the model's lm_head is wrapped by PEFT trainable tokens (LoraConfig(trainable_token_indices=...) that "
            "reaches the output layer: a head tied to the input embeddings, or an untied head named in it, as "
            "sft.lora_config does for SFT). TRL 1.16's DPO computes log-probs from lm_head.weight directly and can't "
            "train through that wrapper. For DPO, merge the SFT adapter into the model (merge_and_unload) and use a "
            "LoRA config without trainable_token_indices."
        )


def _warn_if_markers_untrained(tokenizer, model) -> None:
    """With a LoRA adapter the output rows of the markers can't change: if they are still one shared row
    (added just now, as ``add_functionary_tokens`` starts them), <|content|> and <|stop|> tie forever."""
    head = model.get_output_embeddings()
    if head is None or zero3_partitioned([head.weight]):
        return
    rows = head.weight[tokenizer.convert_tokens_to_ids(FUNCTIONARY_SPECIAL_TOKENS)]
    if bool((rows == rows[0]).all()):
        warnings.warn(
            "the output rows of the Functionary tokens are all equal (new, never trained), and a LoRA adapter can't "
            "train them, so the model can never prefer <|content|> or <|stop|>. Run SFT first (sft.attach_lora trains "
            "those rows; the pipeline's SFT stage does it) and train DPO on the merged SFT model.", stacklevel=3)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------

class DiaToolDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer with the DiaTool-DPO loss: per-turn log-ratios, weighted by phi / psi, with a margin.

    Args are TRL's (``model`` may also be "smollm2-135m" / "tiny-random" / a folder / a Hub id), except:
        args: a ``DiaToolDPOConfig``.
        train_dataset / eval_dataset: our pairs, a ``datasets.Dataset`` or a list of pair dicts (a dict of
            them for several eval sets). Map-style only: skipped pairs must be counted before training.
        processing_class: the tokenizer. The Functionary tokens are added to it and to ``model`` (and to
            ``ref_model``) here, new rows initialised to the mean embedding; nothing changes if they are there.
            A PEFT model must already have them (add them before wrapping).

        replay_dataset: SFT conversations tokenized by ``sft.build_sft_dataset`` (with its ``loss_weights`` if
            built with a decision weight), trained beside the pairs when ``args.replay_weight`` > 0.

    After construction ``trainer.pair_reports`` maps "train" / "eval" to a ``PairReport`` (kept, skipped by
    reason, truncated), which is also logged.
    """

    _tag_names = ["trl", "dpo", "diatool-dpo"]
    _name = "DiaTool-DPO"

    def __init__(
        self,
        model,
        ref_model=None,
        args: DiaToolDPOConfig | None = None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        compute_metrics=None,
        callbacks=None,
        optimizers=(None, None),
        quantization_config=None,
        peft_config=None,
        replay_dataset=None,
    ):
        if args is None:
            name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "") or "model"
            args = DiaToolDPOConfig(f"{name.rstrip('/').split('/')[-1]}-DiaTool-DPO")
        elif not isinstance(args, DiaToolDPOConfig):
            raise TypeError(f"args must be a DiaToolDPOConfig (it carries gamma, margin and the ablation switches), "
                            f"got {type(args).__name__}")

        # The model is loaded here, not inside TRL, because the Functionary tokens must be added before TRL
        # wraps it (PEFT) and builds the reference.
        if isinstance(model, str):
            model, quantization_config = self._load_model(model, args, quantization_config), None
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(
                getattr(model.config, "_name_or_path", ""), trust_remote_code=args.trust_remote_code)
        tokenizer = _tokenizer_of(processing_class)
        _ensure_functionary_tokens(tokenizer, model, "model")
        if is_peft_model(model):
            _check_lm_head(model)
        elif peft_config is not None:
            _warn_if_markers_untrained(tokenizer, model)

        self._copied_ref_model = False
        if ref_model is not None:
            _ensure_functionary_tokens(tokenizer, ref_model, "ref_model")
        elif peft_config is None and not is_peft_model(model):
            fsdp = args.distributed_state.distributed_type == "FSDP"
            if not args.precompute_ref_log_probs or fsdp:  # when TRL would load a reference model from disk
                _refuse_partitioned(model)
                ref_model, self._copied_ref_model = copy.deepcopy(model), True

        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if data_collator is None:
            data_collator = DataCollatorForDiaToolPreference(
                pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=args.pad_to_multiple_of)

        if (replay_dataset is not None) != (args.replay_weight > 0):
            raise ValueError(f"replay needs both a replay_dataset and args.replay_weight > 0; got "
                             f"replay_weight={args.replay_weight} and "
                             f"{'a' if replay_dataset is not None else 'no'} replay_dataset")
        if replay_dataset is not None:
            if not {"input_ids", "labels"} <= set(replay_dataset.column_names):
                raise ValueError(f"replay_dataset has columns {replay_dataset.column_names}; build it with "
                                 "sft.build_sft_dataset (input_ids, labels, optional loss_weights)")
            if len(replay_dataset) == 0:
                raise ValueError("replay_dataset is empty")
        self.replay_dataset, self._replay_batches = replay_dataset, None
        self.pair_reports: dict[str, PairReport] = {}
        self._ref_turns_width = 1  # widest trajectory (in turns) of every dataset prepared so far
        self._shared_prefix_off: dict[str, str | None] = {}  # role -> why the shared-prefix forward is off
        self._said: set[str] = set()
        self._in_reference_mode = False
        super().__init__(
            model=model,
            ref_model=ref_model,
            args=args,
            data_collator=data_collator,
            train_dataset=as_pair_dataset(train_dataset),
            eval_dataset=as_pair_dataset(eval_dataset),
            processing_class=processing_class,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            quantization_config=quantization_config,
            peft_config=peft_config,
        )
        _check_lm_head(self.model)
        if args.bf16 and self.accelerator.device.type == "cpu":
            lora_inputs_follow_autocast(self.model)  # every forward runs under autocast here
        if self._copied_ref_model and args.precompute_ref_log_probs and self.is_fsdp_enabled:
            self.ref_model = None  # like TRL: under FSDP the reference was only needed for the precompute

    @staticmethod
    def _load_model(name_or_path: str, args: DiaToolDPOConfig, quantization_config):
        """Load a model from a name the way TRL does (``model_init_kwargs``, quantization, distributed device map)."""
        from .models import resolve_model_path

        init_kwargs = dict(args.model_init_kwargs or {})
        if quantization_config is not None:
            if "quantization_config" in init_kwargs:
                raise ValueError("quantization_config is set both as a trainer argument and in "
                                 "args.model_init_kwargs; set it in one place")
            init_kwargs["quantization_config"] = quantization_config
        if args.distributed_state.distributed_type in ["MULTI_GPU", "DEEPSPEED"]:
            init_kwargs["device_map"] = None
        init_kwargs.setdefault("trust_remote_code", args.trust_remote_code)
        model = create_model_from_path(resolve_model_path(name_or_path), **init_kwargs)
        args.model_init_kwargs = None  # used here; TRL would otherwise warn that they are ignored
        return model

    # -- data -------------------------------------------------------------------------------------

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        """Tokenize pairs into ids + turn index for both sides, then count and skip (or raise on) unusable pairs."""
        if isinstance(dataset, IterableDataset):
            raise TypeError(f"the {dataset_name} dataset is an IterableDataset; DiaToolDPOTrainer needs a map-style "
                            "Dataset (or a list of pairs) so that skipped pairs can be counted before training")
        dataset = as_pair_dataset(dataset)
        if "chosen_turn_index" not in dataset.column_names:  # evaluate() may pass an already prepared dataset
            with global_then_local_main_first():
                dataset = dataset.map(
                    tokenize_pair,
                    with_indices=True,
                    fn_kwargs={"tokenizer": _tokenizer_of(processing_class), "max_length": args.max_length},
                    num_proc=args.dataset_num_proc,
                    desc=f"Tokenizing {dataset_name} pairs",
                )
                dataset = self._skip_unusable_pairs(dataset, dataset_name, args.strict_pairs)
                if "twin" in dataset.column_names and dataset_name == "train" and \
                        args.train_sampling_strategy != "sequential":
                    logger.warning("the train pairs are twins (a 'twin' column), but train_sampling_strategy is "
                                   f"{args.train_sampling_strategy!r}: twins will land in different batches. Use "
                                   "'sequential' with the twins adjacent and an even batch size.")
        if len(dataset):
            widest = max(max(dataset["chosen_turns"]), max(dataset["rejected_turns"]))
            self._ref_turns_width = max(self._ref_turns_width, widest)
        return dataset

    def _skip_unusable_pairs(self, dataset: Dataset, dataset_name: str, strict: bool) -> Dataset:
        ids = dataset["id"] if "id" in dataset.column_names else list(range(len(dataset)))
        report = PairReport.from_columns(dataset_name, dataset["skip_reason"], ids, dataset["truncated_turns"])
        self.pair_reports[dataset_name] = report
        if report.num_skipped and strict:
            raise ValueError(f"{report}. Fix these pairs, raise max_length, or set strict_pairs=False to skip them.")
        if report.kept == 0:
            raise ValueError(f"no usable pairs in the {dataset_name} dataset: {report}")
        (logger.warning if report.num_skipped or report.truncated_pairs else logger.info)(str(report))
        if report.num_skipped and "twin" in dataset.column_names:
            # a twin trains as a whole (synthetic.generate_twin_pairs): the partner of a skipped pair goes too
            labelled = list(zip(dataset["twin"], dataset["skip_reason"], strict=True))
            broken = {twin for twin, reason in labelled if reason}
            partners = sum(1 for twin, reason in labelled if twin in broken and not reason)
            logger.warning(f"{dataset_name}: also skipping {partners} usable pairs whose twin was skipped")
            dataset = dataset.filter(lambda twin: twin not in broken, input_columns="twin",
                                     desc=f"Skipping broken {dataset_name} twins")
        elif report.num_skipped:
            dataset = dataset.filter(lambda reason: not reason, input_columns="skip_reason",
                                     desc=f"Skipping unusable {dataset_name} pairs")
        return dataset.remove_columns("skip_reason")

    def _set_signature_columns_if_needed(self):
        # Trainer drops dataset columns that are not "signature" columns before batching.
        if self._signature_columns is None:
            self._signature_columns = list(PAIR_COLUMNS)

    # -- log-probs --------------------------------------------------------------------------------

    @staticmethod
    def _model_kwargs(inputs: dict) -> dict:
        # right-padded rows need no padding mask in a causal model (padding.py)
        return {"input_ids": inputs["input_ids"], "attention_mask": causal_only(inputs["attention_mask"]),
                "use_cache": False}

    @staticmethod
    def _labels(inputs: dict) -> torch.Tensor:
        """Only assistant-turn tokens are scored: label -100 wherever turn_index is -1. [2B, L]"""
        return inputs["input_ids"].masked_fill(inputs["turn_index"] < 0, -100)

    def _fused_outputs(self, model, inputs: dict, role: str, model_kwargs: dict | None = None):
        """Fused-head per-token outputs of the batch ([2B, L-1] fields): shared prefix once when it applies."""
        labels = self._labels(inputs)
        with scored_positions_only():
            if self._shared_prefix_applies(role):
                batch = split_pair_batch(inputs["input_ids"], inputs["attention_mask"], inputs["turn_index"], labels)
                if batch is not None:
                    return shared_prefix_forward(model, batch)
                self._say_once("a pair in the batch shares fewer than 2 tokens: this batch runs every sequence whole")
            return model(**(model_kwargs or self._model_kwargs(inputs)), labels=labels, fused_lm_head=True)

    def _shared_prefix_applies(self, role: str) -> bool:
        """Whether the shared-prefix forward can run for the policy or the reference (decided once, said once)."""
        if role not in self._shared_prefix_off:
            if not self.args.shared_prefix:
                reason = ""  # switched off: nothing to say
            else:
                model = self.accelerator.unwrap_model(self.model) if role == "policy" or self.ref_model is None \
                    else self.ref_model
                reason = shared_prefix_unsupported(
                    model, gradient_checkpointing=role == "policy" and self.args.gradient_checkpointing,
                    distributed_type=self.accelerator.distributed_type, aux_loss=self.aux_loss_enabled)
                if reason:
                    self._say_once(f"shared-prefix forward off for the {role}: {reason}. Every sequence runs whole.")
            self._shared_prefix_off[role] = reason
        return self._shared_prefix_off[role] is None

    def _say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            logger.warning(message)

    def _turn_logps(self, token_logps: torch.Tensor, turn_index: torch.Tensor, max_turns: int) -> torch.Tensor:
        """Fused-head log-probs [2B, L-1] (log p(token i+1 | tokens <= i)) -> per-turn sums [2B, max_turns].

        The label of position i is token i+1, so the turn index is shifted the same way. With
        ``decision_weight`` w != 1 each turn's first token counts w times.
        """
        shift_turn_index = turn_index[:, 1:]
        # Prompt-learning PEFT prepends virtual tokens to the outputs; keep the positions of the real tokens.
        token_logps = token_logps[:, -shift_turn_index.size(1):]
        weight = self.args.decision_weight
        weights = decision_token_weights(shift_turn_index, weight) if weight != 1 else None
        return per_turn_logps(token_logps, shift_turn_index, max_turns, weights)

    def _reference_token_logps(self, model, inputs: dict) -> torch.Tensor:
        """Reference per-token log-probs [2B, L-1], from TRL's reference forward (no gradient)."""
        with self._reference_mode():
            return self._fused_outputs(model, inputs, "reference").log_probs

    @contextlib.contextmanager
    def _reference_mode(self):
        """No gradient, no checkpointing, autocast, and the PEFT model's adapter off: the reference's forward.

        Entered once for a whole precompute pass, not once per batch: switching a PEFT adapter off and on walks
        every module of the model, which took a third of the reference pass on the 135M model.
        """
        if self._in_reference_mode:
            yield
            return
        adapter_context = contextlib.nullcontext()
        if self.ref_model is None and is_peft_model(self.model):
            # The reference is the PEFT model with its adapter disabled (or TRL's frozen "ref" adapter copy).
            unwrapped = self.accelerator.unwrap_model(self.model)
            adapter_context = use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        with (
            torch.no_grad(),
            quiet_peft_wrapping(),  # TRL reads the deprecated is_gradient_checkpointing
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
            adapter_context,
            self.accelerator.autocast(),
        ):
            self._in_reference_mode = True
            try:
                yield
            finally:
                self._in_reference_mode = False

    def _precompute_ref_logps(self, dataset, name, batch_size):
        """The reference's per-turn log-probs of every pair, in one pass before training (TRL's
        ``precompute_ref_log_probs``), read from and added to ``args.ref_logps_cache`` when it is set
        (``reference_cache``). Distributed runs take TRL's own pass, without the cache."""
        if self.accelerator.num_processes > 1 or self.is_deepspeed_enabled:
            with self._reference_mode():
                return super()._precompute_ref_logps(dataset, name, batch_size)
        if self.args.ref_logps_cache is None:
            chosen, rejected = self._reference_pass(dataset, name, batch_size)
        else:
            reference = self.accelerator.unwrap_model(self.ref_model or self.model)
            fingerprint = model_fingerprint(
                reference, autocast=str(self.accelerator.mixed_precision), shared_prefix=self.args.shared_prefix,
                batch_size=batch_size, decision_weight=self.args.decision_weight)
            cache = ReferenceCache(self.args.ref_logps_cache, fingerprint)
            sides = ("chosen_input_ids", "chosen_turn_index", "rejected_input_ids", "rejected_turn_index")
            keys = [pair_key(*columns) for columns in zip(*(dataset[side] for side in sides), strict=True)]
            missing = cache.missing(keys)
            logger.info(f"{name} pairs: reference log-probs of {len(keys) - len(missing)} of {len(keys)} read from "
                        f"{cache.path}; computing {len(missing)}")
            if missing:
                todo = dataset.select(missing)
                cache.add([keys[i] for i in missing], *self._reference_pass(todo, name, batch_size),
                          todo["chosen_turns"], todo["rejected_turns"])
            chosen, rejected = cache.read(keys, self._ref_turns_width)
        return dataset.add_column("ref_chosen_logps", chosen).add_column("ref_rejected_logps", rejected)

    def _reference_pass(self, dataset, name: str, batch_size: int) -> tuple[list, list]:
        """Per-turn reference log-probs of ``dataset``'s pairs, in order, chosen and rejected: [W] lists (float32)."""
        model = self.ref_model or self.model
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                             collate_fn=self.data_collator)
        chosen, rejected = [], []
        with self._reference_mode(), stage_progress(f"reference log-probs ({name} pairs)", len(dataset), "pair") as \
                progress:
            for batch in loader:
                batch = {key: value.to(self.accelerator.device) for key, value in batch.items()}
                chosen_logps, rejected_logps = self.compute_ref_log_probs(model, batch)
                chosen += chosen_logps.float().cpu().tolist()
                rejected += rejected_logps.float().cpu().tolist()
                progress.update(len(chosen_logps))
        return chosen, rejected

    def compute_ref_log_probs(self, model, inputs):
        """Reference log-probs of one padded batch, per turn: ([B, W], [B, W]) for chosen and rejected.

        W is the widest trajectory (in turns) of the datasets prepared so far, so that every batch of a
        precomputed dataset has the same width; entries past a trajectory's own turns are 0 and ignored.
        """
        token_logps = self._reference_token_logps(model, inputs)
        return self._turn_logps(token_logps, inputs["turn_index"], self._ref_turns_width).chunk(2, dim=0)

    # -- the loss ---------------------------------------------------------------------------------

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        model_kwargs = self._model_kwargs(inputs)
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
            model_kwargs["attention_mask"] = inputs["attention_mask"]  # the router's balance counts real tokens only
        num_turns = inputs["num_turns"]  # [2B]

        # Per-token log-probs from TRL's fused LM head (no [2B, L, V] logits): policy, then reference.
        outputs = self._fused_outputs(model, inputs, "policy", model_kwargs)
        if not self.precompute_ref_logps:
            ref_model = self.ref_model if self.ref_model is not None else self.model
            ref_token_logps = self._reference_token_logps(ref_model, inputs)

        # Summed per turn. The first host sync of the step comes only now, with both forwards queued.
        max_turns = int(num_turns.max())
        turn_logps = self._turn_logps(outputs.log_probs, inputs["turn_index"], max_turns)  # [2B, T]
        if self.precompute_ref_logps:
            ref_turn_logps = torch.cat([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]])[:, :max_turns]
        else:
            ref_turn_logps = self._turn_logps(ref_token_logps, inputs["turn_index"], max_turns)
        turn_logratios = turn_logps - ref_turn_logps.to(turn_logps.device)  # lr_t, [2B, T]

        chosen_logratios, rejected_logratios = turn_logratios.chunk(2, dim=0)  # batch is [chosen, rejected]
        chosen_turns, rejected_turns = num_turns.chunk(2, dim=0)
        losses, chosen_rewards, rejected_rewards = diatool_dpo_loss(
            chosen_logratios, rejected_logratios, chosen_turns, rejected_turns,
            beta=self.beta, gamma=self.args.gamma, margin=self.args.margin,
            use_phi=self.args.use_phi, use_psi=self.args.use_psi, use_margin=self.args.use_margin,
        )

        shift_turn_index = inputs["turn_index"][:, 1:]
        token_logps = outputs.log_probs[:, -shift_turn_index.size(1):]
        loss = 0.0
        for loss_type, loss_weight in zip(self.loss_types, self.loss_weights, strict=True):
            if loss_type == "sigmoid":
                loss = loss + losses.mean() * loss_weight
            else:  # "sft": mean NLL over the chosen assistant tokens of the batch
                chosen_token_logps, _ = token_logps.chunk(2, dim=0)
                chosen_scored, _ = (shift_turn_index >= 0).chunk(2, dim=0)
                loss = loss + -chosen_token_logps[chosen_scored].mean() * loss_weight
        if mode == "train" and self.replay_dataset is not None:
            replay_loss, _ = assistant_only_loss(model, self._next_replay_batch())
            loss = loss + self.args.replay_weight * replay_loss
            self._metrics[mode]["replay/sft_loss"].append(
                self.accelerator.gather_for_metrics(replay_loss.detach()).mean().item())
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(outputs.aux_loss).mean().item())

        self._log_metrics(mode, inputs, outputs, shift_turn_index, turn_logps, num_turns,
                          chosen_rewards, rejected_rewards)
        if return_outputs:  # Trainer's prediction_step wants logits, which the fused head never builds
            with torch.no_grad():
                outputs = model(**model_kwargs)
        return (loss, outputs) if return_outputs else loss

    def _next_replay_batch(self) -> dict:
        """The next replay batch on the training device: the replay set shuffled (seed + process index) and
        cycled, so a run longer than one pass over it starts again in a new order."""
        while True:
            if self._replay_batches is None:
                generator = torch.Generator().manual_seed(self.args.seed + self.accelerator.process_index)
                loader = torch.utils.data.DataLoader(
                    self.replay_dataset, batch_size=self.args.replay_batch_size, shuffle=True, generator=generator,
                    collate_fn=AssistantOnlyCollator(_tokenizer_of(self.processing_class).pad_token_id))
                self._replay_batches = iter(loader)
            batch = next(self._replay_batches, None)
            if batch is not None:
                return {key: value.to(self.accelerator.device) for key, value in batch.items()}
            self._replay_batches = None  # one pass done

    def _log_metrics(self, mode, inputs, outputs, shift_turn_index, turn_logps, num_turns,
                     chosen_rewards, rejected_rewards) -> None:
        metrics, gather = self._metrics[mode], self.accelerator.gather_for_metrics
        seq_len = shift_turn_index.size(1)
        scored = shift_turn_index >= 0  # [2B, L-1]

        total_tokens = gather(scored.sum()).sum()
        entropy = gather((outputs.entropy[:, -seq_len:].detach() * scored).sum()).sum()
        metrics["entropy"].append((entropy / total_tokens).item() if total_tokens > 0 else 0.0)
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]
        chosen_scored, _ = scored.chunk(2, dim=0)
        chosen_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
        correct = gather((chosen_top1 & chosen_scored).sum()).sum()
        chosen_tokens = gather(chosen_scored.sum()).sum()
        metrics["mean_token_accuracy"].append((correct / chosen_tokens).item() if chosen_tokens > 0 else 0.0)

        chosen_rewards, rejected_rewards = gather(chosen_rewards), gather(rejected_rewards)
        metrics["rewards/chosen"].append(chosen_rewards.mean().item())
        metrics["rewards/rejected"].append(rejected_rewards.mean().item())
        metrics["rewards/accuracies"].append((chosen_rewards > rejected_rewards).float().mean().item())
        metrics["rewards/margins"].append((chosen_rewards - rejected_rewards).mean().item())
        chosen_turns, rejected_turns = num_turns.float().chunk(2, dim=0)
        metrics["turns/chosen"].append(gather(chosen_turns).mean().item())
        metrics["turns/rejected"].append(gather(rejected_turns).mean().item())
        chosen_logps, rejected_logps = turn_logps.detach().sum(dim=1).chunk(2, dim=0)
        metrics["logps/chosen"].append(gather(chosen_logps).mean().item())
        metrics["logps/rejected"].append(gather(rejected_logps).mean().item())
