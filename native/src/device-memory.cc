// The CUDA caching allocator's statistics: bytes held by live tensors (allocated) and bytes the
// allocator keeps from the driver (reserved), now and at their peak since the last reset. These are
// the figures torch.cuda.max_memory_allocated / max_memory_reserved report, so a bench can put
// codiemb's peak beside PyTorch's measured the same way. A build without CUDA (or one whose
// allocator header does not compile: the GPU check script then defines CODIEMB_NO_CUDA_MEMORY_STATS)
// answers null, and callers say the figure is unavailable.
#include "device-memory.h"

#if defined(CODIEMB_WITH_CUDA) && !defined(CODIEMB_NO_CUDA_MEMORY_STATS)
#include <c10/cuda/CUDACachingAllocator.h>
#define CODIEMB_CUDA_MEMORY_STATS 1
#endif

namespace codiemb {
namespace {

#ifdef CODIEMB_CUDA_MEMORY_STATS
c10::DeviceIndex DeviceArg(const Napi::CallbackInfo &info) {
  return static_cast<c10::DeviceIndex>(info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0);
}
#endif

// Runs `call` in a CUDA build (a libtorch error becomes a JS exception); without CUDA statistics
// answers `without`.
template <typename Call>
Napi::Value CudaOnly(const Napi::CallbackInfo &info, Napi::Value without, Call call) {
#ifdef CODIEMB_CUDA_MEMORY_STATS
  (void)without;
  try {
    return call();
  } catch (const std::exception &e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
#else
  (void)call;
  return without;
#endif
}

Napi::Value MemoryStats(const Napi::CallbackInfo &info) {
  return CudaOnly(info, info.Env().Null(), [&]() -> Napi::Value {
#ifdef CODIEMB_CUDA_MEMORY_STATS
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(DeviceArg(info));
    // Index 0 is the AGGREGATE pool (small and large pools together) in every libtorch version.
    auto out = Napi::Object::New(info.Env());
    out.Set("allocated", static_cast<double>(stats.allocated_bytes[0].current));
    out.Set("reserved", static_cast<double>(stats.reserved_bytes[0].current));
    out.Set("peakAllocated", static_cast<double>(stats.allocated_bytes[0].peak));
    out.Set("peakReserved", static_cast<double>(stats.reserved_bytes[0].peak));
    return out;
#else
    return info.Env().Null();
#endif
  });
}

Napi::Value ResetPeakStats(const Napi::CallbackInfo &info) {
  return CudaOnly(info, Napi::Boolean::New(info.Env(), false), [&]() -> Napi::Value {
#ifdef CODIEMB_CUDA_MEMORY_STATS
    c10::cuda::CUDACachingAllocator::resetPeakStats(DeviceArg(info));
#endif
    return Napi::Boolean::New(info.Env(), true);
  });
}

// Returns the allocator's cached, unused blocks to the driver (torch.cuda.empty_cache), so that a
// second process on the same GPU (the bench's PyTorch reference) finds the memory free.
Napi::Value EmptyCache(const Napi::CallbackInfo &info) {
  return CudaOnly(info, Napi::Boolean::New(info.Env(), false), [&]() -> Napi::Value {
#ifdef CODIEMB_CUDA_MEMORY_STATS
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    return Napi::Boolean::New(info.Env(), true);
  });
}

}  // namespace

void RegisterDeviceMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMemoryStats", Napi::Function::New(env, MemoryStats, "cudaMemoryStats"));
  exports.Set("cudaEmptyCache", Napi::Function::New(env, EmptyCache, "cudaEmptyCache"));
  exports.Set("cudaResetPeakMemoryStats", Napi::Function::New(env, ResetPeakStats, "cudaResetPeakMemoryStats"));
}

}  // namespace codiemb
