"""The evaluation harness: loading the benchmark, generating, scoring, reporting."""

import json
from pathlib import Path

import pytest
import torch

from diatool_utils import evaluation, templating
from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import (
    EvalReport,
    Generation,
    behaviour_table,
    build_prompt,
    comparison_table,
    evaluate,
    generate_replies,
    generate_replies_sharing_prefix,
    gold_generation,
    plot_accuracy,
    rejudge,
    score_replies,
)

SMALL = Path(__file__).parent / "data" / "dialog_small.jsonl"


# ------------------------------------------------------------------------------ loading


def test_the_small_benchmark_gives_one_case_per_turn():
    cases = load_dialog_benchmark(SMALL)
    assert [(c.dialog_num, c.serial_num, c.type_of_output) for c in cases] == [
        (1, 1, "call"),
        (1, 2, "completion"),
        (1, 3, "relevance"),
        (2, 4, "slot"),
        (2, 5, "slot"),
        (2, 6, "call"),
    ]
    assert cases[0].line == 1 and cases[3].line == 2


def test_slot_turns_take_missing_arguments_from_the_row_or_infer_them_from_the_next_call():
    cases = load_dialog_benchmark(SMALL)
    listed, inferred = cases[3], cases[4]
    assert (listed.missing_arguments, listed.missing_source) == (["recipient_email", "subject"], "row")
    # The user already wrote bob@example.com, so only the subject is still missing.
    assert (inferred.missing_arguments, inferred.missing_source) == (["subject"], "inferred")


# ------------------------------------------------------------------------ scoring replies


def test_the_ground_truth_itself_passes_every_rule():
    cases = load_dialog_benchmark(SMALL)
    generations = [gold_generation(c) for c in cases]
    assert all(g.text.endswith(templating.STOP_TOKEN) for g in generations)
    results = score_replies(cases, generations)
    assert [(r.passed, r.reason) for r in results if not r.passed] == []


STOP = templating.STOP_TOKEN
SCRIPTED = [  # (generated text, finish) for the six cases of dialog_small.jsonl
    # call (Paris): an acceptable alternative value
    ('get_weather\n<|content|>{"city": "paris, france"}' + STOP, "stop"),
    # completion: leaves out "cloudy"
    ("all\n<|content|>It is 18 degrees in Paris." + STOP, "stop"),
    # relevance: claims to have booked
    ("all\n<|content|>I have booked your flight to Paris." + STOP, "stop"),
    # slot (row): asks for both values
    ("all\n<|content|>Sure! What is the recipient's address and the subject?" + STOP, "stop"),
    # slot (inferred): cut off before <|stop|>
    ("all\n<|content|>What subject would", "length"),
    # call: malformed JSON arguments
    ('send_email\n<|content|>{"recipient_email": "bob@example.com", "subject": ' + STOP, "stop"),
]


@pytest.fixture
def scripted_report(monkeypatch, tmp_path, tiny_model, tiny_tokenizer):
    """evaluate() with generation replaced by the scripted replies above."""

    def fake_generate(model, tokenizer, prompts, *, batch_size, max_new_tokens, show_progress):
        assert len(prompts) == len(SCRIPTED) and all(p.endswith(templating.ASSISTANT_PREFIX) for p in prompts)
        return [Generation(text, finish, num_tokens=10) for text, finish in SCRIPTED]

    monkeypatch.setattr(evaluation, "generate_replies", fake_generate)
    return evaluate(
        tiny_model, tiny_tokenizer, SMALL, output_path=tmp_path / "out" / "cases.jsonl", share_prefix=False
    )


def test_scripted_replies_are_judged_one_by_one(scripted_report):
    verdicts = [(r.serial_num, r.passed) for r in scripted_report.results]
    assert verdicts == [(1, True), (2, False), (3, False), (4, True), (5, False), (6, False)]
    reasons = [r.reason for r in scripted_report.results]
    assert "'cloudy'" in reasons[1]
    assert reasons[2].startswith("claims an action")
    assert reasons[4] == "cut off: no <|stop|> within max_new_tokens=96"
    assert reasons[5].startswith("malformed reply: the arguments of 'send_email' are not valid JSON")


def test_summary_counts_per_type_with_micro_and_macro_averages(scripted_report):
    summary = scripted_report.summary
    assert {k: (v["passed"], v["total"]) for k, v in summary["per_type"].items()} == {
        "call": (1, 2),
        "completion": (0, 1),
        "slot": (1, 2),
        "relevance": (0, 1),
    }
    assert summary["micro_avg"] == pytest.approx(2 / 6)
    assert summary["macro_avg"] == pytest.approx((0.5 + 0 + 0.5 + 0) / 4)
    assert summary["not_stopped"] == 1


def test_the_report_is_written_as_jsonl_and_markdown(scripted_report, tmp_path):
    lines = (tmp_path / "out" / "cases.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 6
    assert set(rows[0]) >= {
        "dialog_num",
        "serial_num",
        "type",
        "prompt",
        "raw_reply",
        "parsed",
        "passed",
        "reason",
    }
    assert rows[0]["parsed"]["tool_calls"] == [
        {"name": "get_weather", "arguments": {"city": "paris, france"}}
    ]
    assert rows[0]["prompt"].endswith(templating.ASSISTANT_PREFIX)
    markdown = (tmp_path / "out" / "cases.summary.md").read_text()
    assert markdown == (
        "| type | passed | total | accuracy |\n"
        "|---|---:|---:|---:|\n"
        "| call | 1 | 2 | 0.500 |\n"
        "| completion | 0 | 1 | 0.000 |\n"
        "| slot | 1 | 2 | 0.500 |\n"
        "| relevance | 0 | 1 | 0.000 |\n"
        "| micro avg | 2 | 6 | 0.333 |\n"
        "| macro avg | | | 0.250 |\n"
        "\n"
        "Slot replies that asked for every missing value: 1 of 2. Completion turns with nothing checked "
        "(the reference reports no tool-result value): 0 of 1.\n"
    )
    saved = json.loads((tmp_path / "out" / "cases.summary.json").read_text())
    assert saved["summary"] == scripted_report.summary


def test_a_reply_ended_by_eos_instead_of_stop_fails_before_the_judge():
    cases = load_dialog_benchmark(SMALL)[2:3]  # relevance: "Sorry, I can't" would pass the rules
    [result] = score_replies(cases, [Generation("all\n<|content|>Sorry, I can't book flights.", "eos", 9)])
    assert (result.passed, result.reason) == (False, "ended with the eos token instead of <|stop|>")
    assert result.parsed["content"] == "Sorry, I can't book flights."


def test_a_custom_judge_replaces_the_rules_and_its_errors_fail_the_case():
    cases = load_dialog_benchmark(SMALL)[:2]
    generations = [Generation("all\n<|content|>hi" + STOP, "stop", num_tokens=3)] * 2
    always = score_replies(cases, generations, judge=lambda case, parsed: (True, "LLM says fine"))
    assert [(r.passed, r.reason) for r in always] == [(True, "LLM says fine")] * 2

    def broken(case, parsed):
        raise TimeoutError("API down")

    failed = score_replies(cases, generations, judge=broken)
    assert all(not r.passed and r.reason == "judge error: TimeoutError('API down')" for r in failed)
    assert EvalReport(failed).summary["judge_errors"] == 2


def test_comparison_table_and_chart_show_every_model(scripted_report):
    table = comparison_table({"SFT": scripted_report, "DPO": scripted_report.summary})
    assert table.splitlines()[0] == "| model | call | completion | slot | relevance | micro avg | macro avg |"
    assert table.splitlines()[2] == "| SFT | 0.500 | 0.000 | 0.500 | 0.000 | 0.333 | 0.250 |"
    figure = plot_accuracy({"SFT": scripted_report, "DPO": scripted_report})
    assert len(figure.axes[0].patches) == 2 * 6


# --------------------------------------------------------------------------- generation


class ScriptedModel(torch.nn.Module):
    """A stand-in model whose generate() appends a fixed continuation per prompt (by length)."""

    def __init__(self, continuations):
        super().__init__()
        self.continuations = continuations  # prompt length in tokens -> list of new token ids
        self.seen = []

    @property
    def device(self):
        return torch.device("cpu")

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        self.seen.append(attention_mask.clone())
        rows = []
        for ids, mask in zip(input_ids, attention_mask, strict=True):
            new = self.continuations[int(mask.sum())][:max_new_tokens]
            rows.append(torch.cat([ids, torch.tensor(new + [0] * (max_new_tokens - len(new)))]))
        return torch.stack(rows)


def test_generate_replies_stops_at_stop_flags_cut_offs_and_keeps_the_order(tiny_model, tiny_tokenizer):
    templating.add_functionary_tokens(tiny_tokenizer, tiny_model)
    stop = tiny_tokenizer.convert_tokens_to_ids(STOP)
    eos = tiny_tokenizer.eos_token_id
    hello = tiny_tokenizer("hello", add_special_tokens=False).input_ids
    prompts = ["a much longer prompt than the other two", "short", "medium prompt here"]
    lengths = [len(tiny_tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
    assert len(set(lengths)) == 3
    model = ScriptedModel(
        {lengths[0]: hello + [stop, 5, 5], lengths[1]: hello * 10, lengths[2]: hello + [eos, 7]}
    )
    replies = generate_replies(
        model, tiny_tokenizer, prompts, batch_size=3, max_new_tokens=6, show_progress=False
    )
    assert replies == [
        Generation("hello" + STOP, "stop", len(hello) + 1, prompt_tokens=lengths[0]),
        Generation(tiny_tokenizer.decode((hello * 10)[:6]), "length", 6, prompt_tokens=lengths[1]),
        Generation("hello", "eos", len(hello), prompt_tokens=lengths[2]),
    ]
    assert model.seen[0][0, 0] == 0, "the shortest prompt comes first and is padded on the left"
    assert tiny_tokenizer.padding_side == "right", "the tokenizer's padding side is restored"


def test_sharing_each_dialogs_cached_prefix_gives_the_same_replies_reading_fewer_tokens(
    tiny_model, tiny_tokenizer
):
    templating.add_functionary_tokens(tiny_tokenizer, tiny_model)
    prompts = [build_prompt(case) for case in load_dialog_benchmark(SMALL)]
    tokens_read = []
    tiny_model.model.register_forward_pre_hook(
        lambda module, args, kwargs: tokens_read.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    one_by_one = generate_replies(
        tiny_model, tiny_tokenizer, prompts, batch_size=1, max_new_tokens=5, show_progress=False
    )
    read_one_by_one, tokens_read[:] = sum(tokens_read), []
    shared = generate_replies_sharing_prefix(
        tiny_model, tiny_tokenizer, prompts, max_new_tokens=5, show_progress=False
    )
    assert shared == one_by_one
    # Two dialogs of three turns: each history is read about once instead of three times.
    assert sum(tokens_read) < read_one_by_one / 1.8


def test_generate_replies_needs_the_functionary_tokens(tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match=r"add_functionary_tokens"):
        generate_replies(tiny_model, tiny_tokenizer, ["x"], show_progress=False)


def test_the_tiny_random_model_end_to_end_is_judged_not_crashed(tiny_model, tiny_tokenizer, tmp_path):
    templating.add_functionary_tokens(tiny_tokenizer, tiny_model)
    report = evaluate(
        tiny_model,
        tiny_tokenizer,
        SMALL,
        batch_size=4,
        max_new_tokens=8,
        output_path=tmp_path / "c.jsonl",
        show_progress=False,
    )
    assert report.summary["total"] == 6
    assert all(isinstance(r.passed, bool) and r.reason for r in report.results)
    assert report.timing["generated_tokens"] > 0 and report.timing["generation_seconds"] > 0
    assert report.timing["prompt_tokens"] > 6 * 100  # the tools' TypeScript alone is longer
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 6


def test_command_line_writes_results(tmp_path):
    report = evaluation.main(
        [
            "--model",
            "tiny-random",
            "--data",
            str(SMALL),
            "--out",
            str(tmp_path / "res"),
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
        ]
    )
    assert report.summary["total"] == 2
    assert {p.name for p in (tmp_path / "res").iterdir()} == {
        "cases.jsonl",
        "cases.summary.json",
        "cases.summary.md",
        "accuracy.png",
    }


def test_behaviour_table_counts_what_each_reply_did_per_turn_type(scripted_report):
    rows = behaviour_table({"SFT": scripted_report}).splitlines()
    assert rows[0] == "| turn type | model | call | ask | decline | claim | answer | broken |"
    assert rows[2:] == [
        "| call | SFT | **1** | 0 | 0 | 0 | 0 | 1 |",  # the malformed call is broken
        "| completion | SFT | 0 | 0 | 0 | 0 | **1** | 0 |",
        "| slot | SFT | 0 | **1** | 0 | 0 | 0 | 1 |",  # cut off before <|stop|>: broken
        "| relevance | SFT | 0 | 0 | **0** | 1 | 0 | 0 |",  # "I have booked your flight"
    ]


def test_behaviour_table_reads_saved_reports(scripted_report, tmp_path):
    saved = EvalReport.read(tmp_path / "out" / "cases.jsonl")
    assert behaviour_table({"A": saved}) == behaviour_table({"A": scripted_report})


def test_rejudging_saved_replies_with_the_same_rules_changes_nothing(scripted_report, tmp_path):
    saved = EvalReport.read(tmp_path / "out" / "cases.jsonl")
    again = rejudge(saved, load_dialog_benchmark(SMALL))
    assert again.results == scripted_report.results  # the cut-off reply keeps its verdict and reason
    assert again.timing == scripted_report.timing


def test_rejudging_applies_another_judge_to_the_stopped_replies_only(scripted_report):
    again = rejudge(scripted_report, load_dialog_benchmark(SMALL), judge=lambda case, parsed: (True, "LLM: fine"))
    assert [(r.passed, r.reason) for r in again.results] == [(True, "LLM: fine")] * 4 + [
        (False, "cut off: no <|stop|> within max_new_tokens=96"), (True, "LLM: fine")]
    assert [r.prompt for r in again.results] == [r.prompt for r in scripted_report.results]


def test_rejudging_against_another_benchmark_names_the_missing_case(scripted_report):
    with pytest.raises(ValueError, match="dialog_num=1 serial_num=3 turn_num=.* is not in the benchmark"):
        rejudge(scripted_report, load_dialog_benchmark(SMALL)[:2])


def test_command_line_rejudges_a_saved_file_in_place(scripted_report, tmp_path, capsys):
    path = tmp_path / "out" / "cases.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[2]["passed"] = True  # as a laxer judge might have saved the relevance turn
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = evaluation.main(["--rejudge", str(path), "--data", str(SMALL)])
    assert [r.passed for r in report.results] == [r.passed for r in scripted_report.results]
    assert [r.passed for r in EvalReport.read(path).results] == [r.passed for r in scripted_report.results]
    assert "1 of 6 verdicts changed" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "cases.summary.json").read_text())["summary"] == scripted_report.summary


def _result(dialog, kind, passed, reply, request="Book a table."):
    prompt = templating.render_conversation([{"role": "user", "content": request}], [], add_generation_prompt=True)
    return evaluation.CaseResult(dialog_num=dialog, serial_num=1, turn_num=1, type=kind, prompt=prompt,
                                 raw_reply=reply, parsed={}, finish="stop", passed=passed, reason="")


def test_verdict_changes_counts_gained_and_lost_turns_per_type():
    before = evaluation.EvalReport([_result(1, "slot", False, "a"), _result(2, "slot", False, "b"),
                                    _result(3, "call", True, "c"), _result(4, "call", True, "d")])
    after = evaluation.EvalReport([_result(4, "call", True, "d"), _result(3, "call", False, "x"),  # order differs
                                   _result(2, "slot", True, "y"), _result(1, "slot", True, "z")])
    table = evaluation.verdict_changes(before, after)
    assert "| call | 2 | 0 | 1 | -1 |" in table and "| slot | 2 | 2 | 0 | +2 |" in table
    assert "| relevance | 0 | 0 | 0 | +0 |" in table


def test_changed_replies_shows_request_and_both_replies_of_changed_turns():
    before = evaluation.EvalReport([_result(1, "slot", False, "calls_it", "Book a table for me."),
                                    _result(2, "call", True, "same")])
    after = evaluation.EvalReport([_result(1, "slot", True, "Which day?"), _result(2, "call", True, "same")])
    shown = evaluation.changed_replies(before, after)
    assert "[slot] dialog 1" in shown and "'Book a table for me.'" in shown
    assert "before (fail): 'calls_it'" in shown and "after  (pass): 'Which day?'" in shown
    assert "dialog 2" not in shown  # unchanged verdicts are not shown
    assert evaluation.changed_replies(after, after) == "no turn changed its verdict"


def test_verdict_changes_refuses_reports_of_different_turns():
    with pytest.raises(ValueError, match="judge different turns"):
        evaluation.verdict_changes(evaluation.EvalReport([_result(1, "slot", False, "a")]),
                                   evaluation.EvalReport([_result(2, "slot", False, "a")]))
