"""The library called directly on a model that ZeRO-3 partitioned while loading (not only through the script).

Under an accelerate ZeRO-3 launch, transformers partitions weights inside from_pretrained: each rank holds a
slice and the full matrix is empty until gathered. The check runs in a fresh process (tests/zero3_partitioned_check.py)
because it starts a process group and registers a DeepSpeed config with transformers.
"""

import json
import socket
import subprocess
import sys

import pytest

from diatool_utils.paths import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    out = tmp_path_factory.mktemp("zero3_partitioned")
    run = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "zero3_partitioned_check.py"), str(_free_port()),
                          str(out)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_model_really_is_partitioned(seen):
    assert seen["partitioned"] and seen["rows_before"] == 49152


def test_functionary_rows_are_the_mean_embedding_not_nan(seen):
    assert seen["rows_after"] == 49156
    assert seen["new_rows_finite"] and seen["new_rows_are_the_mean"]


def test_trainer_refuses_to_copy_a_partitioned_model_into_the_reference(seen):
    assert seen["trainer"].startswith("the model's weights are already partitioned by DeepSpeed ZeRO-3")
