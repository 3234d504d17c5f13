"""Run the tutorial notebooks headless, with their parameters cell overridden.

Every notebook has one code cell tagged ``parameters`` (model name, smoke mode, step
counts). ``run_notebook`` inserts a cell right after it that reassigns the values you pass,
the way papermill does, then executes the notebook top to bottom on a fresh kernel.

    python -m diatool_utils.notebooks notebooks/01_functionary_templating.ipynb --smoke

While a notebook runs, the console shows a line as each code cell starts (``04 cell 7/19``, the
time since the notebook started, the section and the cell's first line), and the long stages
(SFT, DiaTool-DPO, evaluation) write their progress in between (:mod:`diatool_utils.progress`).
Those lines stay out of the executed notebook, which goes to ``runs/notebooks/`` (``--in-place``:
back into the notebook file). If a cell fails, the notebook is still written, as far as it ran and
with the error, and the run stops there, naming the cell and that file. At the end a table gives
each notebook's wall time, its executed copy and the run folders it wrote under ``runs/`` or ``outputs/``.

A notebook can also be the source of a script: ``export_script`` joins its cells tagged
``export`` (code cells, and raw cells for lines that must not run inside the notebook, such
as ``if __name__ == "__main__": main()``) into one Python file.

    python -m diatool_utils.notebooks --export notebooks/05_zero3_multi_gpu.ipynb scripts/train_diatool_dpo.py
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

from .paths import REPO_ROOT
from .progress import PROGRESS_ENV, PROGRESS_MIME, clock

SMOKE_PARAMETERS = {"SMOKE": True, "MODEL_NAME": "tiny-random"}
OUT_DIR = REPO_ROOT / "runs" / "notebooks"  # executed copies, unless --in-place or --out-dir
RUN_ROOTS = (REPO_ROOT / "runs", REPO_ROOT / "outputs")  # where notebooks keep their run folders


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


# ------------------------------------------------------------------ what the console shows


def notebook_label(path) -> str:
    """``04`` for ``04_qlora_single_gpu.ipynb``: the number a notebook is known by (else its name)."""
    path = Path(path)
    number = re.match(r"\d+", path.name)
    return number.group() if number else path.stem


def cell_title(nb, index: int, width: int = 90) -> str:
    """The section a cell sits in (the nearest ``##`` heading above it) and the cell's first line, cut to ``width``."""
    heading = ""  # sections are "## " headings; the notebook's "# " title names no section
    for cell in reversed(nb.cells[:index]):
        headings = [line for line in cell.source.splitlines() if line.startswith("##")]
        if cell.cell_type == "markdown" and headings:
            heading = headings[-1].lstrip("#").strip()
            break
    first_line = next((line.strip() for line in nb.cells[index].source.splitlines() if line.strip()), "")
    if len(heading) > 36:
        heading = heading[:35] + "…"
    text = f"{heading} | {first_line}" if heading else first_line
    return text if len(text) <= width else text[: width - 1] + "…"


def code_cell_indices(nb) -> list[int]:
    """The cells nbclient runs: code cells with something in them."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.source.strip()]


class ConsoleNotebookClient(NotebookClient):
    """A NotebookClient that keeps the console informed while the notebook runs.

    A line as each code cell starts; and the progress lines the stages send from inside the kernel
    (display messages of type ``PROGRESS_MIME``), printed and left out of the notebook.
    """

    def __init__(self, nb, label: str, echo=print, **kwargs):
        super().__init__(nb, on_cell_execute=self._cell_starts, **kwargs)
        self.label, self.echo = label, echo
        self.code_cells = code_cell_indices(nb)
        self.started = time.perf_counter()
        self.current = None  # "code cell 7/19", the cell running now

    def _cell_starts(self, cell, cell_index: int) -> None:
        number = self.code_cells.index(cell_index) + 1
        total = len(self.code_cells)
        self.current = f"code cell {number}/{total}"
        elapsed = clock(time.perf_counter() - self.started)
        self.echo(f"{self.label} cell {number:>{len(str(total))}}/{total}  {elapsed}  {cell_title(self.nb, cell_index)}")

    def output(self, outs, msg, display_id, cell_index):
        data = msg["content"].get("data") or {}
        if msg["msg_type"] == "display_data" and PROGRESS_MIME in data:
            self.echo(f"    {data[PROGRESS_MIME]['line']}")
            return None
        return super().output(outs, msg, display_id, cell_index)


def kernel_sockets(folder) -> Config:
    """Kernel configuration that connects through socket files in ``folder`` instead of TCP ports.

    Over TCP, ipykernel warns at every start that its traffic goes unencrypted to anyone who can
    reach the port. zmq's ``ipc`` transport uses local socket files: nothing leaves this machine,
    and the folder is private to this user, so the cause of that warning is gone. Windows has no
    ipc transport; there the kernel keeps TCP (and its warning).
    """
    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})


# ------------------------------------------------------------------ running one notebook


class CellFailed(CellExecutionError):
    """A notebook stopped at a cell: which cell, why, and where the notebook as far as it ran was written."""

    def __init__(self, notebook, cell: str | None, error: Exception, saved_to=None):
        traceback = getattr(error, "traceback", "") or f"{type(error).__name__}: {error}"
        super().__init__(traceback, getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error)))
        self.notebook, self.cell, self.saved_to = Path(notebook), cell, saved_to

    def summary(self) -> str:
        """One line: the notebook, the cell, the error and where the notebook as far as it ran is."""
        where = self.cell or "starting the kernel"
        error = f"{self.ename}: {self.evalue}".splitlines()[0]
        error = error if len(error) <= 200 else error[:199] + "…"
        saved = (f"the notebook as far as it ran, this error included, is in {shown(self.saved_to)}"
                 if self.saved_to else "the notebook was not saved (no output path)")
        return f"{self.notebook.name}: {where} failed with {error}; {saved}"

    def __str__(self) -> str:
        return f"{self.summary()}\n{self.traceback}"


def run_notebook(path, parameters: dict | None = None, output_path=None, timeout: int = 3600,
                 kernel_name: str = "python3", echo=print) -> float:
    """Execute a notebook top to bottom and return its wall time in seconds.

    With ``output_path`` the executed notebook (outputs included) is written there;
    ``output_path=path`` updates the notebook in place. ``echo`` gets the console lines: one per code
    cell, and the stages' progress (their kernel runs with ``DIATOOL_PROGRESS=console``).

    A failing cell raises ``CellFailed`` (a ``CellExecutionError``) after the notebook as far as it
    ran, the error included, was written to ``output_path``; so does a dead kernel or a cell past
    ``timeout`` seconds. An interrupted run (Ctrl-C) is written too.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, parameters or {})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="diatool-kernel-") as sockets:
        client = ConsoleNotebookClient(nb, notebook_label(path), echo, timeout=timeout, kernel_name=kernel_name,
                                       config=kernel_sockets(sockets),
                                       resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute(env={**os.environ, PROGRESS_ENV: "console"})
        except BaseException as error:
            if output_path is not None:
                nbformat.write(nb, output_path)
            if isinstance(error, Exception):
                raise CellFailed(path, client.current, error, output_path) from error
            raise
    elapsed = time.perf_counter() - start
    if output_path is not None:
        nbformat.write(nb, output_path)
    return elapsed


def folders_written_since(since: float, roots=RUN_ROOTS, skip=()) -> list[Path]:
    """The folders directly under ``roots`` with anything in them written at or after ``since`` (``time.time()``)."""
    skip = {Path(folder).resolve() for folder in skip}
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.resolve() not in skip):
            if any(entry.stat().st_mtime >= since for entry in [folder, *folder.rglob("*")]):
                found.append(folder)
    return found


def shown(path) -> str:
    """A path as short as it can be said: relative to the current folder when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary_table(rows: list[tuple[str, float | None, Path | None, list[Path]]]) -> str:
    """Notebook, wall time, executed copy and run folders, one line per (name, seconds, output, folders)."""
    lines = [("notebook", "wall time", "outputs", "run folder")]
    for name, seconds, output, folders in rows:
        lines.append((name, "failed" if seconds is None else clock(seconds), shown(output) if output else "-",
                      ", ".join(shown(folder) for folder in folders) or "-"))
    widths = [max(len(line[column]) for line in lines) for column in range(3)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)), line[3]])
                     for line in lines)


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
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help=f"where executed notebooks go without --in-place (default: {shown(OUT_DIR)})")
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
    echo = lambda line: print(line, flush=True)  # noqa: E731 (lines appear as they happen, even through a pipe)
    rows = []
    for path in args.notebooks:
        output = path if args.in_place else args.out_dir / path.name
        output.parent.mkdir(parents=True, exist_ok=True)
        since = time.time()
        try:
            elapsed = run_notebook(path, parameters, output_path=output, echo=echo)
        except CellFailed as failure:
            print(failure.traceback, file=sys.stderr)
            rows.append((path.name, None, output, folders_written_since(since, skip=[args.out_dir])))
            print(f"\n{summary_table(rows)}\n", flush=True)
            sys.exit(failure.summary())
        except KeyboardInterrupt:
            sys.exit(f"\n{path.name}: stopped; the notebook as far as it ran is in {shown(output)}")
        rows.append((path.name, elapsed, output, folders_written_since(since, skip=[args.out_dir])))
        echo(f"{path.name}: ran in {clock(elapsed)}; executed notebook in {shown(output)}")
    if rows:
        echo(f"\n{summary_table(rows)}")


if __name__ == "__main__":
    main()
