#!/usr/bin/env bash
# Everything GPU-side in one call, for an H100/H200 with JAX's CUDA plugin and torch installed:
#   1. GPU-only correctness (benchmarks.gpu_checks): JAX sees the GPU, a bf16 training step is
#      finite, mtl_resunet gives the same outputs on the GPU and the CPU;
#   2. the throughput table (benchmarks.throughput) at 256², bf16, batch 16 and 64 for
#      mtl_resunet and each baseline, with the PyTorch peer, each model in its own time box;
#   3. a compact table of the CSV, printed last.
# Target: under 8 minutes (GPU_CHECK_BUDGET_S, default 450 s, is shared out between the models;
# a model whose box runs out keeps the rows it finished, the rest are listed as not measured).
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, from anywhere
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh  # the same steps on CPU at tiny sizes
#
# Environment: GPU_CHECK_GROUP=segmentation (default: mtl_resunet, the resnet34 smp-style
# baselines, unet, daf) | classification (every gradient-trained classifier: a second call, as
# both groups do not fit 8 minutes); GPU_CHECK_MODELS (space-separated, overrides the group);
# GPU_CHECK_FULL_MODELS (also torch.compile and warm compile; default mtl_resunet unet_resnet34,
# resnet50 for classifiers); GPU_CHECK_BUDGET_S; GPU_CHECK_OUT (results folder; default results/,
# dry run: a temporary folder); PYTHON.
# Exit status: 0 when every correctness check passed and the CSV has rows, else 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python}
DRY=${GPU_CHECK_DRY_RUN:-0}
START=$SECONDS
STATUS=0
export XLA_PYTHON_CLIENT_PREALLOCATE=false # the PyTorch peer shares the GPU with JAX

if [[ $DRY == 1 ]]; then
  BUDGET=${GPU_CHECK_BUDGET_S:-900}
  SIZE=32 BATCHES=2 STEPS=2 WARMUP=1 MAX_BOX=400
  OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
  DEFAULT_MODELS="mtl_resunet unet"
  SETS=(--set "mtl_resunet:widths=(4,8,16,32,64)" --set "unet:base_width=4")
  CHECK_ARGS=(--dry-run)
  FULL=${GPU_CHECK_FULL_MODELS:-mtl_resunet}
else
  BUDGET=${GPU_CHECK_BUDGET_S:-450}
  SIZE=256 BATCHES=16,64 STEPS=10 WARMUP=3 MAX_BOX=200
  OUT=${GPU_CHECK_OUT:-results}
  if [[ ${GPU_CHECK_GROUP:-segmentation} == classification ]]; then
    DEFAULT_MODELS=$(timeout 120 "$PY" -c "from mtl_bench.registry import list_models, model_info
print(' '.join(m for m in list_models('classification') if model_info(m).fit is None))") ||
      DEFAULT_MODELS=""
    FULL=${GPU_CHECK_FULL_MODELS:-resnet50}
  else
    DEFAULT_MODELS="mtl_resunet unet_resnet34 unetplusplus_resnet34 fpn_resnet34"
    DEFAULT_MODELS="$DEFAULT_MODELS deeplabv3plus_resnet34 unet daf"
    FULL=${GPU_CHECK_FULL_MODELS:-mtl_resunet unet_resnet34}
  fi
  SETS=()
  CHECK_ARGS=()
fi
read -r -a MODELS <<<"${GPU_CHECK_MODELS:-$DEFAULT_MODELS}"

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }

log "step 1/3: environment"
timeout 60 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader ||
  log "nvidia-smi not available"
timeout 120 "$PY" -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__,
'devices', jax.devices())"
timeout 120 "$PY" -c "import torch; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available())" || log "torch not importable: the peer columns will say why"

log "step 1/3: correctness checks"
if ! timeout --kill-after=10 240 "$PY" -m benchmarks.gpu_checks "${CHECK_ARGS[@]}"; then
  log "FAILED: a correctness check failed or timed out (see the lines above)"
  STATUS=1
fi

SLUG=$(timeout 120 "$PY" -c "from benchmarks.peaks import device_slug
from mtl_bench.provenance import device_kind; print(device_slug(device_kind()))") || SLUG=unknown-device
CSV="$OUT/throughput/$SLUG-$(date -u +%Y%m%d-%H%M%S).csv"
log "step 2/3: throughput of ${#MODELS[@]} models → $CSV"
NOT_MEASURED=()
# Time boxes: a "full" model (torch.compile peer, warm-compile measurement) weighs 2.5 shares.
weight() { [[ " $FULL " == *" $1 "* ]] && echo 5 || echo 2; }
shares=0
for model in "${MODELS[@]}"; do shares=$((shares + $(weight "$model"))); done
for model in "${MODELS[@]}"; do
  left=$((BUDGET - (SECONDS - START)))
  w=$(weight "$model")
  box=$((left * w / shares))
  shares=$((shares - w))
  ((box > MAX_BOX)) && box=$MAX_BOX
  if ((box < 20)); then
    NOT_MEASURED+=("$model (time budget spent)")
    continue
  fi
  extra=(--peer-compile off --compile-cache off)
  ((w == 5)) && extra=(--peer-compile on --compile-cache fresh)
  log "$model: time box ${box}s (${extra[*]})"
  rc=0
  timeout --kill-after=10 "$box" "$PY" -m benchmarks.throughput --models "$model" \
    --batch-sizes "$BATCHES" --precision bf16 --image-size "$SIZE" --steps "$STEPS" \
    --warmup "$WARMUP" --peer torch --peer-timeout $((box * 2 / 5)) --csv "$CSV" \
    "${extra[@]}" ${SETS[@]+"${SETS[@]}"} >/dev/null || rc=$?
  if ((rc == 124 || rc == 137)); then
    NOT_MEASURED+=("$model (stopped at its ${box}s time box; finished rows kept)")
  elif ((rc != 0)); then
    NOT_MEASURED+=("$model (failed with exit code $rc, see above)")
  fi
done

log "step 3/3: summary"
((${#NOT_MEASURED[@]})) && printf '  not (fully) measured: %s\n' "${NOT_MEASURED[@]}"
if [[ -s $CSV ]]; then
  "$PY" -c "import sys
from benchmarks.throughput_io import format_table, read_csv
print(format_table(read_csv(sys.argv[1])))" "$CSV"
  log "CSV: $CSV"
else
  log "FAILED: no throughput rows were written"
  STATUS=1
fi
log "done (exit $STATUS)"
exit $STATUS
