#!/usr/bin/env bash
# Builds devpack/pack.tar.xz, what scripts/torch-device-check.sh needs on a GPU machine that has PyTorch
# but no Node and no network: this Node binary, the four Node-API headers, the node_modules subset the
# torch bench loads (tfjs-core and tfjs-backend-cpu node bundles and their runtime deps, node-addon-api),
# the compiled dist/ (without tests), the bert-tiny tokenizer files the bench builds its models from, and
# the first 200 rows of stsb-zh-hardneg with bert-vocab-zh (distributed.worker's 1-rank NCCL run).
# Usage (after npm run build): bash scripts/make-device-pack.sh   then run the check with carry ["devpack"].
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -d dist/bench ] || { echo "dist/bench missing: run npm run build first" >&2; exit 2; }
shared=${CODIEMB_SHARED:-../shared}
tiny="$shared/fixtures/models/bert-tiny/model"
[ -f "$tiny/vocab.txt" ] || { echo "$tiny/vocab.txt missing (the pack carries bert-tiny's tokenizer files)" >&2; exit 2; }
headers=""
for d in /usr/include/node "$(dirname "$(dirname "$(command -v node)")")/include/node" "$HOME"/.cache/node-gyp/"$(node -p process.versions.node)"/include/node; do
  [ -f "$d/node_api.h" ] && { headers=$d; break; }
done
[ -n "$headers" ] || { echo "Node-API headers (node_api.h) not found; install nodejs headers or run node-gyp install" >&2; exit 2; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,include/node,nm/@tensorflow/tfjs-core/dist,nm/@tensorflow/tfjs-backend-cpu/dist,shared/fixtures/models/bert-tiny/model}
cp "$(command -v node)" "$stage/bin/node"
for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h; do cp "$headers/$h" "$stage/include/node/"; done
for p in tfjs-core:tf-core.node.js tfjs-backend-cpu:tf-backend-cpu.node.js; do
  pkg=${p%%:*}; file=${p##*:}
  cp "node_modules/@tensorflow/$pkg/package.json" "$stage/nm/@tensorflow/$pkg/"
  cp "node_modules/@tensorflow/$pkg/dist/$file" "$stage/nm/@tensorflow/$pkg/dist/"
done
# Runtime requires of the tfjs node bundles, the addon's C++ wrapper headers, and what the training
# code that distributed.worker loads imports (Arrow, Ajv, YAML), each with its dependencies.
closure=$(node -e '
const fs = require("fs"), seen = new Set()
const visit = (name) => {
  if (seen.has(name) || !fs.existsSync(`node_modules/${name}/package.json`)) return
  seen.add(name)
  for (const dep of Object.keys(require(`./node_modules/${name}/package.json`).dependencies ?? {})) visit(dep)
}
process.argv.slice(1).forEach(visit)
console.log([...seen].join(" "))' seedrandom long node-fetch whatwg-url tr46 webidl-conversions node-addon-api apache-arrow ajv yaml)
for m in $closure; do
  mkdir -p "$stage/nm/$(dirname "$m")" && cp -r "node_modules/$m" "$stage/nm/$m"
done
cp -r dist "$stage/dist" && rm -rf "$stage/dist/test"
cp "$tiny"/{vocab.txt,config.json,tokenizer_config.json} "$stage/shared/fixtures/models/bert-tiny/model/"
# distributed.worker's data (the 1-rank NCCL/Gloo run): the first rows of stsb-zh-hardneg, the Chinese vocabulary.
mkdir -p "$stage/shared/data/stsb-zh-hardneg"
head -n 200 "$shared/data/stsb-zh-hardneg/bge_finetune_data.jsonl" > "$stage/shared/data/stsb-zh-hardneg/bge_finetune_data.jsonl"
cp -r "$shared/data/bert-vocab-zh" "$stage/shared/data/"
mkdir -p devpack
tar -C "$stage" -cJf devpack/pack.tar.xz.tmp . && mv devpack/pack.tar.xz.tmp devpack/pack.tar.xz
ls -la devpack/pack.tar.xz
