#!/usr/bin/env bash
# Installs libtorch (Debian/Ubuntu package) and builds codiemb's torch addon, for CI and fresh machines.
# Usage: sudo-capable shell in the repository root: bash scripts/install-torch.sh
# Afterwards `node scripts/run-tests.mjs` runs the suite on both the cpu and the torch backends.
# Set SKIP_APT=1 when libtorch is already installed (or LIBTORCH / a PyTorch install is used).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_APT:-0}" != 1 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # libtorch-dev: headers + libtorch_cpu (Debian 12: 1.13); libopenblas0-pthread: a threaded BLAS
  # (without it ATen's matmuls use the reference BLAS, ~10x slower); g++/make/python3 for node-gyp.
  # libgloo-dev: the Gloo headers and library c10d's ProcessGroupGloo needs (multi-process training, docs/distributed.md).
  $SUDO apt-get install -y -qq --no-install-recommends libtorch-dev libgloo-dev libopenblas0-pthread g++ make python3
fi
start=$(date +%s)
npm run build:torch
echo "torch addon built in $(( $(date +%s) - start )) s"
