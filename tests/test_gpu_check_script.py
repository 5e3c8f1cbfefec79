"""benchmarks/gpu_check.sh rejects a bad group or fold mode at once, with one line naming it
(before its environment checks and long before any device time is spent); its correctness checks
(benchmarks/gpu_checks.py) pass in a dry run and report a failure without stopping the rest."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "GPU_CHECK_OUT": str(tmp_path), **env}
    return subprocess.run(
        ["bash", str(SCRIPT)], env=full, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GPU_CHECK_GROUP": "profile,tunning"}, "GPU_CHECK_GROUP: 'tunning' is not one of"),
        ({"GPU_CHECK_GROUP": ","}, "GPU_CHECK_GROUP=',' names no group"),
        ({"GPU_CHECK_FOLD_MODES": "unrolled dense"}, "GPU_CHECK_FOLD_MODES: 'dense' is not one of"),
    ],
)
def test_bad_choice_fails_at_once(tmp_path, env, message):
    proc = _run(tmp_path, **env)
    assert proc.returncode == 1
    failed = [line for line in proc.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and message in failed[0], proc.stdout
    assert "step 1/3" not in proc.stdout  # nothing ran before the check
    assert not any(tmp_path.iterdir())  # and nothing was written


@pytest.mark.slow
def test_the_correctness_checks_pass_in_a_dry_run(capsys):
    # The checks a GPU session runs first, at their dry-run sizes on the CPU: a check broken by a
    # code change shows here, not in the few minutes of a lent GPU.
    from benchmarks import gpu_checks

    assert gpu_checks.main(["--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "PASS backend", "PASS bf16 step", "PASS parity", "PASS max-pool gradient",
        "PASS checkpoint digest",
    ]  # fmt: skip


def test_a_failing_check_is_reported_and_the_rest_still_run(capsys):
    from benchmarks.gpu_checks import run

    def broken() -> str:
        raise RuntimeError("cuDNN said\nno")

    assert run([("first", broken), ("second", lambda: "fine")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["FAIL first: RuntimeError: cuDNN said no", "PASS second: fine"]
