"""Multi-process (multi-host) start-up: ``jax.distributed.initialize`` from flags or environment.

Every process runs the same command. With ``parallel=jit`` the mesh spans every process's devices;
each process holds the (small) fold arrays and feeds its own devices, and results, manifests and
curves are written by process 0 only (orbax checkpoints are written collectively).

- explicit: ``--coordinator HOST:PORT --num-processes N --process-id I``
- cluster environment: ``--distributed auto`` lets JAX detect SLURM, Open MPI, TPU pods, or
  Kubernetes (the ``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID`` variables).
"""

from __future__ import annotations

import jax


def init_distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    parallel: str | None = None,
) -> bool:
    """Join the process group if asked to; returns whether this is a multi-process run.

    ``parallel`` (the run's strategy), when given, is checked first: a run of several processes
    needs ``jit``, and a lone process would otherwise wait for the others before being told."""
    if not auto and coordinator is None:
        if num_processes is not None or process_id is not None:
            # Without it every host would train alone and write the same --out.
            raise ValueError(
                "--num-processes/--process-id need --coordinator HOST:PORT (or --distributed "
                "auto in a cluster JAX detects)"
            )
        return False
    if not auto and (num_processes is None or process_id is None):
        raise ValueError("--coordinator needs --num-processes and --process-id as well")
    if not auto:
        check_coordinator(coordinator, num_processes, process_id)
    if parallel is not None and parallel != "jit" and (auto or num_processes != 1):
        raise ValueError(
            f"parallel={parallel!r} in a multi-process run: it needs --parallel jit (its mesh "
            "spans every process's devices)"
        )
    if _cpu_only():
        # CPU collectives across processes go over gloo (loopback or a LAN). Decided from the
        # installed plugins: calling jax.devices() before initialize() would start the backend.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto:
        try:
            jax.distributed.initialize()
        except (ValueError, RuntimeError) as e:  # JAX's own words name no cause a user can act on
            reason = " ".join(str(e).split())
            raise ValueError(
                "--distributed auto: JAX found no cluster to join (no SLURM, Open MPI, TPU pod or "
                f"Kubernetes settings, nor JAX_COORDINATOR_ADDRESS): {reason}; outside a cluster "
                "pass --coordinator/--num-processes/--process-id, or leave --distributed off"
            ) from None
    else:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    if jax.process_count() > 1:
        from mtl_bench.interrupt import leave_sigterm_to_jax

        leave_sigterm_to_jax()  # its preemption handler has it; processes must stop together
    return jax.process_count() > 1


def check_coordinator(address: str | None, num_processes: int, process_id: int) -> None:
    """Refuse what JAX would meet with a traceback, a crash of its gRPC server or a wait for
    ever: an address not ``HOST:PORT`` (``[IPv6]:PORT``) with a port in 1..65535, fewer than one
    process, or a process id outside ``0..num_processes - 1``."""
    host, sep, port = (address or "").rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    bare = host[1:-1] if bracketed else host
    # An IPv6 address without brackets (``::1``, ``fe80::1``) would lend its last group as a port.
    unbracketed_v6 = ":" in host and not bracketed
    digits = port.isascii() and port.isdigit()  # "²" is a digit to str.isdigit, not to int()
    if not sep or not bare.strip() or unbracketed_v6 or not digits or not 0 < int(port) < 65536:
        raise ValueError(
            f"--coordinator {address!r}: expected HOST:PORT of process 0, e.g. 10.0.0.1:12355 "
            "or [::1]:12355, with a port in 1..65535"
        )
    if num_processes < 1:
        raise ValueError(f"--num-processes {num_processes}: must be >= 1")
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id {process_id}: must be in 0..{num_processes - 1} "
            f"(--num-processes {num_processes})"
        )


def is_writer() -> bool:
    """Whether this process writes results (process 0 of a multi-process run, or the only one)."""
    return jax.process_index() == 0


def _cpu_only() -> bool:
    import importlib.util

    # No accelerator plugin installed: the run will be on CPU.
    return not any(
        importlib.util.find_spec(name) is not None
        for name in ("jax_cuda12_plugin", "jax_cuda13_plugin", "libtpu")
    )
