"""Training, tables, figures and predict run on a machine with only the JAX stack.

The GPU machines have no TFDS, grain or registry access, and torch is a test/benchmark extra. A
child process makes those packages unimportable (an import hook, so the test means the same here,
where they are installed) and drives the CLI as a user would; any eager import of them fails it.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # one tiny fold trains: ~30 s on 2 cores

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = (
    "tensorflow",
    "tensorflow_datasets",
    "grain",
    "array_record",
    "torch",
    "torchvision",
    "timm",
    "segmentation_models_pytorch",
)

CHILD = textwrap.dedent(
    """
    import importlib.abc, sys
    from pathlib import Path

    BLOCKED = {blocked!r}

    class NotInstalled(importlib.abc.MetaPathFinder):
        # Wraps each finder: a blocked package is found by none, exactly as if not installed
        # (import raises ModuleNotFoundError; importlib.util.find_spec returns None).
        def __init__(self, inner):
            self.inner = inner

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return None
            return self.inner.find_spec(name, path, target)

        def __getattr__(self, attr):  # find_distributions (importlib.metadata) and the rest
            return getattr(self.inner, attr)

    sys.meta_path[:] = [NotInstalled(f) for f in sys.meta_path]
    from mtl_bench.cli import main

    out, imgs = Path(sys.argv[1]), Path(sys.argv[2])
    tiny = ["--set", "synthetic_n=24", "--set", "image_size=32", "--set", "epochs=1",
            "--set", "batch_size=8", "--set", "preprocess=none", "--set", "folds=2",
            "--set", "checkpoint_every=1", "--set", "model_kwargs.widths=(4,8,16,32,64)",
            "--quiet"]
    steps = [
        ["train", "--model", "mtl_resunet", "--fold", "0", "--out", str(out), *tiny],
        ["tables", "--results", str(out), "--format", "md"],
        ["figures", "--results", str(out)],
        ["data", "synth", "--out", str(imgs), "--n", "4"],
        ["predict", str(imgs / "benign"), "--checkpoint",
         str(out / "mtl_resunet" / "ckpt_fold_0"), "--out", str(out / "pred")],
    ]
    for argv in steps:
        rc = main(argv)
        assert rc == 0, (argv, rc)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("jax-only ok")
    """
)


def test_cli_runs_without_tfds_grain_or_torch(tmp_path):
    env = {"MTL_BENCH_CACHE": str(tmp_path / "cache"), "MTL_BENCH_COMPILE_CACHE": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(blocked=BLOCKED), str(tmp_path / "res"),
         str(tmp_path / "imgs")],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "jax-only ok" in proc.stdout
    assert (tmp_path / "res" / "tables" / "table1.md").exists()
    assert list((tmp_path / "res" / "pred").glob("*_mask.png"))


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "PYTHONPATH", "XLA_FLAGS", "JAX_PLATFORMS", "TMPDIR", "LANG")
    return {k: os.environ[k] for k in keep if k in os.environ}
