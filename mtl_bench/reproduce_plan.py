"""What ``mtl-bench reproduce`` runs: its presets, the methods of each, and each method's config.

A reproduction runs every chosen method on one results folder, so all share its fold manifest
(the tables refuse to compare results from different manifests). Each method keeps its own
training recipe (``mtl_bench/configs/<method>.py``: optimiser, learning rate, batch size, loss);
a preset fixes what must be common — data, image size, folds, epochs — and, on the CPU presets,
narrows the networks that have a width option.

- ``smoke``: the proposed model plus one cheap method for each table (``unet`` → Tables 3–4,
  ``moon_features`` → Tables 5–6, ``mobilenet`` → Tables 5 and 7) on 96 phantom images at 32²,
  2 folds × 10 epochs at a constant rate, narrow widths. ~1.5 min on 2 CPU cores, most of it
  compilation (~15–30 s per network; a later fold takes ~3 s).
- ``phantom``: the CPU preset for ``--methods all`` (every registered method): 120 phantom
  images at 32² (75² for the Inception family), 3 folds × 5 epochs at a constant rate, each
  network at its configs' CPU width. ~1 h on 2 CPU cores with ``--methods all`` (37 methods; see
  the measurements beside ``PHANTOM_COST``). It checks that every method trains
  and is tabulated on shared folds; 5 epochs of 80 images are far too few for paper numbers.
  Its default methods are the paper's (the proposed model and every baseline a table lists).
- ``paper``: each method's ``paper`` config as it stands (256² for segmentation, the classifiers'
  native sizes, 5 folds, full widths), plus the three-class runs — a GPU job.

Methods whose images are smaller than their network allows (the Inception family needs 75²) get
their minimum size; they still share the folds, since the manifest covers sample ids and labels,
not pixels (``cv_data.same_pixels``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtl_bench.config import RunConfig, apply_overrides, check_options_agree
from mtl_bench.config_checks import check_config

PROPOSED = "mtl_resunet"
THREE_CLASS_DIR = "three_class"  # sub-folder of the three-class runs: their own fold manifest

# Costs, measured on 2 CPU cores shared with other jobs (load ~2-3), cold compilation cache.
# smoke: 87 s in all (mtl_resunet 37 s, unet 23 s, mobilenet 20 s, moon_features 2 s).
# phantom: 11 of the 37 methods run at 3 epochs (e.g. mtl_resunet 27 s, vgg19 121 s, densenet201
# 152 s, unetplusplus_vgg19_bn 160 s), the rest timed at 2 epochs on 96 images and scaled: about
# 58 min for --methods all at 5 epochs, about 20 min for the 14 default methods (estimates).
SMOKE_COST = "~1.5 min on 2 CPU cores"
PHANTOM_COST = "~1 h on 2 CPU cores with --methods all"


@dataclass(frozen=True)
class Preset:
    """A reproduction preset. ``shared`` fields are set on every method's config (the CPU
    presets); ``model_kwargs`` are added to named methods' (narrower networks)."""

    name: str
    config_preset: str  # the configs/<method>.py preset the recipes come from
    default_methods: tuple[str, ...]
    shared: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    three_class: bool = False
    cost: str = ""


def _paper_methods() -> tuple[str, ...]:
    """The proposed model and every registered method a paper table lists, in table order."""
    from mtl_bench.registry import list_models
    from mtl_bench.table_specs import (
        LITERATURE_CLASSIFIERS,
        PRETRAINED_CNNS,
        SEGMENTATION_METHODS,
    )

    known = set(list_models())
    listed = (*SEGMENTATION_METHODS, *LITERATURE_CLASSIFIERS, *PRETRAINED_CNNS)
    return (PROPOSED, *(m for m in listed if m in known))


# The smoke preset's narrower U-Net (its smoke config has 16 base channels); mtl_resunet's smoke
# config is already narrow (8…128), and the other networks have no width option.
_SMOKE_KWARGS = {"unet": {"base_width": 8}}

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        "smoke",
        config_preset="smoke",
        default_methods=(PROPOSED, "unet", "moon_features", "mobilenet"),
        shared=dict(
            synthetic_n=96, image_size=32, folds=2, epochs=10, checkpoint_every=0, lr_decay_every=0
        ),
        model_kwargs=_SMOKE_KWARGS,
        cost=SMOKE_COST,
    ),
    "phantom": Preset(
        "phantom",
        config_preset="phantom",
        default_methods=(),  # filled by _paper_methods() (needs the registry)
        shared=dict(
            synthetic_n=120, image_size=32, folds=3, epochs=5, checkpoint_every=0, lr_decay_every=0
        ),
        cost=PHANTOM_COST,
    ),
    "paper": Preset(
        "paper", config_preset="paper", default_methods=(), three_class=True, cost="a GPU job"
    ),
}


@dataclass(frozen=True)
class Job:
    """One method's cross-validation: its result folder name, config and where it writes."""

    method: str  # the table row / result folder: the model name, or model@tag
    cfg: RunConfig
    tag: str | None = None
    subdir: str = ""  # "" = the reproduction's folder; THREE_CLASS_DIR for three-class runs


def get_preset(name: str) -> Preset:
    """The preset ``name``; a one-line ValueError lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown reproduce preset {name!r}: choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if not preset.default_methods:
        preset = dataclasses.replace(preset, default_methods=_paper_methods())
    return preset


def resolve_methods(spec: str, preset: Preset) -> list[str]:
    """``default`` | ``all`` | ``NAME[,NAME...]`` → method names, the proposed model first (the
    first run of a folder makes its fold manifest, so it is made from the proposed model's data).
    """
    from mtl_bench.registry import list_models

    known = list_models()
    spec = spec.strip()
    if spec == "default":
        names = list(preset.default_methods)
    elif spec == "all":
        names = known
    else:
        names = [n.strip() for n in spec.split(",")]
        if not all(names) and any(names):  # `a,,b`: a typo must not drop a method unseen
            raise ValueError(f"--methods has an empty item in {spec!r}: give NAME[,NAME...]")
        names = [n for n in names if n]
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise ValueError(
                f"unknown method {bad[0] if bad else spec!r} in --methods; choose default, all or "
                f"names from: {', '.join(known)}"
            )
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: n != PROPOSED)


def _min_image_size(method: str) -> int:
    """The smallest input the network accepts (valid-padded stride-2 convolutions)."""
    if method in ("inception_v3", "inception_resnet_v2"):
        from baselines.classifiers.inception_v3 import MIN_SIZE

        return MIN_SIZE
    return 1


def method_config(method: str, preset: Preset, data: str | None) -> RunConfig:
    """``method``'s config under the reproduction ``preset`` (before ``--set`` overrides)."""
    from mtl_bench.configs import get_config

    # The record names the reproduction preset, not only the configs/ preset its recipes come
    # from: `reproduce --preset smoke` (32², 10 epochs) and `cv --preset smoke` (64², 2-3
    # epochs) would otherwise both say "smoke" in their fold files.
    cfg = dataclasses.replace(
        get_config(method, preset.config_preset), preset=f"reproduce-{preset.name}"
    )
    if data is not None:
        cfg = dataclasses.replace(cfg, data=data)
    if preset.name == "paper":
        return cfg
    shared = dict(preset.shared)
    if "image_size" in shared:
        shared["image_size"] = max(shared["image_size"], _min_image_size(method))
    if cfg.epochs == 0:  # not trained by epochs (moon_features): nothing to shorten
        shared.pop("epochs", None)
    kwargs = {**cfg.model_kwargs, **preset.model_kwargs.get(method, {})}
    return dataclasses.replace(cfg, **shared, model_kwargs=kwargs)


def split_overrides(assignments: Iterable[str], methods: Iterable[str]) -> dict[str, list[str]]:
    """``--set [METHOD:]KEY=VALUE`` → {method: [KEY=VALUE, ...]} ("" = every method)."""
    methods = set(methods)
    out: dict[str, list[str]] = {"": []}
    for item in assignments:
        key = item.partition("=")[0]
        target, sep, _ = key.partition(":")
        if not sep:
            out[""].append(item)
            continue
        if target not in methods:
            raise ValueError(
                f"--set {item!r}: {target!r} is not a method of this reproduction "
                f"({', '.join(sorted(methods))})"
            )
        out.setdefault(target, []).append(item.split(":", 1)[1])
    return out


def plan(
    preset: str | Preset,
    methods: str = "default",
    *,
    data: str | None = None,
    overrides: Iterable[str] = (),
    three_class: bool | None = None,
) -> list[Job]:
    """The jobs of a reproduction, in run order: the binary runs, then (when ``three_class``, by
    default the preset's choice) the proposed model and the chosen transfer-learned CNNs on three
    classes, tagged ``3class``, in ``THREE_CLASS_DIR``. A bad ``--set`` fails here, before any
    training."""
    from mtl_bench.table_specs import PRETRAINED_CNNS, THREE_CLASS_TAG

    preset = get_preset(preset) if isinstance(preset, str) else preset
    names = resolve_methods(methods, preset)
    sets = split_overrides(overrides, names)
    if data is not None:  # --data and a --set data= must agree (--set had won in silence)
        for items in sets.values():
            check_options_agree(method_config(names[0], preset, data), items, {"data": data})
    jobs = []
    for name in names:
        cfg = method_config(name, preset, data)
        common = sets[""]
        if cfg.epochs == 0:  # not trained by epochs: an epochs= would be recorded but not used
            common = [s for s in common if s.partition("=")[0].strip() != "epochs"]
        cfg = apply_overrides(apply_overrides(cfg, common), sets.get(name, []))
        try:
            check_config(cfg)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name}: {e}") from None
        jobs.append(Job(name, cfg))
    if preset.three_class if three_class is None else three_class:
        for job in [j for j in jobs if j.method == PROPOSED or j.method in PRETRAINED_CNNS]:
            cfg = dataclasses.replace(job.cfg, class_set="three_class")
            method = f"{job.method}@{THREE_CLASS_TAG}"
            jobs.append(Job(method, cfg, tag=THREE_CLASS_TAG, subdir=THREE_CLASS_DIR))
    return jobs
