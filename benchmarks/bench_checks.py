"""The bench's checks before anything is measured: output paths that cannot be written, and model
option values or an image size a selected model's builder refuses. Each failure is one
ValueError line naming the option and the value: found after measuring started, it was a row's
"error"/"skipped" status, or timings thrown away when the trace or CSV could not be written.

No jax at import (``bench_args`` imports this, and the CLI's ``--help`` stays instant)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mtl_bench.atomic import cannot_write


def check_paths(args: argparse.Namespace) -> None:
    """One-line ValueErrors for output paths that cannot be written: ``--csv`` a folder,
    ``--out``, ``--profile`` or ``--compile-cache`` a plain file (or under one), or under a
    folder this process cannot write in (``/proc``, read-only mounts). Nothing is created: an
    error found after this one must leave no empty folder behind."""
    if args.csv:
        csv_path = Path(args.csv)
        if csv_path.is_dir():
            raise ValueError(f"--csv {args.csv}: is a folder; give a CSV file")
        _check_folder("--csv", args.csv, csv_path.parent)
    else:
        _check_folder("--out", args.out, Path(args.out) / "throughput")
    if args.profile:
        _check_folder("--profile", args.profile, Path(args.profile))
    if args.compile_cache not in ("fresh", "off"):
        # JAX does not complain about a cache it cannot write: it compiles without one, and
        # compile_warm_s would silently be a second cold compile.
        _check_folder("--compile-cache", args.compile_cache, Path(args.compile_cache))


def _check_folder(option: str, given: str, folder: Path) -> None:
    """``folder`` is a folder or can be made one: no part of it is an existing non-folder, and
    the nearest existing part takes a new file (tried: permission bits do not stop root, and a
    read-only mount or ``/proc`` shows only when writing)."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                what = "is" if part == Path(given) else f"is under {part}, which is"
                raise ValueError(f"{option} {given}: {what} a file, not a folder")
            if why := cannot_write(part):
                where = "" if part == Path(given) else f" {part}"
                raise ValueError(f"{option} {given}: cannot write in{where} ({why})")
            return


def bench_builder_kwargs(name: str, kwargs: dict[str, Any], image_size: int) -> dict[str, Any]:
    """What ``timing.measure`` passes the builder (fp32; the dtype does not decide whether a
    model builds): the training path's own ``builder_kwargs``, so the two cannot drift."""
    from benchmarks.timing import BenchSpec
    from mtl_bench.config import RunConfig
    from mtl_bench.model_build import builder_kwargs

    cfg = RunConfig(model=name, model_kwargs=dict(kwargs), image_size=image_size)
    return builder_kwargs(cfg, BenchSpec.num_classes)


def _check_types(name: str, given: dict[str, Any]) -> None:
    """A value of another type than the option's number or bool default (``dropout=abc`` builds,
    and would fail only inside the first timed step), or a dropout rate outside [0, 1): the
    registry's check, as ``--set``."""
    from mtl_bench.registry import check_option_types

    try:
        check_option_types(name, given)
    except (TypeError, ValueError) as e:  # a type, or a value out of range (dropout=1.5)
        raise ValueError(f"--set {e}") from None


def _builds(name: str, kwargs: dict[str, Any], image_size: int) -> str | None:
    """None if ``name`` builds abstractly with ``kwargs`` at ``image_size``, else the builder's
    reason (without the registry's "model X cannot be built with ...:" prefix, which lists
    every builder argument; the bench's line names the ones the user gave)."""
    from mtl_bench.registry import check_model_builds

    full = bench_builder_kwargs(name, kwargs, image_size)
    try:
        check_model_builds(name, full)
    except Exception as e:  # noqa: BLE001 — the registry passes on e.g. ZeroDivisionError as is
        shown = ", ".join(f"{k}={v!r}" for k, v in full.items())
        text = " ".join(str(e).split()) or type(e).__name__
        prefix = f"model {name!r} cannot be built with {shown}: "
        return (
            text.removeprefix(prefix) if text.startswith(prefix) else f"{type(e).__name__}: {text}"
        )
    return None


# The image size at which an option alone is judged: every registered model builds at 256² with
# its defaults (the bench's default size), so a refusal there is the option's.
REFERENCE_SIZE = 256


def check_model_values(
    models: list[str],
    kwargs: dict[str, dict[str, Any]],
    image_size: int,
    precisions: list[str],
    *,
    every: bool,
) -> dict[str, str]:
    """Build each selected model abstractly with its ``--set`` options at ``image_size``. A value
    of the wrong type or one its builder refuses is a ValueError naming model, option and value;
    an image size a model refuses is one too, unless ``every`` (``--models all``): then that
    model is returned (its rows say "skipped: cannot build at N²", as a run over every model
    may meet a size some do not take), with the builder's reason. Not built here: feature
    methods (``fit`` set) and models whose every precision is skipped unbuilt (bf16 without a
    ``dtype`` argument)."""
    from benchmarks.bench_kwargs import kwargs_for
    from benchmarks.timing import accepts_kwarg
    from mtl_bench.registry import model_info

    refused = {}
    for name in models:
        if model_info(name).fit is not None:
            continue
        if set(precisions) == {"bf16"} and not accepts_kwarg(name, "dtype"):
            continue
        given = kwargs_for(kwargs, name)
        _check_types(name, given)
        why = _builds(name, given, image_size)
        if why is None:
            continue
        opts = " ".join(f"{k}={v!r}" for k, v in sorted(given.items()))
        if given and (image_size == REFERENCE_SIZE or _builds(name, given, REFERENCE_SIZE)):
            raise ValueError(f"--set {opts}: model {name!r} cannot be built: {why}")
        if not every:
            with_opts = f" with {opts}" if opts else ""
            raise ValueError(f"--image-size {image_size}: model {name!r}{with_opts}: {why}")
        refused[name] = why
    return refused


def known_skip(name: str, precision: str) -> str | None:
    """Why a configuration of ``name`` at ``precision`` is skipped whatever its batch or time
    box (``timing.measure`` raises it as ``Skip``; the bench writes it without starting)."""
    from benchmarks.timing import accepts_kwarg
    from mtl_bench.registry import model_info

    if model_info(name).fit is not None:
        return "not trained by gradient descent (no step to time)"
    if precision == "bf16" and not accepts_kwarg(name, "dtype"):
        return "bf16: the model's builder takes no dtype argument"
    return None


def select_models(spec: str) -> list[str]:
    """``all`` or a comma list of registered names (an unknown name is a one-line error)."""
    from mtl_bench.registry import list_models, model_info

    if spec.strip() == "all":
        return list_models()
    names = [m.strip() for m in spec.split(",")]
    if not all(names):  # `a,,b` as for every list option: a typo must not shrink the run unseen
        what = "is empty" if not any(names) else f"has an empty item in {spec!r}"
        raise ValueError(f"--models {what}: give all or NAME[,NAME...]")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # the same model timed twice, as two sets of rows
        raise ValueError(f"--models {spec}: {', '.join(twice)} given twice")
    for name in names:
        model_info(name)  # KeyError naming the registered models
    return names
