#!/usr/bin/env bash
# Everything GPU-side in one call, for an H100/H200 with JAX's CUDA plugin and torch installed:
#   1. GPU-only correctness (benchmarks.gpu_checks): JAX sees the GPU, a bf16 training step is
#      finite, mtl_resunet gives the same outputs on the GPU and the CPU;
#   2. throughput jobs (benchmarks.throughput) at 256², most important first, all rows into one
#      CSV: mtl_resunet bf16 batch 16/64 sequential (none) vs fold-parallel with the PyTorch peer
#      (eager + torch.compile) and cold/warm compile; plain U-Net-64 with its peer (the reference
#      figures); mtl_resunet under jit/pmap and in fp32 (issue #4's measure); the smp-style
#      ResNet-34 baselines and DAF with their peers;
#   3. a compact table of the CSV and the paper-protocol time it implies, printed last.
# Target: under 8 minutes. GPU_CHECK_BUDGET_S (default 420 s) bounds the whole script; each job
# has its own time box, cut to what is left; a job whose box runs out keeps the rows it finished
# (the CSV is rewritten after every model), the rest are listed as not measured.
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, from anywhere
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh  # the same steps on CPU at tiny sizes
#
# Environment: GPU_CHECK_GROUP=segmentation (default, the list above) | classification (every
# gradient-trained classifier with its peer: a second call, as both do not fit 8 minutes);
# GPU_CHECK_BUDGET_S; GPU_CHECK_OUT (results folder; default results/, dry run: a temporary
# folder); PYTHON (default python3 where there is one).
# Exit status: 0 when every correctness check passed and the CSV has rows, else 1.
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
else
  BUDGET=${GPU_CHECK_BUDGET_S:-420}
  SIZE=256 STEPS=10 WARMUP=3 B1=16 B2=64
  OUT=${GPU_CHECK_OUT:-results}
  TINY=()
  CHECK_ARGS=()
fi

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }

log "step 1/3: environment"
timeout 60 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader ||
  log "nvidia-smi not available"
timeout 120 "$PY" -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__,
'devices', jax.devices())"
timeout 120 "$PY" -c "import torch; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available())" || log "torch not importable: the peer columns will say why"

log "step 1/3: correctness checks"
if ! timeout --kill-after=10 150 "$PY" -m benchmarks.gpu_checks "${CHECK_ARGS[@]}"; then
  log "FAILED: a correctness check failed or timed out (see the lines above)"
  STATUS=1
fi

SLUG=$(timeout 120 "$PY" -c "from benchmarks.peaks import device_slug
from mtl_bench.provenance import device_kind; print(device_slug(device_kind()))") || SLUG=unknown-device
CSV="$OUT/throughput/$SLUG-$(date -u +%Y%m%d-%H%M%S).csv"
NOT_MEASURED=()

# job BOX LABEL ARGS...: one benchmarks.throughput call appending to $CSV, in its time box.
job() {
  local box=$1 label=$2 left rc=0
  shift 2
  left=$((BUDGET - (SECONDS - START) - 15)) # 15 s kept for the summary
  ((box > left)) && box=$left
  if ((box < 25)); then
    NOT_MEASURED+=("$label (time budget spent)")
    return
  fi
  log "$label: time box ${box}s"
  timeout --kill-after=10 "$box" "$PY" -m benchmarks.throughput --image-size "$SIZE" \
    --steps "$STEPS" --warmup "$WARMUP" --csv "$CSV" --peer-timeout $((box / 2)) \
    ${TINY[@]+"${TINY[@]}"} "$@" | grep '^\[bench\]' || rc=${PIPESTATUS[0]}
  if ((rc == 124 || rc == 137)); then
    NOT_MEASURED+=("$label (stopped at its ${box}s time box; finished models kept)")
  elif ((rc != 0)); then
    NOT_MEASURED+=("$label (failed with exit code $rc)")
  fi
}

log "step 2/3: throughput → $CSV"
if [[ ${GPU_CHECK_GROUP:-segmentation} == classification ]]; then
  CLASSIFIERS=$(timeout 120 "$PY" -c "from mtl_bench.registry import list_models, model_info
print(','.join(m for m in list_models('classification')
               if model_info(m).fit is None and m != 'resnet50'))")
  job 150 "resnet50 (+torch.compile)" --models resnet50 --batch-sizes "$B1,$B2" \
    --precision bf16 --peer torch --peer-compile on --compile-cache off
  job 400 "classifiers" --models "$CLASSIFIERS" --batch-sizes "$B1,$B2" \
    --precision bf16 --peer torch --peer-compile off --compile-cache off
else
  BOTH="$B1,$B2"
  job 200 "mtl_resunet none/fold (+torch.compile, cold/warm)" --models mtl_resunet \
    --batch-sizes "$BOTH" --precision bf16 --parallel none,fold --peer torch \
    --peer-compile on --compile-cache fresh
  job 100 "unet (+torch.compile)" --models unet --batch-sizes "$BOTH" --precision bf16 \
    --peer torch --peer-compile on --compile-cache off
  job 100 "mtl_resunet jit/pmap" --models mtl_resunet --batch-sizes "$BOTH" --precision bf16 \
    --parallel jit,pmap --compile-cache off
  job 60 "mtl_resunet fp32 none/fold" --models mtl_resunet --batch-sizes "$BOTH" \
    --precision fp32 --parallel none,fold --peer torch --peer-compile off --compile-cache off
  if [[ $DRY != 1 ]]; then
    job 90 "unet_resnet34 (+torch.compile)" --models unet_resnet34 --batch-sizes "$BOTH" \
      --precision bf16 --peer torch --peer-compile on --compile-cache off
    job 150 "other segmentation baselines" --batch-sizes "$BOTH" --precision bf16 \
      --models unetplusplus_resnet34,fpn_resnet34,deeplabv3plus_resnet34,daf \
      --peer torch --peer-compile off --compile-cache off
  fi
fi

log "step 3/3: summary"
((${#NOT_MEASURED[@]})) && printf '  not (fully) measured: %s\n' "${NOT_MEASURED[@]}"
if [[ -s $CSV ]]; then
  "$PY" -c "import sys
from benchmarks.throughput_io import format_table, protocol_minutes, read_csv
rows = read_csv(sys.argv[1])
print(format_table(rows))
print('\n'.join(protocol_minutes(rows)))" "$CSV"
  log "CSV: $CSV"
else
  log "FAILED: no throughput rows were written"
  STATUS=1
fi
log "done (exit $STATUS)"
exit $STATUS
