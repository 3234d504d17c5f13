"""The long stages report their progress: console lines under the notebook runner, a tqdm bar elsewhere."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from diatool_utils import templating
from diatool_utils.evaluation import evaluate
from diatool_utils.progress import (
    PROGRESS_ENV,
    ConsoleProgress,
    NoProgress,
    clock,
    show_trainer_progress,
    stage_progress,
    trainer_progress,
)

SMALL = Path(__file__).parent / "data" / "dialog_small.jsonl"


class FakeTimer:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def console(total, every=30.0):
    timer, lines = FakeTimer(), []
    return ConsoleProgress("SFT", total, "step", every=every, timer=timer, write=lines.append), timer, lines


def test_console_progress_writes_the_first_step_then_one_line_per_interval_then_the_final_figures():
    progress, timer, lines = console(total=64, every=30.0)
    for _ in range(10):  # 10 steps of 18 s
        timer.now += 18.0
        progress.update()
    progress.close()
    assert lines == [
        "SFT: step 1/64, 18.0 s/step, 0:00:18 so far, about 0:18:54 left",
        "SFT: step 3/64, 18.0 s/step, 0:00:54 so far, about 0:18:18 left",  # 36 s after the first line
        "SFT: step 5/64, 18.0 s/step, 0:01:30 so far, about 0:17:42 left",
        "SFT: step 7/64, 18.0 s/step, 0:02:06 so far, about 0:17:06 left",
        "SFT: step 9/64, 18.0 s/step, 0:02:42 so far, about 0:16:30 left",
        "SFT: stopped at step 10/64 after 0:03:00",
    ]


def test_the_final_figures_come_once_when_every_step_is_done():
    progress, timer, lines = console(total=2)
    for _ in range(2):
        timer.now += 1.2
        progress.update()
    progress.close()
    progress.close()
    assert lines == ["SFT: step 1/2, 1.2 s/step, 0:00:01 so far, about 0:00:01 left",
                     "SFT: 2 steps in 0:00:02 (1.2 s/step)"]


def test_clock_shows_hours_minutes_and_seconds():
    assert [clock(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00:00", "0:01:00", "0:01:01", "1:01:02"]


def test_figures_set_along_the_way_follow_the_times():
    progress, timer, lines = console(total=2)
    progress.set_postfix(loss="0.693")
    timer.now += 1.2
    progress.update()
    progress.set_postfix(loss="0.41")
    timer.now += 1.2
    progress.update()
    progress.close()
    assert lines == ["SFT: step 1/2, 1.2 s/step, 0:00:01 so far, about 0:00:01 left, loss 0.693",
                     "SFT: 2 steps in 0:00:02 (1.2 s/step), loss 0.41"]


def test_stage_progress_is_console_lines_under_the_runner_and_a_tqdm_bar_elsewhere(monkeypatch):
    from tqdm import tqdm

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert isinstance(stage_progress("SFT", 2, "step"), tqdm)
    monkeypatch.setenv(PROGRESS_ENV, "console")
    assert isinstance(stage_progress("SFT", 2, "step"), ConsoleProgress)
    assert isinstance(stage_progress("SFT", 2, "step", show=False), NoProgress)


def test_trainer_progress_counts_the_trainers_steps_on_the_main_process_only(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "console")  # outside a kernel the lines go to stderr
    callback = trainer_progress("DiaTool-DPO")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=3, global_step=0)
    callback.on_train_begin(None, state, None)
    for step in (1, 2, 3):
        state.global_step = step
        callback.on_step_end(None, state, None)
        callback.on_log(None, state, None, logs={"loss": 1.0 / step, "rewards/margins": 0.1})
    callback.on_train_end(None, state, None)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("DiaTool-DPO: step 1/3, ") and lines[0].endswith(" left")
    assert lines[-1].startswith("DiaTool-DPO: 3 steps in ") and lines[-1].endswith(", loss 0.333")

    other_rank = trainer_progress("DiaTool-DPO")
    state = SimpleNamespace(is_world_process_zero=False, max_steps=3, global_step=0)
    other_rank.on_train_begin(None, state, None)
    other_rank.on_step_end(None, state, None)
    other_rank.on_train_end(None, state, None)
    assert capsys.readouterr().err == ""


def test_a_trainer_shows_one_progress_bar_instead_of_a_log_dict_per_step(tiny_model, tmp_path):
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    args = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=True, use_cpu=True, report_to=[])
    trainer = Trainer(model=tiny_model, args=args)
    assert PrinterCallback in [type(c) for c in trainer.callback_handler.callbacks]
    show_trainer_progress(trainer, "SFT")
    kinds = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    assert "PrinterCallback" not in kinds and kinds.count("TrainerProgress") == 1


@pytest.mark.parametrize("share_prefix", [True, False], ids=["by dialogue", "batches"])
def test_evaluation_reports_turns_done_of_the_total(share_prefix, tiny_model, tiny_tokenizer, monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "console")
    templating.add_functionary_tokens(tiny_tokenizer, tiny_model)
    evaluate(tiny_model, tiny_tokenizer, SMALL, batch_size=4, max_new_tokens=2, share_prefix=share_prefix)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("evaluation: turn ") and "/6, " in lines[0]
    assert lines[-1].startswith("evaluation: 6 turns in ")
