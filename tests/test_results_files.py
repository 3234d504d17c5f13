"""The evaluations committed under results/ agree with the judge as it is now.

A change to diatool_utils/judge.py that flips a saved verdict fails here until
`python scripts/rejudge_results.py` has judged the saved replies again (and the README's numbers follow).
"""
import runpy

import pytest

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import EvalReport, rejudge
from diatool_utils.paths import DATA_DIR, REPO_ROOT

SCRIPT = runpy.run_path(str(REPO_ROOT / "scripts" / "rejudge_results.py"))
SAVED = SCRIPT["saved_evaluations"](REPO_ROOT / "results")


@pytest.fixture(scope="module")
def cases():
    return load_dialog_benchmark(DATA_DIR / "eval_dialog.jsonl")


def test_there_are_saved_evaluations_to_check():
    assert len(SAVED) >= 5  # notebook 04's run and the ablations


@pytest.mark.parametrize("path", SAVED, ids=lambda path: str(path.relative_to(REPO_ROOT / "results")))
def test_every_saved_verdict_is_the_current_judges(path, cases, tmp_path):
    for file in [path]:
        saved = EvalReport.read(file)
        again = rejudge(saved, cases)
        stale = [(r.dialog_num, r.serial_num, r.type, r.raw_reply[:60]) for r, a in zip(saved.results, again.results, strict=True)
                 if (r.passed, r.reason) != (a.passed, a.reason)]
        assert not stale, f"{file.name}: {len(stale)} verdicts differ from the current judge, e.g. {stale[0]}"


def test_the_script_rewrites_a_stale_file_and_reports_it(tmp_path):
    source = next(path for path in SAVED if path.suffix == ".jsonl")
    stale = tmp_path / "run" / "eval.jsonl"
    stale.parent.mkdir()
    lines = source.read_text(encoding="utf-8").splitlines()
    flipped = lines[0].replace('"passed": false', '"passed": true') if '"passed": false' in lines[0] \
        else lines[0].replace('"passed": true', '"passed": false')
    stale.write_text("\n".join([flipped, *lines[1:]]) + "\n", encoding="utf-8")
    text = SCRIPT["main"](["--root", str(tmp_path), "--table", str(tmp_path / "table.md")])
    assert "| `run/eval.jsonl` |" in text and "1 evaluations changed; 1 files checked" in text
    assert stale.read_text(encoding="utf-8").splitlines()[0] == lines[0]
    assert sorted(path.name for path in stale.parent.iterdir()) == ["eval.jsonl"]  # no summaries it did not have
    assert (tmp_path / "table.md").read_text(encoding="utf-8") == text
    assert "No verdict or reason changed." in SCRIPT["main"](["--root", str(tmp_path)])
    # a reason the current judge words differently is stale too (the test above would fail on it): rewritten
    reworded = lines[0].replace('"reason": "', '"reason": "old wording: ', 1)
    stale.write_text("\n".join([reworded, *lines[1:]]) + "\n", encoding="utf-8")
    assert "1 evaluations changed" in SCRIPT["main"](["--root", str(tmp_path)])
    assert stale.read_text(encoding="utf-8").splitlines()[0] == lines[0]


def test_results_table_lists_each_model_with_its_scores_and_behaviour(tmp_path):
    table = runpy.run_path(str(REPO_ROOT / "scripts" / "results_table.py"))["main"]
    first = next(path for path in SAVED if path.suffix == ".jsonl")
    report = EvalReport.read(first)
    text = table([f"SFT=first={first}", f"DPO={first}", "--out", str(tmp_path / "t.md")])
    lines = text.splitlines()
    assert lines[0].endswith("| micro avg | macro avg | evaluation s |")
    micro = f"{report.summary['micro_avg']:.3f}"
    assert lines[2].startswith("| SFT=first | ") and micro in lines[2]  # a label may hold '='
    assert lines[3].startswith("| DPO | ")
    assert "| relevance | DPO |" in text and (tmp_path / "t.md").read_text(encoding="utf-8") == text
    with pytest.raises(SystemExit):
        table([str(first)])


def test_results_table_counts_turns_gained_and_lost_against_a_model(tmp_path):
    table = runpy.run_path(str(REPO_ROOT / "scripts" / "results_table.py"))["main"]
    first = next(path for path in SAVED if path.suffix == ".jsonl")
    rows = first.read_text(encoding="utf-8").splitlines()
    flipped = tmp_path / "flipped.jsonl"  # one relevance turn failed, one call turn passed
    relevance = next(k for k, line in enumerate(rows) if '"type": "relevance"' in line and '"passed": true' in line)
    call = next(k for k, line in enumerate(rows) if '"type": "call"' in line and '"passed": false' in line)
    rows[relevance] = rows[relevance].replace('"passed": true', '"passed": false')
    rows[call] = rows[call].replace('"passed": false', '"passed": true')
    flipped.write_text("\n".join(rows) + "\n", encoding="utf-8")
    text = table([f"A={first}", f"B={flipped}", "--against", "A"])
    assert "| B | +1 / -0 | +0 / -0 | +0 / -0 | +0 / -1 |" in text
    with pytest.raises(SystemExit):
        table([f"A={first}", "--against", "C"])

