"""Progress of the long stages (SFT, DiaTool-DPO, evaluation): a bar in Jupyter, plain lines under the runner.

Notebook 04 trains and evaluates for 40 minutes on 2 CPU cores. Each long stage reports how far it is,
in one of two ways, depending on who is watching:

- **In Jupyter or a terminal**: one tqdm bar per stage (the widget bar where ipywidgets is installed,
  else the text bar). When the stage ends the bar stays, showing the final figures (steps done, wall
  time, seconds per step, the last loss).
- **Under the notebook runner** (``python -m diatool_utils.notebooks``, so ``make demo``): nobody sees
  the notebook while it runs, so the runner sets ``DIATOOL_PROGRESS=console`` for its kernel and the
  stage writes a plain line to the runner's console now and then, and once when it ends:

      SFT: step 12/64, 18.2 s/step, 0:03:38 so far, about 0:12:46 left

  Those lines must not end up in the saved notebook. Inside a kernel, anything written to stderr does
  (ipykernel captures the process's own stderr too), so a line travels as a display message of its own
  type, ``PROGRESS_MIME``, which the runner prints and leaves out of the notebook.

    with stage_progress("evaluation", total=len(prompts), unit="turn") as progress:
        for prompt in prompts:
            ...
            progress.update()

    show_trainer_progress(trainer, "SFT")   # the same for a transformers Trainer
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

PROGRESS_ENV = "DIATOOL_PROGRESS"  # "console": plain lines for the runner's console instead of bars
PROGRESS_MIME = "application/vnd.diatool.progress+json"  # a line for the runner's console, never saved
CONSOLE_EVERY = 30.0  # seconds between two lines of one stage (the first and the last always come)


def console_mode() -> bool:
    """True under the notebook runner (or anywhere ``DIATOOL_PROGRESS=console`` is set)."""
    return os.environ.get(PROGRESS_ENV) == "console"


def to_console(line: str) -> None:
    """Show one line to whoever watches the console: the runner's, from inside its kernel; else stderr."""
    if _in_kernel():
        from IPython.display import publish_display_data

        publish_display_data({PROGRESS_MIME: {"line": line}, "text/plain": line})
    else:
        print(line, file=sys.stderr, flush=True)


def _in_kernel() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def per_unit(seconds: float) -> str:
    """Seconds per step or turn: one decimal, two below a second (0.04 s, not 0.0 s)."""
    return f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.2f}"


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss, the way tqdm shows times."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


class ConsoleProgress:
    """A stage's progress as plain console lines, with the part of tqdm's interface the stages use.

    The time left is the mean time per unit so far times the units still to do; early units of a
    run (loading, warm-up) make it too pessimistic at first.
    """

    def __init__(self, desc: str, total: int, unit: str, every: float = CONSOLE_EVERY,
                 timer=time.perf_counter, write=to_console):
        self.desc, self.total, self.unit, self.every = desc, total, unit, every
        self.timer, self.write = timer, write
        self.n = 0
        self.start = self.timer()
        self.last_line = None  # when the last line was written (None: not yet)
        self.closed = False
        self.postfix = ""  # e.g. ", loss 0.41": the latest figures of the stage, shown after the times

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.timer()
        if n and self.n < self.total and (self.last_line is None or now - self.last_line >= self.every):
            self.last_line = now
            self.write(self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        seconds = elapsed / self.n  # update() writes only after a unit is done
        return (f"{self.desc}: {self.unit} {self.n}/{self.total}, {per_unit(seconds)} s/{self.unit}, "
                f"{clock(elapsed)} so far, about {clock(seconds * (self.total - self.n))} left{self.postfix}")

    def set_postfix(self, **figures) -> None:
        """Figures to show after the times from now on (tqdm's name): ``set_postfix(loss="0.41")``."""
        self.postfix = "".join(f", {name} {value}" for name, value in figures.items())

    def close(self) -> None:
        """The final figures, once; a stage stopped early says where."""
        if self.closed:
            return
        self.closed = True
        elapsed = self.timer() - self.start
        rate = f" ({per_unit(elapsed / self.n)} s/{self.unit})" if self.n else ""
        if self.n >= self.total:
            self.write(f"{self.desc}: {self.total} {self.unit}s in {clock(elapsed)}{rate}{self.postfix}")
        else:
            self.write(f"{self.desc}: stopped at {self.unit} {self.n}/{self.total} after {clock(elapsed)}{self.postfix}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NoProgress:
    """What ``stage_progress(..., show=False)`` gives: the same interface, nothing shown."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **figures) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def stage_progress(desc: str, total: int, unit: str, show: bool = True):
    """Progress of one stage of ``total`` units: console lines under the runner, else a tqdm bar.

    Use it as a context manager (or call ``close()``) so the final figures come once at the end.
    """
    if not show:
        return NoProgress()
    if console_mode():
        return ConsoleProgress(desc, total, unit)
    # tqdm.auto's choice, without its "IProgress not found" warning in a Jupyter that lacks ipywidgets:
    # the widget bar where it can be drawn, the text bar everywhere else
    if _in_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit)


def show_trainer_progress(trainer, desc: str) -> None:
    """Show a Trainer's steps as one progress bar (or console lines) named ``desc``, with the latest loss.

    For a Trainer built with ``disable_tqdm=True``: this becomes its only bar, and it replaces the log dict
    such a Trainer prints at every logging step (they stay in ``trainer.state.log_history``), which in a
    notebook would split the bar into one piece per step.
    """
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(trainer_progress(desc))


def trainer_progress(desc: str):
    """A ``TrainerCallback`` showing a Trainer's steps as one ``stage_progress``: steps done of ``max_steps``,
    seconds per step, time left and the latest logged loss.

    Only the main process reports (under DeepSpeed every process runs the callbacks).
    """
    from transformers import TrainerCallback  # here, not at the top: the runner imports this module, and
    # importing transformers' trainer pulls in peft and bitsandbytes, which print notes of their own

    class TrainerProgress(TrainerCallback):
        progress = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.progress = stage_progress(desc, state.max_steps, "step")
                self.progress.update(state.global_step)  # resuming from a checkpoint starts further on

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(state.global_step - self.progress.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is not None and "loss" in (logs or {}):
                self.progress.set_postfix(loss=f"{logs['loss']:.3g}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.close()
                self.progress = None

    return TrainerProgress()
