// Multi-process collectives over PyTorch c10d (Gloo on CPU; see distributed.cc).
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

namespace codiemb {

// How distributed.cc reaches addon.cc's tensor handles without sharing its internals.
struct TensorAccess {
  Napi::Value (*wrap)(Napi::Env, at::Tensor);
  const at::Tensor &(*tensor)(const Napi::Value &, const char *);
};

// Adds distInfo, distInit, distAllReduce, distBroadcast, distAllGather, distBarrier, distDestroy.
void RegisterDistributed(Napi::Env env, Napi::Object exports, TensorAccess access);

}  // namespace codiemb
