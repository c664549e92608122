// Exact dense search, one corpus chunk per call (see search.cc).
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

namespace codiemb {

// How search.cc reaches addon.cc's tensor handles without sharing its internals.
struct SearchTensorAccess {
  Napi::Value (*wrap)(Napi::Env, at::Tensor);
  const at::Tensor &(*tensor)(const Napi::Value &, const char *);
};

// Adds searchQueries and searchChunk.
void RegisterSearch(Napi::Env env, Napi::Object exports, SearchTensorAccess access);

}  // namespace codiemb
