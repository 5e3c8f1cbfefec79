"""``mtl-bench weights import``: a local torchvision/timm ImageNet checkpoint → Flax parameters of a
registered classifier, stored with orbax, and read back by the builders' ``weights=`` argument.

An imported folder holds ``state/`` (orbax ``StandardSave`` of the model's nnx Param and BatchStat
pytree, nested dicts keyed by attribute names and list indices as strings) and ``imported.json``
(arch, source file, its sha256, class count, tensors ported, and the saved arrays' checksums:
``state_digest``, checked on load, as orbax checks none on array data). The model is built with the
file's own class count (1000 for ImageNet), so the head is imported too; a model built later with
other ``num_classes`` loads everything but the head, which keeps its fresh init (``port.py``).
Nothing is downloaded: ``--file`` must be a local ``.pth``/``.pt`` (needs torch) or
``.safetensors`` (or ``.npz``) file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from mtl_bench.state_digest import digest, first_difference
from mtl_bench.weights import TorchTable, WeightPortError, load_state_dict

SIDECAR = "imported.json"
STATE = "state"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pure(tree: Any) -> Any:
    """nnx pure dict → nested dict with string keys and numpy leaves (what orbax stores)."""
    if isinstance(tree, dict):
        return {str(k): _pure(v) for k, v in tree.items()}
    return np.asarray(tree)


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, dict):
        out: dict[str, np.ndarray] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    return {prefix: np.asarray(tree)}


def import_weights(arch: str, file: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Port ``file`` into classifier ``arch`` and save it under ``out_dir``; returns the sidecar.

    Errors (one line each): unknown arch, missing file, a file without ``arch``'s head or with
    keys/shapes that do not fit (``WeightPortError`` names them), an ``out_dir`` already used.
    """
    import orbax.checkpoint as ocp

    from baselines.classifiers import CLASSIFIERS
    from baselines.classifiers.port import normalise_keys, port_with_head
    from mtl_bench.atomic import check_out_folder
    from mtl_bench.registry import count_params, create_model

    if arch not in CLASSIFIERS:
        raise ValueError(f"unknown --arch {arch!r}; importable: {', '.join(CLASSIFIERS)}")
    src = Path(file)
    out = Path(out_dir).absolute()
    if (out / STATE).exists() or (out / SIDECAR).exists():
        raise ValueError(f"{out} already holds imported weights; remove it or choose another --out")
    check_out_folder(out)  # a file, /proc, a read-only folder: one line, before the port
    # "A folder to create": not one holding other files (hidden ones, .DS_Store, and what an
    # import killed mid-save left, orbax's *-tmp-* folder, are not others').
    left = (
        [p for p in out.iterdir() if p.name[:1] != "." and "-tmp-" not in p.name]
        if out.is_dir()
        else []
    )
    if left:
        raise ValueError(f"--out {out} is not empty; give a new or empty folder")
    sd = normalise_keys(load_state_dict(src))
    extra = {"aux_logits": True} if arch == "inception_v3" and "AuxLogits.fc.bias" in sd else {}

    def build(n: int) -> nnx.Module:
        kw = dict(in_channels=3, num_classes=n, image_size=None, **extra)
        return nnx.eval_shape(lambda: create_model(arch, **kw))

    probe = build(2).torch_table()
    head_bias = next(k for k, t in probe.entries.items() if t.path == ("fc", "bias"))
    if head_bias not in sd:
        raise WeightPortError(
            f"{src} has no {head_bias!r}: not a full {arch} checkpoint (torchvision/timm layout)"
        )
    num_classes = int(np.shape(sd[head_bias])[0])
    # Built abstractly: the port must fill every variable, so no random init is computed or kept.
    model = build(num_classes)
    report = port_with_head(
        model, sd, model.torch_table(), source=str(src), ignore_prefixes=model.ignore_torch_prefixes
    )
    state = _pure(nnx.state(model, (nnx.Param, nnx.BatchStat)).to_pure_dict())
    out.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(out / STATE, state)
        ckpt.wait_until_finished()
    meta = {
        "arch": arch,
        "source_file": src.name,
        "source_path": str(src.absolute()),
        "sha256": _sha256(src),
        "num_classes": num_classes,
        "aux_logits": bool(extra),
        "tensors": report.tensors,
        "params": count_params(model),
        "digest": digest(state),
    }
    (out / SIDECAR).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def import_summary(meta: dict[str, Any], out: str | Path) -> str:
    """``import_weights``'s result as the CLI's one line (the whole record: ``out``'s sidecar)."""
    return (
        f"imported {meta['arch']} from {meta['source_file']} (sha256 {meta['sha256'][:12]}): "
        f"{meta['tensors']} tensors, {meta['params']:,} parameters, {meta['num_classes']}-class "
        f"head → {out} (details: {Path(out) / SIDECAR})"
    )


def read_sidecar(directory: str | Path) -> dict[str, Any]:
    """The ``imported.json`` of an imported-weights folder (clear error if it is not one)."""
    path = Path(directory) / SIDECAR
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not an imported-weights folder (no {SIDECAR}); "
            "create one with: mtl-bench weights import --arch NAME --file PATH --out DIR"
        )
    return json.loads(path.read_text())


def load_imported(model: nnx.Module, directory: str | Path):
    """Load an imported folder into ``model`` (built with any ``num_classes``/``in_channels``);
    returns the ``PortReport``. A folder of another arch, or missing/misshapen backbone
    variables, is a ``WeightPortError``; the head loads only when its shape matches."""
    import orbax.checkpoint as ocp

    from baselines.classifiers.port import port_with_head

    directory = Path(directory).absolute()
    meta = read_sidecar(directory)
    if meta.get("arch") != model.arch:
        raise WeightPortError(f"{directory} holds {meta.get('arch')} weights, not {model.arch}")
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(directory / STATE)
    if "digest" in meta:  # folders imported before checksums were recorded load unchecked
        wrong = first_difference(meta["digest"], digest(restored))
        if wrong is not None:
            raise WeightPortError(
                f"{directory}: the imported array {wrong[0]} {wrong[1]}; import the weights "
                "again (mtl-bench weights import)"
            )
    saved = _flatten(restored)
    tb = TorchTable()
    tops = set()
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Param | nnx.BatchStat):
            tb.add("/".join(map(str, path)), tuple(path))
            tops.add(str(path[0]))
    # Parts the folder has but this configuration leaves out (Inception's aux head).
    absent = {k.split("/")[0] for k in saved} - tops
    skip = tuple(f"{a}/" for a in absent if getattr(model, a, "missing") is None)
    source = f"{directory} ({meta.get('source_file')}, sha256 {str(meta.get('sha256'))[:12]})"
    return port_with_head(model, saved, tb, source=source, ignore_prefixes=skip)
