"""The library, configs and scripts cite docs/*.md pages that exist, and sections those pages have."""

import re

from diatool_utils.paths import REPO_ROOT

FOLDERS = ("diatool_utils", "configs", "scripts", "docs", "experiments", "benchmarks", "notebooks", "results")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".ipynb"}
PAGE = re.compile(r"docs/[\w./-]+\.md")
SECTION = re.compile(r'(docs/[\w./-]+\.md),? "([^"\n]+)"')  # docs/method.md, "The loss"


def cited_files():
    yield REPO_ROOT / "README.md", (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for folder in FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                yield path, path.read_text(encoding="utf-8")


def headings(page):
    return {line.lstrip("#").strip() for line in (REPO_ROOT / page).read_text(encoding="utf-8").splitlines()
            if line.startswith("#")}


def test_the_method_page_exists_and_is_cited():
    cited = {page for _, text in cited_files() for page in PAGE.findall(text)}
    assert "docs/method.md" in cited


def test_every_cited_page_exists():
    missing = [f"{path.relative_to(REPO_ROOT)} cites {page}" for path, text in cited_files()
               for page in PAGE.findall(text) if not (REPO_ROOT / page).is_file()]
    assert not missing, missing


def test_every_cited_section_is_a_heading_of_its_page():
    missing = [f"{path.relative_to(REPO_ROOT)} cites {page}, {section!r}" for path, text in cited_files()
               for page, section in SECTION.findall(text)
               if (REPO_ROOT / page).is_file() and section not in headings(page)]
    assert not missing, missing


def test_nothing_cites_the_old_reference_file():
    citing = [str(path.relative_to(REPO_ROOT)) for path, text in cited_files() if "REFERENCE.md" in text]
    assert not citing, citing
