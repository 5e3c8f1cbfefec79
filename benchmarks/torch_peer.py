"""The PyTorch peer: time each model's PyTorch twin in a subprocess, beside the JAX rows.

Twins (``twin_spec``): ``mtl_resunet`` → ``benchmarks.torch_mtl_resunet`` and ``unet`` →
``benchmarks.torch_classic_unet`` (same structure and parameter count); ``<arch>_<encoder>``
segmentation baselines → segmentation-models-pytorch (``Unet``, ``UnetPlusPlus``, ``FPN``,
``DeepLabV3Plus``; same encoder, in_channels, one class); classifiers → the torchvision model of
the registered name, else timm's (``mobilenet`` → ``mobilenetv1_100``), RGB stems fed the grey
image repeated, as our classifiers do inside. Other models (``daf``, feature classifiers) have no
twin and say so.

Each model runs in one subprocess per mode (``eager``, then ``compile``), each with its own time
box: a ``torch.compile`` that runs long is cut off and its rows say "skipped: ..." while the eager
numbers stand. Under the bench's ``--time-box`` (``time_box.TimeBox``) each mode's box is cut
to what is left, and a mode with too little left is not started. torch is imported only in the
subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.step_stats import noise_reasons
from benchmarks.time_box import TimeBox

SMP_ARCHS = {"unet": "Unet", "unetplusplus": "UnetPlusPlus", "fpn": "FPN",
             "deeplabv3plus": "DeepLabV3Plus"}  # fmt: skip
MTL_KWARGS = ("widths", "dense_units", "dropout", "merge", "shortcut_kernel", "downsample",
              "upsample")  # fmt: skip
UNET_KWARGS = ("base_width", "batch_norm", "dropout")
MODE_DISAGREE = 4.0  # torch.compile vs eager training rate beyond which a row is flagged noisy
# Model kwargs that only configure the JAX side (or are applied separately) and do not change
# the architecture, so a twin still matches. The bench's --set refuses ``dtype`` (--precision
# sets both sides, and the peer runs at the row's precision whatever a dtype kwarg says).
NEUTRAL_KWARGS = ("dtype", "image_size", "in_channels", "num_classes", "encoder_weights")


def twin_spec(name: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any] | str:
    """A JSON-able description of ``name``'s PyTorch twin, or the reason it has none."""
    from mtl_bench.registry import model_info

    info = model_info(name)
    kwargs = {**info.defaults, **(kwargs or {})}
    if name == "mtl_resunet":
        extra = sorted(set(kwargs) - set(MTL_KWARGS) - set(NEUTRAL_KWARGS))
        if extra:
            return f"no twin for mtl_resunet kwargs {', '.join(extra)}"
        mk = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
        return {"kind": "mtl_resunet", "kwargs": {k: v for k, v in mk.items() if k in MTL_KWARGS}}
    if name == "unet":
        extra = sorted(set(kwargs) - set(UNET_KWARGS) - set(NEUTRAL_KWARGS))
        if extra:
            return f"no twin for unet kwargs {', '.join(extra)}"
        return {
            "kind": "classic_unet",
            "kwargs": {k: kwargs[k] for k in UNET_KWARGS if k in kwargs},
        }
    arch, _, enc = name.partition("_")
    if info.family == "segmentation" and arch in SMP_ARCHS and enc:
        extra = sorted(set(kwargs) - {"encoder", *NEUTRAL_KWARGS})
        if extra:
            return f"no smp twin for model kwargs {', '.join(extra)}"
        return {"kind": "smp", "arch": SMP_ARCHS[arch], "encoder": kwargs.get("encoder", enc)}
    if info.family == "classification" and info.fit is None:
        # timm or torchvision is chosen in the subprocess: torch is never imported here.
        return {"kind": "classifier", "name": name}
    return f"no PyTorch twin for {name!r}"


def run_peer(
    name: str,
    configs: list[dict[str, Any]],
    *,
    kwargs: dict[str, Any] | None = None,
    steps: int = 10,
    warmup: int = 3,
    modes: tuple[str, ...] = ("eager", "compile"),
    timeout: float = 300.0,
    num_classes: int = 2,
    box: TimeBox | None = None,
) -> list[dict[str, Any]]:
    """Time ``name``'s twin for each config ({batch_size, precision, image_size}) and mode.

    Returns one dict per (config, mode) with ``status`` "ok", "skipped: ..." or "error: ...".
    Each mode runs in ``timeout`` seconds, or what ``box`` has left if that is less.
    """
    spec = twin_spec(name, kwargs)
    if isinstance(spec, str):
        return [{**c, "mode": m, "status": f"skipped: {spec}"} for m in modes for c in configs]
    results, box = [], box or TimeBox(None)
    for mode in modes:
        if not configs:
            break  # nothing to time: no subprocess (torch's import alone takes seconds)
        if not box.can_start():
            why = box.spent("peer")
            results += [{**c, "mode": mode, "status": f"skipped: {why}"} for c in configs]
            print(f"[bench] {why}: {name} PyTorch {mode} run not started", flush=True)
            continue
        mode_timeout = min(timeout, box.left())
        job = {
            "spec": spec,
            "configs": [{**c, "mode": mode} for c in configs],
            "in_channels": 1,
            "num_classes": num_classes,
            "steps": steps,
            "warmup": warmup,
        }
        got = _run_child(job, mode_timeout)
        done = {(r["batch_size"], r["precision"], r["image_size"]) for r in got}
        results += got
        missing = [
            c for c in configs if (c["batch_size"], c["precision"], c["image_size"]) not in done
        ]
        why = f"{mode} run exceeded its {mode_timeout:.0f} s time box"
        if missing and mode_timeout < timeout:
            why += " (cut to the bench's --time-box)"
            print(f"[bench] time box: {name} PyTorch {mode} run stopped at {mode_timeout:.0f} s, "
                  f"{len(got)} of {len(configs)} configurations done", flush=True)  # fmt: skip
        results += [{**c, "mode": mode, "status": f"skipped: {why}"} for c in missing]
    return results


def _run_child(job: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    root = Path(__file__).resolve().parent.parent
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "benchmarks.torch_peer_child", f.name]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=root
        )
        out, err, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:  # keep what finished before the time box
        # POSIX hands the output so far over as bytes, even in text mode.
        raw = e.stdout or b""
        out = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        # A line the kill cut short is not a measurement: keep whole lines only.
        out = out[: out.rfind("\n") + 1]
        err, code = "", 0
    finally:
        Path(f.name).unlink(missing_ok=True)
    rows = [json.loads(line[5:]) for line in out.splitlines() if line.startswith("PEER ")]
    if code != 0 and not rows:
        tail = " ".join(err.strip().splitlines()[-1:])[:300] or f"exit code {code}"
        return [{**c, "status": f"error: peer process failed: {tail}"} for c in job["configs"]]
    return rows


def attach_peer(
    rows: list[dict[str, Any]], kwargs: dict[str, Any], args: Any, box: TimeBox | None = None
) -> None:
    """Time the twin of the model of ``rows`` (one model's JAX rows) and add the peer columns
    (``box``: the bench's ``--time-box``; with too little left the peer is not started)."""
    if not rows:
        return
    name = rows[0]["model"]
    # A fold row trains k folds per step: its peer is k sequential runs, i.e. the none row's.
    ok = [r for r in rows if r.get("status") == "ok" and r.get("strategy") != "fold"]
    keys = dict.fromkeys((int(r["batch_size"]), r["precision"], int(r["image_size"])) for r in ok)
    configs = [{"batch_size": b, "precision": p, "image_size": s} for b, p, s in keys]
    if not configs:
        for r in rows:
            r["torch_note"] = "no JAX measurement to compare"
        return
    if box is not None and not box.can_start():
        why = box.spent("peer")
        for r in ok:
            r["torch_note"] = f"peer skipped: {why}"
        print(f"[bench] {why}: {name} PyTorch peer not started", flush=True)
        return
    modes = ("eager", "compile") if args.peer_compile == "on" else ("eager",)
    peer = run_peer(
        name,
        configs,
        kwargs=kwargs,
        steps=args.steps,
        warmup=args.warmup,
        modes=modes,
        timeout=args.peer_timeout,
        box=box,
    )
    for r in ok:
        key = (int(r["batch_size"]), r["precision"], int(r["image_size"]))
        notes, noisy = [], [r["noisy"]] if r.get("noisy") else []
        for p in peer:
            if (p["batch_size"], p["precision"], p["image_size"]) != key:
                continue
            mode = p["mode"]
            if p["status"] != "ok":
                notes.append(f"{mode}: {p['status']}")
                continue
            # Each ratio divides like by like (step_stats.py's conventions on both sides): the
            # blocked medians, and the pipelined medians under *_train_pipelined.
            for kind in ("train", "infer", "train_pipelined"):
                torch_ips = p.get(f"{kind}_img_per_s")
                r[f"torch_{mode}_{kind}_img_per_s"] = torch_ips
                if torch_ips and r.get(f"{kind}_img_per_s"):
                    r[f"jax_over_torch_{mode}_{kind}"] = r[f"{kind}_img_per_s"] / torch_ips
            for kind in ("train", "infer"):
                r[f"torch_{mode}_{kind}_iqr_pct"] = p.get(f"{kind}_iqr_pct")
            r["torch_params"] = p["params"]
            noisy += noise_reasons(f"torch {mode}", p)
            if mode == "compile" and p.get("compile_s") is not None:
                notes.append(f"torch.compile {p['compile_s']:.0f} s")
        for kind in ("train", "infer"):  # both ratios are reported, so both are judged
            eager, compiled = (r.get(f"torch_{m}_{kind}_img_per_s") for m in ("eager", "compile"))
            if eager and compiled and not 1 / MODE_DISAGREE < compiled / eager < MODE_DISAGREE:
                # Steady, but not what torch.compile does to a step (seen on a 2-core CPU: 100×
                # slower than eager, spreads small): a ratio against it says little about JAX.
                noisy.append(f"torch compile {compiled:.3g} vs eager {eager:.3g} {kind} img/s")
        r["torch_note"] = "; ".join(notes)
        r["noisy"] = "; ".join(noisy)
