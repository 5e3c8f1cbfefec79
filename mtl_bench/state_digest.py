"""Checksums of a saved state's arrays, to tell a damaged checkpoint from a sound one.

orbax stores arrays as zarr chunks with a crc32c on the shard index only, so a flipped byte in
the chunk data restores, silently, as other weights. ``fold_io.Checkpoints`` records
``digest(state)`` with each save and compares it with the restored arrays' digest.

Per array, over its bits read as unsigned ints of its item size (1- and 2-byte items widened,
8-byte items as two uint32 words) with flat index ``i``, two uint32 sums mod 2**32:
``sum(bits)`` and ``sum(bits * (2*i + 1))``. An odd weight is invertible mod 2**32, so any
single changed word (any bit flip) changes the weighted sum, and moved values change it too.
Blind spot: a top bit (bit 31: a float32's sign) flipped in an even number of words adds a
multiple of 2**32 to both sums; damage confined to such pairs goes unseen.
Integer sums mod 2**32 are exact in any order: the digest a GPU computed at save time equals
the one a CPU computes at restore, and the numpy version (for host arrays, such as the
best-validation weights) gives the same numbers.

Device arrays are digested where they are, by one jitted call over the whole tree: a save is on
the training hot path, and only these few scalars travel to the host.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# A leaf's entry: [sum, weighted sum, dtype, shape].
Digest = dict[str, list]
_CHUNK = 1 << 22  # numpy digests this many words at a time (bounds its temporaries)


def leaf_name(path: tuple) -> str:
    """A key path as ``params/enc1/conv/kernel`` (dict keys, attributes and indices alike, so a
    namedtuple restored as a dict keeps its names)."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _words_jax(x: jax.Array) -> jax.Array:
    """``x``'s bits as a flat uint32 vector (see the module doc)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    x = x.reshape(-1)
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    size = x.dtype.itemsize
    if size == 4:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)
    if size in (1, 2):
        return jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * size}")).astype(jnp.uint32)
    if size == 8:  # (n, 2): the low word first, as in memory (and as numpy's view gives)
        return jax.lax.bitcast_convert_type(x, jnp.uint32).reshape(-1)
    raise TypeError(f"no digest for arrays of {x.dtype}")


def _sums_jax(x: jax.Array) -> jax.Array:
    w = _words_jax(x)
    odd = jax.lax.iota(jnp.uint32, w.size) * jnp.uint32(2) + jnp.uint32(1)
    return jnp.stack([jnp.sum(w, dtype=jnp.uint32), jnp.sum(w * odd, dtype=jnp.uint32)])


# One call for all the tree's device arrays: a (leaves, 2) result, fetched at once.
_digest_jit = jax.jit(lambda leaves: jnp.stack([_sums_jax(x) for x in leaves]))


def _words_np(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x).reshape(-1)
    if (
        x.dtype.byteorder == ">"
    ):  # the words as a little-endian machine (every accelerator) has them
        x = x.astype(x.dtype.newbyteorder("<"))
    if x.dtype == np.bool_:
        return x.view(np.uint8).astype(np.uint32)
    size = x.dtype.itemsize
    if size == 4 or size == 8:
        return x.view(np.uint32)
    if size in (1, 2):
        return x.view(np.dtype(f"uint{8 * size}")).astype(np.uint32)
    raise TypeError(f"no digest for arrays of {x.dtype}")


@functools.lru_cache(maxsize=1)
def _odd(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint32) * np.uint32(2) + np.uint32(1)


def _sums_np(x: np.ndarray) -> tuple[int, int]:
    w = _words_np(x)
    total = weighted = 0
    for start in range(0, w.size, _CHUNK):
        part = w[start : start + _CHUNK]
        # The weight of word start+j is odd[j] + 2*start: one table serves every chunk.
        s = int(part.sum(dtype=np.uint32))  # numpy wraps integer sums mod 2**32
        total += s
        weighted += int((part * _odd(_CHUNK)[: part.size]).sum(dtype=np.uint32)) + 2 * start * s
    return total % 2**32, weighted % 2**32


def _host(x: jax.Array) -> np.ndarray:
    """A replicated result's value, also when it spans several processes."""
    if not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)


def _in_host_memory(x: jax.Array) -> bool:
    """Whether numpy can read ``x`` where it is (a CPU array: no copy)."""
    return x.is_fully_addressable and all(d.platform == "cpu" for d in x.devices())


def digest(tree: Any, *, jit_cpu: bool = False) -> Digest:
    """``{leaf name: [sum, weighted sum, dtype, shape]}`` of ``tree``'s arrays (module doc).

    Accelerator arrays are digested on their devices (one jitted call); host arrays, and CPU
    arrays unless ``jit_cpu``, with numpy, in place: on the CPU the jitted call is slower
    (0.14 s for the full-size model's state, against 0.04 s) and compiling it took 2.5 s."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    on_device = [
        i
        for i, (_, x) in enumerate(flat)
        if isinstance(x, jax.Array) and (jit_cpu or not _in_host_memory(x))
    ]
    sums: dict[int, tuple[int, int]] = {}
    if on_device:
        got = _host(_digest_jit([flat[i][1] for i in on_device]))
        sums = {i: (int(a), int(b)) for i, (a, b) in zip(on_device, got, strict=True)}
    out: Digest = {}
    for i, (path, x) in enumerate(flat):
        if i in sums:
            s = sums[i]
        elif isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            s = _sums_np(np.asarray(jax.random.key_data(x)))
        else:
            s = _sums_np(np.asarray(x))
        out[leaf_name(path)] = [*s, str(x.dtype), list(np.shape(x))]
    return out


def first_difference(saved: Digest, restored: Digest) -> tuple[str, str] | None:
    """(name, what is wrong) of the first array, in saved order, that was not restored as it
    was saved; None when all agree."""
    for name, entry in saved.items():
        got = restored.get(name)
        if got is None:
            return name, "was not restored"
        if entry[2:] != got[2:]:
            was, now = (f"{e[2]}{list(e[3])}" for e in (entry, got))
            return name, f"was saved as {was} but restored as {now}"
        if entry[:2] != got[:2]:
            return name, "does not match its checksum (damaged since it was saved)"
    return None
