"""mtl-bench command line: a thin layer that runs the parsed command (``cli_parser``) and calls
the library.

Bad input ends with one line ``mtl-bench: error: ...`` and a non-zero exit, never a traceback
(set MTL_BENCH_DEBUG=1 to see the traceback of an error).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import warnings

from mtl_bench.cli_parser import DEFAULT_REFERENCE, DEFAULT_RESULTS, build_parser
from mtl_bench.compile_cache import enable_compile_cache
from mtl_bench.data.types import DataError
from mtl_bench.data_cli import run_data
from mtl_bench.interrupt import remembered_interrupts
from mtl_bench.reproduce_cli import run_reproduce

__all__ = ["DEFAULT_REFERENCE", "DEFAULT_RESULTS", "build_parser", "main"]


def _config(args: argparse.Namespace):
    from mtl_bench.config import apply_overrides, check_options_agree
    from mtl_bench.configs import get_config

    cfg = get_config(args.model, args.preset)
    flags = {
        "data": getattr(args, "data", None),
        "parallel": getattr(args, "parallel", None),
        "devices": getattr(args, "devices", None),
        "precision": getattr(args, "precision", None),
        "fold_parallel": True if getattr(args, "fold_parallel", False) else None,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    check_options_agree(cfg, args.overrides, flags)
    cfg = apply_overrides(cfg, args.overrides)
    return dataclasses.replace(cfg, **flags)


def _run(args: argparse.Namespace) -> int:
    if args.command == "models":
        from mtl_bench.registry import list_models, model_info

        for name in list_models():
            info = model_info(name)
            print(f"{name:28s} {info.family:15s} outputs: {', '.join(info.tasks)}")
        return 0
    if args.command == "data":
        return run_data(args)
    if args.command == "reproduce":
        return run_reproduce(args)
    if args.command in ("cv", "train"):
        from mtl_bench.cv import run_cv
        from mtl_bench.distributed import init_distributed

        cfg = _config(args)  # first: its strategy is checked before waiting for other processes
        init_distributed(
            args.coordinator,
            args.num_processes,
            args.process_id,
            auto=args.distributed == "auto",
            parallel=cfg.parallel,
        )
        enable_compile_cache()
        folds = [args.fold] if args.command == "train" else args.folds
        written = run_cv(
            cfg, args.out, folds=folds, resume=args.resume, tag=args.tag, quiet=args.quiet
        )
        import jax

        if jax.process_index() == 0:  # the process that wrote them; the others wrote nothing
            for fold, path in written.items():
                print(f"fold {fold}: {path}")
        return 0
    if args.command == "bench":  # the bench manages its own compilation cache
        from benchmarks.throughput import run_from_args

        return run_from_args(args)
    if args.command == "figures":
        from mtl_bench.figures import build_figures

        paths = build_figures(
            args.results, throughput_dir=args.throughput, max_methods=args.max_methods
        )
        if not paths:
            raise DataError(
                f"{args.results}: nothing to draw (no fold_K.json results with probabilities, "
                "masks or curves, and no throughput CSVs)"
            )
        for path in paths:
            print(path)
        from pathlib import Path

        from mtl_bench.progress import log

        tp = Path(args.results) / "throughput"
        if args.throughput is None and not any(tp.glob("*.csv")):
            # bench writes results/throughput by default, not beside a cv results folder.
            log(
                f"figures: no throughput plot: no CSVs in {tp} (give --throughput DIR: "
                "`mtl-bench bench` writes OUT/throughput, results/throughput by default)"
            )
        elif args.throughput is not None and not any(Path(args.throughput).glob("*.csv")):
            log(f"figures: no throughput plot: no CSVs in --throughput {args.throughput}")
        return 0
    if args.command == "predict":
        from mtl_bench.predict import run_predict

        enable_compile_cache()
        return run_predict(args.inputs, args.checkpoint, args.out)
    if args.command == "weights":
        from mtl_bench.weights_cli import import_summary, import_weights

        # One line: the sidecar (a digest per array, thousands of lines) stays in its file.
        print(import_summary(import_weights(args.arch, args.file, args.out), args.out))
        return 0
    if args.command == "tables":
        from mtl_bench.tables import (
            DEFAULT_SPECS,
            build_tables,
            normalise_formats,
            render_markdown,
        )

        formats = normalise_formats([f.strip() for f in args.format.split(",")])
        kept = None
        if args.p_adjust is None:  # a reproduce folder's own choice, else holm
            from mtl_bench.reproduce_record import folder_p_adjust

            args.p_adjust = kept = folder_p_adjust(args.results)
        # Tables with no result at all are left out (a paper folder has no three-class runs).
        tables = build_tables(
            args.results,
            formats=formats,
            reference=args.reference,
            p_adjust=args.p_adjust,
            skip_empty=True,
            # Another reference must have run (the default may not have yet: a "not run" row).
            check_reference=args.reference != DEFAULT_REFERENCE,
        )
        print(render_markdown(tables))
        if kept not in (None, "holm"):  # after the tables: an error above stays one line
            print(
                f"mtl-bench: --p-adjust {kept}, as {args.results}'s reproduce.json says "
                "(pass --p-adjust holm for the adjusted tables)",
                file=sys.stderr,
            )
        empty = [s.name for s in DEFAULT_SPECS if s.name not in tables]
        if empty:
            print(f"mtl-bench: no results for {', '.join(empty)}: not written", file=sys.stderr)
        return 0
    raise AssertionError(args.command)


def _show_data_warning(other, message, category, filename, lineno, file=None, line=None) -> None:
    """Data warnings (files skipped, empty masks, label leakage) as one ``mtl-bench: warning:``
    line each, not Python's file:line form; other warnings as usual."""
    from mtl_bench.data.types import DataWarning

    if issubclass(category, DataWarning):
        print(f"mtl-bench: warning: {message}", file=file or sys.stderr)
    elif category.__name__ == "DecompressionBombWarning":
        pass  # Pillow's names no file; png.py's DataWarning about the same image does
    else:
        other(message, category, filename, lineno, file, line)


# Options and arguments that name a file or folder: an empty one ("" from an unset shell
# variable) is the working folder to Python, where it wrote results, folds or a dataset.
PATH_DESTS = ("out", "data", "data_dir", "results", "throughput", "checkpoint", "inputs", "root",
              "file", "csv", "profile")  # fmt: skip


def _empty_path(args) -> str | None:
    """The one-line error for the first path option given as an empty string, else None."""
    for dest in PATH_DESTS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and not value.strip():
            flag = dest.upper() if dest in ("inputs", "root") else "--" + dest.replace("_", "-")
            return f"{flag} {value!r}: an empty path (it would mean the working folder); give one"
    return None


def _in_the_way(e: OSError) -> str | None:
    """What stands where a folder was to be made ("[Errno 17] File exists: 'R/tables'"): a file,
    a file on its path, or a broken link (to an unmounted disk); None for anything else."""
    path = str(e.filename)
    if os.path.islink(path) and not os.path.exists(path):
        return f"{path}: a broken link (to {os.readlink(path)})"
    if isinstance(e, FileExistsError) and os.path.isfile(path):
        return f"{path}: a file where a folder is needed"
    if isinstance(e, NotADirectoryError):
        return f"{path}: a file where a folder is needed on this path"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if empty := _empty_path(args):
        print(f"mtl-bench: error: {empty}", file=sys.stderr)
        return 2
    from mtl_bench.train import TrainingDiverged

    previous = warnings.showwarning
    warnings.showwarning = functools.partial(_show_data_warning, previous)
    try:
        with remembered_interrupts():  # one swallowed by a JAX callback still stops the run
            return _run(args)
    except BrokenPipeError:  # output piped into `head` that has closed: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (
        DataError, TrainingDiverged, ValueError, KeyError, TypeError, OSError, ImportError,
    ) as e:  # fmt: skip
        if os.environ.get("MTL_BENCH_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, FileExistsError | NotADirectoryError) and e.filename:
            msg = _in_the_way(e) or msg
        print(f"mtl-bench: error: {msg}", file=sys.stderr)
        return 2
    except MemoryError as e:  # numpy's names the array: a size typed with a digit too many
        if os.environ.get("MTL_BENCH_DEBUG"):
            raise
        print(
            f"mtl-bench: error: out of host memory ({e or 'MemoryError'}): check the image "
            "size, batch size and number of images",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        # Only cv, train and reproduce resume, and a fold continues only from a checkpoint.
        hint = (
            " (rerun the same command with --resume: finished folds are kept; an unfinished "
            "fold continues from its last checkpoint, or restarts if checkpoint_every=0)"
            if args.command in ("cv", "train", "reproduce")
            else ""
        )
        print(f"mtl-bench: interrupted{hint}", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
