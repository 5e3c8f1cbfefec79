"""Two local CPU processes (gloo over loopback) train exactly like one process, same batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = str(Path(__file__).parent / "scripts" / "multiprocess_train.py")


def _result(stdout: str) -> dict:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    import portpicker

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = portpicker.pick_unused_port()
    ckpt = str(tmp_path / "ckpt")
    procs = [
        subprocess.Popen([sys.executable, SCRIPT, str(port), str(pid), ckpt], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for pid in (0, 1)
    ]  # fmt: skip
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
        outs.append(_result(out))
    single_env = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    single = subprocess.run([sys.executable, SCRIPT, "single"], env=single_env,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    ref = _result(single.stdout)
    assert ref["devices"] == 2 and ref["processes"] == 1
    for got in outs:
        assert got["devices"] == 2 and got["processes"] == 2
        np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5)
        np.testing.assert_allclose(got["prob"], ref["prob"], rtol=1e-4, atol=1e-5)
        # The predicted masks (written by process 0 for the overlay figure) are the same too.
        assert np.abs(np.subtract(got["mask_pixels"], ref["mask_pixels"])).max() <= 2
        # Saved by both processes through orbax, restored with its checksums checked: the
        # resumed fold evaluates as the one that saved it.
        np.testing.assert_array_equal(got["resumed_prob"], got["prob"])
        assert got["resumed_after_epoch"] == 2
    (meta,) = (tmp_path / "ckpt" / "last").glob("*/meta/metadata")
    assert json.loads(meta.read_text())["digest"]["state"]


def test_the_cli_reads_its_config_without_starting_jax_before_joining():
    # cv/train build the run config before jax.distributed.initialize (its strategy is checked
    # first), which must then still be allowed: nothing on that path may start a JAX backend.
    code = (
        "from mtl_bench.cli_parser import build_parser\n"
        "from mtl_bench.cli import _config\n"
        "for m in ('mtl_resunet', 'resnet50', 'unet_resnet34', 'moon_features'):\n"
        "    _config(build_parser().parse_args(['cv', '--model', m, '--set', 'epochs=2']))\n"
        "from jax._src import xla_bridge\n"
        "print(xla_bridge.backends_are_initialized())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
