// Scaled dot-product attention, softmax(q k^T * scale + bias) v, whose backward pass keeps no
// [.., Tq, Tk] tensor: what is saved for it is q, k, v, the output and, per query row, the
// log-sum-exp of its scores (O(B·H·T·d) instead of the probabilities' O(B·H·T²)).
//
// Paths:
//  - chunked (every libtorch, every device): the forward runs `blockRows` query rows at a time
//    (scores, their row max m and sum l, p = exp(s - m) / l, out = dropout(p) v) and keeps
//    lse = m + log l; the backward recomputes p = exp(s - lse) block by block and forms
//      dv += p_d^T dy,  dp_d = dy v^T,  ds = p ∘ (dp - D) with D = rowsum(dy ∘ out),
//      dq = ds k · scale,  dk += ds^T q · scale,  dbias = ds summed over its broadcast axes,
//    where p_d = p ∘ keep / (1 - rate) (and dp = dp_d ∘ keep / (1 - rate)) under dropout. D equals
//    rowsum(p ∘ dp) because out = p_d v, so no row of p needs keeping. The dropout mask of block b
//    is drawn from mix(seed, b) (on the CPU by a counter-based generator, in parallel; elsewhere by
//    a private copy of the device's generator), so the backward redraws exactly the forward's mask
//    and the process's generators are untouched.
//  - fused (libtorch >= 2.6, where ATen's scaled-dot-product kernels and their backward ops have the
//    signatures used below): CPU: the flash kernel (with the mask as attn_mask; dropout 0 only,
//    since its dropout is not drawn from our seed); CUDA: flash (no bias, half/bfloat16 inputs),
//    the memory-efficient kernel (with bias, any float type) or, when asked for, cuDNN. These save
//    their own log-sum-exp and RNG state. A fused kernel that refuses its inputs falls back to the
//    chunked path in "auto" mode.
#include "attention.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/Generator.h>
#include <c10/util/Exception.h>
#include <torch/csrc/api/include/torch/version.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>

#define CODIEMB_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// The fused ops' C++ signatures used here were checked against the generated ATen headers of
// libtorch 2.6 and 2.14; releases before 2.6 are not verified (these ops gained masks, scale and
// tensor philox state during 2.0-2.5), so those builds take the chunked path.
#if CODIEMB_TORCH_AT_LEAST(2, 6)
#define CODIEMB_SDPA 1
#else
#define CODIEMB_SDPA 0
#endif

namespace codiemb {
namespace {

enum Path : int64_t { kChunked = 0, kFlashCpu = 1, kFlash = 2, kEfficient = 3, kCudnn = 4 };
const char *const kPathNames[] = {"chunked", "flash-cpu", "flash", "efficient", "cudnn"};

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Dropout masks from a counter-based generator (CPU): elements 2j and 2j + 1 of the stream `key`
// are kept when the low and the high 32 bits of SplitMix(key + j·golden) fall below (1 - rate)·2^32.
// Any element can be drawn on its own, so masks are drawn in parallel and redrawn in the backward
// pass for a small fraction of what bernoulli_ costs (serial in libtorch 1.13 without MKL: about
// 130 ms per 16 M elements on 2 cores, more than the block's two products; PyTorch's eager attention
// draws its mask once, the chunked backward redraws it). Other devices draw from their own
// generator, seeded per block.
uint64_t StreamKey(uint64_t seed, int64_t block) { return SplitMix(seed ^ SplitMix(static_cast<uint64_t>(block) + 1)); }

constexpr int64_t kMaskGrain = 1 << 14;  // pairs of elements per parallel task

// Calls f(i, keep) for every element i < n of the stream `key`, in parallel.
template <typename F>
void ForEachKeep(int64_t n, double rate, uint64_t key, const F &f) {
  const double t = std::ldexp(1.0 - rate, 32);
  const uint32_t threshold = t >= 4294967295.0 ? 0xffffffffu : static_cast<uint32_t>(t);
  at::parallel_for(0, (n + 1) / 2, kMaskGrain, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const uint64_t bits = SplitMix(key + static_cast<uint64_t>(j) * 0x9e3779b97f4a7c15ULL);
      f(2 * j, static_cast<uint32_t>(bits) < threshold);
      if (2 * j + 1 < n) f(2 * j + 1, static_cast<uint32_t>(bits >> 32) < threshold);
    }
  });
}

// Multiplying by keep · scale as one float factor (scale or 0) gives x · keep · scale bit for bit.
float KeepScale(double rate) { return static_cast<float>(1.0 / (1.0 - rate)); }

bool CounterMasks(const at::Tensor &like) { return like.device().is_cpu(); }

// 1 where block `block`'s dropout keeps an element, else 0 (float, shaped like `like`).
at::Tensor KeepMask(const at::Tensor &like, double rate, uint64_t seed, int64_t block) {
  if (CounterMasks(like)) {
    at::Tensor mask = at::empty(like.sizes(), like.options().dtype(at::kFloat));
    float *m = mask.data_ptr<float>();
    ForEachKeep(mask.numel(), rate, StreamKey(seed, block), [m](int64_t i, bool keep) { m[i] = keep ? 1.0f : 0.0f; });
    return mask.to(like.scalar_type());
  }
  at::Generator gen = at::globalContext().defaultGenerator(like.device()).clone();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(StreamKey(seed, block));
  }
  return at::empty_like(like).bernoulli_(1.0 - rate, gen);
}

bool CounterFloat(const at::Tensor &x) { return CounterMasks(x) && x.scalar_type() == at::kFloat && x.is_contiguous(); }

// x ∘ keep / (1 - rate) for block `block`'s mask (`shape`: the composite form's shape of the block,
// in which the device generators draw), in place when `inPlace` (x contiguous float32).
at::Tensor Dropped(const at::Tensor &x, bool inPlace, double rate, uint64_t seed, int64_t block, at::IntArrayRef shape) {
  if (CounterFloat(x)) {
    at::Tensor out = inPlace ? x : at::empty_like(x);
    const float *in = x.data_ptr<float>();
    float *o = out.data_ptr<float>();
    const float scale = KeepScale(rate);
    ForEachKeep(x.numel(), rate, StreamKey(seed, block), [in, o, scale](int64_t i, bool keep) { o[i] = in[i] * (keep ? scale : 0.0f); });
    return out;
  }
  const at::Tensor keep = KeepMask(x.view(shape), rate, seed, block).mul_(1.0 / (1.0 - rate)).view(x.sizes());
  return inPlace ? x.mul_(keep) : x * keep;
}

// The backward pass's two uses of block `block`'s mask in one pass: returns p ∘ keep / (1 - rate)
// and scales dp the same way in place (p and dp alike in shape).
at::Tensor DroppedPair(const at::Tensor &p, const at::Tensor &dp, double rate, uint64_t seed, int64_t block, at::IntArrayRef shape) {
  if (CounterFloat(p) && CounterFloat(dp)) {
    at::Tensor pd = at::empty_like(p);
    const float *in = p.data_ptr<float>();
    float *o = pd.data_ptr<float>(), *g = dp.data_ptr<float>();
    const float scale = KeepScale(rate);
    ForEachKeep(p.numel(), rate, StreamKey(seed, block), [in, o, g, scale](int64_t i, bool keep) {
      const float f = keep ? scale : 0.0f;
      o[i] = in[i] * f;
      g[i] *= f;
    });
    return pd;
  }
  Dropped(dp, true, rate, seed, block, shape);
  return Dropped(p, false, rate, seed, block, shape);
}

at::Tensor MatMul(const at::Tensor &a, const at::Tensor &b, bool bf16) {
  if (!bf16) return at::matmul(a, b);
  return at::matmul(a.to(at::kBFloat16), b.to(at::kBFloat16)).to(at::kFloat);
}

// The bias rows that apply to query rows [r0, r0 + n) (all of it when it broadcasts over queries).
at::Tensor BiasRows(const at::Tensor &bias, int64_t r0, int64_t n) {
  return bias.dim() >= 2 && bias.size(-2) > 1 ? bias.narrow(-2, r0, n) : bias;
}

// s = q_b k^T * scale + bias_b for the query rows [r0, r0 + n).
at::Tensor Scores(const at::Tensor &q, const at::Tensor &kT, const at::Tensor &bias, int64_t r0, int64_t n, const AttentionConfig &cfg) {
  at::Tensor s = MatMul(q.narrow(-2, r0, n), kT, cfg.bf16);
  if (cfg.scale != 1.0) s.mul_(cfg.scale);
  if (bias.defined()) s.add_(BiasRows(bias, r0, n));
  return s;
}

// Sums g over the axes along which a tensor of `shape` was broadcast to g's shape.
at::Tensor ReduceTo(const at::Tensor &g, at::IntArrayRef shape) {
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < g.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && g.size(i) != 1)) axes.push_back(i);
  }
  at::Tensor r = axes.empty() ? g : g.sum(axes, true);
  return r.reshape(shape);
}

int64_t Rows(const AttentionConfig &cfg, int64_t tq) { return std::max<int64_t>(1, std::min(cfg.blockRows, tq)); }

// The chunked path in separate ATen ops, each product through MatMul: the bf16 (autocast) form.
at::Tensor ChunkedForwardComposite(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &bias,
                                   const AttentionConfig &cfg, at::Tensor *lseOut) {
  const int64_t tq = q.size(-2);
  const int64_t rows = Rows(cfg, tq);
  const at::Tensor kT = k.transpose(-1, -2);
  std::vector<at::Tensor> outs, lses;
  for (int64_t r0 = 0, b = 0; r0 < tq; r0 += rows, ++b) {
    const int64_t n = std::min(rows, tq - r0);
    at::Tensor s = Scores(q, kT, bias, r0, n, cfg);
    at::Tensor m = std::get<0>(s.max(-1, true));
    s.sub_(m).exp_();
    at::Tensor l = s.sum(-1, true);
    s.div_(l);
    if (lseOut) lses.push_back(m.add_(l.log_()));
    if (cfg.dropout > 0) s.mul_(KeepMask(s, cfg.dropout, cfg.seed, b)).mul_(1.0 / (1.0 - cfg.dropout));
    outs.push_back(MatMul(s, v, cfg.bf16));
  }
  if (lseOut) *lseOut = (lses.size() == 1 ? lses[0] : at::cat(lses, -2)).squeeze(-1);
  return outs.size() == 1 ? outs[0] : at::cat(outs, -2);
}

std::vector<at::Tensor> ChunkedBackwardComposite(const at::Tensor &dy, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                                                 const at::Tensor &bias, const at::Tensor &out, const at::Tensor &lse,
                                                 const AttentionConfig &cfg, bool wantQkv, bool wantBias) {
  const int64_t tq = q.size(-2);
  const int64_t rows = Rows(cfg, tq);
  const at::Tensor kT = k.transpose(-1, -2);
  const at::Tensor vT = v.transpose(-1, -2);
  const at::Tensor D = (dy * out).sum(-1, true);
  const double keepScale = 1.0 / (1.0 - cfg.dropout);
  at::Tensor dk, dv, dbias;
  std::vector<at::Tensor> dqs;
  if (wantQkv) {
    dk = at::zeros(k.sizes(), k.options());
    dv = at::zeros(v.sizes(), v.options());
  }
  const bool biasRows = bias.defined() && bias.dim() >= 2 && bias.size(-2) > 1;
  if (wantBias) dbias = at::zeros(bias.sizes(), bias.options());
  for (int64_t r0 = 0, b = 0; r0 < tq; r0 += rows, ++b) {
    const int64_t n = std::min(rows, tq - r0);
    const at::Tensor dyb = dy.narrow(-2, r0, n);
    at::Tensor p = Scores(q, kT, bias, r0, n, cfg);
    p.sub_(lse.narrow(-1, r0, n).unsqueeze(-1)).exp_();
    at::Tensor keep;
    if (cfg.dropout > 0) keep = KeepMask(p, cfg.dropout, cfg.seed, b).mul_(keepScale);
    at::Tensor ds = MatMul(dyb, vT, cfg.bf16);
    if (wantQkv) dv.add_(MatMul((keep.defined() ? p * keep : p).transpose(-1, -2), dyb, cfg.bf16));
    if (keep.defined()) ds.mul_(keep);
    ds.sub_(D.narrow(-2, r0, n)).mul_(p);
    if (wantBias) {
      if (biasRows) {
        std::vector<int64_t> shape(bias.sizes().begin(), bias.sizes().end());
        shape[shape.size() - 2] = n;
        dbias.narrow(-2, r0, n).copy_(ReduceTo(ds, shape));
      } else {
        dbias.add_(ReduceTo(ds, bias.sizes()));
      }
    }
    if (wantQkv) {
      if (cfg.scale != 1.0) ds.mul_(cfg.scale);
      dqs.push_back(MatMul(ds, k, cfg.bf16));
      dk.add_(MatMul(ds.transpose(-1, -2), q.narrow(-2, r0, n), cfg.bf16));
    }
  }
  std::vector<at::Tensor> grads;
  if (wantQkv) grads = {dqs.size() == 1 ? dqs[0] : at::cat(dqs, -2), dk, dv};
  if (wantBias) grads.push_back(dbias);
  return grads;
}

// The chunked path in float32 with fewer passes over each [.., rows, Tk] block (the long-sequence
// cost: at T = 512 the block's elementwise passes, not the products, dominated):
//  - scores: the bias rows (minus lse in backward) are written once into the block and (q·scale) k^T
//    is accumulated onto them by one baddbmm (was: product, scale, add, subtract);
//  - forward softmax: ATen's fused row-wise kernel; lse = m - log p[argmax] from the row max m
//    (p[argmax] = exp(m - lse) >= 1/Tk, so the log is well conditioned);
//  - backward: ds = p ∘ (dp - rowsum(dp ∘ p)) by ATen's fused softmax backward (rowsum(dp ∘ p) is D,
//    see the file comment), the scale folded into dq's and dk's products, dk and dv accumulated in
//    place by baddbmm. Same function as the composite form; tests hold both to the plain formulation.
// Leading dims are flattened to one batch axis L for the batched products.
struct Flat {
  std::vector<int64_t> lead;
  int64_t L = 1;
  std::vector<int64_t> block(int64_t n, int64_t tk) const {
    std::vector<int64_t> s(lead);
    s.push_back(n);
    s.push_back(tk);
    return s;
  }
};

Flat Flatten(const at::Tensor &q) {
  Flat f;
  f.lead.assign(q.sizes().begin(), q.sizes().end() - 2);
  for (auto d : f.lead) f.L *= d;
  return f;
}

// s = bias_b - sub_b + q_b k^T * scale for query rows [r0, r0 + n), as a fresh [L, n, Tk] tensor;
// `qs3` is q already multiplied by the scale (once per call, [L, Tq, d]: far smaller than a block).
at::Tensor FlatScores(const Flat &f, const at::Tensor &qs3, const at::Tensor &kT3, const at::Tensor &bias, const at::Tensor &subRows,
                      int64_t r0, int64_t n) {
  const int64_t tk = kT3.size(-1);
  const at::Tensor qb = qs3.narrow(1, r0, n);
  // No addend: a plain product (baddbmm with beta 0 still reads its input on some paths, NaN included).
  if (!bias.defined() && !subRows.defined()) return at::bmm(qb, kT3);
  at::Tensor s = at::empty({f.L, n, tk}, qs3.options());
  at::Tensor view = s.view(f.block(n, tk));
  if (bias.defined() && subRows.defined()) at::sub_out(view, BiasRows(bias, r0, n), subRows.unsqueeze(-1));
  else if (bias.defined()) view.copy_(BiasRows(bias, r0, n));
  else view.copy_(subRows.neg().unsqueeze(-1).expand(f.block(n, tk)));
  return s.baddbmm_(qb, kT3);
}

// t · scale as a fresh contiguous [L, rows, cols] tensor, in one pass (t is usually a transposed
// view of the heads, which reshaping copies anyway).
at::Tensor FlatScaled(const at::Tensor &t, const Flat &f, double scale) {
  at::Tensor out = at::empty({f.L, t.size(-2), t.size(-1)}, t.options());
  at::Tensor view = out.view(t.sizes());
  at::mul_out(view, t, at::scalar_tensor(scale, t.options()));
  return out;
}

// t with its last two dims swapped, as a fresh contiguous [L, cols, rows] tensor, in one pass.
at::Tensor FlatTransposed(const at::Tensor &t, const Flat &f) {
  at::Tensor out = at::empty({f.L, t.size(-1), t.size(-2)}, t.options());
  out.transpose(1, 2).view(t.sizes()).copy_(t);
  return out;
}

at::Tensor ChunkedForwardFast(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &bias,
                              const AttentionConfig &cfg, at::Tensor *lseOut) {
  const Flat f = Flatten(q);
  const int64_t tq = q.size(-2), tk = k.size(-2), dv = v.size(-1);
  // kᵀ materialised once: ATen's CPU bmm is ~10x slower with a transposed view as its second operand.
  const at::Tensor qs3 = FlatScaled(q, f, cfg.scale), kT3 = FlatTransposed(k, f);
  const at::Tensor v3 = v.reshape({f.L, tk, dv});
  const int64_t rows = Rows(cfg, tq);
  std::vector<at::Tensor> outs, lses;
  for (int64_t r0 = 0, b = 0; r0 < tq; r0 += rows, ++b) {
    const int64_t n = std::min(rows, tq - r0);
    at::Tensor s = FlatScores(f, qs3, kT3, bias, at::Tensor(), r0, n);
    at::Tensor m, arg;
    if (lseOut) std::tie(m, arg) = s.max(-1, true);
    at::Tensor p = at::_softmax(s, -1, false);
    s.reset();
    if (lseOut) lses.push_back(m.sub_(p.gather(-1, arg).log_()).squeeze(-1));
    // The mask is drawn in the shape the composite form draws it: the same elements in the same order.
    if (cfg.dropout > 0) Dropped(p, true, cfg.dropout, cfg.seed, b, f.block(n, tk));
    outs.push_back(at::bmm(p, v3));
  }
  std::vector<int64_t> outShape(f.lead);
  outShape.push_back(tq);
  if (lseOut) *lseOut = (lses.size() == 1 ? lses[0] : at::cat(lses, 1)).reshape(outShape);
  outShape.push_back(dv);
  return (outs.size() == 1 ? outs[0] : at::cat(outs, 1)).reshape(outShape);
}

std::vector<at::Tensor> ChunkedBackwardFast(const at::Tensor &dy, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                                            const at::Tensor &bias, const at::Tensor &lse, const AttentionConfig &cfg,
                                            bool wantQkv, bool wantBias) {
  const Flat f = Flatten(q);
  const int64_t tq = q.size(-2), tk = k.size(-2), d = q.size(-1), dvSize = v.size(-1);
  // kᵀ and vᵀ materialised once (second operands of bmm; see ChunkedForwardFast); the transposed
  // blocks below are first operands, which bmm takes as views at full speed.
  const at::Tensor qs3 = FlatScaled(q, f, cfg.scale), kT3 = FlatTransposed(k, f);
  const at::Tensor vT3 = FlatTransposed(v, f), dy3 = dy.reshape({f.L, tq, dvSize});
  at::Tensor dk, dv, dbias, kScaled;
  std::vector<at::Tensor> dqs;
  if (wantQkv) {
    dk = at::zeros({f.L, tk, d}, k.options());
    dv = at::zeros({f.L, tk, dvSize}, v.options());
    kScaled = FlatScaled(k, f, cfg.scale);
  }
  const bool biasRows = bias.defined() && bias.dim() >= 2 && bias.size(-2) > 1;
  if (wantBias) dbias = at::zeros(bias.sizes(), bias.options());
  const int64_t rows = Rows(cfg, tq);
  for (int64_t r0 = 0, b = 0; r0 < tq; r0 += rows, ++b) {
    const int64_t n = std::min(rows, tq - r0);
    const at::Tensor dyb = dy3.narrow(1, r0, n);
    at::Tensor p = FlatScores(f, qs3, kT3, bias, lse.narrow(-1, r0, n), r0, n).exp_();
    at::Tensor dp = at::bmm(dyb, vT3);
    // dv takes the dropped probabilities, ds the dropped dp: one pass over the block's mask for both.
    const at::Tensor pd = cfg.dropout > 0 ? DroppedPair(p, dp, cfg.dropout, cfg.seed, b, f.block(n, tk)) : p;
    if (wantQkv) dv.baddbmm_(pd.transpose(1, 2), dyb);
    at::Tensor ds = at::_softmax_backward_data(dp, p, -1, at::kFloat);
    if (wantBias) {
      const at::Tensor ds4 = ds.view(f.block(n, tk));
      if (biasRows) {
        std::vector<int64_t> shape(bias.sizes().begin(), bias.sizes().end());
        shape[shape.size() - 2] = n;
        dbias.narrow(-2, r0, n).copy_(ReduceTo(ds4, shape));
      } else {
        dbias.add_(ReduceTo(ds4, bias.sizes()));
      }
    }
    if (wantQkv) {
      dqs.push_back(at::bmm(ds, kScaled));
      dk.baddbmm_(ds.transpose(1, 2), qs3.narrow(1, r0, n));
    }
  }
  std::vector<at::Tensor> grads;
  if (wantQkv) grads = {(dqs.size() == 1 ? dqs[0] : at::cat(dqs, 1)).reshape(q.sizes()), dk.reshape(k.sizes()), dv.reshape(v.sizes())};
  if (wantBias) grads.push_back(dbias);
  return grads;
}

// The chunked path: the fused-pass form in float32; the composite one for bf16 products, and when
// asked for by name ("chunked-composite": the equivalence tests and the bench compare the two).
at::Tensor ChunkedForward(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &bias,
                          const AttentionConfig &cfg, at::Tensor *lseOut) {
  if (cfg.bf16 || cfg.kernel == "chunked-composite" || q.scalar_type() != at::kFloat) return ChunkedForwardComposite(q, k, v, bias, cfg, lseOut);
  return ChunkedForwardFast(q, k, v, bias, cfg, lseOut);
}

std::vector<at::Tensor> ChunkedBackward(const at::Tensor &dy, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                                        const at::Tensor &bias, const at::Tensor &out, const at::Tensor &lse,
                                        const AttentionConfig &cfg, bool wantQkv, bool wantBias) {
  if (cfg.bf16 || cfg.kernel == "chunked-composite" || q.scalar_type() != at::kFloat) return ChunkedBackwardComposite(dy, q, k, v, bias, out, lse, cfg, wantQkv, wantBias);
  return ChunkedBackwardFast(dy, q, k, v, bias, lse, cfg, wantQkv, wantBias);
}

at::Tensor Header(Path path, int64_t maxQ = 0, int64_t maxK = 0) {
  return at::tensor(std::vector<int64_t>{static_cast<int64_t>(path), maxQ, maxK}, at::TensorOptions().dtype(at::kLong));
}

int64_t HeaderAt(const AttentionSaved &saved, int64_t i) {
  if (saved.state.empty() || !saved.state[0].defined()) throw std::invalid_argument("attention backward: the forward pass saved no state");
  return saved.state[0].data_ptr<int64_t>()[i];
}

#if CODIEMB_SDPA

// A fused kernel may leave part of its RNG state undefined (without dropout, libtorch 2.11's CUDA
// kernels do), and a handle cannot carry an undefined tensor to JS and back: the saved state holds
// this marker in its place, and the backward pass turns it back into an undefined tensor.
const at::Tensor &UndefinedMarker() {
  static const at::Tensor marker = at::empty({0});
  return marker;
}

std::vector<at::Tensor> MarkUndefined(std::vector<at::Tensor> state) {
  for (at::Tensor &t : state) {
    if (!t.defined()) t = UndefinedMarker();
  }
  return state;
}

std::vector<at::Tensor> UnmarkUndefined(const std::vector<at::Tensor> &state) {
  std::vector<at::Tensor> out;
  out.reserve(state.size());
  for (const at::Tensor &t : state) out.push_back(t.is_same(UndefinedMarker()) ? at::Tensor() : t);
  return out;
}

bool HalfLike(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// Last-dim-contiguous in the compute dtype (the fused kernels index rows by stride).
at::Tensor Prepared(const at::Tensor &t, at::ScalarType dtype) {
  at::Tensor r = t.scalar_type() == dtype ? t : t.to(dtype);
  return r.stride(-1) == 1 ? r : r.contiguous();
}

// The bias as the memory-efficient and cuDNN kernels take it: [B, H, Tq, Tk] in the compute dtype,
// every stride but the last a multiple of 16 elements. A [B, 1, 1, Tk] padding bias is padded along
// Tk once (and sliced back) when Tk is not a multiple of 16, then expanded without copying.
at::Tensor KernelBias(const at::Tensor &bias, const at::Tensor &q, const at::Tensor &k, at::ScalarType dtype) {
  at::Tensor b = bias.to(dtype);
  while (b.dim() < 4) b = b.unsqueeze(0);
  constexpr int64_t kAlign = 16;
  bool aligned = b.stride(-1) == 1;
  for (int64_t i = 0; i + 1 < b.dim(); ++i) {
    if (b.size(i) > 1 && b.stride(i) % kAlign != 0) aligned = false;
  }
  if (!aligned) {
    const int64_t tk = b.size(-1);
    const int64_t padded = (tk + kAlign - 1) / kAlign * kAlign;
    b = at::constant_pad_nd(b.contiguous(), {0, padded - tk}).narrow(-1, 0, tk);
  }
  return b.expand({q.size(0), q.size(1), q.size(2), k.size(2)});
}

// The CPU flash kernel's attn_mask: 4-d, the query's dtype, size-1 axes broadcast by the kernel.
at::Tensor CpuMask(const at::Tensor &bias, at::ScalarType dtype) {
  at::Tensor b = bias.to(dtype);
  while (b.dim() < 4) b = b.unsqueeze(0);
  return b;
}

void SeedDefaultGenerator(const at::Device &device, uint64_t seed) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
}

// Which fused kernel applies, or kChunked; `why` says why a forced kernel does not.
Path FusedPath(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &bias, const AttentionConfig &cfg,
               std::string *why) {
  const std::string &want = cfg.kernel;
  auto refuse = [&](const std::string &reason) {
    *why = reason;
    return kChunked;
  };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return refuse("the fused kernels take [batch, heads, tokens, headDim] inputs");
  if (v.size(-1) != q.size(-1)) return refuse("the fused kernels need v's head dim to equal q's");
  if (bias.defined() && bias.dim() > 4) return refuse("the fused kernels take a bias of rank <= 4");
  const bool cpu = q.device().is_cpu();
  const bool cuda = q.device().is_cuda();
  const bool half = cfg.bf16;
  if (want == "flash-cpu" || (want == "auto" && cpu)) {
    if (!cpu) return refuse("flash-cpu runs on CPU tensors");
    if (cfg.dropout > 0) return refuse("flash-cpu is used with dropout 0 only (its dropout is not drawn from the seed)");
    return kFlashCpu;
  }
  if (!cuda) return refuse("the " + want + " kernel runs on CUDA tensors");
  const int64_t d = q.size(-1);
  if (want == "flash" || (want == "auto" && !bias.defined() && half && d % 8 == 0 && d <= 256)) {
    if (bias.defined()) return refuse("the flash kernel takes no mask (use it for unpadded batches)");
    if (!half) return refuse("the flash kernel needs half or bfloat16 inputs (--precision bf16)");
    return kFlash;
  }
  if (want == "cudnn") {
    if (!half) return refuse("the cuDNN kernel needs half or bfloat16 inputs (--precision bf16)");
    return kCudnn;
  }
  if (want == "efficient" || want == "auto") return kEfficient;
  return refuse("unknown attention kernel \"" + want + "\" (expected auto, chunked, flash-cpu, flash, efficient or cudnn)");
}

// A fused kernel's result in its input's dtype: bfloat16 for bfloat16 inputs (bf16 activations keep
// it so, as autocast's attention returns it: no float32 round trip), float32 for float32 inputs
// (a bfloat16 computation under --precision bf16 without bf16 activations is cast back).
at::Tensor LikeInput(const at::Tensor &t, const at::Tensor &input) {
  return t.scalar_type() == input.scalar_type() ? t : t.to(input.scalar_type());
}

at::Tensor FusedForward(Path path, const at::Tensor &q0, const at::Tensor &k0, const at::Tensor &v0, const at::Tensor &bias,
                        const AttentionConfig &cfg, AttentionSaved *saved) {
  const at::ScalarType dtype = cfg.bf16 ? at::kBFloat16 : at::kFloat;
  const at::Tensor q = Prepared(q0, dtype), k = Prepared(k0, dtype), v = Prepared(v0, dtype);
  const double p = cfg.dropout;
  if (p > 0) SeedDefaultGenerator(q.device(), cfg.seed);
  at::Tensor out;
  std::vector<at::Tensor> state;
  switch (path) {
    case kFlashCpu: {
      c10::optional<at::Tensor> mask;
      if (bias.defined()) mask = CpuMask(bias, dtype);
      auto r = at::_scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, false, mask, cfg.scale);
      out = std::get<0>(r);
      state = {Header(path), std::get<1>(r)};
      break;
    }
    case kFlash: {
      auto r = at::_scaled_dot_product_flash_attention(q, k, v, p, false, false, cfg.scale);
      out = std::get<0>(r);
      state = {Header(path, std::get<4>(r).expect_int(), std::get<5>(r).expect_int()), std::get<1>(r), std::get<2>(r), std::get<3>(r),
               std::get<6>(r), std::get<7>(r)};
      break;
    }
    case kEfficient: {
      c10::optional<at::Tensor> b;
      if (bias.defined()) b = KernelBias(bias, q, k, dtype);
      auto r = at::_scaled_dot_product_efficient_attention(q, k, v, b, true, p, false, cfg.scale);
      out = std::get<0>(r);
      state = {Header(path), std::get<1>(r), std::get<2>(r), std::get<3>(r)};
      break;
    }
    case kCudnn: {
      c10::optional<at::Tensor> b;
      if (bias.defined()) b = KernelBias(bias, q, k, dtype);
      auto r = at::_scaled_dot_product_cudnn_attention(q, k, v, b, true, p, false, false, cfg.scale);
      out = std::get<0>(r);
      state = {Header(path, std::get<4>(r).expect_int(), std::get<5>(r).expect_int()), std::get<1>(r), std::get<2>(r), std::get<3>(r),
               std::get<6>(r), std::get<7>(r)};
      break;
    }
    default:
      throw std::logic_error("FusedForward: not a fused path");
  }
  if (saved) saved->state = MarkUndefined(std::move(state));
  return LikeInput(out, q0);
}

std::vector<at::Tensor> FusedBackward(Path path, const at::Tensor &dy0, const at::Tensor &q0, const at::Tensor &k0, const at::Tensor &v0,
                                      const at::Tensor &bias, const at::Tensor &out0, const AttentionSaved &saved, const AttentionConfig &cfg) {
  const at::ScalarType dtype = cfg.bf16 ? at::kBFloat16 : at::kFloat;
  const at::Tensor q = Prepared(q0, dtype), k = Prepared(k0, dtype), v = Prepared(v0, dtype);
  // The forward's output came back in q's dtype (float32 from a bfloat16 kernel: the round trip is exact).
  const at::Tensor dy = Prepared(dy0, dtype), out = Prepared(out0, dtype);
  const std::vector<at::Tensor> s = UnmarkUndefined(saved.state);
  const double p = cfg.dropout;
  at::Tensor dq, dk, dv;
  switch (path) {
    case kFlashCpu: {
      c10::optional<at::Tensor> mask;
      if (bias.defined()) mask = CpuMask(bias, dtype);
      std::tie(dq, dk, dv) = at::_scaled_dot_product_flash_attention_for_cpu_backward(dy, q, k, v, out, s.at(1), 0.0, false, mask, cfg.scale);
      break;
    }
    case kFlash:
      std::tie(dq, dk, dv) = at::_scaled_dot_product_flash_attention_backward(dy, q, k, v, out, s.at(1), s.at(2), s.at(3), HeaderAt(saved, 1),
                                                                              HeaderAt(saved, 2), p, false, s.at(4), s.at(5), cfg.scale);
      break;
    case kEfficient: {
      const at::Tensor b = bias.defined() ? KernelBias(bias, q, k, dtype) : at::Tensor();
      at::Tensor unusedBias;
      std::tie(dq, dk, dv, unusedBias) = at::_scaled_dot_product_efficient_attention_backward(
          dy, q, k, v, b, out, s.at(1), s.at(2), s.at(3), p, {true, true, true, false}, false, cfg.scale);
      break;
    }
    case kCudnn: {
      const at::Tensor b = bias.defined() ? KernelBias(bias, q, k, dtype) : at::Tensor();
      std::tie(dq, dk, dv) = at::_scaled_dot_product_cudnn_attention_backward(dy, q, k, v, out, s.at(1), s.at(4), s.at(5), b, s.at(2), s.at(3),
                                                                              HeaderAt(saved, 1), HeaderAt(saved, 2), p, false, cfg.scale);
      break;
    }
    default:
      throw std::logic_error("FusedBackward: not a fused path");
  }
  return {LikeInput(dq, q0), LikeInput(dk, k0), LikeInput(dv, v0)};
}

#endif  // CODIEMB_SDPA

}  // namespace

at::Tensor AttentionForward(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &bias,
                            const AttentionConfig &cfg, AttentionSaved *saved) {
  if (cfg.kernel != "chunked" && cfg.kernel != "chunked-composite") {
#if CODIEMB_SDPA
    std::string why;
    const Path path = FusedPath(q, k, v, bias, cfg, &why);
    if (path != kChunked) {
      try {
        return FusedForward(path, q, k, v, bias, cfg, saved);
      } catch (const c10::Error &) {
        // A kernel that refuses these inputs (head dim, alignment, GPU generation): the chunked path
        // computes the same function, unless that kernel was asked for by name.
        if (cfg.kernel != "auto") throw;
      }
    } else if (cfg.kernel != "auto") {
      throw std::invalid_argument("attention kernel \"" + cfg.kernel + "\": " + why);
    }
#else
    if (cfg.kernel != "auto") {
      throw std::invalid_argument("attention kernel \"" + cfg.kernel + "\" needs libtorch >= 2.6 (this addon was built against " TORCH_VERSION ")");
    }
#endif
  }
  at::Tensor lse;
  at::Tensor out = ChunkedForward(q, k, v, bias, cfg, saved ? &lse : nullptr);
  if (saved) saved->state = {Header(kChunked), lse};
  return out;
}

std::vector<at::Tensor> AttentionBackward(const at::Tensor &dy, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                                          const at::Tensor &bias, const at::Tensor &out, const AttentionSaved &saved,
                                          const AttentionConfig &cfg, bool wantQkv, bool wantBias) {
  if (wantBias && !bias.defined()) throw std::invalid_argument("attention backward: a bias gradient was asked for without a bias");
  const Path path = static_cast<Path>(HeaderAt(saved, 0));
  if (path == kChunked) return ChunkedBackward(dy, q, k, v, bias, out, saved.state.at(1), cfg, wantQkv, wantBias);
  std::vector<at::Tensor> grads;
#if CODIEMB_SDPA
  if (wantQkv) {
    try {
      grads = FusedBackward(path, dy, q, k, v, bias, out, saved, cfg);
    } catch (const c10::Error &) {
      // A backward kernel that refuses what its forward took: without dropout the chunked backward
      // (from a recomputed log-sum-exp) gives the same gradients; a kernel asked for by name reports it.
      if (cfg.kernel != "auto" || cfg.dropout > 0) throw;
      at::Tensor lse;
      ChunkedForward(q, k, v, bias, cfg, &lse);
      grads = ChunkedBackward(dy, q, k, v, bias, out, lse, cfg, true, false);
    }
  }
#else
  throw std::invalid_argument("attention backward: a fused forward pass in a build without fused kernels");
#endif
  if (wantBias) {
    // The fused kernels' bias gradient would be a full [B, H, Tq, Tk] tensor; the chunked backward
    // reduces it block by block, from the chunked log-sum-exp (recomputed here) and the same output.
    if (cfg.dropout > 0) {
      throw std::invalid_argument("the gradient of the attention mask is not available from the fused " + AttentionPathName(saved) +
                                  " kernel with dropout (its mask is not reproducible); use kernel \"chunked\"");
    }
    at::Tensor lse;
    ChunkedForward(q, k, v, bias, cfg, &lse);
    grads.push_back(ChunkedBackward(dy, q, k, v, bias, out, lse, cfg, false, true).at(0));
  }
  return grads;
}

std::vector<at::Tensor> Dropout(const at::Tensor &x, double rate, uint64_t seed) {
  if (!CounterMasks(x) || x.scalar_type() != at::kFloat) throw std::invalid_argument("dropout: the counter-based masks take float32 CPU tensors");
  if (!(rate > 0.0 && rate < 1.0)) throw std::invalid_argument("dropout: rate must be in (0, 1)");
  const at::Tensor in = x.contiguous();
  at::Tensor y = at::empty_like(in), mask = at::empty(in.sizes(), in.options().dtype(at::kBool));
  const float *x0 = in.data_ptr<float>();
  float *y0 = y.data_ptr<float>();
  bool *m0 = mask.data_ptr<bool>();
  const float scale = KeepScale(rate);
  // Block -1: a stream apart from every attention block drawn from the same seed.
  ForEachKeep(in.numel(), rate, StreamKey(seed, -1), [x0, y0, m0, scale](int64_t i, bool keep) {
    y0[i] = x0[i] * (keep ? scale : 0.0f);
    m0[i] = keep;
  });
  return {y, mask};
}

std::string AttentionPathName(const AttentionSaved &saved) {
  const int64_t path = HeaderAt(saved, 0);
  if (path < 0 || path > kCudnn) throw std::invalid_argument("attention: unknown saved path");
  return kPathNames[path];
}

std::vector<std::string> AttentionFusedKernels() {
#if CODIEMB_SDPA
  return {"flash-cpu", "flash", "efficient", "cudnn"};
#else
  return {};
#endif
}

}  // namespace codiemb
