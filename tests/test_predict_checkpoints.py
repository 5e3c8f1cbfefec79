"""Checkpoints predict cannot use: each a one-line DataError naming the file and why (never an
orbax traceback, a message about --resume, or a reason without its file). The checkpoint is a
real one, saved by fold_io.Checkpoints from an untrained tiny network (training is not needed
to damage one; test_predict.py predicts from a trained fold)."""

import asyncio
import gc
import json
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from mtl_bench.config import RunConfig
from mtl_bench.data.types import DataError
from mtl_bench.fit import build_model
from mtl_bench.fold_checkpoint import load_fold_model, resolve_checkpoint
from mtl_bench.fold_io import Checkpoints
from mtl_bench.orbax_settle import settling_loops
from mtl_bench.registry import model_info
from mtl_bench.train import Engine

CFG = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    image_size=32,
    epochs=1,
    preprocess="none",
    checkpoint_every=1,
)
NAMES = ["benign", "malignant"]


@pytest.fixture(scope="module")
def method(tmp_path_factory):
    """RESULTS/mtl_resunet with ckpt_fold_0 (one save) and the fold_0.json beside it."""
    folder = tmp_path_factory.mktemp("results") / "mtl_resunet"
    engine = Engine(
        build_model(CFG, 2), ("mask", "label"), CFG, steps_per_epoch=1, class_alpha=None
    )
    ckpts = Checkpoints(folder / "ckpt_fold_0", CFG)
    ckpts.maybe_save(1, engine.canonical_state(engine.initial_state), (0.0, None), final=True)
    ckpts.close()
    record = {"config": json.loads(json.dumps(CFG.to_dict(), default=str)), "class_names": NAMES}
    (folder / "fold_0.json").write_text(json.dumps(record))
    return folder


def _copy(method, tmp_path, edit=None):
    folder = tmp_path / "mtl_resunet"
    shutil.copytree(method, folder)
    if edit is not None:
        record = json.loads((folder / "fold_0.json").read_text())
        edit(record)
        (folder / "fold_0.json").write_text(json.dumps(record))
    return folder


def test_the_saved_fold_loads(method):
    cfg, names, _, state, name = load_fold_model(method / "ckpt_fold_0")
    assert cfg.model == name == "mtl_resunet" and names == tuple(NAMES) and "params" in state


def test_the_run_is_named_by_its_record_not_by_the_model(method, tmp_path):
    folder = _copy(method, tmp_path, lambda r: r.update(method="mtl_resunet@3class"))
    fold = load_fold_model(folder / "ckpt_fold_0")
    assert (fold.cfg.model, fold.method) == ("mtl_resunet", "mtl_resunet@3class")


def test_a_damaged_or_mismatched_checkpoint_is_named(method, tmp_path):
    folder = _copy(method, tmp_path)
    (meta,) = (folder / "ckpt_fold_0" / "last").glob("*/meta/metadata")
    meta.write_text("not json")
    with pytest.raises(DataError, match=r"ckpt_fold_0: cannot restore the weights \(Expecting"):
        load_fold_model(folder / "ckpt_fold_0")
    # Weights saved by a run with other settings: not the weights the result was tested with.
    other = _copy(method, tmp_path / "b", lambda r: r["config"].update(preprocess="clahe"))
    with pytest.raises(DataError, match="saved by a run with other settings than fold_0.json") as e:
        load_fold_model(other / "ckpt_fold_0")
    assert "preprocess: 'none' → 'clahe'" in str(e.value) and "--resume" not in str(e.value)
    # A part of the checkpoint not copied: named, not orbax's "pytree structure error".
    partial = _copy(method, tmp_path / "d")
    (gone,) = (partial / "ckpt_fold_0" / "last").glob("*/state/_METADATA")
    gone.unlink()
    step = gone.parent.parent.name
    with pytest.raises(DataError, match=rf"ckpt_fold_0: last/{step}/state/_METADATA is missing"):
        load_fold_model(partial / "ckpt_fold_0")
    # Damaged array data (the OCDBT manifest every array's read goes through), from the CLI: its
    # one line, and no traceback of orbax's in-flight reads landing on a closed event loop after
    # it (a race; test_a_failed_restore_lets_its_other_reads_end checks the cause without one).
    broken = _copy(method, tmp_path / "c")
    (manifest,) = (broken / "ckpt_fold_0" / "last").glob("*/state/manifest.ocdbt")
    manifest.write_bytes(b"junk\n")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "scan.png")
    cmd = [sys.executable, "-m", "mtl_bench.cli", "predict", str(tmp_path / "scan.png")]
    cmd += ["--checkpoint", str(broken / "ckpt_fold_0"), "--out", str(tmp_path / "out")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 2
    assert f"mtl-bench: error: {broken / 'ckpt_fold_0'}: cannot restore the weights (" in run.stderr
    assert "Traceback" not in run.stderr and "Event loop is closed" not in run.stderr


def test_a_flipped_byte_in_the_array_data_is_caught_and_old_checkpoints_still_load(
    method, tmp_path
):
    # orbax checks no checksum on chunk data: this restored, silently, as other weights.
    folder = _copy(method, tmp_path)
    chunks = (folder / "ckpt_fold_0" / "last").glob("*/state/ocdbt.process_0/d/*")
    data = max(chunks, key=lambda p: p.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        load_fold_model(folder / "ckpt_fold_0")
    msg = str(e.value)
    assert msg.startswith(f"{folder / 'ckpt_fold_0'}: the saved array state/") and "\n" not in msg
    assert "does not match its checksum" in msg and "cannot restore" not in msg
    # Saved before digests were recorded: restored unchecked, not refused.
    old = _copy(method, tmp_path / "old")
    (meta,) = (old / "ckpt_fold_0" / "last").glob("*/meta/metadata")
    record = json.loads(meta.read_text())
    del record["digest"]
    meta.write_text(json.dumps(record))
    assert "params" in load_fold_model(old / "ckpt_fold_0")[3]


def test_a_failed_restore_lets_its_other_reads_end(caplog):
    """orbax's restore in miniature: a fresh loop gathers one task per array, one fails at once
    and the loop is closed on that error while the others' results are still to come from
    worker threads (tensorstore's)."""
    late: list[threading.Thread] = []
    closed_loop: list[RuntimeError] = []

    def deliver(loop, fut, outcome):
        time.sleep(0.2)
        setter = fut.set_exception if isinstance(outcome, Exception) else fut.set_result
        try:  # what tensorstore does when a read ends
            loop.call_soon_threadsafe(setter, outcome)
        except RuntimeError as e:
            closed_loop.append(e)

    async def read(outcome):
        if outcome == "damaged":
            raise ValueError(outcome)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        late.append(threading.Thread(target=deliver, args=(loop, fut, outcome)))
        late[-1].start()
        return await fut

    async def restore():
        return await asyncio.gather(read(1), read("damaged"), read(ValueError("later")))

    plain = asyncio.new_event_loop
    with settling_loops():
        loop = asyncio.new_event_loop()
        try:
            with pytest.raises(ValueError, match="damaged"):
                loop.run_until_complete(restore())
        finally:
            loop.close()
    for thread in late:
        thread.join()
    del loop
    gc.collect()  # a task's unretrieved error is logged when it is collected
    assert closed_loop == [] and asyncio.new_event_loop is plain
    assert "never retrieved" not in caplog.text


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda r: r["config"].update(model="nosuch"), "unknown model 'nosuch'"),
        (lambda r: r["config"]["model_kwargs"].update(nope=1), "does not take nope"),
        (lambda r: r.update(class_names=[]), "num_classes=0"),
        (lambda r: r.pop("class_names"), r"cannot read the run config \(no .class_names. entry"),
    ],
    ids=["model", "kwargs", "classes", "no-classes"],
)
def test_a_result_file_that_cannot_rebuild_its_model_is_named(method, tmp_path, edit, reason):
    folder = _copy(method, tmp_path, edit)
    with pytest.raises(DataError, match=rf"fold_0\.json: .*{reason}"):
        load_fold_model(folder / "ckpt_fold_0")


def test_folders_that_are_no_checkpoint_say_what_to_pass(method, tmp_path):
    with pytest.raises(DataError, match="not a fold checkpoint .*; it holds ckpt_fold_0: pass"):
        resolve_checkpoint(method)
    # A method fitted without the network engine never has a checkpoint to predict with.
    moon = tmp_path / "moon_features"
    moon.mkdir()
    assert model_info("moon_features").fit is not None
    (moon / "fold_0.json").write_text(json.dumps({"config": {"model": "moon_features"}}))
    with pytest.raises(DataError, match="moon_features is fitted by its own fit .* no checkpoint"):
        resolve_checkpoint(moon / "fold_0.json")
