"""Every notebook runs top to bottom in smoke mode; committed notebooks show a real run.

New notebooks are picked up automatically: anything matching notebooks/[0-9]*.ipynb.
"""

import json

import nbformat
import pytest

from diatool_utils.notebooks import SMOKE_PARAMETERS, inject_parameters, parameters_cell_index, run_notebook
from diatool_utils.paths import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
ids = [path.name for path in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    run_notebook(path, SMOKE_PARAMETERS, output_path=tmp_path / path.name, timeout=900)
    executed = nbformat.read(tmp_path / path.name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


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
