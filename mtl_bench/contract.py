"""The output contract every registered model keeps, checked before a model first trains or
predicts in a process (``model_build.build_model``, once per builder and setting):
``model(x, train=..., rng=...) -> {"mask": (N, H, W, 1) logits, "label": (N, C) logits}``, with
a key for each task the model is registered with (more keys, such as DAF's deep-supervision
outputs, are allowed).

A model of the user's own that breaks it used to train a whole fold first: a declared task it
does not output trained on the other loss alone and then broke the tables, a missing mask key
failed at the masks' saving with a bare ``mask``, an (N, H, W) mask passed the loss and failed
at evaluation, and an array for a dict ended in an AttributeError inside the loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

_SHAPES = {"mask": "(N, H, W, 1)", "label": "(N, classes)"}


def output_problem(
    out: Any, tasks: tuple[str, ...], batch: int, hw: tuple[int, int], classes: int
) -> str | None:
    """What ``out`` (one forward pass of ``batch`` images of ``hw``) breaks, or None."""
    if not isinstance(out, Mapping):
        want = ", ".join(f"{k!r}: {_SHAPES[k]}" for k in tasks)
        return f"returned {type(out).__name__}, not a dict {{{want}}}"
    missing = [k for k in tasks if k not in out]
    if missing:
        return (
            f"is registered with tasks {tasks} but returned no {', '.join(map(repr, missing))} "
            f"(keys: {', '.join(map(repr, sorted(out)))})"
        )
    expected = {"mask": (batch, *hw, 1), "label": (batch, classes)}
    for key in tasks:
        shape = tuple(getattr(out[key], "shape", ()))
        if shape != expected[key]:
            return (
                f"returned {key!r} of shape {shape}; the contract is {_SHAPES[key]}, here "
                f"{expected[key]}"
            )
    return None


def check_outputs(
    model: nnx.Module, name: str, tasks: tuple[str, ...], image_size: int, num_classes: int
) -> None:
    """A one-line ValueError naming ``name`` when its outputs (in training and in evaluation,
    traced abstractly: no arithmetic runs) break the contract."""
    x = jax.ShapeDtypeStruct((2, image_size, image_size, 1), jnp.float32)
    key = jax.eval_shape(lambda: jax.random.key(0))  # a typed key, as the step passes one
    for train in (True, False):

        def forward(m, x, rng, train=train):
            return m(x, train=True, rng=rng) if train else m(x, train=False)

        try:
            out = nnx.eval_shape(forward, model, x, key)
        except TypeError as e:
            if "unexpected keyword argument" in str(e):  # no train= or rng= parameter
                raise ValueError(
                    f"{name}: its __call__ must take (x, train=..., rng=...): {e}"
                ) from None
            raise
        if problem := output_problem(out, tasks, 2, (image_size, image_size), num_classes):
            mode = "in training" if train else "in evaluation"
            raise ValueError(f"{name} {mode} {problem}")
