"""How the training state crosses the jitted per-step call: as leaves, or packed into one flat
buffer per dtype.

Why: the engine's step takes and returns the whole training state (parameters, BatchNorm
statistics, optimizer moments, step counter). As a list of arrays that is 341 arguments and 341
results for the proposed model, and the runtime handles each one on the host on every call: on
the 2-core CPU a toy jitted call with 300 16-element arrays took 0.57 ms blocked against 5 µs
with one; the engine's step dispatches in 0.72-0.83 ms with its leaves and 0.07 ms packed (the
bench's ``host_ms``, 32², widths 4…64, batch 2). A blocked step pays that before the device
starts; on the H100 a blocked batch-16 step takes ~1.4 ms more than a pipelined one.

The cost: inside the step the buffers are sliced back into the leaves (slices fuse into their
consumers) and the new leaves concatenated (one 339-operand concatenate for the proposed model,
which reads the updated state once more), so the donated buffers are reused for the outputs. On
the CPU that cancels the saving (``bench --config state_layout=...``, 32² batch 2 widths 4…64
and 64² batch 16 widths 8…128, two runs each: blocked and pipelined rates equal or up to 10 %
lower); on a GPU it is unmeasured, hence ``state_layout="leaves"`` by default and the packed
layout as one of ``gpu_check.sh``'s tuning rows. The values are the same: slicing and
concatenating are exact (tested bit for bit).

Leaves of extended dtypes (PRNG keys) cannot be concatenated with anything; each stays a buffer
of its own. Scalars are packed as one element.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class StatePacker:
    """How a fixed list of leaves (shapes and dtypes) maps onto a few flat buffers.

    ``where[i] = (buffer, offset, size)`` places leaf ``i``; ``size`` is ``None`` for a leaf kept
    whole (an extended dtype). ``pack`` and ``unpack`` are traceable (use them inside ``jit`` /
    ``pmap``, where each leaf has the shape it was built from).
    """

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]
    where: tuple[tuple[int, int, int | None], ...]
    num_buffers: int

    @classmethod
    def for_leaves(cls, leaves: Sequence[Any]) -> StatePacker:
        """A packer for leaves with these shapes and dtypes (arrays or ShapeDtypeStructs)."""
        shapes = tuple(tuple(int(d) for d in leaf.shape) for leaf in leaves)
        dtypes = tuple(leaf.dtype for leaf in leaves)
        buffer_of: dict[Any, int] = {}  # dtype → buffer index, in order of first appearance
        used: list[int] = []  # elements so far per buffer
        where = []
        for shape, dtype in zip(shapes, dtypes, strict=True):
            if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
                where.append((len(used), 0, None))
                used.append(0)
                continue
            key = np.dtype(dtype)
            if key not in buffer_of:
                buffer_of[key] = len(used)
                used.append(0)
            b = buffer_of[key]
            size = math.prod(shape)
            where.append((b, used[b], size))
            used[b] += size
        return cls(shapes, dtypes, tuple(where), len(used))

    @property
    def num_leaves(self) -> int:
        return len(self.shapes)

    def pack(self, leaves: Sequence[jax.Array]) -> list[jax.Array]:
        """The leaves as ``num_buffers`` arrays (1-D, except kept-whole leaves)."""
        if len(leaves) != self.num_leaves:
            raise ValueError(f"StatePacker: {len(leaves)} leaves, built for {self.num_leaves}")
        parts: list[list[jax.Array]] = [[] for _ in range(self.num_buffers)]
        for leaf, (b, _, size) in zip(leaves, self.where, strict=True):
            parts[b].append(leaf if size is None else jnp.ravel(leaf))
        return [p[0] if len(p) == 1 else jnp.concatenate(p) for p in parts]

    def unpack(self, buffers: Sequence[jax.Array]) -> list[jax.Array]:
        """Inverse of :meth:`pack`: the leaves with their shapes."""
        if len(buffers) != self.num_buffers:
            raise ValueError(f"StatePacker: {len(buffers)} buffers, built for {self.num_buffers}")
        out = []
        for shape, (b, offset, size) in zip(self.shapes, self.where, strict=True):
            if size is None:
                out.append(buffers[b])
            else:
                piece = jax.lax.slice_in_dim(buffers[b], offset, offset + size, axis=0)
                out.append(piece.reshape(shape))
        return out

    def buffer_of_leaf(self, index: int) -> int:
        """Which buffer holds leaf ``index``."""
        return self.where[index][0]


class StateLayout:
    """How the engine's nested training state crosses its jitted per-step call.

    The call takes a flat list of arrays: flattening the nested nnx.State / optax pytree in
    Python cost ~1 ms per call (341 leaves, tiny mtl_resunet, CPU; 1.1-1.4 ms of host
    ``ParseArguments`` before every H100 step in the 2026-11-26 trace), a list ~0.01 ms.
    ``"leaves"`` passes the state's leaves; ``"packed"`` a :class:`StatePacker`'s few buffers.
    Callers convert once per epoch (:meth:`flatten` / :meth:`unflatten`); :meth:`traced` turns
    ``step(state, ...)`` into the function of the list that is jitted.
    """

    def __init__(self, like: Any, layout: str, pmap_devices: Sequence[Any] | None = None):
        """``like``: a state of the right structure (per-device shapes under pmap, whose
        ``pmap_devices`` make the packing run per device outside the step)."""
        if layout not in ("packed", "leaves"):
            raise ValueError(f"state_layout {layout!r}: use packed or leaves")
        self.treedef = jax.tree.structure(like)
        index = jax.tree.unflatten(self.treedef, range(self.treedef.num_leaves))["step"]
        self.packer: StatePacker | None = None
        if layout == "packed":
            self.packer = StatePacker.for_leaves(self.treedef.flatten_up_to(like))
            if pmap_devices is not None:  # stacked per device outside the step, one copy inside
                self._pack = jax.pmap(self.packer.pack, devices=pmap_devices)
                self._unpack = jax.pmap(self.packer.unpack, devices=pmap_devices)
            else:
                self._pack, self._unpack = jax.jit(self.packer.pack), jax.jit(self.packer.unpack)
            index = self.packer.buffer_of_leaf(index)
        # Which array of the list holds the step counter: blocking on it waits for the whole
        # step (its own leaf, or the packed int32 buffer it sits in).
        self.step_index: int = index

    def flatten(self, state: Any) -> list[jax.Array]:
        """The list the step takes: the leaves, or new packed buffers (``state`` stays valid)."""
        leaves = self.treedef.flatten_up_to(state)
        return leaves if self.packer is None else self._pack(leaves)

    def unflatten(self, arrays: list[jax.Array]) -> Any:
        """Inverse of :meth:`flatten`."""
        if self.packer is not None:
            arrays = self._unpack(arrays)
        return jax.tree.unflatten(self.treedef, arrays)

    def traced(self, step: Callable[..., tuple[Any, Any]]) -> Callable[..., tuple[list, Any]]:
        """``step(state, ...)`` as a function of :meth:`flatten`'s list: the nested state is
        rebuilt at trace time; packed buffers are sliced and concatenated inside the step."""
        packer, treedef = self.packer, self.treedef

        def flat_step(arrays: list[jax.Array], *args: Any) -> tuple[list[jax.Array], Any]:
            leaves = arrays if packer is None else packer.unpack(arrays)
            new_state, metrics = step(jax.tree.unflatten(treedef, leaves), *args)
            new = treedef.flatten_up_to(new_state)
            return (new if packer is None else packer.pack(new)), metrics

        return flat_step
