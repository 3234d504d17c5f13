"""Every notebook runs top to bottom in smoke mode; committed notebooks show a real run.

The smoke runs go through the runner as a user starts it (``python -m diatool_utils.notebooks``), and
its console output is held to what ``make demo`` promises: a line per code cell, the long stages'
progress, and no warning a user cannot act on.

New notebooks are picked up automatically: anything matching notebooks/[0-9]*.ipynb.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import nbformat
import pytest

from diatool_utils.notebooks import (
    SMOKE_PARAMETERS,
    cell_title,
    code_cell_indices,
    inject_parameters,
    notebook_label,
    parameters_cell_index,
    run_notebook,
    summary_table,
)
from diatool_utils.paths import NOTEBOOKS_DIR, REPO_ROOT
from diatool_utils.progress import PROGRESS_MIME

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
ids = [path.name for path in NOTEBOOKS]
UNACTIONABLE = re.compile(r"WARNING|Warning")  # kernel, library and Python warnings all spell it so


@dataclass
class ConsoleRun:
    returncode: int
    lines: list[str]  # what the console showed, stdout and stderr as they came
    executed: nbformat.NotebookNode | None  # the notebook as the runner wrote it


def run_runner(*args, cwd=REPO_ROOT, timeout=900) -> subprocess.CompletedProcess:
    """``python -m diatool_utils.notebooks ARGS`` with this checkout's package, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "diatool_utils.notebooks", *map(str, args)], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The runner's smoke run of a notebook (console and executed notebook), run once per notebook."""
    runs = {}

    def run(path) -> ConsoleRun:
        if path not in runs:
            out = tmp_path_factory.mktemp(path.stem)
            result = run_runner(path, "--smoke", "--out-dir", out)
            executed = nbformat.read(out / path.name, as_version=4) if (out / path.name).is_file() else None
            runs[path] = ConsoleRun(result.returncode, result.stdout.splitlines(), executed)
        return runs[path]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_in_smoke_mode(path, smoke_run):
    run = smoke_run(path)
    assert run.returncode == 0, "\n".join(run.lines[-40:])
    errors = [o for c in run.executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_the_runner_prints_a_progress_line_as_each_code_cell_starts(path, smoke_run):
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, SMOKE_PARAMETERS)
    total = len(code_cell_indices(nb))
    label = notebook_label(path)
    for number in range(1, total + 1):
        pattern = re.compile(rf"^{label} cell +{number}/{total}  \d+:\d\d:\d\d  ")
        assert any(pattern.match(line) for line in smoke_run(path).lines), f"no line for {label} cell {number}/{total}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_the_runner_shows_no_warning_a_user_cannot_act_on(path, smoke_run):
    warnings = [line for line in smoke_run(path).lines if UNACTIONABLE.search(line)]
    assert not warnings, f"{path.name}: silence these at their source:\n" + "\n".join(warnings)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_progress_lines_stay_out_of_the_executed_notebook(path, smoke_run):
    for cell in smoke_run(path).executed.cells:
        for output in cell.get("outputs", []):
            assert PROGRESS_MIME not in output.get("data", {})
            assert "s/step" not in output.get("text", "") and "s/turn" not in output.get("text", "")


@pytest.mark.slow
def test_notebook_04_streams_the_progress_of_sft_dpo_and_evaluation(smoke_run):
    lines = smoke_run(NOTEBOOKS_DIR / "04_qlora_single_gpu.ipynb").lines
    # smoke mode: 2 SFT steps, 2 DPO steps, 8 judged turns per evaluation (SFT model, then DPO model)
    for stage, unit, total in [("SFT", "step", 2), ("DiaTool-DPO", "step", 2), ("evaluation", "turn", 8)]:
        running = [line for line in lines if re.match(rf"^    {stage}: {unit} \d+/{total}, [\d.]+ s/{unit}, ", line)]
        done = [line for line in lines if re.match(rf"^    {stage}: {total} {unit}s in \d+:\d\d:\d\d \(", line)]
        # the evaluation writes a batch of dialogues at a time: 8 turns are one batch, with no line before the last
        assert (running or stage == "evaluation") and len(done) == (2 if stage == "evaluation" else 1), (stage, lines)
    starts = {stage: next(i for i, line in enumerate(lines) if line.startswith(f"    {stage}: "))
              for stage in ("SFT", "DiaTool-DPO")}
    def cell_before(index):  # the cell line a stage's lines follow (the reference pass may come first in DPO's cell)
        return next(line for line in reversed(lines[:index]) if line.startswith("04 cell"))

    assert "train_sft" in cell_before(starts["SFT"]) and "train_dpo" in cell_before(starts["DiaTool-DPO"])


def test_a_failing_cell_leaves_the_notebook_as_far_as_it_ran_and_a_nonzero_exit(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('this cell ran')"),
        nbformat.v4.new_markdown_cell("## The broken section"),
        nbformat.v4.new_code_cell("raise ValueError('the third cell fails')"),
        nbformat.v4.new_code_cell("print('never reached')"),
    ])
    nbformat.write(nb, tmp_path / "09_failing.ipynb")
    result = run_runner(tmp_path / "09_failing.ipynb", "--out-dir", tmp_path / "out", cwd=tmp_path, timeout=120)
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[-1] == ("09_failing.ipynb: code cell 3/4 failed with ValueError: the third cell fails; the notebook "
                         "as far as it ran, this error included, is in out/09_failing.ipynb")
    assert any(line.startswith("09 cell 3/4 ") for line in lines)
    assert not any(line.startswith("09 cell 4/4 ") for line in lines)
    saved = nbformat.read(tmp_path / "out" / "09_failing.ipynb", as_version=4)
    outputs = [cell.get("outputs") for cell in saved.cells if cell.cell_type == "code"]
    assert outputs[1] == [nbformat.v4.new_output("stream", name="stdout", text="this cell ran\n")]
    assert [(o.output_type, o.ename, o.evalue) for o in outputs[2]] == [("error", "ValueError", "the third cell fails")]
    assert outputs[3] == []


def test_a_cell_line_names_its_section_and_first_line():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 04 · The notebook's title"),
        nbformat.v4.new_code_cell("\nimport torch\nimport numpy"),
        nbformat.v4.new_markdown_cell("Some prose.\n\n## 2. SFT on assistant turns\n\nMore prose."),
        nbformat.v4.new_code_cell("sft = pipeline.train_sft(recipe, run_dir, reuse=REUSE)"),
        nbformat.v4.new_markdown_cell("Prose without a heading."),
        nbformat.v4.new_code_cell("# " + "a long comment " * 10),
    ])
    assert cell_title(nb, 1) == "import torch"
    assert cell_title(nb, 3) == "2. SFT on assistant turns | sft = pipeline.train_sft(recipe, run_dir, reuse=REUSE)"
    assert cell_title(nb, 5, width=60) == "2. SFT on assistant turns | # a long comment a long comment…"
    assert notebook_label("notebooks/04_qlora_single_gpu.ipynb") == "04" and notebook_label("x.ipynb") == "x"


def test_the_closing_summary_has_a_row_per_notebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = summary_table([("02_pairs.ipynb", 5.2, tmp_path / "out" / "02_pairs.ipynb", []),
                           ("04_qlora.ipynb", 2351, tmp_path / "04_qlora.ipynb", [tmp_path / "runs" / "04_qlora"])])
    assert table.splitlines() == [
        "notebook        wall time  outputs             run folder",
        "02_pairs.ipynb  0:00:05    out/02_pairs.ipynb  -",
        "04_qlora.ipynb  0:39:11    04_qlora.ipynb      runs/04_qlora",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_notebook_shows_a_clean_real_run(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in code), f"{path.name}: commit it with outputs of a real run"
    for cell in code:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"{path.name}: a committed cell shows a traceback"
        assert "injected-parameters" not in cell.get("metadata", {}).get("tags", []), (
            f"{path.name}: committed from a run with injected parameters (smoke mode?); rerun without them"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_has_colab_cell_and_one_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    params = nb.cells[parameters_cell_index(nb)].source
    assert "MODEL_NAME" in params and "SMOKE" in params
    assert any('"google.colab" in sys.modules' in c.source for c in nb.cells if c.cell_type == "code")


def test_injected_parameters_follow_the_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(SMOKE)"),
    ])
    inject_parameters(nb, {"SMOKE": True, "MODEL_NAME": "tiny-random"})
    assert nb.cells[2].source.splitlines()[1:] == ["SMOKE = True", "MODEL_NAME = 'tiny-random'"]
    assert nb.cells[3].source == "print(SMOKE)"


def test_a_notebook_without_parameters_cell_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="tagged 'parameters'"):
        inject_parameters(nb, {"SMOKE": True})


def test_a_failing_cell_fails_the_run(tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("assert not SMOKE, 'smoke mode reached this cell'"),
    ])
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    run_notebook(path)  # SMOKE stays False: runs
    with pytest.raises(CellExecutionError, match="smoke mode reached this cell"):
        run_notebook(path, {"SMOKE": True})


def test_export_joins_cells_tagged_export_in_order(tmp_path):
    from diatool_utils.notebooks import export_script

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os", metadata={"tags": ["export"]}),
        nbformat.v4.new_code_cell("print('only in the notebook')"),
        nbformat.v4.new_code_cell("def main():\n    print(os.getcwd())", metadata={"tags": ["export"]}),
        nbformat.v4.new_raw_cell('if __name__ == "__main__":\n    main()', metadata={"tags": ["export"]}),
    ])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    script = export_script(path)
    body = script.split("agree.\n", 1)[1]
    assert body == 'import os\n\n\ndef main():\n    print(os.getcwd())\n\n\nif __name__ == "__main__":\n    main()\n'
    assert "only in the notebook" not in script
    compile(script, "script.py", "exec")
