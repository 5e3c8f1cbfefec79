"""The bench's --time-box: the PyTorch peer's time box is cut to what is left, what does not fit
is not started and says so, and a peer's partial results reach the CSV.

The clock is time_box.py's (``time.monotonic`` there, replaced by a hand-moved one) and the peer
subprocess is faked: no torch, and no test waits out a real time box but the one that checks
``subprocess.run``'s kill keeps the lines printed before it (2 s).
"""

import csv
import subprocess
import sys
from types import SimpleNamespace

import pytest

from benchmarks import time_box, timing, torch_peer
from benchmarks.throughput import main
from benchmarks.time_box import TimeBox, parse_time_box

TINY = ["--models", "mtl_resunet", "--set", "widths=(4,8,16,32,64)", "--precision", "fp32",
        "--image-size", "32", "--steps", "1", "--warmup", "1", "--compile-cache", "off",
        "--peer", "torch"]  # fmt: skip


@pytest.fixture
def clock(monkeypatch):
    """time_box.py's clock, moved by hand: ``clock.t += 60`` is one minute of work."""
    fake = SimpleNamespace(t=1000.0)
    fake.monotonic = lambda: fake.t
    monkeypatch.setattr(time_box, "time", fake)
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the bench sets it for --peer
    return fake


def fake_measure(clock, seconds):
    """A JAX configuration that takes ``seconds`` on the fake clock."""

    def measure(spec):
        clock.t += seconds
        return {"train_img_per_s": 100.0, "infer_img_per_s": 300.0}

    return measure


def peer_child(clock, calls, seconds):
    """A stand-in for _run_child: every configuration "ok" after ``seconds[mode]``."""

    def run(job, timeout):
        mode = job["configs"][0]["mode"]
        calls.append((mode, timeout))
        clock.t += seconds[mode]
        return [
            {**c, "status": "ok", "train_img_per_s": 50.0, "infer_img_per_s": 100.0,
             "params": 7, "compile_s": 12.0 if mode == "compile" else None}
            for c in job["configs"]
        ]  # fmt: skip

    return run


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "box, expected",
    [
        # 200 s box: 60 s of JAX, 15 s kept for the CSV → eager 125 s; eager took 50 → 75 s.
        (["--time-box", "200"], [("eager", 125.0), ("compile", 75.0)]),
        # --peer-timeout below what is left: kept.
        (["--time-box", "200", "--peer-timeout", "40"], [("eager", 40.0), ("compile", 40.0)]),
        ([], [("eager", 300.0), ("compile", 300.0)]),  # no box: --peer-timeout as before
    ],
)
def test_peer_timeout_is_cut_to_what_is_left(tmp_path, monkeypatch, clock, box, expected):
    calls = []
    monkeypatch.setattr(timing, "measure", fake_measure(clock, 60))
    monkeypatch.setattr(
        torch_peer, "_run_child", peer_child(clock, calls, {"eager": 50, "compile": 30})
    )
    path = tmp_path / "t.csv"
    assert main(TINY + ["--batch-sizes", "2", "--csv", str(path)] + box) == 0
    assert calls == [pytest.approx(c) for c in expected]
    (row,) = read(path)
    assert row["status"] == "ok" and row["torch_note"] == "torch.compile 12 s"
    assert float(row["jax_over_torch_eager_train"]) == pytest.approx(2.0)
    assert float(row["jax_over_torch_compile_infer"]) == pytest.approx(3.0)


def test_configurations_that_would_not_fit_are_not_started(tmp_path, monkeypatch, clock, capsys):
    calls = []
    monkeypatch.setattr(timing, "measure", fake_measure(clock, 60))
    child = peer_child(clock, calls, {"eager": 10, "compile": 1})
    monkeypatch.setattr(torch_peer, "_run_child", child)
    path = tmp_path / "t.csv"
    # 100 s box: batch 2 takes 60 s; the 25 s left (40 less the 15 s CSV margin) cannot hold
    # another 60 s configuration, but a peer run fits: eager in 25 s, then 15 s is not enough.
    assert main(TINY + ["--batch-sizes", "2,4,8", "--csv", str(path), "--time-box", "100"]) == 0
    assert calls == [("eager", pytest.approx(25.0))]
    rows = read(path)
    spent = (
        "time box spent (40 s of the 100 s --time-box left, this configuration needs about 60 s)"
    )
    assert [r["status"] for r in rows] == ["ok", f"skipped: {spent}", f"skipped: {spent}"]
    assert rows[0]["torch_note"] == (
        "compile: skipped: time box spent (30 s of the 100 s --time-box left)"
    )
    assert float(rows[0]["torch_eager_infer_img_per_s"]) == 100.0
    assert rows[1]["torch_note"] == ""  # no JAX numbers, no peer
    out = capsys.readouterr().out
    assert f"[bench] {spent}: 2 of 3 mtl_resunet configurations not started" in out


def test_peer_not_started_when_the_box_is_spent(tmp_path, monkeypatch, clock, capsys):
    calls = []
    monkeypatch.setattr(timing, "measure", fake_measure(clock, 70))
    child = peer_child(clock, calls, {"eager": 1, "compile": 1})
    monkeypatch.setattr(torch_peer, "_run_child", child)
    path = tmp_path / "t.csv"
    # 100 s box, 70 s of JAX: 30 − 15 (CSV margin) is under the 20 s a peer run needs.
    assert main(TINY + ["--batch-sizes", "2", "--csv", str(path), "--time-box", "100"]) == 0
    assert calls == []  # no peer subprocess
    (row,) = read(path)
    spent = "time box spent (30 s of the 100 s --time-box left)"
    assert row["status"] == "ok" and row["torch_note"] == f"peer skipped: {spent}"
    assert row["torch_eager_train_img_per_s"] == ""
    out = capsys.readouterr().out
    assert f"[bench] {spent}: mtl_resunet PyTorch peer not started" in out


def test_compile_mode_not_started_when_eager_spent_the_box(tmp_path, monkeypatch, clock, capsys):
    calls = []
    monkeypatch.setattr(timing, "measure", fake_measure(clock, 60))
    monkeypatch.setattr(
        torch_peer, "_run_child", peer_child(clock, calls, {"eager": 110, "compile": 1})
    )
    path = tmp_path / "t.csv"
    assert main(TINY + ["--batch-sizes", "2", "--csv", str(path), "--time-box", "200"]) == 0
    assert calls == [("eager", pytest.approx(125.0))]
    (row,) = read(path)
    assert float(row["torch_eager_train_img_per_s"]) == 50.0  # the eager numbers stand
    assert row["torch_compile_train_img_per_s"] == ""
    spent = "time box spent (30 s of the 200 s --time-box left)"
    assert row["torch_note"] == f"compile: skipped: {spent}"
    assert f"[bench] {spent}: mtl_resunet PyTorch compile run not started" in (
        capsys.readouterr().out
    )


# The peer child's stand-in: eager times both configurations; compile prints batch 2, then
# starts a line and hangs in batch 4, as a long torch.compile would when the time box kills it.
CHILD = """import json, sys, time
job = json.load(open(sys.argv[1]))
for i, c in enumerate(job["configs"]):
    compile = c["mode"] == "compile"
    if compile and i == 1:
        sys.stdout.write('PEER {"batch_size": 4, "sta'); sys.stdout.flush(); time.sleep(60)
    row = {**c, "status": "ok", "train_img_per_s": 50.0, "infer_img_per_s": 80.0, "params": 7,
           "compile_s": 9.0 if compile else None}
    print("PEER " + json.dumps(row), flush=True)
"""


def test_partial_peer_results_reach_the_csv(tmp_path, monkeypatch, clock, capsys):
    # The real _run_child and subprocess.run: only the child's command is swapped.
    monkeypatch.setattr(timing, "measure", fake_measure(clock, 0))
    monkeypatch.setattr(TimeBox, "MIN_START_S", 1.0)  # so a 2 s compile box may start
    real_run, timeouts = subprocess.run, []

    def run(cmd, **kw):
        timeouts.append(kw["timeout"])
        if len(timeouts) == 1:  # after eager only 17 s are left: 2 s once the margin is kept
            clock.t = box_end - 17
        return real_run([sys.executable, "-c", CHILD, cmd[-1]], **kw)

    fake = SimpleNamespace(run=run, TimeoutExpired=subprocess.TimeoutExpired)
    monkeypatch.setattr(torch_peer, "subprocess", fake)
    box_end = clock.t + 300
    path = tmp_path / "t.csv"
    argv = TINY + ["--batch-sizes", "2,4", "--csv", str(path), "--time-box", "300"]
    assert main(argv) == 0
    assert timeouts == [pytest.approx(285.0), pytest.approx(2.0)]
    rows = read(path)  # written after the peer was attached
    assert [(r["batch_size"], r["status"]) for r in rows] == [("2", "ok"), ("4", "ok")]
    for r in rows:
        assert float(r["torch_eager_train_img_per_s"]) == 50.0
        assert float(r["jax_over_torch_eager_train"]) == pytest.approx(2.0)
    assert float(rows[0]["torch_compile_infer_img_per_s"]) == 80.0
    assert rows[0]["torch_note"] == "torch.compile 9 s"
    assert rows[1]["torch_compile_train_img_per_s"] == ""  # the half-printed line is dropped
    assert rows[1]["torch_note"] == (
        "compile: skipped: compile run exceeded its 2 s time box (cut to the bench's --time-box)"
    )
    out = capsys.readouterr().out
    assert "[bench] time box: mtl_resunet PyTorch compile run stopped at 2 s, 1 of 2" in out


@pytest.mark.parametrize("value", ["0", "-5", "abc", "nan", "inf", ""])
def test_bad_time_box_is_a_one_line_error(value, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(timing, "measure", lambda spec: pytest.fail("the bench started"))
    argv = TINY + ["--peer", "none", "--batch-sizes", "2", "--csv", str(tmp_path / "t.csv")]
    assert main(argv + ["--time-box", value]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"benchmarks.throughput: error: --time-box must be a positive number of seconds, "
        f"got {value!r}\n"
    )


def test_time_box_parsing_and_the_cli(capsys):
    from mtl_bench.cli import main as cli_main

    assert parse_time_box(None) is None and parse_time_box("90.5") == 90.5
    unlimited = TimeBox(None)
    assert unlimited.left() == float("inf") and unlimited.can_start(1e9)
    assert cli_main(["bench", "--time-box", "-1"]) == 2
    assert "mtl-bench: error: --time-box must be a positive number of seconds, got '-1'" in (
        capsys.readouterr().err
    )


def test_a_box_too_short_to_start_anything_is_refused(capsys, monkeypatch):
    # 15 s are kept for the CSV and nothing starts with under 20 s left: a 20 s box wrote only
    # "skipped" rows, each saying 19 s were left.
    from mtl_bench.cli import main as cli_main

    assert parse_time_box("45") == 45.0
    with pytest.raises(ValueError, match=r"--time-box 35: at least 45 s \(15 s are kept for"):
        parse_time_box("35")  # the bench's set-up came first: it too started nothing
    assert cli_main(["bench", "--time-box", "44"]) == 2
    assert "nothing starts with under 20 s left" in capsys.readouterr().err
    # A configuration that ran past its estimate leaves a deadline behind: said as an overrun,
    # not as a negative time left.
    box = TimeBox(100)
    monkeypatch.setattr(box, "remaining", lambda: -19.4)
    assert box.spent("configuration") == (
        "time box spent (0 s of the 100 s --time-box left, overrun by 19 s)"
    )
