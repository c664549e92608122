#!/usr/bin/env bash
# End-to-end check of `codiemb merge` (issue 7): from one randomly initialised base encoder, train
# one checkpoint on retrieval data only (STS-B-zh hard negatives + SNLI triplets) and one on STS
# data only (STS-B-zh train), merge them (delta and soup), then evaluate the base, both checkpoints
# and both merges on STS (C-MTEB STSB test) and retrieval (SciFact test) from ../shared/data.
# Needs `codiemb train` (the train issue). Minutes on a CPU; writes everything under $1 (default
# e2e-merge/). Usage: bash scripts/e2e-merge.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${CODIEMB_SHARED:-../shared}
W=${1:-e2e-merge}
C=(node bin/run.js)
export CODIEMB_BACKEND=${CODIEMB_BACKEND:-cpu}
mkdir -p "$W"

for r in stsb-zh stsb-zh-hardneg snli-senteval scifact; do
  [ -e "$W/prepared/.done-$r" ] || { "${C[@]}" prepare --config "recipes/prepare/$r.yaml" --data-root "$SHARED/data" --out "$W/prepared" && touch "$W/prepared/.done-$r"; }
done

[ -e "$W/base/model.safetensors" ] || "${C[@]}" model init --arch bert --tokenizer "$SHARED/data/bert-vocab-zh" --layers 2 --hidden 32 --heads 2 \
  --intermediate 64 --max-length 64 --pooling mean --seed 1 --out "$W/base"

# Shared training settings: the tiny-zh recipe's, one epoch, the same base and seed for both runs.
train_config() { # $1 = run name, $2 = data list (YAML)
  cat > "$W/train-$1.yaml" <<YAML
train:
  model: $W/base
  output: $W/$1
  dataDir: $W/prepared
  data: $2
  tasks:
    ir:
      losses: [{name: ir-infonce, options: {positives: 1, negatives: 1, temperature: 0.05}}]
      maxLength: {query: 32, passage: 32}
    sts:
      losses: [{name: mid-infonce, weight: 1}, {name: pro, weight: 0.5}, {name: pearson, weight: 2}, {name: rank-kl, weight: 5}]
      maxLength: 32
  sampler: {name: dynamic, options: {batchSizes: {ir: 16, sts: 16}, policy: proportional}}
  epochs: 1
  learningRate: 2.0e-3
  warmupRatio: 0.05
  weightDecay: 0.01
  maxGradNorm: 1.0
  seed: 7
YAML
}
train_config ir '[{path: stsb-zh-hardneg/train.ir-example.arrow, limit: 480}, {path: snli-triplets/dev.ir-example.arrow, limit: 480}]'
train_config sts '[{path: stsb-zh/train.sts-pair.arrow, limit: 960}]'
for run in ir sts; do
  [ -e "$W/$run/model.safetensors" ] || "${C[@]}" train --config "$W/train-$run.yaml"
done

"${C[@]}" merge --force --base "$W/base" "$W/ir" "$W/sts" --out "$W/merged-delta" --json > "$W/merge-delta.json"
"${C[@]}" merge --force --method soup "$W/ir" "$W/sts" --out "$W/merged-soup" --json > "$W/merge-soup.json"

for m in base ir sts merged-delta merged-soup; do
  "${C[@]}" eval --model "$W/$m" --tasks STSB,SciFact --data-dir "$W/prepared" --out "$W/results" --model-name "$m" --json > "$W/eval-$m.json"
done

node --input-type=module -e '
import {readFileSync} from "node:fs"
const W = process.argv[1]
const merge = JSON.parse(readFileSync(`${W}/merge-delta.json`, "utf8")).result
console.log(`delta merge: mean weight ir/sts = ${merge.summary.meanWeights.join(" / ")}`)
console.log("model          STSB cos-Spearman   SciFact nDCG@10")
for (const m of ["base", "ir", "sts", "merged-delta", "merged-soup"]) {
  const r = JSON.parse(readFileSync(`${W}/eval-${m}.json`, "utf8")).result
  const score = (task) => (r.tasks?.[task] ? r.tasks[task].main_score.toFixed(4) : "?")
  console.log(`${m.padEnd(14)} ${score("STSB").padStart(17)}   ${score("SciFact").padStart(15)}`)
}
' "$W"
