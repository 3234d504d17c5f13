"""Regenerate the shipped data sets in data/ (byte for byte with the defaults).

    python scripts/make_data.py                      # data/sft.jsonl, dpo_pairs.jsonl, eval_dialog.jsonl,
                                                     # dpo_twins.jsonl, dev_dialog.jsonl, dev_pairs.jsonl
    python scripts/make_data.py --out runs/data_sample --sft 100 --pairs 200

The SFT and pair sets use only training tools; the evaluation set and the development set each
use held-out tools of their own (diatool_utils/synthetic_tools.py says which is which). Training
choices are made on the development set; the evaluation set is scored once, at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diatool_utils.dialogues_io import write_jsonl  # noqa: E402
from diatool_utils.paths import DATA_DIR  # noqa: E402
from diatool_utils.synthetic import (  # noqa: E402
    SFT_MIX,
    generate_eval,
    generate_pairs,
    generate_sft,
    generate_twin_pairs,
)

DEFAULT_SEED = 0
DEFAULT_SFT = 1500
DEFAULT_PAIRS = 3000
DEFAULT_TWINS = 1000
DEV_PAIRS = 200  # 20 per Table-1 row: the held-out pairs whose reward accuracy DPO runs watch
FILES = {"sft": "sft.jsonl", "pairs": "dpo_pairs.jsonl", "eval": "eval_dialog.jsonl", "twins": "dpo_twins.jsonl",
         "dev": "dev_dialog.jsonl", "dev_pairs": "dev_pairs.jsonl"}


def make_data(out=DATA_DIR, seed: int = DEFAULT_SEED, sft: int = DEFAULT_SFT, pairs: int = DEFAULT_PAIRS,
              mix: dict[int, float] | None = None, twins: int = DEFAULT_TWINS) -> dict[str, dict]:
    """Write the six files into ``out``; returns {name: {"path", "rows", "bytes"}}.

    Each set has a seed of its own (``seed`` + 0 ... 5), so adding a set leaves the others as they were.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sets = {
        "sft": generate_sft(sft, seed=seed, mix=mix or SFT_MIX),
        "pairs": generate_pairs(pairs, seed=seed + 1),
        "eval": generate_eval(seed=seed + 2),
        "twins": generate_twin_pairs(twins, seed=seed + 3),
        "dev": generate_eval(seed=seed + 4, split="dev"),  # the same plan as eval, on the dev tools
        "dev_pairs": generate_pairs(DEV_PAIRS, seed=seed + 5, split="dev"),  # never trained on
    }
    written = {}
    for name, rows in sets.items():
        path = out / FILES[name]
        written[name] = {"path": path, "rows": len(rows), "bytes": write_jsonl(rows, path)}
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write into (default: data/)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sft", type=int, default=DEFAULT_SFT, help="SFT conversations")
    parser.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, help="preference pairs")
    parser.add_argument("--twins", type=int, default=DEFAULT_TWINS, help="twin preference pairs (two per twin)")
    parser.add_argument("--mix", type=float, nargs=3, metavar=("TYPE1", "TYPE2", "TYPE3"),
                        help="SFT share of each query type (default 0.55 0.30 0.15)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    mix = dict(zip((1, 2, 3), args.mix, strict=True)) if args.mix else None
    written = make_data(args.out, args.seed, args.sft, args.pairs, mix, args.twins)
    for info in written.values():
        print(f"{info['path']}: {info['rows']} rows, {info['bytes'] / 1e6:.2f} MB")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
