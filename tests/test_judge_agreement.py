"""The rule judge against hand labels: at least 95 % agreement per output type, in each language."""

import json
import re
from pathlib import Path

import pytest

from diatool_utils.judge_agreement import (
    LANGUAGES,
    LabelledSetError,
    agreement_rows,
    agreement_table,
    disagreements,
    every_missing_agreement,
    judge_labelled,
    load_labelled,
)
from diatool_utils.paths import REPO_ROOT

LABELS = REPO_ROOT / "tests" / "data" / "judge_agreement" / "replies.jsonl"


@pytest.fixture(scope="module")
def judged():
    return judge_labelled(load_labelled(LABELS), root=REPO_ROOT)


def test_the_labelled_set_covers_every_type_in_both_languages(judged):
    rows = agreement_rows(judged)
    assert len(judged) >= 300
    assert {(row["type"], row["lang"]) for row in rows} == {
        (kind, lang) for kind in ("call", "completion", "slot", "relevance") for lang in LANGUAGES}
    assert all(row["replies"] >= 30 for row in rows)


def test_the_rule_judge_agrees_with_the_labels_on_95_percent_of_each_type_in_each_language(judged):
    low = {(row["type"], row["lang"]): round(row["agreement"], 3) for row in agreement_rows(judged)
           if row["agreement"] < 0.95}
    assert not low, f"agreement under 0.95: {low}\n" + "\n".join(disagreements(judged))


def test_the_stricter_slot_figure_agrees_with_the_labels_too(judged):
    for lang in LANGUAGES:
        agree, total = every_missing_agreement(judged, lang)
        assert agree / total >= 0.95, (lang, agree, total)


def test_precision_and_recall_are_counted_from_the_verdicts():
    def judge(case, parsed):  # passes every reply that has text
        return bool(parsed.content), "stand-in"

    some = [r for r in load_labelled(LABELS) if r.type_of_output == "call" and r.lang == "en"]
    [row] = agreement_rows(judge_labelled(some, root=REPO_ROOT, judge=judge))
    with_text = [r for r in some if r.reply.get("content")]
    passed_by_label = [r for r in some if r.label]
    assert row["precision"] == pytest.approx(sum(r.label for r in with_text) / len(with_text))
    assert row["recall"] == pytest.approx(sum(bool(r.reply.get("content")) for r in passed_by_label)
                                          / len(passed_by_label))
    assert row["agreement"] == pytest.approx(sum(bool(r.reply.get("content")) == r.label for r in some) / len(some))


def test_the_table_has_a_row_per_type_and_language_and_the_slot_figure(judged):
    table = agreement_table(judged)
    assert table.splitlines()[0] == "| type | lang | replies | agreement | precision (pass) | recall (pass) |"
    assert "| completion | ko |" in table and "| slot: asks for every missing value | en |" in table


def _write(tmp_path, rows):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "x-1", "lang": "en", "cases": "tests/data/dialog_small.jsonl", "dialog_num": 1, "serial_num": 3,
        "type_of_output": "relevance", "reply": {"content": "Sorry, I can't book flights."}, "label": "pass",
        "reason": "declines"}


@pytest.mark.parametrize(("change", "message"), [
    ({"label": "ok"}, "line 2: label 'ok' is not 'pass' or 'fail'"),
    ({"lang": "fr"}, "line 2: lang 'fr' is not one of"),
    ({"type_of_output": "slot", "serial_num": 4}, "line 2: a slot reply needs 'asks_every_missing'"),
    ({"drop": "reason"}, "line 2: missing key(s) ['reason']"),
])
def test_a_bad_labelled_line_is_an_error_naming_its_line(tmp_path, change, message):
    bad = {k: v for k, v in (GOOD | change).items() if k not in (change.get("drop"), "drop")}
    with pytest.raises(LabelledSetError, match=re.escape(message)):
        load_labelled(_write(tmp_path, [GOOD, bad]))


def test_a_labelled_reply_for_a_turn_that_does_not_exist_is_an_error(tmp_path):
    wrong_type = GOOD | {"type_of_output": "call"}
    with pytest.raises(LabelledSetError, match="x-1: turn 3 of tests/data/dialog_small.jsonl is a relevance turn"):
        judge_labelled(load_labelled(_write(tmp_path, [wrong_type])), root=REPO_ROOT)
    missing = GOOD | {"serial_num": 99}
    with pytest.raises(LabelledSetError, match="has no dialog 1 turn 99"):
        judge_labelled(load_labelled(_write(tmp_path, [missing])), root=REPO_ROOT)


def test_an_empty_labelled_set_is_an_error(tmp_path):
    path = Path(tmp_path / "empty.jsonl")
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(LabelledSetError, match="no labelled reply"):
        load_labelled(path)
