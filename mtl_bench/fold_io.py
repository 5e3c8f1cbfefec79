"""What a fold leaves on disk while it trains, to resume from: orbax checkpoints (the state
after the last saved epoch, the best-validation weights, the run's config) and the learning
curve, one CSV row per epoch (``RESULTS/<method>/fold_K_curve.csv``)."""

from __future__ import annotations

import csv
import json
import shutil
from functools import partial
from pathlib import Path

import jax
import numpy as np

from mtl_bench.atomic import atomic_write
from mtl_bench.config import STATE_KEYS, RunConfig, config_differences
from mtl_bench.orbax_settle import settling_loops
from mtl_bench.state_digest import digest, first_difference
from mtl_bench.train import State


def folds_checkpoint_name(folds: list[int]) -> str:
    """The checkpoint folder of folds trained side by side (``ckpt_folds_0_1_2``): one folder,
    their states stacked on a leading fold axis in this order."""
    return "ckpt_folds_" + "_".join(str(int(f)) for f in folds)


CURVE_FIELDS = ("epoch", "loss", "dice_loss", "focal_loss", "lr", "img_per_s", "val_score")


def write_curve(path: Path, rows: list[dict]) -> None:
    """Write the curve ``rows`` to ``path`` atomically (process 0 only)."""
    if jax.process_index() != 0:  # multi-process: process 0 writes
        return

    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=CURVE_FIELDS)
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write, text=True)


def read_curve(path: Path | None) -> list[dict]:
    """The rows of a curve CSV (the epoch an int, the rest floats); [] when there is none.

    A resumed fold writes these rows again: an epoch read as a float would come back "1.0"."""
    if path is None or not Path(path).exists():
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    return [{**r, "epoch": int(r["epoch"])} for r in rows]


def clear_for_retraining(ckpt_dir: Path | None, resume: bool) -> None:
    """Remove a fold's old checkpoint before a run that is not a --resume saves into its folder.

    Called once the model is built (its weights file read): a weights file that does not fit
    must not cost a finished fold its checkpoint, which predict needs beside its result."""
    if ckpt_dir is not None and not resume and Path(ckpt_dir).exists():
        shutil.rmtree(ckpt_dir)


class SettingsMismatch(ValueError):
    """A checkpoint saved under other settings; ``diffs``: "key: saved → now" lines."""

    def __init__(self, message: str, diffs: list[str]) -> None:
        super().__init__(message)
        self.diffs = diffs


class CheckpointDamaged(ValueError):
    """A restored array differs from what was saved (``state_digest``): the files changed."""


class StateLayoutChanged(ValueError):
    """A checkpoint whose state tree differs from the one this code builds (an older version's)."""


class Checkpoints:
    """orbax CheckpointManager keyed by completed epochs, plus the best-validation weights.

    Each save records the run's config; a restore under different settings (see
    ``config.EXECUTION_KEYS`` for those that may change; ``epochs`` may grow) is refused,
    naming the differences.

    Saves write in the background: ``maybe_save`` returns once the state is copied to host
    memory (orbax's blocking part, so the next step may donate the device buffers), and the
    files are written while the next epochs train — on an H100 a synchronous save cost 0.84 s,
    two epochs' worth at the paper's batch of 16. A save waits for the one before it, and
    ``close`` for the last: call it when the fold ends. orbax writes each save into a temporary
    folder and renames it when complete, so an interrupted write leaves the previous save.

    orbax checks no checksum on the arrays' data, so each save also records their digest
    (``state_digest``, computed on the device: a few scalars reach the host) and a restore
    whose arrays differ raises ``CheckpointDamaged``. Saves from before that have none and
    restore unchecked.
    """

    def __init__(self, directory: Path, cfg: RunConfig, *, writer: bool = True) -> None:
        """``writer=False``: read only (predict), never touching the folder, which a training
        run may be writing."""
        import logging

        import orbax.checkpoint as ocp

        # orbax logs every save's wait at WARNING through absl; keep run logs to our own lines.
        logging.getLogger("absl").setLevel(logging.ERROR)
        self._ocp = ocp
        self.every = cfg.checkpoint_every
        self.config = json.loads(json.dumps(cfg.to_dict(), default=str))
        directory = Path(directory).absolute()
        self.directory = directory
        # A writer removes the temporary folders of a save that never finished (a full disk, a
        # killed run): they hold nothing restorable and would stay forever. Only the fold's
        # owner gets here (cv's claim per fold), so none is another run's save in progress.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=1, cleanup_tmp_directories=writer, read_only=not writer
        )
        self.mngr = ocp.CheckpointManager(directory / "last", options=options)
        self.best_dir = directory / "best"
        # The best weights change only when validation improves; digesting them on every save
        # would redo the same work (numpy on host). Kept with the tree itself, not its id().
        self._best_digest: tuple[object, dict] | None = None

    def maybe_save(self, epoch: int, state: State, best: tuple, *, final: bool) -> bool:
        """Save after ``epoch`` when it is due (or ``final``); whether it saved."""
        if not final and (self.every <= 0 or epoch % self.every):
            return False
        ocp = self._ocp
        sums = {"state": digest(state)}
        if best[1] is not None:
            if self._best_digest is None or self._best_digest[0] is not best[1]:
                self._best_digest = (best[1], digest(best[1]))
            sums["best"] = self._best_digest[1]
        items = {
            "state": ocp.args.StandardSave(state),
            "meta": ocp.args.JsonSave(
                {
                    "epoch": epoch,
                    "best_score": _finite_or_none(best[0]),
                    "has_best": best[1] is not None,
                    "config": self.config,
                    "digest": sums,
                }
            ),
        }
        if best[1] is not None:
            items["best"] = ocp.args.StandardSave(best[1])
        self.mngr.save(epoch, args=ocp.args.Composite(**items), force=True)
        return True

    def close(self) -> None:
        """Wait until the last save is on disk (and stop orbax's background threads)."""
        self.mngr.close()

    def restore(self, like: State) -> tuple[int, State, tuple] | None:
        """(epoch, state shaped like ``like``, (best score, best weights)) of the latest save;
        None when there is none; ``SettingsMismatch`` when it was saved under other settings."""
        step = self.mngr.latest_step()
        if step is None:
            return None
        ocp = self._ocp
        try:
            meta = self.mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            meta = meta["meta"]
        except (ValueError, OSError, KeyError) as e:  # an emptied or cut-short metadata file
            raise self._unreadable(e) from None
        # More epochs continue the same run (the lr staircase depends on the epoch, not the
        # total); fewer than already trained would record a run that did not happen.
        saved = meta.get("config") or {}
        diffs = config_differences(saved, self.config, ignore=("epochs",))
        diffs += [
            f"{key}: {saved[key]!r} → {self.config[key]!r}"
            for key in sorted(STATE_KEYS & set(saved))
            if saved[key] != self.config[key]
        ]
        if step > self.config["epochs"]:
            diffs.append(f"epochs: {step} trained already → {self.config['epochs']}")
        if diffs:
            raise SettingsMismatch(
                f"{self.directory}: its run had other settings ({'; '.join(diffs)}, saved → "
                "now); --resume continues only the same run: drop --resume to retrain, delete "
                "this checkpoint, or use another --out",
                diffs,
            )
        abstract = partial(jax.tree.map, ocp.utils.to_shape_dtype_struct)
        items = {"state": ocp.args.StandardRestore(abstract(like))}
        if meta["has_best"]:
            items["best"] = ocp.args.StandardRestore(
                abstract({"params": like["params"], "rest": like["rest"]})
            )
        with settling_loops():
            try:
                got = self.mngr.restore(step, args=ocp.args.Composite(**items))
            except ValueError as e:
                if "tree structures do not match" not in str(e):
                    raise self._unreadable(e) from None
                # orbax's page of text, in one line: the first differing node and its types.
                where = " ".join(str(e).splitlines()[1:4]).replace("- ", "").split()
                raise StateLayoutChanged(
                    f"{self.directory}: its saved state is laid out otherwise than this version "
                    f"of the code builds it ({' '.join(where)}): saved by an older mtl-bench? "
                    "drop --resume to retrain, or delete this checkpoint"
                ) from None
            except Exception as e:  # tensorstore raises a bare Exception on a damaged file
                if "RESOURCE_EXHAUSTED" in str(e):  # out of memory is no damage: as it is
                    raise
                raise self._unreadable(e) from None
        # The best weights are checked on the host copy made anyway (no second compile).
        got = {k: jax.device_get(got[k]) if k == "best" else got[k] for k in items}
        self._check(meta.get("digest"), got)
        score = -np.inf if meta["best_score"] is None else float(meta["best_score"])
        return int(step), got["state"], (score, got.get("best"))

    def _unreadable(self, e: Exception) -> Exception:
        """The one line (``fold_checkpoint``'s, as ``predict`` says it) of a save whose files
        cannot be read back: a damaged array file, an emptied metadata file, a part not copied,
        arrays of another shape. orbax's own is a page of tensorstore or JSON text."""
        from mtl_bench.fold_checkpoint import restore_error

        return restore_error(self.directory, e)

    def _check(self, saved: dict | None, got: dict) -> None:
        """Raise ``CheckpointDamaged`` unless the restored items match their saved digests."""
        for item, sums in (saved or {}).items():  # None: saved before digests were recorded
            if (wrong := first_difference(sums, digest(got[item]))) is not None:
                raise CheckpointDamaged(
                    f"{self.directory}: the saved array {item}/{wrong[0]} {wrong[1]}; retrain "
                    "the fold or restore the folder from a copy"
                )


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
