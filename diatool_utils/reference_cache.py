"""Reference log-probs kept on disk: computed once per reference model and pair, read by every later run.

DiaTool-DPO compares the policy with a frozen reference, turn by turn:

    ref_t = sum over the tokens of assistant turn t of log pi_ref(token | everything before it)

Nothing in ref_t changes while the reference's weights, the compute settings and the pair's tokens
stay the same. So a DPO run can read them from a file instead of running the reference forward at
every step (TRL's ``precompute_ref_log_probs``), and every other run from the same SFT model (the
paper's ablations, other row sets, a run resumed after a stop) can read the same file.

The file is keyed so that a hit is exact:

    fingerprint  sha256 of the reference's frozen weights (adapters left out: the reference runs without
                 them) and the settings that change the numbers (autocast dtype, shared-prefix forward,
                 batch size, decision weight)      -> <folder>/<fingerprint>.json
    pair key     sha256 of the pair's token ids and turn indices on both sides

Values are stored as the float32 numbers the reference produced, so a run that reads them trains on
exactly what a run computing them inline would have used. ``DiaToolDPOTrainer`` uses this through its
``ref_logps_cache`` setting.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

ADAPTER_NAME_PARTS = ("lora_", "trainable_tokens", "modules_to_save")  # not part of the reference's weights


def model_fingerprint(model: torch.nn.Module, **settings) -> str:
    """sha256 (16 hex digits) of the model's frozen weights and ``settings``; adapter weights are left out."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if any(part in name for part in ADAPTER_NAME_PARTS):
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def pair_key(chosen_ids, chosen_turns, rejected_ids, rejected_turns) -> str:
    """sha256 (16 hex digits) of one tokenized pair: the ids and turn indices of both sides."""
    text = json.dumps([list(chosen_ids), list(chosen_turns), list(rejected_ids), list(rejected_turns)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ReferenceCache:
    """Per-turn reference log-probs of pairs, for one reference fingerprint, in ``folder/<fingerprint>.json``.

    Each entry holds the chosen and the rejected side's values for their own turns only; ``read`` pads
    them with zeros to a common width, as the trainer's batches expect.
    """

    def __init__(self, folder, fingerprint: str):
        self.path = Path(folder) / f"{fingerprint}.json"
        self.entries: dict[str, list[list[float]]] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text(encoding="utf-8"))["pairs"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{self.path} is not a reference log-prob cache ({error}); delete it and the "
                                 "reference log-probs are computed again") from error

    def missing(self, keys: list[str]) -> list[int]:
        """Positions in ``keys`` of the pairs the cache does not hold."""
        return [position for position, key in enumerate(keys) if key not in self.entries]

    def add(self, keys, chosen, rejected, chosen_turns, rejected_turns) -> None:
        """Store pairs' values ([W] each, of which the first ``*_turns`` count) and write the file."""
        for key, c, r, tc, tr in zip(keys, chosen, rejected, chosen_turns, rejected_turns, strict=True):
            self.entries[key] = [[float(x) for x in c[:tc]], [float(x) for x in r[:tr]]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=f".{self.path.name}-", dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"pairs": self.entries}, out)
        os.replace(staging, self.path)  # an interrupted write never leaves half a file

    def read(self, keys: list[str], width: int) -> tuple[list[list[float]], list[list[float]]]:
        """Chosen and rejected values of ``keys``, each padded with 0.0 to ``width`` turns."""
        chosen, rejected = [], []
        for key in keys:
            c, r = self.entries[key]
            chosen.append(c + [0.0] * (width - len(c)))
            rejected.append(r + [0.0] * (width - len(r)))
        return chosen, rejected
