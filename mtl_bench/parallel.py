"""Data-parallel placement for the one training engine: ``none``, ``jit`` (sharded) and ``pmap``.

- ``jit`` (recommended): one program over a ``Mesh`` with a ``data`` axis. State and the fold's
  arrays are replicated; the gathered batch is constrained to ``P("data")``, so each device
  computes its shard and XLA inserts the all-reduces for gradients and BatchNorm statistics
  (synchronised BN for free). It also spans processes: the mesh holds every process's devices.
- ``pmap``: the classic strategy, kept because users compare it. State is stacked per device;
  each device takes its slice of the global batch, gradients are summed with ``psum`` (losses are
  pre-scaled by the device's share of the batch weight, so the sum is the global weighted mean)
  and BatchNorm statistics are averaged with ``pmean`` (``axis_name`` set on every BN layer).

With a fixed global batch all three compute the same losses (up to float reassociation), except
dropout masks, which ``pmap`` draws per device.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

STRATEGIES = ("none", "jit", "pmap")
DATA_AXIS = "data"


def check_strategy(parallel: str, batch_size: int, n_devices: int) -> None:
    """One-line errors for an unknown strategy or a batch the devices cannot share evenly."""
    if parallel not in STRATEGIES:
        raise ValueError(f"unknown parallel strategy {parallel!r}: use {', '.join(STRATEGIES)}")
    if parallel != "none" and batch_size % n_devices:
        raise ValueError(
            f"batch_size {batch_size} does not divide by the {n_devices} devices of "
            f"parallel={parallel!r}; use a multiple of {n_devices} or fewer devices (--devices N)"
        )


def check_placement(parallel: str, devices: int, batch_size: int) -> None:
    """Up front (before any data is read): the devices asked for exist, are used by the
    strategy, share the batch evenly, and a multi-process run uses the one strategy that spans
    processes."""
    if jax.process_count() > 1 and parallel != "jit":
        raise ValueError(
            f"parallel={parallel!r} in a run of {jax.process_count()} processes: a multi-process "
            "run needs --parallel jit (its mesh spans every process's devices)"
        )
    available = jax.device_count()
    if devices > available:
        raise ValueError(f"devices={devices} but {available} are available")
    if parallel == "none" and devices > 1:
        raise ValueError(
            f"devices={devices} with parallel='none' would train on one device: add --parallel "
            "jit (or pmap)"
        )
    check_strategy(parallel, batch_size, devices or available)


def select_devices(count: int = 0) -> list[jax.Device]:
    """The first ``count`` devices of every process (0 = all of them)."""
    devices = jax.devices()
    if count < 0 or count > len(devices):
        raise ValueError(f"devices={count} but {len(devices)} are available")
    return devices[: count or len(devices)]


def data_mesh(devices: list[jax.Device]) -> Mesh:
    """A 1-D mesh over ``devices``; Auto axes so unannotated model code is partitioned by XLA."""
    return Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every array of ``tree`` replicated on ``mesh`` — also across processes, where each
    process supplies its own devices' copies from its identical host data."""
    sharding = replicated(mesh)

    def put(x):
        host = np.asarray(jax.device_get(x)) if not isinstance(x, np.ndarray) else x
        if jax.process_count() == 1:
            return jax.device_put(host, sharding)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(put, tree)


def fetch(tree: Any) -> Any:
    """Host copies of (replicated) arrays; works for arrays spanning several processes."""

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(jax.device_get(x))

    return jax.tree.map(get, tree)


def stack_for_pmap(tree: Any, devices: list[jax.Device]) -> Any:
    """Replicate ``tree`` along a new leading device axis, already laid out for ``pmap``.

    Passing the stacked host arrays through an identity ``pmap`` once leaves them on the devices
    in pmap's own layout, so later calls do not transfer them again.
    """
    n = len(devices)
    stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), tree)
    return jax.pmap(lambda t: t, devices=devices)(stacked)


def unstack(tree: Any) -> Any:
    """Device 0's copy of a pmap-replicated tree (they are identical)."""
    return jax.tree.map(lambda x: x[0], tree)


def sync_batchnorm(model: nnx.Module, axis_name: str | None) -> int:
    """Set ``axis_name`` on every BatchNorm so training statistics are averaged across devices.

    Returns how many layers were changed. Needed by pmap only: under sharded jit the batch axis is
    global and statistics are synchronised by construction.
    """
    count = 0
    for _, module in nnx.iter_graph(model):
        if isinstance(module, nnx.BatchNorm):
            module.axis_name = axis_name
            count += 1
    return count
