"""What a reader sees in the committed notebooks: clean outputs, light figures, solutions kept for the end.

Notebook 04's training cells may write the trainer's report of kept and skipped pairs to stderr (a log
line, not a warning); everything else holds for it too.
"""

import base64
import json
import re

import pytest

from diatool_utils.paths import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
PAIR_REPORT = re.compile(r"^\[RANK 0\] train pairs: kept \d+, skipped \d+")  # DiaToolDPOTrainer's log line
ids = [p.name for p in NOTEBOOKS]
MAX_FIGURE_BYTES = 100_000  # base64 characters of one embedded PNG, i.e. what the .ipynb file holds
# Paths of the machine that ran the notebook: an interpreter's packages, a home or work folder.
MACHINE_PATH = re.compile(r"site-packages|dist-packages|/(?:work|home|root|Users|tmp)/")


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def _outputs(path):
    for index, cell in enumerate(_cells(path)):
        for output in cell.get("outputs", []):
            yield index, output


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_outputs_hold_no_stderr_no_warnings_and_no_machine_paths(path):
    for index, output in _outputs(path):
        assert output.get("name") != "stderr" or PAIR_REPORT.match(_text(output["text"])), (
            f"{path.name} cell {index}: stderr in the output (a warning, a log line, a progress bar): "
            f"{_text(output['text'])[:200]!r}; silence it at its source")
        texts = [_text(output.get("text", ""))]
        texts += [_text(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
        for text in texts:
            warning = re.search(r"\w+Warning\b", text)
            assert not warning, f"{path.name} cell {index}: {warning.group()} in the output; silence it at its source"
            machine = MACHINE_PATH.search(text)
            assert not machine, (f"{path.name} cell {index}: a path of the machine that ran it in the output: "
                                 f"...{text[max(0, machine.start() - 40):machine.end() + 40]}...")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_embedded_figures_stay_small(path):
    for index, output in _outputs(path):
        png = _text(output.get("data", {}).get("image/png", ""))
        assert len(png) <= MAX_FIGURE_BYTES, (
            f"{path.name} cell {index}: a {len(png) // 1000} kB figure ({len(base64.b64decode(png)) // 1000} kB "
            f"as PNG); lower its dpi or figsize")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_self_check_answers_wait_in_a_solutions_section_at_the_end(path):
    cells = _cells(path)
    sources = [_text(cell["source"]) for cell in cells]
    questions = next(i for i, s in enumerate(sources) if "## Check your understanding" in s)
    solutions = next(i for i, s in enumerate(sources) if s.startswith("## Solutions"))
    assert "(solutions at the end of the notebook)" in sources[questions]
    assert all(cell["cell_type"] == "markdown" for cell in cells[questions:solutions]), (
        f"{path.name}: a code cell between the questions and the solutions gives an answer away")
    assert any("Next" in s for s in sources[questions:solutions]), f"{path.name}: Solutions come after Next"
    answers = cells[solutions + 1:]
    assert answers and all(c["cell_type"] == "code" and "assert" in _text(c["source"]) for c in answers)
