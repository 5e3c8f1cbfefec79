"""The trained fold a checkpoint path names, and its model restored for inference (``predict``).

A ``checkpoint`` names one trained fold, as ``mtl-bench cv`` leaves it:

- ``RESULTS/<method>/ckpt_fold_<K>`` (or its ``last`` folder, or ``last/<step>``): the orbax
  checkpoint written by ``fold_io.Checkpoints`` (state = params, rest, opt_state, step; plus the
  best-validation weights when validation selection ran — those are used, as for the test
  metrics), and
- ``RESULTS/<method>/fold_<K>.json`` beside it: the finished fold's result file, whose ``config``
  gives the model name, model_kwargs, image_size, preprocess and precision, and whose
  ``class_names`` name the probabilities. Passing the ``fold_<K>.json`` itself also works.
- Folds trained side by side (``cv --fold-parallel``) share one checkpoint,
  ``RESULTS/<method>/ckpt_folds_<A>_<B>...`` (stacked on a leading fold axis): pass the fold's
  ``fold_<K>.json``, whose ``folds_trained_together`` names that folder; fold K's slice is used.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mtl_bench.data.types import DataError

if TYPE_CHECKING:
    from mtl_bench.config import RunConfig
    from mtl_bench.train import Engine


class FoldModel(NamedTuple):
    """A trained fold ready for inference. ``method`` is the results folder's name for the run
    (``mtl_resunet@3class``, ``unet@tag``), ``cfg.model`` the registered architecture."""

    cfg: RunConfig
    names: tuple[str, ...]
    engine: Engine
    state: dict[str, Any]
    method: str


_CKPT = re.compile(r"ckpt_fold_(\d+)")
_CKPT_FOLDS = re.compile(r"ckpt_folds_(\d+(?:_\d+)*)")


def _trained_together(record: Path) -> list[int] | None:
    """The folds a result file's fold was trained beside (``--fold-parallel``), else None."""
    try:
        rec = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{record}: cannot read the result file ({e})") from None
    if not isinstance(rec, dict) or not rec.get("fold_parallel"):
        return None
    return [int(f) for f in rec.get("folds_trained_together") or []] or None


def _no_checkpoint_kind(record: Path) -> None:
    """Refuse a result of a method that is fitted without the gradient engine (no checkpoint)."""
    from mtl_bench.registry import model_info

    try:
        model = json.loads(record.read_text(encoding="utf-8"))["config"]["model"]
        fitted_apart = model_info(model).fit is not None
    except (OSError, ValueError, KeyError, TypeError):
        return  # the caller's message (no checkpoint) stands
    if fitted_apart:
        raise DataError(
            f"{record}: {model} is fitted by its own fit (not a network), which saves no "
            "checkpoint, so predict cannot use it"
        )


def resolve_checkpoint(checkpoint: str | Path) -> tuple[Path, Path, int | None]:
    """(checkpoint folder, the fold's ``fold_K.json``, the fold's position on a side-by-side
    checkpoint's fold axis or None) for any accepted form."""
    p = Path(checkpoint).expanduser()
    if not p.exists():
        raise DataError(f"{p}: checkpoint not found")
    if p.is_file() and re.fullmatch(r"fold_\d+\.json", p.name):
        together = _trained_together(p)
        if together is not None:
            from mtl_bench.fold_io import folds_checkpoint_name

            shared = p.with_name(folds_checkpoint_name(together))
            if not (shared / "last").is_dir():
                raise DataError(
                    f"{shared}: missing, so {checkpoint} (folds {together} trained side by "
                    "side) has no weights to predict with"
                )
            return shared, p, together.index(int(p.stem.split("_")[1]))
        p = p.with_name(f"ckpt_{p.stem}")
        if not (p / "last").is_dir():
            _no_checkpoint_kind(p.with_name(f"{p.name[5:]}.json"))
            raise DataError(
                f"{p}: missing, so {checkpoint} has no weights to predict with (reproduce deletes "
                "baselines' checkpoints unless --keep-checkpoints; cv keeps them, but a retrain "
                "that stopped removed the old one: rerun the fold)"
            )
    elif p.parent.name == "last" and p.name.isdigit():
        p = p.parent.parent
    elif p.name == "last":
        p = p.parent
    side = _CKPT_FOLDS.fullmatch(p.name)
    if side and (p / "last").is_dir():
        folds = ", ".join(side.group(1).split("_"))
        raise DataError(
            f"{checkpoint}: folds {folds} trained side by side in one checkpoint; pass the "
            f"fold_K.json of the fold to predict with (in {p.parent})"
        )
    m = _CKPT.fullmatch(p.name)
    if not m or not (p / "last").is_dir():
        inside = sorted(q.name for q in p.glob("ckpt_fold*") if q.is_dir()) if p.is_dir() else []
        raise DataError(
            f"{checkpoint}: not a fold checkpoint (expected RESULTS/<method>/ckpt_fold_K with a "
            "'last' folder, or the fold_K.json beside it)"
            + (f"; it holds {', '.join(inside)}: pass one of those" if inside else "")
        )
    record = p.parent / f"fold_{m.group(1)}.json"
    if not record.is_file():
        raise DataError(
            f"{record}: missing; predict reads the finished fold's config from it (an "
            "interrupted fold has a checkpoint but no result file: finish it with --resume)"
        )
    if _trained_together(record) is not None:  # then this folder is an earlier run's
        raise DataError(
            f"{record} was trained side by side with other folds, not from {p}: pass {record}"
        )
    return p, record, None


def load_fold_model(checkpoint: str | Path) -> FoldModel:
    """The trained fold ``checkpoint`` names, restored (see the module doc)."""
    from mtl_bench.config import RunConfig
    from mtl_bench.fit import build_model
    from mtl_bench.fold_io import Checkpoints
    from mtl_bench.registry import model_info
    from mtl_bench.train import Engine

    ckpt_dir, record_path, index = resolve_checkpoint(checkpoint)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        cfg = RunConfig.from_dict(record["config"])
        names = tuple(record["class_names"])
        method = str(record.get("method") or cfg.model)  # a hand-made record may lack it
    except KeyError as e:  # str(KeyError) is only the quoted key
        raise DataError(f"{record_path}: cannot read the run config (no {e} entry)") from None
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise DataError(f"{record_path}: cannot read the run config ({e})") from None
    try:
        cfg = dataclasses.replace(cfg, parallel="none")
        engine = Engine(
            build_model(cfg, len(names)),
            model_info(cfg.model).tasks,
            cfg,
            steps_per_epoch=1,
            class_alpha=None,
        )
    except (DataError, ValueError, KeyError, TypeError) as e:
        reason = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise DataError(f"{record_path}: cannot rebuild the model it records ({reason})") from None
    like = engine.canonical_state(engine.initial_state)
    if index is not None:  # fit_folds_parallel's layout: stacked over folds, plus its tick
        import jax
        import jax.numpy as jnp

        n = len(record["folds_trained_together"])  # what resolve_checkpoint named it by
        like = {**jax.tree.map(lambda x: jnp.stack([x] * n), like), "tick": jnp.zeros((), "int32")}
    ckpts = Checkpoints(ckpt_dir, cfg, writer=False)
    try:
        restored = ckpts.restore(like)
    except Exception as e:  # orbax/tensorstore raise many kinds; any is a bad checkpoint here
        raise _restore_error(ckpt_dir, record_path, e) from None
    finally:
        ckpts.close()  # orbax's background threads, on success and failure alike
    if restored is None:
        raise DataError(f"{ckpt_dir / 'last'}: holds no saved step")
    _, state, best = restored
    if index is not None:
        state = jax.tree.map(lambda x: x[index], {k: v for k, v in state.items() if k != "tick"})
    if best[1] is not None:  # validation selection ran: the selected weights were tested
        state = {**state, **best[1]}
    return FoldModel(cfg, names, engine, state, method)


# What every saved step holds (orbax's layout): without one of them a restore fails with an
# error about tree structures or tensorstore that does not say a file is gone.
_STEP_PARTS = ("_CHECKPOINT_METADATA", "state/_METADATA", "state/manifest.ocdbt")


def _missing_part(ckpt_dir: Path) -> str | None:
    """The first of ``_STEP_PARTS`` missing from the latest saved step, relative to
    ``ckpt_dir``; None when all are there (or no step is found)."""
    steps = [p for p in (ckpt_dir / "last").glob("*") if p.name.isdigit() and p.is_dir()]
    if not steps:
        return None
    step = max(steps, key=lambda p: int(p.name))
    for part in _STEP_PARTS:
        if not (step / part).exists():
            return str((step / part).relative_to(ckpt_dir))
    return None


def restore_error(ckpt_dir: Path, e: Exception) -> DataError:
    """One line for a checkpoint whose files cannot be read back (``--resume`` and ``predict``
    alike): a part missing, arrays of another shape, or damaged data (the reader's reason)."""
    return _restore_error(ckpt_dir, ckpt_dir, e)


def _restore_error(ckpt_dir: Path, record: Path, e: Exception) -> DataError:
    """One line for a checkpoint that cannot be restored: saved by another run, or damaged."""
    from mtl_bench.fold_io import CheckpointDamaged, SettingsMismatch, StateLayoutChanged

    if isinstance(e, DataError):  # said already (Checkpoints.restore's restore_error)
        return e
    if isinstance(e, CheckpointDamaged | StateLayoutChanged):  # names the folder and the place
        return DataError(str(e))
    if isinstance(e, SettingsMismatch):
        return DataError(
            f"{ckpt_dir}: saved by a run with other settings than {record.name} records "
            f"({'; '.join(e.diffs)}, checkpoint → result file): not the weights that result was "
            "tested with (a later run of the fold that did not finish?); rerun the fold"
        )
    if missing := _missing_part(ckpt_dir):  # orbax would say "pytree structure error" instead
        return DataError(
            f"{ckpt_dir}: {missing} is missing (an incomplete copy?): copy the whole checkpoint "
            "folder again, or rerun the fold"
        )
    while e.__cause__ is not None:  # orbax wraps tensorstore's reason in a page of repr
        e = e.__cause__  # type: ignore[assignment]
    text = " ".join(str(e).split()) or type(e).__name__
    if m := re.search(
        r"Requested shape: (\(.*?\)) is not compatible with the stored shape: (\(.*?\))", text
    ):
        return DataError(
            f"{ckpt_dir}: its weights do not fit the model {record.name} records (an array "
            f"stored as {m.group(2)}, the model's is {m.group(1)}): not that result's checkpoint"
        )
    if len(text) > 300:
        text = text[:300] + " …"
    return DataError(f"{ckpt_dir}: cannot restore the weights ({text})")
