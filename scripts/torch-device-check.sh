#!/usr/bin/env bash
# GPU-machine check for the torch backend, for a machine with PyTorch (CUDA) but no Node: builds the
# addon with g++ against the PyTorch install there (-Wl,--no-as-needed libtorch_cuda), runs the attention
# check (bench/attention.check.ts) on cuda (fp32, bf16) and on the CPU, then bench/torch.bench.ts on cuda
# (fp32, tf32, bf16) and on the CPU. It needs a pack (PACK=...tar.xz, carried
# with the working tree; scripts/make-device-pack.sh builds it) holding: bin/node (this Node binary), include/node/{node_api,node_api_types,
# js_native_api,js_native_api_types}.h, nm/ (node_modules subset: @tensorflow/tfjs-core and
# tfjs-backend-cpu node bundles, seedrandom, long, node-addon-api), dist/ (a build with the encoder),
# shared/fixtures/models/bert-tiny/model/{vocab.txt,config.json,tokenizer_config.json}.
set -u
T0=$(date +%s); el() { echo "[+$(( $(date +%s) - T0 ))s] $*"; }
mkdir -p /tmp/p && tar -xJf "${PACK:-devpack/pack.tar.xz}" -C /tmp/p && el extracted
export PATH=/tmp/p/bin:$PATH
rm -rf dist && cp -r /tmp/p/dist dist && mkdir -p node_modules && cp -r /tmp/p/nm/* node_modules/
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
PY=python3
TD=$($PY -c "import torch,os;print(os.path.dirname(torch.__file__))"); ABI=$($PY -c "import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
$PY -c "import torch;print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
node scripts/build-torch.mjs --print
which g++ || { echo NO_GPP; exit 3; }
mkdir -p native/build/Release
STD=c++17; grep -q "C++20 or later" $TD/include/ATen/ATen.h && STD=c++20
g++ -O2 -std=$STD -fPIC -shared native/src/addon.cc native/src/attention.cc -I/tmp/p/include/node -Inode_modules/node-addon-api -I$TD/include -I$TD/include/torch/csrc/api/include \
  -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -D_GLIBCXX_USE_CXX11_ABI=$ABI -DCODIEMB_WITH_CUDA=1 -Wno-deprecated-declarations \
  -L$TD/lib -Wl,-rpath,$TD/lib -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -lc10 -ltorch_cpu -ltorch -ldl \
  -o native/build/Release/codiemb_torch.node 2>&1 | grep -E "error" | head -20
el built; ls -la native/build/Release/ || exit 4
node -e "const a=require('./native/build/Release/codiemb_torch.node');console.log(JSON.stringify({...a.info(),parallelInfo:undefined}))"
# Attention: every kernel this libtorch has (chunked, flash-cpu, flash, efficient, cudnn) against the plain
# formulation (values and gradients), dropout statistics and seeding, bytes kept for backward at T and
# 2T, and a bge-large-sized layer (fwd+bwd time, kept bytes); exits 1 on a parity or memory failure.
for prec in fp32 bf16; do
  el "attention GPU $prec"
  CODIEMB_DEVICE=cuda CODIEMB_PRECISION=$prec timeout 150 node dist/bench/attention.check.js 2>&1 | tail -40
done
el "attention CPU"
CODIEMB_TORCH_THREADS=16 timeout 90 node dist/bench/attention.check.js 2>&1 | tail -30
export CODIEMB_SHARED=/tmp/p/shared CODIEMB_BENCH_STEPS=3 CODIEMB_PYTHON=$PY
for prec in fp32 tf32 bf16; do
  el "GPU $prec"
  CODIEMB_DEVICE=cuda CODIEMB_PRECISION=$prec CODIEMB_BENCH_QUERIES=64 CODIEMB_BENCH_ENCODE_BATCH=256 CODIEMB_BENCH_MODELS=minilm,bert-base timeout 120 node dist/bench/torch.bench.js 2>&1 | tail -12
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
done
el "CPU"
CODIEMB_TORCH_THREADS=16 CODIEMB_BENCH_MODELS=minilm timeout 90 node dist/bench/torch.bench.js 2>&1 | tail -9
el done
