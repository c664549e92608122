#!/usr/bin/env bash
# GPU-machine check for the torch backend, for a machine with PyTorch (CUDA) but no Node: builds the
# addon with g++ against the PyTorch install there (-Wl,--no-as-needed libtorch_cuda), runs the attention
# check (bench/attention.check.ts) on cuda (fp32, bf16) and on the CPU, then bench/torch.bench.ts on cuda
# (fp32, tf32, bf16) and on the CPU. It needs a pack (PACK=...tar.xz, carried
# with the working tree; scripts/make-device-pack.sh builds it) holding: bin/node (this Node binary), include/node/{node_api,node_api_types,
# js_native_api,js_native_api_types}.h, nm/ (node_modules subset: @tensorflow/tfjs-core and
# tfjs-backend-cpu node bundles, seedrandom, long, node-addon-api), dist/ (a build with the encoder),
# shared/fixtures/models/bert-tiny/model/{vocab.txt,config.json,tokenizer_config.json}.
#
# Then the paper-scale case: a bge-large-sized (24 x 1024) IR step with the paper's per-device batch
# (64 queries + 64 x 6 passages, all 512 tokens, activation checkpointing per layer on both sides) in
# fp32, tf32 and bf16, beside PyTorch (F.scaled_dot_product_attention with the padding mask where
# torch >= 2.0, torch.utils.checkpoint per layer), with each side's peak device memory: nvidia-smi's
# per-process figure, sampled every 200 ms (the caching allocator's reserve plus the CUDA context, the
# same measure for both), and PyTorch's own allocator peaks beside it.
#
# Then multi-process training's collectives: distributed.cc is built with c10d + Gloo and, where the
# CUDA and NCCL headers are found (the nvidia-*-cu12 wheels beside torch, or CUDA_HOME), with NCCL
# (ProcessGroupNCCL); a 1-rank data-parallel IR training run (bench/distributed.worker.ts, cross-device
# negatives on) then goes through NCCL on cuda:0 (one GPU: NCCL allows one rank per GPU), and through
# Gloo on the same GPU for comparison. The pack carries the first rows of stsb-zh-hardneg and
# bert-vocab-zh for it.
#
# CHECK_DEVICE=cpu is the dry run on a machine without a GPU: no pack, the addon and dist/ already
# built here (npm run build:torch && npm run build), tiny sizes through the same code paths
# (tiny-large-512 for bge-large-512, tiny for MiniLM/bert-base), peak RSS for memory.
set -u
T0=$(date +%s); el() { echo "[+$(( $(date +%s) - T0 ))s] $*"; }
# FULL_LOG=1 prints each step's whole output instead of its last lines (e.g. piped to a log file).
out() { if [ -n "${FULL_LOG:-}" ]; then cat; else tail -n "$1"; fi; }
DEV=${CHECK_DEVICE:-cuda}
# bf16 keeps activations in bfloat16 (src/tensor/torch/backend.ts bf16Activations); running with
# CODIEMB_TORCH_BF16_ACTIVATIONS=0 measures the float32-activation form it replaced, to compare.
# Which checks to run (a comma list; all by default): dist, attention, small, big, cpu, search.
PARTS=${CHECK_PARTS:-dist,attention,small,big,cpu,search}
PY=${CODIEMB_PYTHON:-python3}
has() { case ",$PARTS," in *",$1,"*) return 0;; *) return 1;; esac; }
if [ "$DEV" = cuda ]; then
  export PATH=/tmp/p/bin:$PATH
  # A warm machine keeps /tmp/p and the built addon between calls: a second call with other
  # CHECK_PARTS reuses them (CHECK_REBUILD=1 extracts and builds again).
  if [ "${CHECK_REBUILD:-0}" = 1 ] || [ ! -x /tmp/p/bin/node ] || [ ! -f native/build/Release/codiemb_torch.node ]; then
  rm -rf /tmp/p && mkdir -p /tmp/p && tar -xJf "${PACK:-devpack/pack.tar.xz}" -C /tmp/p && el extracted
  rm -rf dist && cp -r /tmp/p/dist dist && mkdir -p node_modules && cp -r /tmp/p/nm/* node_modules/
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  TD=$($PY -c "import torch,os;print(os.path.dirname(torch.__file__))"); ABI=$($PY -c "import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
  $PY -c "import torch;print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
  node scripts/build-torch.mjs --print
  which g++ || { echo NO_GPP; exit 3; }
  g++ --version | head -1
  mkdir -p native/build/Release
  STD=c++17; grep -q "C++20 or later" $TD/include/ATen/ATen.h && STD=c++20
  FLAGS="-O2 -std=$STD -fPIC -I/tmp/p/include/node -Inode_modules/node-addon-api -I$TD/include -I$TD/include/torch/csrc/api/include -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -D_GLIBCXX_USE_CXX11_ABI=$ABI -DCODIEMB_WITH_CUDA=1 -Wno-deprecated-declarations"
  # The other three sources compile in parallel with distributed.cc's attempts (each takes tens of seconds).
  for f in addon attention search; do
    ( g++ $FLAGS -c native/src/$f.cc -o /tmp/$f.o 2> /tmp/$f.err || { echo "BUILD_FAILED $f.cc:"; grep -E "error" /tmp/$f.err | head -12; } ) &
  done
  # The CUDA (and NCCL) headers for device-memory.cc and distributed.cc:
  # CUDA_HOME, then the nvidia-* wheels beside torch (torch's own CUDA), then /usr/local/cuda.
  CUINC=""; for d in ${CUDA_HOME:+$CUDA_HOME/include} $(dirname $TD)/nvidia/*/include $(dirname $TD)/nvidia/*/*/include /usr/local/cuda/include; do [ -d "$d" ] && CUINC="$CUINC -I$d"; done
  echo "CUDA/NCCL include folders:$CUINC"; ls $(dirname $TD)/nvidia/nccl/include $(dirname $TD)/nvidia/cu13/include/nccl.h 2>/dev/null
  # device-memory.cc reads the CUDA caching allocator's statistics (its header needs the CUDA
  # runtime's headers); where that header does not compile, the build answers null for them.
  ( g++ $FLAGS $CUINC -c native/src/device-memory.cc -o /tmp/device-memory.o 2> /tmp/device-memory.err \
    || { echo "CUDA_MEMORY_STATS_BUILD_FAILED:"; grep -E "error" /tmp/device-memory.err | head -6; g++ $FLAGS -DCODIEMB_NO_CUDA_MEMORY_STATS -c native/src/device-memory.cc -o /tmp/device-memory.o; } ) &
  # NCCL with Gloo, then NCCL alone (PyTorch's wheels ship no Gloo headers), then Gloo alone, then none.
  NCCLFLAGS="-DCODIEMB_WITH_C10D=1 -DCODIEMB_WITH_NCCL=1 -DUSE_C10D_NCCL=1 $CUINC"
  if g++ $FLAGS $NCCLFLAGS -DUSE_C10D_GLOO=1 -c native/src/distributed.cc -o /tmp/distributed.o 2> /tmp/distributed-nccl-gloo.err; then
    el "distributed.cc built with NCCL and Gloo"
  elif g++ $FLAGS $NCCLFLAGS -c native/src/distributed.cc -o /tmp/distributed.o 2> /tmp/distributed-nccl.err; then
    echo "NCCL+GLOO build failed:"; grep -E "error" /tmp/distributed-nccl-gloo.err | head -3
    el "distributed.cc built with NCCL (no Gloo)"
  elif g++ $FLAGS -DCODIEMB_WITH_C10D=1 -DUSE_C10D_GLOO=1 -c native/src/distributed.cc -o /tmp/distributed.o 2> /tmp/distributed-gloo.err; then
    echo "NCCL_BUILD_FAILED:"; grep -E "error" /tmp/distributed-nccl.err | head -8
    el "distributed.cc built with Gloo only"
  else
    echo "NCCL_BUILD_FAILED:"; grep -E "error" /tmp/distributed-nccl.err | head -8
    echo "GLOO_BUILD_FAILED:"; grep -E "error" /tmp/distributed-gloo.err | head -4
    g++ $FLAGS -c native/src/distributed.cc -o /tmp/distributed.o
    el "distributed.cc built without c10d"
  fi
  wait
  g++ -shared /tmp/addon.o /tmp/attention.o /tmp/device-memory.o /tmp/search.o /tmp/distributed.o \
    -L$TD/lib -Wl,-rpath,$TD/lib -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -lc10 -ltorch_cpu -ltorch -ldl \
    -o native/build/Release/codiemb_torch.node 2>&1 | grep -E "error|undefined" | head -20
  fi
  el built; ls -la native/build/Release/codiemb_torch.node || exit 4
  export CODIEMB_SHARED=/tmp/p/shared
  SMALL=minilm,bert-base; BIG=bge-large-512; CPU_THREADS=16; ATT_TIMEOUT=${ATT_TIMEOUT:-150}; BIG_TIMEOUT=${BIG_TIMEOUT:-420}
else
  # The dry run: what is built here, tiny sizes, a generous timeout for a loaded machine.
  [ -f native/build/Release/codiemb_torch.node ] && [ -f dist/bench/torch.bench.js ] || { echo "build first: npm run build:torch && npm run build"; exit 4; }
  for py in "$PY" /usr/bin/python3; do $py -c "import torch" 2>/dev/null && { PY=$py; break; }; done
  SMALL=tiny; BIG=tiny-large-512; CPU_THREADS=${CODIEMB_TORCH_THREADS:-2}; ATT_TIMEOUT=600; BIG_TIMEOUT=900
fi
export CODIEMB_PYTHON=$PY
node -e "const a=require('./native/build/Release/codiemb_torch.node');console.log(JSON.stringify({...a.info(),parallelInfo:undefined}));console.log(JSON.stringify(a.distInfo()))"
# Data-parallel training through c10d: one rank (WORLD_SIZE=1) of distributed.worker (IR steps of a
# random BERT 4 x 256, global batch 16, cross-device negatives: all-reduce, broadcast and all-gather
# all run), on the GPU through NCCL and through Gloo, on the CPU through Gloo. Prints the group's
# backend and device, per-step times and losses.
dist_run() {
  el "data parallel, 1 rank: $1 on $2"
  CODIEMB_DEVICE=$2 CODIEMB_DIST_BACKEND=$1 RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$3 \
    CODIEMB_TORCH_THREADS=$CPU_THREADS CODIEMB_DIST_TIMEOUT=120 timeout $ATT_TIMEOUT node dist/bench/distributed.worker.js 16 3 4 256 1 2>&1 | out 4
  echo "  exit status ${PIPESTATUS[0]}"
}
if has dist; then
  if [ "$DEV" = cuda ]; then
    dist_run nccl cuda:0 29731
    dist_run gloo cuda:0 29732
  fi
  dist_run gloo cpu 29733
fi
# Attention: every kernel this libtorch has (chunked, flash-cpu, flash, efficient, cudnn) against the plain
# formulation (values and gradients), dropout statistics and seeding, bytes kept for backward at T and
# 2T, and a bge-large-sized layer (fwd+bwd time, kept bytes); exits 1 on a parity or memory failure.
if has attention; then
  if [ "$DEV" = cuda ]; then
    for prec in ${ATT_PRECISIONS:-fp32 bf16}; do
      el "attention GPU $prec"
      CODIEMB_DEVICE=cuda CODIEMB_PRECISION=$prec timeout $ATT_TIMEOUT node dist/bench/attention.check.js 2>&1 | out 40
    done
  fi
  if [ "${ATT_CPU:-1}" = 1 ]; then
    el "attention CPU"
    CODIEMB_TORCH_THREADS=$CPU_THREADS timeout $ATT_TIMEOUT node dist/bench/attention.check.js 2>&1 | out 30
  fi
fi
# Peak of one process's device memory in the nvidia-smi samples (MiB).
peak_of() { awk -F', *' -v pid="$1" '$1 == pid && $2 + 0 > m { m = $2 + 0 } END { print (m ? m " MiB" : "n/a") }' "$2"; }
for prec in ${PRECISIONS:-fp32 tf32 bf16}; do
  if has small; then
  el "$DEV $prec: $SMALL"
  if [ "$DEV" = cuda ]; then
    CODIEMB_DEVICE=cuda CODIEMB_PRECISION=$prec CODIEMB_BENCH_STEPS=3 CODIEMB_BENCH_QUERIES=64 CODIEMB_BENCH_ENCODE_BATCH=256 CODIEMB_BENCH_MODELS=$SMALL timeout 120 node dist/bench/torch.bench.js 2>&1 | out 12
    nvidia-smi --query-gpu=memory.used --format=csv,noheader
  else
    CODIEMB_TORCH_THREADS=$CPU_THREADS CODIEMB_PRECISION=$prec CODIEMB_BENCH_STEPS=1 CODIEMB_BENCH_MODELS=$SMALL timeout 300 node dist/bench/torch.bench.js 2>&1 | out 6
  fi
  fi
  has big || continue
  el "$DEV $prec: $BIG (paper batch, checkpointed layers)"
  LOG=/tmp/device-check-big.$prec.log; MEM=/tmp/device-check-mem.$prec.csv
  SAMPLER=
  if [ "$DEV" = cuda ]; then
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 200 > $MEM 2>/dev/null &
    SAMPLER=$!
  fi
  CODIEMB_DEVICE=$DEV CODIEMB_TORCH_THREADS=$CPU_THREADS CODIEMB_PRECISION=$prec CODIEMB_BENCH_STEPS=${BIG_STEPS:-2} CODIEMB_BENCH_ENCODE_BATCH=${BIG_ENCODE_BATCH:-64} \
    CODIEMB_BENCH_MODELS=$BIG timeout $BIG_TIMEOUT node dist/bench/torch.bench.js > $LOG 2>&1
  echo "  exit status $?"; out 9 < $LOG
  if [ -n "$SAMPLER" ]; then
    kill $SAMPLER 2>/dev/null
    read -r CPID PPID_REF < <(sed -n 's/^process ids.*codiemb \([0-9]*\), PyTorch \([0-9a-z\/]*\).*/\1 \2/p' $LOG | tail -1)
    echo "  peak device memory (nvidia-smi, per process): codiemb $(peak_of "${CPID:-x}" $MEM), PyTorch $(peak_of "${PPID_REF:-x}" $MEM)"
  fi
done
if [ "$DEV" = cuda ] && has cpu; then
  el "CPU"
  CODIEMB_TORCH_THREADS=16 CODIEMB_BENCH_MODELS=minilm timeout 90 node dist/bench/torch.bench.js 2>&1 | out 9
fi
# Exact search (native/src/search.cc): the running top-k tests (one calls the native search on cuda
# when CUDA is available), then one round of the 100k x 768 search bench with both sides on $DEV.
if has search && [ -f dist/bench/eval.bench.js ]; then
  el "$DEV search"
  [ -f dist/test/tensor/chunk-topk.test.js ] && CODIEMB_BACKEND=torch timeout 120 node --test dist/test/tensor/chunk-topk.test.js dist/test/eval/search.test.js 2>&1 | grep -E "^# (pass|fail|skipped)|^not ok"
  CODIEMB_DEVICE=$DEV CODIEMB_TORCH_THREADS=$CPU_THREADS BENCH_ROUNDS=1 BENCH_PARTS=search BENCH_BACKENDS=torch timeout 300 node dist/bench/eval.bench.js 2>&1 | grep -E "search \(|failed"
fi
el done
