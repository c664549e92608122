// Exact dense search, one corpus chunk per call (src/tensor/chunk-topk.ts drives it): the chunk's
// matrix product with every query batch, its top-k and the merge with each batch's running top-k, in
// ATen calls without a trip through JavaScript between them.
//
// Why native: the same ops as tfjs kernels cost one JS→ATen crossing, one tfjs tensor record and one
// external per op; the chunk had to be copied into an ATen tensor (tfjs owns its values) and
// normalised as square/sum/rsqrt/mul (two chunk-sized temporaries). Here the chunk is read in place
// from the caller's Float32Array (on CPU; one host→device copy on CUDA), normalised as
// torch.nn.functional.normalize does (one norm pass, one divided copy), each batch's score block is
// written into one buffer reused across the chunk's query batches, and only k (score, index) pairs
// per query are kept between calls (on the queries' device).
#include "search.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <string>
#include <vector>

namespace codiemb {
namespace {

SearchTensorAccess g_access;

// Rows scaled to unit length like F.normalize(x, dim=1): x / max(||x||, 1e-12) (a zero row stays zero).
at::Tensor Normalize(const at::Tensor &x, bool inPlace) {
  at::Tensor norm = at::linalg_vector_norm(x, 2, at::IntArrayRef{1}, true).clamp_min_(1e-12);
  return inPlace ? x.div_(norm) : x.div(norm);
}

// A Float32Array's floats as a CPU tensor [rows × dim] over its memory (no copy): valid during the call only.
at::Tensor Borrow(const Napi::Value &v, int64_t rows, int64_t dim, const char *what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw std::invalid_argument(std::string(what) + ": expected a Float32Array");
  }
  auto ta = v.As<Napi::TypedArray>();
  if (ta.ElementLength() != static_cast<size_t>(rows * dim)) {
    throw std::invalid_argument(std::string(what) + ": has " + std::to_string(ta.ElementLength()) + " floats, expected " + std::to_string(rows) +
                                " × " + std::to_string(dim));
  }
  auto *data = static_cast<uint8_t *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return at::from_blob(data, {rows, dim}, at::TensorOptions().dtype(at::kFloat));
}

// The running top-k of `rows` queries merged with a score block [rows × n] on the CPU: each row keeps
// only the scores above its current k-th best (after the first chunks, a handful of a chunk's 16,384),
// sorts those and merges them with its sorted running list. Same result as topk(cat(running,
// topk(block))) up to the order of equal scores, without selecting from every row of every chunk
// (ATen's CPU topk copies each row into (value, index) pairs and runs nth_element over all of them).
std::pair<at::Tensor, at::Tensor> MergeAboveThreshold(const at::Tensor &block, const at::Tensor &runValues, const at::Tensor &runIds, int64_t keep,
                                                      int64_t offset) {
  const int64_t rows = block.size(0);
  const int64_t n = block.size(1);
  TORCH_CHECK(runValues.dim() == 2 && runValues.size(0) == rows && runValues.scalar_type() == at::kFloat && runValues.device().is_cpu(),
              "searchChunk: running scores must be float32 [", rows, " × kept] on the CPU");
  const int64_t kept = runValues.size(1);
  TORCH_CHECK(runIds.dim() == 2 && runIds.size(0) == rows && runIds.size(1) == kept && runIds.scalar_type() == at::kInt && runIds.device().is_cpu(),
              "searchChunk: running indices must be int32 [", rows, " × ", kept, "] on the CPU");
  const int64_t outKept = std::min(keep, kept + n);
  at::Tensor values = at::empty({rows, outKept}, runValues.options());
  at::Tensor ids = at::empty({rows, outKept}, runIds.options());
  const at::Tensor rv = runValues.contiguous();
  const at::Tensor ri = runIds.contiguous();
  const float *scores = block.data_ptr<float>();
  const int64_t stride = block.stride(0);
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<float, int32_t>> cand;
    for (int64_t r = begin; r < end; ++r) {
      const float *row = scores + r * stride;
      const float *runV = rv.data_ptr<float>() + r * kept;
      const int32_t *runI = ri.data_ptr<int32_t>() + r * kept;
      // a document enters only above the k-th best so far (while fewer than keep are kept: any)
      const float threshold = kept >= keep ? runV[kept - 1] : -std::numeric_limits<float>::infinity();
      cand.clear();
      for (int64_t j = 0; j < n; ++j) {
        if (row[j] > threshold) cand.emplace_back(row[j], static_cast<int32_t>(offset + j));
      }
      auto better = [](const std::pair<float, int32_t> &a, const std::pair<float, int32_t> &b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      };
      if (static_cast<int64_t>(cand.size()) > outKept) {
        std::nth_element(cand.begin(), cand.begin() + outKept, cand.end(), better);
        cand.resize(outKept);
      }
      std::sort(cand.begin(), cand.end(), better);
      float *outV = values.data_ptr<float>() + r * outKept;
      int32_t *outI = ids.data_ptr<int32_t>() + r * outKept;
      // merge two descending lists; the running one first on equal scores (it came earlier)
      int64_t a = 0, c = 0;
      const int64_t nc = static_cast<int64_t>(cand.size());
      for (int64_t o = 0; o < outKept; ++o) {
        if (a < kept && (c >= nc || runV[a] >= cand[c].first)) {
          outV[o] = runV[a];
          outI[o] = runI[a++];
        } else {
          outV[o] = cand[c].first;
          outI[o] = cand[c++].second;
        }
      }
    }
  });
  return {values, ids};
}

// searchQueries(values: Float32Array, nq, dim, cosine, device?) -> [nq × dim] float32 handle on the device
Napi::Value SearchQueries(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t nq = info[1].As<Napi::Number>().Int64Value();
  int64_t dim = info[2].As<Napi::Number>().Int64Value();
  bool cosine = info[3].ToBoolean().Value();
  at::Tensor q = Borrow(info[0], nq, dim, "searchQueries: queries");
  at::Device device = info.Length() > 4 && info[4].IsString() ? at::Device(info[4].As<Napi::String>().Utf8Value()) : at::Device(at::kCPU);
  // an owned copy (the JS array may go away), on the device
  q = device.is_cpu() ? q.clone() : q.to(device);
  return g_access.wrap(env, cosine ? Normalize(q, true) : q);
}

// searchChunk(queries, chunk: Float32Array, n, dim, offset, keep, queryBatch, cosine, running: handle[], workspace?)
//   -> handle[]: per query batch its running top scores [b × kept] (float32, descending) and their global
//      document indices [b × kept] (int32), interleaved; `running` is the previous call's result or [].
//      `workspace`: an optional float32 [rows >= n × dim] tensor on the queries' device for the chunk's copy.
Napi::Value SearchChunk(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const at::Tensor &queries = g_access.tensor(info[0], "searchChunk: queries");
  int64_t n = info[2].As<Napi::Number>().Int64Value();
  int64_t dim = info[3].As<Napi::Number>().Int64Value();
  int64_t offset = info[4].As<Napi::Number>().Int64Value();
  int64_t keep = info[5].As<Napi::Number>().Int64Value();
  int64_t queryBatch = info[6].As<Napi::Number>().Int64Value();
  bool cosine = info[7].ToBoolean().Value();
  auto runningJs = info[8].As<Napi::Array>();
  if (queries.dim() != 2 || queries.size(1) != dim) throw std::invalid_argument("searchChunk: queries must be [nq × dim]");
  if (n < 1 || keep < 1 || queryBatch < 1) throw std::invalid_argument("searchChunk: n, keep and queryBatch must be >= 1");
  if (offset + n > INT32_MAX) throw std::invalid_argument("searchChunk: document indices beyond int32");
  const int64_t nq = queries.size(0);
  const int64_t batches = (nq + queryBatch - 1) / queryBatch;
  if (runningJs.Length() != 0 && runningJs.Length() != static_cast<uint32_t>(2 * batches)) {
    throw std::invalid_argument("searchChunk: running must be empty or hold 2 handles per query batch");
  }
  std::vector<at::Tensor> running;
  for (uint32_t i = 0; i < runningJs.Length(); ++i) running.push_back(g_access.tensor(runningJs.Get(i), "searchChunk: running"));

  c10::NoGradGuard noGrad;
  at::Tensor docs = Borrow(info[1], n, dim, "searchChunk: chunk");
  // The chunk's device copy (normalised, or copied to the GPU) goes into the caller's workspace when
  // it is large enough: normalising into a fresh 48 MiB tensor per chunk took 2.5× as long (page faults).
  at::Tensor ws;
  if (info.Length() > 9 && !info[9].IsNull() && !info[9].IsUndefined()) {
    const at::Tensor &w = g_access.tensor(info[9], "searchChunk: workspace");
    if (w.dim() == 2 && w.size(0) >= n && w.size(1) == dim && w.scalar_type() == at::kFloat && w.device() == queries.device() && w.is_contiguous()) {
      ws = w.narrow(0, 0, n);
    }
  }
  if (!queries.device().is_cpu()) {
    docs = ws.defined() ? ws.copy_(docs) : docs.to(queries.device());
    if (cosine) docs = Normalize(docs, true);
  } else if (cosine) {
    // never written: the caller's array
    at::Tensor norm = at::linalg_vector_norm(docs, 2, at::IntArrayRef{1}, true).clamp_min_(1e-12);
    docs = ws.defined() ? at::div_out(ws, docs, norm) : docs.div(norm);
  }
  // (with `dot` on CPU, docs is the caller's memory: only used within this call)
  const at::Tensor docsT = docs.t();
  const int64_t take = std::min(n, keep);
  at::Tensor block = at::empty({std::min(queryBatch, nq), n}, queries.options());
  auto out = Napi::Array::New(env, 2 * batches);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t start = b * queryBatch;
    const int64_t rows = std::min(queryBatch, nq - start);
    at::Tensor scores = block.narrow(0, 0, rows);
    at::mm_out(scores, queries.narrow(0, start, rows), docsT);
    if (!running.empty() && queries.device().is_cpu()) {
      auto merged = MergeAboveThreshold(scores, running[2 * b], running[2 * b + 1], keep, offset);
      out.Set(static_cast<uint32_t>(2 * b), g_access.wrap(env, merged.first));
      out.Set(static_cast<uint32_t>(2 * b + 1), g_access.wrap(env, merged.second));
      continue;
    }
    auto top = scores.topk(take, 1, true, true);
    at::Tensor values = std::get<0>(top);
    at::Tensor ids = std::get<1>(top).to(at::kInt).add_(offset);
    if (!running.empty()) {
      at::Tensor allValues = at::cat({running[2 * b], values}, 1);
      at::Tensor allIds = at::cat({running[2 * b + 1], ids}, 1);
      auto merged = allValues.topk(std::min(keep, allValues.size(1)), 1, true, true);
      values = std::get<0>(merged);
      ids = allIds.gather(1, std::get<1>(merged));
    }
    out.Set(static_cast<uint32_t>(2 * b), g_access.wrap(env, values));
    out.Set(static_cast<uint32_t>(2 * b + 1), g_access.wrap(env, ids));
  }
  return out;
}

template <Napi::Value (*F)(const Napi::CallbackInfo &)>
Napi::Value Guarded(const Napi::CallbackInfo &info) {
  try {
    return F(info);
  } catch (const Napi::Error &e) {
    throw;
  } catch (const c10::Error &e) {
    throw Napi::Error::New(info.Env(), std::string("search: ") + e.what_without_backtrace());
  } catch (const std::exception &e) {
    throw Napi::Error::New(info.Env(), std::string("search: ") + e.what());
  }
}

}  // namespace

void RegisterSearch(Napi::Env env, Napi::Object exports, SearchTensorAccess access) {
  g_access = access;
  exports.Set("searchQueries", Napi::Function::New(env, Guarded<SearchQueries>, "searchQueries"));
  exports.Set("searchChunk", Napi::Function::New(env, Guarded<SearchChunk>, "searchChunk"));
}

}  // namespace codiemb
