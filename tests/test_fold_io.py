"""mtl_bench/fold_io.py: checkpoints written in the background, safe against donated buffers."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mtl_bench.fold_io as fold_io
from mtl_bench.config import RunConfig
from mtl_bench.data.types import DataError
from mtl_bench.fold_io import CheckpointDamaged, Checkpoints
from mtl_bench.state_digest import digest


def _state(scale: float) -> dict:
    return {
        "params": {"w": jnp.full((64, 32), scale, jnp.float32)},
        "rest": {"mean": jnp.arange(32, dtype=jnp.float32) * scale},
        "step": jnp.asarray(int(scale), jnp.int32),
    }


def test_a_save_keeps_the_values_of_its_epoch_although_the_buffers_go(tmp_path):
    # Training donates the state's buffers right after a save returns; the background write must
    # already hold a host copy. Deleting the arrays stands in for the donation (on the CPU, jit
    # does not donate here): a write that still read the device arrays would fail or differ.
    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=1))
    saved = {}
    for epoch in (1, 2, 3):
        state = _state(float(epoch))
        saved[epoch] = jax.device_get(state)
        assert ckpt.maybe_save(epoch, state, (float(epoch), None), final=epoch == 3)
        for leaf in jax.tree.leaves(state):
            leaf.delete()
    ckpt.close()  # the last write is on disk after this
    epoch, got, (score, best) = Checkpoints(tmp_path / "ck", RunConfig()).restore(_state(0.0))
    assert (epoch, score, best) == (3, 3.0, None)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(saved[3]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_saves_follow_checkpoint_every(tmp_path):
    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=2))
    done = [
        ckpt.maybe_save(e, _state(float(e)), (-np.inf, None), final=e == 5) for e in (1, 2, 3, 4, 5)
    ]
    ckpt.close()
    assert done == [False, True, False, True, True]
    assert Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=2)).restore(_state(0.0))[0] == 5


def test_every_zero_saves_only_the_final_epoch(tmp_path):
    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=0))
    assert not ckpt.maybe_save(1, _state(1.0), (-np.inf, None), final=False)
    assert ckpt.maybe_save(2, _state(2.0), (-np.inf, None), final=True)
    ckpt.close()


def test_a_curve_reads_back_as_written_and_probabilities_are_stored_exactly(tmp_path):
    import numpy as np

    from mtl_bench.fold_io import CURVE_FIELDS, read_curve, write_curve
    from mtl_bench.fold_record import float32_list

    rows = [dict.fromkeys(CURVE_FIELDS, 0.5) | {"epoch": e} for e in (1, 2)]
    path = tmp_path / "fold_0_curve.csv"
    write_curve(path, rows)
    write_curve(path, read_curve(path))  # as a resumed fold rewrites its earlier epochs
    assert path.read_text().splitlines()[1].startswith("1,") and read_curve(path) == rows
    # A classifier's probability near 1e-7 must not tie at 0 (AUCs are recomputed from these).
    prob = np.array([[1 - 1e-7, 1e-7], [0.6, 0.4]], np.float32)
    stored = float32_list(prob)
    assert stored[0][1] > 0 and np.array_equal(np.array(stored, np.float32), prob)


def test_the_best_weights_are_digested_once_and_a_changed_array_is_refused(tmp_path, monkeypatch):
    digested = []
    monkeypatch.setattr(fold_io, "digest", lambda t: digested.append(t) or digest(t))

    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=1))
    best = jax.device_get({"params": _state(1.0)["params"], "rest": _state(1.0)["rest"]})
    for epoch in (1, 2):  # the same best weights (host numpy, as fit keeps them) both times
        ckpt.maybe_save(epoch, _state(float(epoch)), (0.5, best), final=epoch == 2)
    ckpt.close()
    assert sum(d is best for d in digested) == 1 and len(digested) == 3
    epoch, _, (score, got) = Checkpoints(tmp_path / "ck", RunConfig()).restore(_state(0.0))
    assert (epoch, score) == (2, 0.5) and np.array_equal(got["params"]["w"], best["params"]["w"])
    # What --resume meets when an array's data changed: a ValueError (the CLI's one line).
    (meta,) = (tmp_path / "ck" / "last").glob("*/meta/metadata")
    record = json.loads(meta.read_text())
    record["digest"]["best"]["rest/mean"][1] += 1
    meta.write_text(json.dumps(record))
    with pytest.raises(CheckpointDamaged, match=r"ck: the saved array best/rest/mean does not"):
        Checkpoints(tmp_path / "ck", RunConfig()).restore(_state(0.0))
    assert issubclass(CheckpointDamaged, ValueError)


def test_a_state_laid_out_otherwise_is_refused_in_one_line(tmp_path):
    # A checkpoint of an older version whose optimiser state was a list where it is now a dict
    # (the frozen-backbone state gained a field): orbax's page of text becomes one line.
    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=1))
    old = {**_state(1.0), "opt_state": [jnp.zeros(3), jnp.ones(2)]}
    ckpt.maybe_save(1, old, (1.0, None), final=True)
    ckpt.close()
    now = {**_state(0.0), "opt_state": {"count": jnp.zeros(3), "mu": jnp.ones(2)}}
    with pytest.raises(fold_io.StateLayoutChanged) as err:
        Checkpoints(tmp_path / "ck", RunConfig()).restore(now)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'ck'}: its saved state is laid out")
    assert "opt_state" in text and text.endswith(
        "drop --resume to retrain, or delete this checkpoint"
    )


@pytest.mark.parametrize("damage", ["array", "meta"])
def test_a_save_whose_files_cannot_be_read_is_refused_in_one_line(tmp_path, damage):
    # A truncated array file made tensorstore raise a bare Exception (a 150-line traceback); an
    # emptied metadata file said only "Expecting value: line 1 column 1 (char 0)".
    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=1))
    ckpt.maybe_save(1, _state(1.0), (1.0, None), final=True)
    ckpt.close()
    (step,) = (tmp_path / "ck" / "last").glob("1")
    if damage == "array":
        files = sorted(p for p in (step / "state").rglob("d/*") if p.is_file())
        for f in files:
            f.write_bytes(f.read_bytes()[:10])
    else:
        (step / "meta" / "metadata").write_text("")
    with pytest.raises(DataError) as err:  # predict's one line for the same files
        Checkpoints(tmp_path / "ck", RunConfig()).restore(_state(0.0))
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'ck'}: cannot restore the weights (")
    if damage == "meta":
        assert text.endswith("(Expecting value: line 1 column 1 (char 0))")


def test_the_fold_line_says_when_images_without_a_lesion_were_left_out():
    from mtl_bench.fold_record import summary

    seg = {"DC": 0.5, "JSI": 0.25, "n_images": 30}
    record = {"metrics": {"segmentation": seg, "classification": None}}
    record["per_image"] = {"id": [f"x{i}" for i in range(36)]}  # 6 normal images
    assert summary(record) == "DC 0.500 JSI 0.250 (over the 30 of 36 images with a lesion)"
    record["per_image"]["id"] = record["per_image"]["id"][:30]
    assert summary(record) == "DC 0.500 JSI 0.250"
    # No image with a lesion at all: the metrics are null, and the line says nan.
    record["metrics"]["segmentation"] = {"DC": None, "JSI": None, "n_images": 0}
    assert summary(record) == "DC nan JSI nan (over the 0 of 30 images with a lesion)"


def test_a_save_that_never_finished_is_removed_by_the_next_writer_only(tmp_path):
    ckpt = Checkpoints(tmp_path / "ck", RunConfig(checkpoint_every=1))
    ckpt.maybe_save(1, _state(1.0), (-np.inf, None), final=True)
    ckpt.close()
    # What a save cut short by a full disk or a kill leaves: orbax's temporary folder.
    step = tmp_path / "ck" / "last" / "1"
    cut = step.with_name("2.orbax-checkpoint-tmp-1764400000000000")
    shutil.copytree(step, cut)
    reader = Checkpoints(tmp_path / "ck", RunConfig(), writer=False)  # predict: touches nothing
    assert reader.restore(_state(0.0))[0] == 1
    reader.close()
    assert cut.is_dir()
    writer = Checkpoints(tmp_path / "ck", RunConfig())
    assert writer.restore(_state(0.0))[0] == 1
    writer.close()
    assert sorted(p.name for p in step.parent.iterdir()) == ["1"]
