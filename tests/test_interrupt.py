"""Ctrl-C during training stops at the next step boundary (a second one at once), so it never
lands in a garbage-collector callback (ignored: the run went on) or a save thread."""

import dataclasses
import gc
import os
import signal
from contextlib import contextmanager

import numpy as np
import pytest

from mtl_bench import fit
from mtl_bench.interrupt import deferred_interrupts, remembered_interrupts, stop_if_requested


@pytest.fixture(autouse=True)
def terminal_ctrl_c():
    """Ctrl-C as in a terminal, whatever the runner was started under (a background job
    ignores it)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_the_first_ctrl_c_waits_for_the_step_and_a_second_is_at_once():
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)  # handled before the next bytecode: no exception
        with pytest.raises(KeyboardInterrupt):
            stop_if_requested()
        # The immediate KeyboardInterrupt lands in whatever runs next: with the collector off it
        # cannot be JAX's gc callback, where it would be swallowed ("Exception ignored").
        gc.disable()
        try:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        finally:
            gc.enable()
    assert signal.getsignal(signal.SIGINT) is before
    stop_if_requested()  # the block is over: nothing pending


def test_a_training_run_stops_after_the_step_it_was_interrupted_in(monkeypatch, tmp_path):
    from test_cv_guards import TINY

    from mtl_bench.data.phantom import synth_phantom

    steps = []
    real = fit.progress_bar

    @contextmanager
    def bar(*a, **k):
        with real(*a, **k) as b:
            advance = b.advance

            def step():
                steps.append(1)
                if len(steps) == 1:
                    os.kill(os.getpid(), signal.SIGINT)
                advance()

            b.advance = step
            yield b

    monkeypatch.setattr(fit, "progress_bar", bar)
    ds = synth_phantom(24, image_size=32, seed=0, class_set="binary")
    idx = np.random.default_rng(0).permutation(len(ds))  # both classes in training
    cfg = dataclasses.replace(TINY, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        fit.fit_fold(cfg, ds, np.sort(idx[:16]), np.sort(idx[16:]), quiet=True)
    assert len(steps) == 1  # not one step more


def test_an_ignored_ctrl_c_stays_ignored():
    # A background job of a script ignores SIGINT; training must not start answering it.
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_offers_resume_only_to_commands_that_resume(monkeypatch, capsys):
    from mtl_bench import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(["cv", "--model", "mtl_resunet"]) == 130
    said = capsys.readouterr().err
    assert "rerun the same command with --resume" in said and "checkpoint_every=0" in said
    assert cli.main(["tables"]) == 130  # nothing to resume: no promise
    assert capsys.readouterr().err == "mtl-bench: interrupted\n"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing
def test_a_ctrl_c_a_callback_swallowed_before_training_still_stops_it():
    # Before the training loop Ctrl-C raises as usual; one that lands in a garbage-collector
    # callback of JAX's is printed as "Exception ignored" and lost: the run trained to the end.
    class Swallows:  # a __del__ swallows exceptions as gc callbacks do
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    with remembered_interrupts():
        Swallows()  # the KeyboardInterrupt raised in __del__ is ignored by Python
        gc.collect()
        with pytest.raises(KeyboardInterrupt), deferred_interrupts():
            pass  # the training block does not begin
        with pytest.raises(KeyboardInterrupt):
            stop_if_requested()
    assert signal.getsignal(signal.SIGINT) is before
    stop_if_requested()  # forgotten once the run is over


def test_sigterm_stops_at_the_step_boundary_like_ctrl_c_unless_someone_else_handles_it():
    # A scheduler's SIGTERM killed the run at once: a half-written checkpoint folder, a curve
    # ahead of the last save. It now waits for the step as the first Ctrl-C does.
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)  # handled: the process lives on
            with pytest.raises(KeyboardInterrupt):
                stop_if_requested()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        with pytest.raises(KeyboardInterrupt), remembered_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)  # outside training: stops as Ctrl-C does
        # As the CLI runs it: remembered around the whole run, deferred inside training. The
        # outer handler had made SIGTERM look taken, and it stopped mid-step (review).
        with remembered_interrupts(), deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)  # deferred: no exception here
            with pytest.raises(KeyboardInterrupt):
                stop_if_requested()
        # A handler of the caller's own (a wrapper that saves its own state) is left in place.
        mine = []
        signal.signal(signal.SIGTERM, lambda *a: mine.append(1))
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            stop_if_requested()  # not ours to act on
        assert mine == [1]
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_multi_process_run_leaves_sigterm_to_jax(monkeypatch):
    # jax.distributed installs its own SIGTERM handler (unseen by signal.getsignal); processes
    # stopping each at its own next step would leave the others waiting in a collective.
    from mtl_bench import interrupt

    monkeypatch.setattr(interrupt, "_sigterm", True)
    interrupt.leave_sigterm_to_jax()
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with remembered_interrupts(), deferred_interrupts():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, before)
