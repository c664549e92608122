// Scaled dot-product attention with a memory-efficient backward pass (see attention.cc).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace codiemb {

struct AttentionConfig {
  double scale = 1.0;
  // Dropout on the probabilities; the mask is drawn from `seed` (chunked path) or by the fused
  // kernel from the default generator seeded with `seed` (fused paths).
  double dropout = 0.0;
  uint64_t seed = 0;
  // Query rows per block of the chunked path (the [.., rows, Tk] scores are the largest temporary).
  int64_t blockRows = 64;
  // Matrix products in bfloat16 with float32 results (the backend's --precision bf16).
  bool bf16 = false;
  // "auto", or one path to force: "chunked", "chunked-composite" (the chunked path in separate ATen
  // ops, as bf16 runs it), "flash-cpu", "flash", "efficient", "cudnn".
  std::string kernel = "auto";
};

// What the backward pass needs besides q, k, v, the bias and the output. `state[0]` is a small CPU
// int64 header {path, max_q, max_k}; the rest is path-specific (the per-row log-sum-exp first).
struct AttentionSaved {
  std::vector<at::Tensor> state;
};

// softmax(q k^T * scale + bias) v for q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (equal leading
// dims), bias broadcastable to [..., Tq, Tk] or undefined. Fills `saved` when it is not null.
at::Tensor AttentionForward(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &bias,
                            const AttentionConfig &cfg, AttentionSaved *saved);

// Gradients {dq, dk, dv} (when wantQkv) and {dbias} (when wantBias, reduced to the bias's shape),
// recomputing the probabilities block by block (or through the fused kernel's backward).
std::vector<at::Tensor> AttentionBackward(const at::Tensor &dy, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                                          const at::Tensor &bias, const at::Tensor &out, const AttentionSaved &saved,
                                          const AttentionConfig &cfg, bool wantQkv, bool wantBias);

// Inverted dropout of a float32 CPU tensor with the counter-based masks the chunked attention draws:
// {x ∘ keep / (1 - rate), keep (bool)}, the mask fixed by `seed` (drawn in parallel; libtorch 1.13's
// native_dropout draws serially). Same values as native_dropout given the same mask.
std::vector<at::Tensor> Dropout(const at::Tensor &x, double rate, uint64_t seed);

// The path a forward pass took ("chunked", "flash-cpu", "flash", "efficient", "cudnn").
std::string AttentionPathName(const AttentionSaved &saved);

// The fused kernels this build was compiled with (empty for libtorch < 2.6).
std::vector<std::string> AttentionFusedKernels();

}  // namespace codiemb
