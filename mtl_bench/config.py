"""Run configuration: one flat, JSON-able dataclass shared by `train`, `cv`, tables and bench.

Configs are code (``mtl_bench/configs/<method>.py`` returns a ``RunConfig`` per preset); the CLI's
``--set key=value`` overrides single fields. The full config is stored in every result file, so a
table of hyper-parameters is read from what actually ran.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from mtl_bench.config_types import check_field_types, checked_values, describe, field_types


@dataclass
class RunConfig:
    # What to train.
    model: str = "mtl_resunet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # Data: "synthetic" (the embedded phantom) or a BUSI-layout folder.
    data: str = "synthetic"
    synthetic_n: int | None = None  # None: the BUSI-sized 780-image phantom
    synthetic_seed: int = 0
    synthetic_difficulty: float = 0.5
    image_size: int = 256
    class_set: str = "binary"  # binary (benign vs malignant) | three_class
    preprocess: str = "mpghe"  # mpghe | clahe | none
    # A folder's unreadable images (corrupt PNG, missing or mismatched mask): an error naming the
    # file (false), or left out, listed in a warning (true). The fold manifest's dataset
    # fingerprint then covers only the images used.
    skip_bad_images: bool = False
    # Folds.
    folds: int = 5
    fold_seed: int = 0
    # Optimisation (paper: Adam, lr 1e-4 ×0.1 every 20 epochs, batch 16, 500 epochs).
    batch_size: int = 16
    epochs: int = 500
    optimizer: str = "adam"  # adam | adamw | sgd
    optimizer_flatten: bool = False  # one flat vector for the update: fewer kernels per step
    # The state in the per-step call: leaves (one array each) | packed (a few flat buffers: the
    # same values, fewer runtime arguments, a concatenate more per step; mtl_bench/state_pack.py).
    # Fold-parallel training takes leaves only (its own stacked step).
    state_layout: str = "leaves"
    lr: float = 1e-4
    lr_decay_every: int = 20  # epochs; 0 keeps the rate constant
    lr_decay_factor: float = 0.1
    weight_decay: float = 0.0
    adam_eps: float = 1e-8  # optax's default; Keras (the authors' TensorFlow) uses 1e-7
    # Loss: w_seg * Dice + w_cls * weighted focal.
    w_seg: float = 1.0
    w_cls: float = 1.0
    focal_gamma: float = 2.0
    class_weights: str = "inverse_frequency"  # inverse_frequency | none
    dice_smooth: float = 1.0
    # Augmentation, inside the jitted step.
    hflip: bool = True
    vflip: bool = True
    max_rotation_deg: float = 30.0
    # Evaluation.
    empty_policy: str = "exclude"  # images with an empty true mask: exclude | match
    eval_batch_size: int = 32
    val_fraction: float = 0.0  # >0: inner validation split for best-epoch selection
    eval_every: int = 5  # epochs between validation passes when val_fraction > 0
    # Scale (see mtl_bench/parallel.py): data parallelism over `devices` (0 = all).
    parallel: str = "none"  # none | jit | pmap
    devices: int = 0
    fold_parallel: bool = False  # all folds in one vmapped program (mtl_bench/fold_parallel.py)
    fold_conv: str = "unrolled"  # grouped | split_wgrad | unrolled (mtl_bench/fold_conv.py)
    # Bookkeeping.
    checkpoint_every: int = 10  # epochs; 0 saves only at the end
    seed: int = 0
    precision: str = "fp32"  # fp32 | bf16 (compute dtype; master weights stay fp32)
    preset: str = ""  # where the settings came from: a configs/ preset, or reproduce-<preset>

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """A config from a result file's ``config`` (checked field by field; ValueError)."""
        if not isinstance(d, dict):  # a string's letters were reported as unknown keys
            got = json.dumps(d, default=str)[:40]
            raise ValueError(f"a config must be a JSON object, got {got}")
        return cls(**checked_values(cls, d))  # "big" for image_size: named here, not in a model


def check_options_agree(cfg: RunConfig, overrides: list[str], given: dict[str, Any]) -> None:
    """A ValueError where a ``--set`` item sets a field to another value than the command's own
    option for it (``given``: field → the option's value): the option had won in silence, a run
    in bf16 under ``--precision bf16 --set precision=fp32``."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in given and getattr(apply_overrides(cfg, [item]), key) != given[key]:
            flag = "--" + key.replace("_", "-")
            flag += "" if given[key] is True else f" {given[key]}"
            raise ValueError(f"{flag} and --set {item!r} disagree: give one of them")


def parse_value(text: str) -> Any:
    """'3' → 3, '1e-4' → 1e-4, 'true' → True, '(8,16)' → (8, 16), anything else → the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# Fields that say how a run is executed or stored, not what it computes (up to float rounding):
# they may change between an interrupted run and its --resume, and between the folds of one
# method in a table. Every other field must match.
EXECUTION_KEYS = frozenset(
    {"data", "preset", "checkpoint_every", "eval_batch_size", "parallel", "devices",
     "fold_parallel", "fold_conv", "state_layout", "optimizer_flatten"}
)  # fmt: skip
# Execution keys that still shape the saved training state (the optimizer state's tree): a
# checkpoint cannot be resumed across them.
STATE_KEYS = frozenset({"optimizer_flatten"})


def config_differences(
    old: dict[str, Any], new: dict[str, Any], *, ignore: tuple[str, ...] = ()
) -> list[str]:
    """``"key: OLD → NEW"`` for each field (outside ``EXECUTION_KEYS`` and ``ignore``) that differs.

    Both are ``RunConfig.to_dict()`` results, possibly read back from JSON (tuples as lists), so
    values are compared in their JSON form. A field missing from a file written by an older
    version is not compared.
    """
    import json

    def norm(x: Any) -> str:
        return json.dumps(x, sort_keys=True, default=str)

    return [
        f"{key}: {old[key]!r} → {new[key]!r}"
        for key in sorted(set(old) & set(new) - EXECUTION_KEYS - set(ignore))
        if norm(old[key]) != norm(new[key])
    ]


# Model options common enough to be set without the "model_kwargs." prefix: the weights files
# (a builder given one reads it; nothing is downloaded).
MODEL_KWARG_ALIASES = ("encoder_weights", "weights")


def _hint(cfg: RunConfig, key: str) -> str:
    """What an unknown ``--set`` key may have meant: an option of the model (which goes under
    ``model_kwargs.``, as ``bench --set`` does not need), a near config key, else all keys."""
    import difflib
    import inspect

    from mtl_bench.registry import model_info

    try:
        params = inspect.signature(model_info(cfg.model).builder).parameters
    except (KeyError, ValueError):
        params = {}
    if key in params and key != "rngs":
        return f"{cfg.model} takes it as a model option: --set model_kwargs.{key}=..."
    fields = [f.name for f in dataclasses.fields(cfg)]
    near = difflib.get_close_matches(key, fields, n=1)
    if near:
        return f"did you mean {near[0]!r}?"
    return f"known keys: {', '.join(fields)}"


def apply_overrides(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``key=value`` strings; ``model_kwargs.widths=(8,16,32,64,128)`` sets a model kwarg.

    An unknown key, a malformed assignment or a value of the wrong type (the field's annotation,
    ``config_types``) is a one-line ValueError naming it.
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    updates: dict[str, Any] = {}
    model_kwargs = dict(cfg.model_kwargs)
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        value = parse_value(raw)
        if key.startswith("model_kwargs.") or key in MODEL_KWARG_ALIASES:
            model_kwargs[key.split(".", 1)[-1]] = value
            continue
        if key == "model_kwargs":  # the whole dict; later model_kwargs.K=V add to it
            if not isinstance(value, dict):
                raise ValueError(
                    f"--set {item!r}: model_kwargs takes a dict, e.g. {{'widths': (8, 16)}}"
                )
            model_kwargs = dict(value)
            continue
        if key not in fields:
            raise ValueError(f"unknown config key {key!r} in --set {item!r}; {_hint(cfg, key)}")
        if key == "model" and value != cfg.model:  # it would train one model on another's recipe
            raise ValueError(
                f"--set {item!r}: the model is chosen by --model (cv, train) or --methods "
                "(reproduce), which also picks its config; --set changes that config's fields"
            )
        if key == "preset" and str(value).strip() != cfg.preset:  # a relabelled recipe
            raise ValueError(
                f"--set {item!r}: the preset is chosen by --preset, which picks the recipe; "
                "--set would only relabel it"
            )
        tp = field_types(type(cfg))[key]
        if tp is str:
            value = raw.strip()  # strings stay strings: preprocess=none is "none", not None
        try:
            value = check_field_types(type(cfg), {key: value})[key]
        except ValueError:
            raise ValueError(f"--set {item!r}: {key} takes {describe(tp)}, got {raw!r}") from None
        updates[key] = value
    return dataclasses.replace(cfg, model_kwargs=model_kwargs, **updates)
