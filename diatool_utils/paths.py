"""Where things are in a clone of this repository."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
CONFIGS_DIR = REPO_ROOT / "configs"

# The development split: training choices (steps, learning rate, epochs) are made on it, never on the evaluation.
DEV_DIALOGS = DATA_DIR / "dev_dialog.jsonl"
DEV_PAIRS = DATA_DIR / "dev_pairs.jsonl"
