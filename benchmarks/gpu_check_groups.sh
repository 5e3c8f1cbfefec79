# Sourced by benchmarks/gpu_check.sh (step 2): each group's throughput jobs, in the order they run.
# It uses that script's job(), in_group(), sizes (SIZE, B1, B2, BOTH), OUT, CSV, DRY, PY, STATUS
# and NOT_MEASURED; not meant to run alone.
#
# One call must stay under 8 minutes, and on an H100 one mtl_resunet configuration costs about a
# minute (XLA compile with cuDNN autotuning 42-62 s, measured 2026-11-26), its PyTorch peer about
# as much again, so the jobs come in groups, one group per call (GPU_CHECK_GROUP):
#   proposed (default): mtl_resunet sequential (none) with the PyTorch peer (eager +
#       torch.compile) and fold-parallel (5 folds, default fold_conv) at batch 16;
#   profile: mtl_resunet at batch 16 and 64, a device trace of 3 steps each
#       (OUT/trace-<configuration>.json.gz) and its summary (benchmarks/profile_trace.py);
#   fold: mtl_resunet at batch 16, sequential (none) against fold-parallel with each way of
#       batching its convolutions (GPU_CHECK_FOLD_MODES, default "unrolled split_wgrad grouped";
#       mtl_bench/fold_conv.py);
#   reference: the plain U-Net-64 (``unet``) and smp-style Unet-ResNet34, each with its peer
#       (eager + torch.compile): the brief's reference figures;
#   scale: mtl_resunet under jit and pmap at batch 16 (compile cold and warm), fold-parallel at
#       64, jit and pmap at 64, fp32 (issue #4's measure), in that order;
#   protocol: the real training loop from a cold start (mtl-bench cv, paper preset, fold 0, then
#       a fold of its size from the compilation cache, 6 epochs each) and
#       benchmarks/protocol_time.py's extrapolation to 5 folds × 500 epochs (issue #4's 20 min),
#       its files packed as OUT/protocol.tar.gz;
#   segmentation: UNet++/FPN/DeepLabV3+ (ResNet-34) and DAF with the eager peer;
#   classification: every gradient-trained classifier with its peer (resnet50 also compiled);
#   tuning: mtl_resunet at batch 16 and 64 (default), then at 16 with the flattened optimizer
#       update, the packed state (state_layout=packed) and XLA flag variants (TUNING_FLAGS
#       below), and unet leaves against packed, each beside its eager twin (the table's variant
#       column tells the rows apart): the "profile and fix" attempts of issue #7 (the up-conv
#       A/B, up_conv=dilated_conv, was settled on 2026-11-27: results/README.md);
#   all: every group in turn (a machine without the 8-minute limit).

if in_group proposed; then
  # 2026-11-26 H100, box 300: JAX rows + eager peer ~160 s, torch.compile 44 s at batch 16 and
  # the batch-64 compile run cut at 93 s: 380 lets both compile runs finish.
  job 380 "mtl_resunet none (+torch.compile)" --models mtl_resunet --batch-sizes "$BOTH" \
    --precision bf16 --parallel none --peer torch --peer-compile "$PEER_COMPILE" --compile-cache off
  job 110 "mtl_resunet fold-parallel" --models mtl_resunet --batch-sizes "$B1" \
    --precision bf16 --parallel fold --compile-cache off
fi
if in_group profile; then
  job 200 "mtl_resunet traced" --models mtl_resunet --batch-sizes "$BOTH" --precision bf16 \
    --parallel none --compile-cache off --profile "$OUT/profiles"
  # Traces sit five folders down; a lent machine returns files at most two down: flatten them.
  for trace in "$OUT"/profiles/*/plugins/profile/*/perfetto_trace.json.gz; do
    [[ -f $trace ]] || continue
    config=${trace#"$OUT"/profiles/}
    cp "$trace" "$OUT/trace-${config%%/*}.json.gz"
  done
  rm -rf "$OUT/profiles"
  shopt -s nullglob
  traces=("$OUT"/trace-*.json.gz)
  shopt -u nullglob
  if ((${#traces[@]})); then
    timeout 60 "$PY" -m benchmarks.profile_trace "${traces[@]}" || NOT_MEASURED+=("trace summary")
  else
    NOT_MEASURED+=("device traces (none written)")
  fi
fi
if in_group fold; then
  # The none row first: x_sequential of each fold row is against it (the profile group's traced
  # batch-B1 row is that same configuration, so it serves when both run). Grouped (the 0.18× of
  # the first H100 run) last: it is the baseline the other two must beat.
  in_group profile || job 90 "mtl_resunet none at $B1" --models mtl_resunet \
    --batch-sizes "$B1" --precision bf16 --parallel none --compile-cache off
  for mode in $FOLD_MODES; do
    job 130 "mtl_resunet fold-parallel, fold_conv=$mode" --models mtl_resunet \
      --batch-sizes "$B1" --precision bf16 --parallel fold --fold-conv "$mode" --compile-cache off
  done
fi
if in_group reference; then
  # 2026-11-26 H100, boxes 240: unet's batch-64 and unet_resnet34's compile runs were cut.
  job 290 "unet (+torch.compile)" --models unet --batch-sizes "$BOTH" --precision bf16 \
    --peer torch --peer-compile "$PEER_COMPILE" --compile-cache off
  job 270 "unet_resnet34 (+torch.compile)" --models unet_resnet34 --batch-sizes "$BOTH" \
    --precision bf16 --peer torch --peer-compile "$PEER_COMPILE" --compile-cache off
fi
if in_group scale; then
  # jit against pmap at the paper's batch first: the comparison this group exists for (in one
  # job at both batches, a 240 s box reached only jit 16 and jit 64 on CPU-scaled estimates,
  # ~65-70 s a configuration on an H100). Batch 64, fold-parallel at 64 and fp32 as time allows.
  job 160 "mtl_resunet jit/pmap at $B1, cold/warm compile" --models mtl_resunet \
    --batch-sizes "$B1" --precision bf16 --parallel jit,pmap --compile-cache fresh
  job 110 "mtl_resunet fold-parallel at $B2" --models mtl_resunet --batch-sizes "$B2" \
    --precision bf16 --parallel fold --compile-cache off
  job 160 "mtl_resunet jit/pmap at $B2" --models mtl_resunet --batch-sizes "$B2" \
    --precision bf16 --parallel jit,pmap --compile-cache off
  job 170 "mtl_resunet fp32" --models mtl_resunet --batch-sizes "$BOTH" --precision fp32 \
    --parallel none --compile-cache off
fi
if in_group protocol; then
  left=$((BUDGET - (SECONDS - START) - 15))
  box=$((left < 240 ? left : 240))
  if ((box < 90)); then
    NOT_MEASURED+=("training-loop protocol run (time budget spent)")
    STATUS=1 # asked for and not run: the call did not do what it was for
  else
    log "training-loop protocol run: time box ${box}s"
    TINY_RUN=()
    [[ $DRY == 1 ]] && TINY_RUN=(--tiny)
    if ! timeout --kill-after=10 "$box" "$PY" -m benchmarks.protocol_time \
      --measure "$OUT/protocol" ${TINY_RUN[@]+"${TINY_RUN[@]}"}; then
      NOT_MEASURED+=("training-loop protocol run (failed or stopped at ${box}s)")
      STATUS=1 # the training loop itself failing on a GPU is a bug, not a missing figure
    elif tar -C "$OUT" -czf "$OUT/protocol.tar.gz" protocol; then
      # Its 7 files as one: a lent machine returns at most 8 files from a call.
      rm -rf "$OUT/protocol"
      log "protocol files: $OUT/protocol.tar.gz"
    fi
  fi
fi
if in_group segmentation && [[ $DRY != 1 ]]; then
  job 450 "segmentation baselines" --batch-sizes "$BOTH" --precision bf16 \
    --models unetplusplus_resnet34,fpn_resnet34,deeplabv3plus_resnet34,daf \
    --peer torch --peer-compile off --compile-cache off
fi
if in_group classification && [[ $DRY != 1 ]]; then
  CLASSIFIERS=$(timeout 120 "$PY" -c "from mtl_bench.registry import list_models, model_info
print(','.join(m for m in list_models('classification')
               if model_info(m).fit is None and m != 'resnet50'))")
  job 200 "resnet50 (+torch.compile)" --models resnet50 --batch-sizes "$BOTH" \
    --precision bf16 --peer torch --peer-compile "$PEER_COMPILE" --compile-cache off
  job 900 "classifiers" --models "$CLASSIFIERS" --batch-sizes "$BOTH" \
    --precision bf16 --peer torch --peer-compile off --compile-cache off
fi
if in_group tuning; then
  # Each variant against the default in the same call: the flattened optimizer update (fewer
  # kernels per step: launch overhead is what batch 16 pays; +3.6 % pipelined, +8 % blocked on
  # 2026-11-27), the state as two flat buffers (fewer runtime arguments per call), autotuning
  # off (compile time vs speed), CUDA-graph command buffers off, the latency-hiding scheduler on.
  # Most telling first. The variants run at batch B1 only: one configuration costs ~60 s on an
  # H100 (compile with autotuning) after a ~35 s start, so a 160 s box never reached batch 64
  # (2026-11-27); at B1, the paper's batch, per-step overheads weigh most.
  job 200 "mtl_resunet (default)" --models mtl_resunet --batch-sizes "$BOTH" --precision bf16 \
    --compile-cache off
  job 120 "mtl_resunet at $B1, optimizer_flatten" --models mtl_resunet --batch-sizes "$B1" \
    --precision bf16 --compile-cache off --config optimizer_flatten=true
  job 120 "mtl_resunet at $B1, state_layout=packed" --models mtl_resunet --batch-sizes "$B1" \
    --precision bf16 --compile-cache off --config state_layout=packed
  TUNING_FLAGS=("--xla_gpu_autotune_level=0" "--xla_gpu_enable_command_buffer="
    "--xla_gpu_enable_latency_hiding_scheduler=true")
  for flags in "${TUNING_FLAGS[@]}"; do
    # No stray space: XLA reads a value not starting with "--" as a file name.
    XLA_FLAGS="${XLA_FLAGS:-}${XLA_FLAGS:+ }$flags" job 120 \
      "mtl_resunet at $B1, XLA_FLAGS='$flags'" --models mtl_resunet --batch-sizes "$B1" \
      --precision bf16 --compile-cache off
  done
  # unet's blocked batch-16 step was 1.28× torch eager (target 1.3×) on the 2026-11-26 H100,
  # 1.30× (leaves) and 1.33× (packed: mtl_bench/state_pack.py) on 2026-11-27: that A/B again,
  # each beside its eager twin in the same call (the ratio the target names).
  for layout in leaves packed; do
    job 140 "unet at $B1, state_layout=$layout (+torch eager)" --models unet --batch-sizes "$B1" \
      --precision bf16 --compile-cache off --config "state_layout=$layout" --peer torch \
      --peer-compile off
  done
fi
