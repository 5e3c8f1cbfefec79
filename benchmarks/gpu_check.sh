#!/usr/bin/env bash
# Everything GPU-side in one call, for an H100/H200 with JAX's CUDA plugin and torch installed:
#   1. GPU-only correctness (benchmarks.gpu_checks): JAX sees the GPU, a bf16 training step is
#      finite, mtl_resunet gives the same outputs on the GPU and the CPU, max_pool2's custom
#      gradient equals reduce_window's on the GPU (ties included), a checkpoint's array
#      checksums computed on the GPU equal a CPU's (and what one costs a save);
#   2. throughput jobs (benchmarks.throughput) at 256², bf16, batch 16 and 64, all rows into one
#      CSV (rewritten after every configuration, so a job stopped by its time box keeps them);
#   3. a compact table of the CSV and the paper-protocol time it implies, printed last.
# One call must stay under 8 minutes and one mtl_resunet configuration costs about a minute on
# an H100, so the jobs come in groups, one group per call (GPU_CHECK_GROUP; default proposed):
# proposed, profile, fold, reference, scale, protocol, segmentation, classification, tuning, all —
# what each runs and why: benchmarks/gpu_check_groups.sh.
# GPU_CHECK_GROUP=profile,fold runs several groups, in the order above, into one CSV.
# GPU_CHECK_BUDGET_S (default 450 s) bounds the script; each job has a time box cut to what is
# left (the bench keeps to --time-box = box − 30 s, so a cut peer still writes its rows; the outer
# timeout is a backstop); what could not be measured is listed at the end.
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, from anywhere
#   GPU_CHECK_GROUP=reference bash benchmarks/gpu_check.sh
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh  # the same steps on CPU at tiny sizes
#
# Environment: GPU_CHECK_GROUP; GPU_CHECK_BUDGET_S; GPU_CHECK_OUT (results folder; default
# $OUT when set, as on a lent machine, else results/; dry run: a temporary folder; the log is
# also written there as gpu_check.log); GPU_CHECK_SKIP_CHECKS=1 skips step 1's correctness
# checks (75 s on an H100) in a second call on the same machine; PYTHON (default python3).
# The GPU machines lack segmentation-models-pytorch: carry its wheel (pip download --no-deps
# segmentation_models_pytorch==0.6.0) onto PYTHONPATH; NOT flax (0.12.8 fails on their jax 0.11.2).
# Exit status: 0 when every correctness check passed, no bench job crashed, the CSV has rows
# (when a throughput job ran) and the protocol group's training run (when asked for) ran and
# finished; else 1.
#
# On a lent machine with 15 min of device time (a start costs 1-2 min), set each call's budget to
# its limit minus ~20 s (a job may overrun its box by 10 s) and take the limit from the session's
# device-time left. Groups run in this script's order whatever the order named (scale before
# protocol), so a call that must finish the protocol run names it alone. Done on the 2026-11-29
# H200 (results/README.md): protocol (111 s), reference (372 s) and the checks (~90 s), after a
# start of ~30 s. Not yet measured on an H200 — a plan for the next lease:
#   call 1 (timeout 540): GPU_CHECK_GROUP=proposed GPU_CHECK_SKIP_CHECKS=1 GPU_CHECK_BUDGET_S=520
#     (mtl_resunet beside its eager and compiled twins at 16 and 64, then fold-parallel at 16);
#   call 2 (what is left, ~250): GPU_CHECK_GROUP=fold GPU_CHECK_FOLD_MODES=unrolled
#     GPU_CHECK_SKIP_CHECKS=1 with GPU_CHECK_BUDGET_S = its limit - 20.
# scale, tuning (~625 s) and the baseline groups need sessions of their own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-$(command -v python3 || command -v python)}
DRY=${GPU_CHECK_DRY_RUN:-0}
START=$SECONDS
STATUS=0
export XLA_PYTHON_CLIENT_PREALLOCATE=false # the PyTorch peer shares the GPU with JAX
export PYTHONUNBUFFERED=1

if [[ $DRY == 1 ]]; then
  BUDGET=${GPU_CHECK_BUDGET_S:-900}
  SIZE=32 STEPS=2 WARMUP=1 B1=2 B2=4
  OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
  TINY=(--set "mtl_resunet:widths=(4,8,16,32,64)" --set "unet:base_width=4")
  CHECK_ARGS=(--dry-run)
  PEER_COMPILE=off # torch.compile on 2 CPU cores takes minutes
else
  BUDGET=${GPU_CHECK_BUDGET_S:-450}
  SIZE=256 STEPS=10 WARMUP=3 B1=16 B2=64
  # A lent machine's run tool sets $OUT to the folder whose files come back: the default there.
  OUT=${GPU_CHECK_OUT:-${OUT:-results}}
  TINY=()
  CHECK_ARGS=()
  PEER_COMPILE=on
fi

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }

# The choices first: a bad value fails at once, not after the environment checks.
GROUP=${GPU_CHECK_GROUP:-proposed}
# Several groups, comma-separated, run in the order of this script (one lease, one CSV).
in_group() { [[ ,$GROUP, == *,all,* || ,$GROUP, == *,"$1",* ]]; }
for g in ${GROUP//,/ }; do
  case $g in
    all | proposed | fold | profile | reference | scale | protocol | segmentation | classification | tuning) ;;
    *)
      log "FAILED: GPU_CHECK_GROUP: '$g' is not one of proposed, fold, profile, reference, scale, protocol, segmentation, classification, tuning, all"
      exit 1
      ;;
  esac
done
if [[ -z ${GROUP//[, ]/} ]]; then
  log "FAILED: GPU_CHECK_GROUP='$GROUP' names no group"
  exit 1
fi
FOLD_MODES=${GPU_CHECK_FOLD_MODES:-unrolled split_wgrad grouped}
for m in $FOLD_MODES; do
  case $m in
    unrolled | split_wgrad | grouped) ;;
    *)
      log "FAILED: GPU_CHECK_FOLD_MODES: '$m' is not one of unrolled, split_wgrad, grouped"
      exit 1
      ;;
  esac
done
BOTH="$B1,$B2"
# After the choices are checked (a refused call writes nothing): the whole log beside the CSV, as
# a lent machine returns only the last 12 kB of the output.
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

log "step 1/3: environment"
timeout 60 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader ||
  log "nvidia-smi not available"
timeout 120 "$PY" -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__,
'devices', jax.devices())"
timeout 120 "$PY" -c "import torch; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available())" || log "torch not importable: the peer columns will say why"

log "step 1/3: correctness checks"
if [[ ${GPU_CHECK_SKIP_CHECKS:-0} == 1 ]]; then
  log "skipped (GPU_CHECK_SKIP_CHECKS=1)"
elif ! timeout --kill-after=10 150 "$PY" -m benchmarks.gpu_checks "${CHECK_ARGS[@]}"; then
  log "FAILED: a correctness check failed or timed out (see the lines above)"
  STATUS=1
fi

SLUG=$(timeout 120 "$PY" -c "from benchmarks.peaks import device_slug
from mtl_bench.provenance import device_kind; print(device_slug(device_kind()))") || SLUG=unknown-device
CSV="$OUT/throughput/$SLUG-$(date -u +%Y%m%d-%H%M%S).csv"
NOT_MEASURED=()
JOBS_RUN=0 # whether a throughput job started (the protocol group alone writes no CSV rows)

# job BOX LABEL ARGS...: one benchmarks.throughput call appending to $CSV, in its time box; the
# bench itself gets BOX − 30 s, and mtl_resunet at batch 16 + 64 needs ~110 s of it on an H100.
job() {
  local box=$1 label=$2 left rc=0
  shift 2
  left=$((BUDGET - (SECONDS - START) - 15)) # 15 s kept for the summary
  ((box > left)) && box=$left
  if ((box < 75)); then # the bench's own box (box − 30) must hold its least (45 s: time_box.py)
    NOT_MEASURED+=("$label (time budget spent)")
    return
  fi
  log "$label: time box ${box}s"
  JOBS_RUN=1
  # The bench keeps to --time-box itself (what would not fit is not started, the PyTorch peer's
  # box is cut to what is left), so the peer rows reach the CSV; the outer timeout, 30 s later,
  # is the backstop for a configuration that ran past its estimate.
  local lines
  lines=$(mktemp)
  timeout --kill-after=10 "$box" "$PY" -m benchmarks.throughput --image-size "$SIZE" \
    --steps "$STEPS" --warmup "$WARMUP" --csv "$CSV" --time-box $((box - 30)) \
    --peer-timeout $((box / 2)) ${TINY[@]+"${TINY[@]}"} "$@" |
    grep '^\[bench\]' | tee "$lines" || rc=${PIPESTATUS[0]}
  if ((rc == 124 || rc == 137)); then
    NOT_MEASURED+=("$label (stopped at its ${box}s time box; finished rows kept)")
  elif ((rc != 0 && rc != 3)); then # 3: every configuration skipped (the status column says why)
    NOT_MEASURED+=("$label (failed with exit code $rc)")
    STATUS=1 # the bench itself failing (not a time box, not a skip) is a bug to look at
  elif grep -q '^\[bench\] time box' "$lines"; then
    NOT_MEASURED+=("$label (cut by its $((box - 30))s --time-box: see its [bench] time box lines)")
  elif ((rc == 3)); then
    NOT_MEASURED+=("$label (nothing measured: see the status column of $CSV)")
  fi
  rm -f "$lines"
}

log "step 2/3: throughput → $CSV"
# The groups' jobs (one block per group, in the order they run): benchmarks/gpu_check_groups.sh.
# shellcheck source=benchmarks/gpu_check_groups.sh
source benchmarks/gpu_check_groups.sh

log "step 3/3: summary"
((${#NOT_MEASURED[@]})) && printf '  not (fully) measured: %s\n' "${NOT_MEASURED[@]}"
if [[ -s $CSV ]]; then
  # The table, the protocol estimate and the notes, as `python -m benchmarks.throughput_io` prints
  # them for any CSV (an inline import here broke unseen when a function moved module).
  "$PY" -m benchmarks.throughput_io "$CSV"
  log "CSV: $CSV"
elif ((JOBS_RUN)); then
  log "FAILED: no throughput rows were written"
  STATUS=1
else
  log "no throughput job ran"
fi
log "done (exit $STATUS)"
exit $STATUS
