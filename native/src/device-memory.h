// The CUDA caching allocator's statistics (see device-memory.cc).
#pragma once

#include <napi.h>

namespace codiemb {

// Adds cudaMemoryStats(device), cudaResetPeakMemoryStats(device) and cudaEmptyCache().
void RegisterDeviceMemory(Napi::Env env, Napi::Object exports);

}  // namespace codiemb
