"""Run the tutorial notebooks headless, with their parameters cell overridden.

Every notebook has one code cell tagged ``parameters`` (model name, smoke mode, step
counts). ``run_notebook`` inserts a cell right after it that reassigns the values you pass,
the way papermill does, then executes the notebook top to bottom on a fresh kernel.

    python -m diatool_utils.notebooks notebooks/01_functionary_templating.ipynb --smoke

A notebook can also be the source of a script: ``export_script`` joins its cells tagged
``export`` (code cells, and raw cells for lines that must not run inside the notebook, such
as ``if __name__ == "__main__": main()``) into one Python file.

    python -m diatool_utils.notebooks --export notebooks/05_zero3_multi_gpu.ipynb scripts/train_diatool_dpo.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

SMOKE_PARAMETERS = {"SMOKE": True, "MODEL_NAME": "tiny-random"}


def parameters_cell_index(nb) -> int:
    """Index of the code cell tagged ``parameters``; every notebook must have exactly one."""
    found = [
        i for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if len(found) != 1:
        raise ValueError(f"expected one code cell tagged 'parameters', found {len(found)}")
    return found[0]


def inject_parameters(nb, parameters: dict) -> None:
    """Insert a cell after the parameters cell that overrides its values (papermill's convention)."""
    if not parameters:
        return
    source = "# Parameters injected by diatool_utils.notebooks\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items()
    )
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(parameters_cell_index(nb) + 1, cell)


def run_notebook(path, parameters: dict | None = None, output_path=None, timeout: int = 3600,
                 kernel_name: str = "python3") -> float:
    """Execute a notebook top to bottom; raises ``CellExecutionError`` on the first failing cell.

    Returns the wall time in seconds. With ``output_path`` the executed notebook (outputs
    included) is written there; ``output_path=path`` updates the notebook in place.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, parameters or {})
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    if output_path is not None:
        nbformat.write(nb, output_path)
    return elapsed


def export_script(path) -> str:
    """The text of the script made from the notebook's cells tagged ``export``, in order."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cells = [cell.source.strip() for cell in nb.cells
             if cell.cell_type in ("code", "raw") and "export" in cell.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{path}: no cell is tagged 'export'")
    header = (f"# Generated from {path.parent.name}/{path.name} by\n"
              f"#   python -m diatool_utils.notebooks --export {path.parent.name}/{path.name} <script>\n"
              "# Edit the notebook, not this file: a test checks that the two agree.\n")
    return header + "\n\n\n".join(cells) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--export", nargs=2, type=Path, metavar=("NOTEBOOK", "SCRIPT"),
                        help="write the notebook's cells tagged 'export' to SCRIPT and exit")
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few steps")
    parser.add_argument("--in-place", action="store_true", help="write outputs back into the notebook")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "PYTHON_LITERAL"), help="override one parameter")
    args = parser.parse_args(argv)
    if args.export:
        notebook, script = args.export
        script.write_text(export_script(notebook))
        print(f"{notebook} -> {script}")
        return
    import ast
    parameters = dict(SMOKE_PARAMETERS) if args.smoke else {}
    parameters.update({name: ast.literal_eval(value) for name, value in args.parameter})
    for path in args.notebooks:
        elapsed = run_notebook(path, parameters, output_path=path if args.in_place else None)
        print(f"{path}: ran in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
