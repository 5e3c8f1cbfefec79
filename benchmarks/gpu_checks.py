"""Correctness checks that only an accelerator can answer, run by ``benchmarks/gpu_check.sh``.

``python -m benchmarks.gpu_checks [--dry-run]``:

1. backend — JAX sees a GPU (dry run: reports the CPU it runs on instead);
2. bf16 step — three bf16 training steps of ``mtl_resunet`` on the default device give finite
   losses and finite, changed parameters;
3. parity — the same ``mtl_resunet`` weights give the same eval-mode outputs on the default
   device and on the CPU: at ``highest`` matmul precision within ``PARITY_TOL`` (relative to the
   output's largest magnitude); at default precision (TF32 on NVIDIA) the error is reported only;
4. max-pool gradient — ``layers.max_pool2``'s custom backward gives, on the default device, the
   same values and gradient as ``reduce_window`` bit for bit, ties included (fp32 and bf16);
5. checkpoint digest — ``state_digest`` computed on the device (as a save does) equals the host
   numpy digest a restore on any machine computes, for every dtype a state holds; with the time
   of one digest of the full-size model's Adam state (compile apart), the cost a save adds.

Each check prints one line ``PASS|FAIL name: detail``; the exit status is the number of failures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

PARITY_TOL = 1e-4
TINY = (4, 8, 16, 32, 64)


def check_backend(dry_run: bool) -> str:
    d = jax.devices()[0]
    if dry_run:
        return f"dry run on {d.platform} ({d.device_kind})"
    if d.platform != "gpu":
        raise AssertionError(f"JAX's default device is {d.platform}, not a GPU: is jax[cuda] in?")
    return f"{len(jax.devices())} × {d.device_kind}"


def check_bf16_step(size: int, widths: tuple[int, ...] | None) -> str:
    from mtl_bench.batches import fold_arrays
    from mtl_bench.config import RunConfig
    from mtl_bench.fit import build_model
    from mtl_bench.train import Engine

    kwargs = {"widths": widths} if widths else {}
    cfg = RunConfig(image_size=size, batch_size=4, precision="bf16", model_kwargs=kwargs)
    model = build_model(cfg, 2)
    engine = Engine(model, ("mask", "label"), cfg, steps_per_epoch=2, class_alpha=None)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, size, size), dtype=np.uint8)
    masks = (rng.random((8, size, size)) < 0.3).astype(np.uint8)
    data = engine.place_data(fold_arrays(images, masks, rng.integers(0, 2, 8)))
    before = jax.device_get(engine.initial_state["params"])
    state = engine.place_state(engine.initial_state)
    losses = []
    for epoch in range(2):  # 2 epochs × 2 steps
        state, m = engine.run_epoch(state, data, jax.random.key(epoch))
        losses += list(m["loss"])
    after = jax.device_get(state["params"])
    leaves_b, leaves_a = jax.tree.leaves(before), jax.tree.leaves(after)
    if not np.all(np.isfinite(losses)):
        raise AssertionError(f"non-finite bf16 losses {losses}")
    if not all(np.all(np.isfinite(a)) for a in leaves_a):
        raise AssertionError("non-finite parameters after bf16 steps")
    moved = sum(not np.array_equal(a, b) for a, b in zip(leaves_a, leaves_b, strict=True))
    if moved < len(leaves_a) // 2:
        raise AssertionError(f"only {moved}/{len(leaves_a)} parameter arrays changed")
    return f"losses {', '.join(f'{x:.4f}' for x in losses)}; {moved}/{len(leaves_a)} arrays moved"


def _outputs_on(device, graphdef, state, x) -> dict[str, np.ndarray]:
    state, x = jax.device_put((state, x), device)

    @jax.jit
    def forward(s, x):
        return nnx.merge(graphdef, s)(x, train=False)

    return {k: np.asarray(v, np.float64) for k, v in forward(state, x).items()}


def _rel_err(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(b[k])) + 1e-12)) for k in b)


def check_parity(size: int, widths: tuple[int, ...] | None) -> str:
    from mtl_bench.registry import create_model

    kwargs = {"widths": widths} if widths else {}
    graphdef, state = nnx.split(create_model("mtl_resunet", seed=3, **kwargs))
    x = jax.random.uniform(jax.random.key(0), (2, size, size, 1))
    cpu, dev = jax.devices("cpu")[0], jax.devices()[0]
    with jax.default_matmul_precision("highest"):
        exact = _rel_err(_outputs_on(dev, graphdef, state, x), _outputs_on(cpu, graphdef, state, x))
    default = _rel_err(_outputs_on(dev, graphdef, state, x), _outputs_on(cpu, graphdef, state, x))
    detail = f"{dev.device_kind} vs CPU: rel err {exact:.2e} (highest), {default:.2e} (default)"
    if not exact < PARITY_TOL:
        raise AssertionError(f"{detail} exceeds {PARITY_TOL:g}")
    return detail


def check_max_pool_gradient() -> str:
    import jax.numpy as jnp

    from mtl_bench.layers import max_pool2

    ref = lambda x: nnx.max_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
    out = []
    for dtype in (jnp.float32, jnp.bfloat16):
        # small integers: most windows hold a tied maximum, the case the custom rule is for
        x = jax.random.randint(jax.random.key(0), (8, 64, 64, 16), 0, 3).astype(dtype)
        dy = jax.random.normal(jax.random.key(1), (8, 32, 32, 16), dtype)
        for f in (max_pool2, ref):
            grad = jax.jit(jax.grad(lambda x, f=f, d=dy: jnp.sum((f(x) * d).astype(jnp.float32))))
            out.append((np.asarray(f(x), np.float32), np.asarray(grad(x), np.float32)))
        (y, g), (y_ref, g_ref) = out[-2:]
        if not (np.array_equal(y, y_ref) and np.array_equal(g, g_ref)):
            diff = float(np.max(np.abs(g - g_ref)))
            raise AssertionError(f"{jnp.dtype(dtype).name}: differs from reduce_window ({diff:g})")
    return f"{jax.devices()[0].device_kind}: equal to reduce_window with ties (fp32, bf16)"


def check_digest(size: int, widths: tuple[int, ...] | None) -> str:
    import time

    import jax.numpy as jnp

    from mtl_bench.registry import create_model
    from mtl_bench.state_digest import digest

    keys = jax.random.split(jax.random.key(0), 6)
    tree = {
        "f32": jax.random.normal(keys[0], (3, 1000)),
        "bf16": jax.random.normal(keys[1], (777,), jnp.bfloat16),
        "f16": jax.random.normal(keys[2], (5, 7), jnp.float16),
        "i32": jax.random.randint(keys[3], (1001,), -(2**31), 2**31 - 1, jnp.int32),
        "u8": jax.random.randint(keys[4], (33,), 0, 256).astype(jnp.uint8),
        "bool": jax.random.bernoulli(keys[5], 0.5, (17,)),
        "step": jnp.asarray(3, jnp.int32),
    }
    # jit_cpu: a dry run on the CPU takes the jitted path too (an accelerator always does).
    on_device, on_host = digest(tree, jit_cpu=True), digest(jax.device_get(tree))
    if on_device != on_host:
        wrong = [k for k in on_host if on_device.get(k) != on_host[k]]
        raise AssertionError(f"device digest differs from the host's for {', '.join(wrong)}")
    kw = {"widths": widths} if widths else {}
    model = create_model("mtl_resunet", in_channels=1, num_classes=2, image_size=size, **kw)
    params = nnx.state(model, nnx.Param)
    state = {"params": params, "mu": params, "nu": params}  # Adam's two moments: same shapes
    state = jax.tree.map(jnp.copy, state)
    t0 = time.perf_counter()
    digest(state)
    first = time.perf_counter() - t0
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        digest(state)
        times.append(time.perf_counter() - t0)
    mb = sum(x.nbytes for x in jax.tree.leaves(state)) / 1e6
    return (
        f"{jax.devices()[0].device_kind}: device = host for 7 dtypes; {mb:.0f} MB state "
        f"digested in {1e3 * float(np.median(times)):.1f} ms (first call {first:.2f} s)"
    )


def run(checks: list[tuple[str, Callable[[], str]]]) -> int:
    failures = 0
    for name, fn in checks:
        try:
            print(f"PASS {name}: {fn()}", flush=True)
        except Exception as e:  # every check reports; one failure does not hide the others
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {' '.join(str(e).split())}", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.gpu_checks", description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny widths and sizes")
    args = p.parse_args(argv)
    size, widths = (32, TINY) if args.dry_run else (64, None)
    return run(
        [
            ("backend", lambda: check_backend(args.dry_run)),
            ("bf16 step", lambda: check_bf16_step(size, widths)),
            ("parity", lambda: check_parity(size, widths)),
            ("max-pool gradient", check_max_pool_gradient),
            ("checkpoint digest", lambda: check_digest(size, widths)),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
