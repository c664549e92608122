// Multi-process collectives for data-parallel training, over PyTorch's own c10d library (the engine
// torch.distributed and torchrun use), not a home-made one: a TCPStore for the rendezvous (rank 0
// serves it at MASTER_ADDR:MASTER_PORT, as torchrun's contract says) and a process group for the
// collectives: ProcessGroupGloo (CPU tensors; CUDA tensors staged through the host) or, in builds
// with NCCL (CODIEMB_WITH_NCCL: a CUDA libtorch and nccl.h), ProcessGroupNCCL for CUDA tensors.
//
// One process group per process (a training run has one); every call names the collective and this
// rank when it fails, and a failed group stays failed (a later collective repeats the first reason
// instead of hanging on a half-finished exchange).
//
// Version notes. libtorch 1.13 (Debian 12's libtorch-dev) derives ProcessGroupGloo and
// ProcessGroupNCCL from c10d::ProcessGroup; libtorch 2.x derives them from c10d::Backend (ProcessGroup
// became a dispatcher over Backends). The group is held through that base (CollectiveBackend below,
// chosen by TORCH_VERSION_MAJOR); the members used (the constructors from a store,
// Options::create, Options::timeout, devices, broadcast, allreduce, the list form of allgather,
// barrier, Work::wait) have the same signatures in both, which scripts/check-libtorch2.sh checks by
// compiling this file against Debian 13's libtorch 2.6 headers (1.13 is what `npm run build:torch`
// builds here). Where 2.x differs (device factories grew a defaulted lazyInit argument) the call does
// not pass it. Gloo in 1.13 has no reduce_scatter and no _allgather_base: all-reduce and the list form
// of all-gather are used.
// Built only where scripts/build-torch.mjs found the c10d and Gloo headers (CODIEMB_WITH_C10D); other
// builds export the same functions, which throw saying why.
#include "distributed.h"

#include <c10/core/DeviceGuard.h>
#include <torch/csrc/api/include/torch/version.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#ifdef CODIEMB_WITH_C10D
// Gloo where its headers are (Debian's libgloo-dev; PyTorch's wheels link Gloo in but ship none of
// its headers, so a wheel build has NCCL alone: USE_C10D_GLOO unset).
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CODIEMB_WITH_NCCL
// Needs USE_C10D_NCCL (ProcessGroupNCCL.hpp is empty without it), the CUDA runtime headers and nccl.h.
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace codiemb {
namespace {

TensorAccess g_access{};

[[maybe_unused]] std::string Bytes(uint64_t n) {
  std::ostringstream s;
  if (n >= (1u << 20)) s << (static_cast<double>(n) / (1 << 20)) << " MiB";
  else if (n >= 1024) s << (static_cast<double>(n) / 1024) << " KiB";
  else s << n << " B";
  return s.str();
}

// Turns C++ exceptions into JS errors prefixed by `context`.
template <typename F>
Napi::Value Guard(Napi::Env env, const std::string &context, F &&body) {
  try {
    return body();
  } catch (const Napi::Error &e) {
    throw Napi::Error::New(env, context + ": " + e.Message());
  } catch (const c10::Error &e) {
    throw Napi::Error::New(env, context + ": " + e.what_without_backtrace());
  } catch (const std::exception &e) {
    throw Napi::Error::New(env, context + ": " + e.what());
  }
}

[[maybe_unused]] int64_t IntOption(const Napi::Object &o, const char *key, int64_t fallback) {
  auto v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}

[[maybe_unused]] std::string StringOption(const Napi::Object &o, const char *key, const std::string &fallback) {
  auto v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

[[maybe_unused]] std::vector<at::Tensor> TensorList(const Napi::Value &v, const char *what) {
  if (!v.IsArray()) throw std::invalid_argument(std::string(what) + ": expected an array of tensor handles");
  auto a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(g_access.tensor(a.Get(i), what));
  return out;
}

#ifdef CODIEMB_WITH_C10D

// The common base of ProcessGroupGloo and ProcessGroupNCCL, where the collectives are declared: in
// libtorch 2.x the process groups proper became c10d::Backend objects (c10d::ProcessGroup now
// dispatches to them); in 1.x they derived from c10d::ProcessGroup itself.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveBackend = c10d::Backend;
#else
using CollectiveBackend = c10d::ProcessGroup;
#endif

#ifdef CODIEMB_WITH_NCCL
constexpr bool kHasNccl = true;
#else
constexpr bool kHasNccl = false;
#endif
#ifdef USE_C10D_GLOO
constexpr bool kHasGloo = true;
#else
constexpr bool kHasGloo = false;
#endif

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<CollectiveBackend> pg;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{300000};
  std::string backend = "gloo";
  // Where this rank's tensors live (NCCL: the CUDA device set before the group was created).
  c10::Device device{c10::kCPU};
  // The first failure; later collectives repeat it (the peers' state is unknown after one).
  std::string broken;
  uint64_t collectives = 0;
  uint64_t bytesReduced = 0;
  uint64_t bytesBroadcast = 0;
  uint64_t bytesGathered = 0;
};

std::shared_ptr<Group> g_group;

std::shared_ptr<Group> Current(const std::string &what) {
  if (!g_group) throw std::runtime_error(what + ": no process group (call distInit first)");
  if (!g_group->broken.empty()) throw std::runtime_error(what + " on rank " + std::to_string(g_group->rank) + ": the process group failed earlier: " + g_group->broken);
  return g_group;
}

std::string Where(const Group &g, const std::string &what) {
  return what + " on rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " (" + g.backend + ")";
}

// Makes the group's CUDA device current on the calling thread for the scope (collectives may run on
// a libuv worker thread, whose current CUDA device is its own); nothing on CPU.
struct DeviceScope {
  explicit DeviceScope(const Group &g) {
    if (g.device.is_cuda()) guard.reset_device(g.device);
  }
  c10::OptionalDeviceGuard guard;
};

// Waits for every work item; the first failure marks the group broken and is rethrown with context.
template <typename WorkPtr>
void WaitAll(Group &g, std::vector<WorkPtr> &works, const std::string &what) {
  for (auto &w : works) {
    try {
      w->wait(g.timeout);
    } catch (const c10::Error &e) {
      g.broken = Where(g, what) + " failed: " + e.what_without_backtrace();
      throw std::runtime_error(g.broken);
    } catch (const std::exception &e) {
      g.broken = Where(g, what) + " failed: " + e.what();
      throw std::runtime_error(g.broken);
    }
  }
}

// Consecutive tensors of one dtype and device, flattened into buckets of about `cap` bytes: one
// collective per bucket instead of one per tensor (DDP's gradient buckets).
struct Bucket {
  std::vector<size_t> members;
  at::Tensor flat;
};

std::vector<Bucket> MakeBuckets(const std::vector<at::Tensor> &ts, int64_t cap) {
  std::vector<Bucket> out;
  std::vector<at::Tensor> pending;
  std::vector<size_t> members;
  int64_t bytes = 0;
  auto flush = [&]() {
    if (members.empty()) return;
    out.push_back({members, pending.size() == 1 ? pending[0].clone() : at::cat(pending)});
    pending.clear();
    members.clear();
    bytes = 0;
  };
  for (size_t i = 0; i < ts.size(); ++i) {
    const at::Tensor &t = ts[i];
    if (!pending.empty() && (pending[0].scalar_type() != t.scalar_type() || pending[0].device() != t.device())) flush();
    pending.push_back(t.reshape({-1}));
    members.push_back(i);
    bytes += t.numel() * static_cast<int64_t>(t.element_size());
    if (bytes >= cap) flush();
  }
  flush();
  return out;
}

// Splits the buckets back into tensors of the inputs' shapes (fresh storage each, so a result's
// memory is its own and can be freed on its own).
std::vector<at::Tensor> Unbucket(const std::vector<Bucket> &buckets, const std::vector<at::Tensor> &like) {
  std::vector<at::Tensor> out(like.size());
  for (const auto &b : buckets) {
    int64_t offset = 0;
    for (size_t m : b.members) {
      int64_t n = like[m].numel();
      out[m] = b.flat.narrow(0, offset, n).view(like[m].sizes()).clone();
      offset += n;
    }
  }
  return out;
}

uint64_t BucketBytes(const std::vector<Bucket> &buckets) {
  uint64_t n = 0;
  for (const auto &b : buckets) n += static_cast<uint64_t>(b.flat.numel()) * b.flat.element_size();
  return n;
}

// A collective run on a libuv worker thread (JS keeps running: signals, progress output); the
// promise resolves with new tensor handles or rejects with the collective's error.
class CollectiveWorker : public Napi::AsyncWorker {
 public:
  using Run = std::function<std::vector<at::Tensor>()>;
  CollectiveWorker(Napi::Env env, Run run)
      : Napi::AsyncWorker(env), run_(std::move(run)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = run_();
    } catch (const c10::Error &e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception &e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    auto arr = Napi::Array::New(env, result_.size());
    for (size_t i = 0; i < result_.size(); ++i) arr.Set(static_cast<uint32_t>(i), g_access.wrap(env, std::move(result_[i])));
    deferred_.Resolve(arr);
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Run run_;
  std::vector<at::Tensor> result_;
  Napi::Promise::Deferred deferred_;
};

// Runs `run` now (sync) or on a worker thread (async: returns a promise).
Napi::Value Dispatch(Napi::Env env, bool async, CollectiveWorker::Run run) {
  if (async) {
    auto *w = new CollectiveWorker(env, std::move(run));
    auto p = w->Promise();
    w->Queue();
    return p;
  }
  auto result = run();
  auto arr = Napi::Array::New(env, result.size());
  for (size_t i = 0; i < result.size(); ++i) arr.Set(static_cast<uint32_t>(i), g_access.wrap(env, std::move(result[i])));
  return arr;
}

bool IsLoopback(const std::string &addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

const char *kNoNccl =
    "this torch addon was built without NCCL (it needs a CUDA libtorch, its c10d headers and nccl.h, e.g. from the "
    "nvidia-nccl-cu12 wheel; npm run build:torch prints why not); use backend gloo";

const char *kNoGloo =
    "this torch addon was built without Gloo (PyTorch's wheels ship no Gloo headers: install libgloo-dev and "
    "rebuild with npm run build:torch to train on CPU tensors); use backend nccl on CUDA devices";

#ifndef USE_C10D_GLOO
void CreateGloo(Group &, const Napi::Object &, const std::string &) {
  throw std::invalid_argument(std::string("backend gloo: ") + kNoGloo);
}
#else
void CreateGloo(Group &g, const Napi::Object &o, const std::string &addr) {
  auto opts = c10d::ProcessGroupGloo::Options::create(g.timeout);
  std::string iface = StringOption(o, "interface", "");
  std::string host = StringOption(o, "hostname", "");
  if (!iface.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
  else if (!host.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
  else if (IsLoopback(addr)) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  opts->threads = static_cast<int>(IntOption(o, "threads", 2));
  g.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g.store, g.rank, g.size, opts);
}
#endif

#ifdef CODIEMB_WITH_NCCL
// An NCCL communicator belongs to one GPU, so this rank's device is made current before the group
// exists (what torch.distributed asks of its users: torch.cuda.set_device(LOCAL_RANK) first); NCCL's
// communicator and streams are then created on it rather than on a device guessed from the rank.
// Blocking wait (TORCH_NCCL_BLOCKING_WAIT in 2.x, NCCL_BLOCKING_WAIT in 1.x; both are set unless the
// user set either) makes Work::wait block the calling worker thread until the collective finished and
// throw once it exceeds the timeout: the contract Gloo has (a failure is a JS exception naming the
// collective and the rank) instead of NCCL's watchdog tearing the process down.
void CreateNccl(Group &g) {
  int count = static_cast<int>(c10::cuda::device_count());
  if (g.device.index() >= count)
    throw std::invalid_argument("device " + g.device.str() + ": this machine has " + std::to_string(count) + " CUDA device(s) (LOCAL_RANK picks cuda:LOCAL_RANK)");
  if (!std::getenv("TORCH_NCCL_BLOCKING_WAIT") && !std::getenv("NCCL_BLOCKING_WAIT")) {
    setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
    setenv("NCCL_BLOCKING_WAIT", "1", 0);
  }
  c10::cuda::set_device(g.device.index());
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = g.timeout;
  g.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g.store, g.rank, g.size, opts);
}
#endif

// The device of this rank's tensors ("cpu", "cuda", "cuda:N"; a bare "cuda" means cuda:localRank).
c10::Device RankDevice(const Napi::Object &o) {
  std::string name = StringOption(o, "device", "cpu");
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error &) {
    throw std::invalid_argument("device \"" + name + "\" (expected cpu, cuda or cuda:N)");
  }
  if (!device.is_cpu() && !device.is_cuda()) throw std::invalid_argument("device \"" + name + "\" (expected cpu, cuda or cuda:N)");
  if (device.is_cuda() && !device.has_index()) device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(IntOption(o, "localRank", 0)));
  return device;
}

// backend: "nccl" | "gloo"; by default NCCL for CUDA tensors when this build has it, else Gloo.
std::string ChooseBackend(const Napi::Object &o, const c10::Device &device) {
  std::string backend = StringOption(o, "backend", "");
  if (backend.empty()) backend = device.is_cuda() && kHasNccl ? "nccl" : "gloo";
  if (backend != "gloo" && backend != "nccl") throw std::invalid_argument("backend \"" + backend + "\" (expected nccl or gloo)");
  if (backend == "nccl" && !kHasNccl) throw std::invalid_argument(std::string("backend nccl: ") + kNoNccl);
  if (backend == "gloo" && !kHasGloo) throw std::invalid_argument(std::string("backend gloo: ") + kNoGloo);
  if (backend == "nccl" && !device.is_cuda()) throw std::invalid_argument("backend nccl needs CUDA tensors (device is " + device.str() + "); use gloo on the CPU");
  return backend;
}

// distInit({rank, worldSize, masterAddr, masterPort, timeoutMs, backend?, device?, localRank?,
//           interface?, hostname?, threads?})
Napi::Value Init(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, "distInit", [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw std::invalid_argument("expected an options object");
    auto o = info[0].As<Napi::Object>();
    int rank = static_cast<int>(IntOption(o, "rank", -1));
    int size = static_cast<int>(IntOption(o, "worldSize", -1));
    if (size < 1 || rank < 0 || rank >= size) throw std::invalid_argument("rank " + std::to_string(rank) + " of world size " + std::to_string(size) + " (expected 0 <= rank < worldSize)");
    if (g_group) throw std::runtime_error("a process group already exists in this process (rank " + std::to_string(g_group->rank) + " of " + std::to_string(g_group->size) + ")");
    std::string addr = StringOption(o, "masterAddr", "127.0.0.1");
    int64_t port = IntOption(o, "masterPort", 29500);
    if (port < 1 || port > 65535) throw std::invalid_argument("masterPort " + std::to_string(port) + " (expected 1..65535)");
    auto group = std::make_shared<Group>();
    group->rank = rank;
    group->size = size;
    group->timeout = std::chrono::milliseconds(IntOption(o, "timeoutMs", 300000));
    group->device = RankDevice(o);
    group->backend = ChooseBackend(o, group->device);
    std::string stage = "rendezvous at " + addr + ":" + std::to_string(port);
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(port);
      so.isServer = rank == 0;
      so.numWorkers = static_cast<std::size_t>(size);
      so.waitWorkers = true;
      so.timeout = group->timeout;
      group->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
      stage = "connecting to the other ranks (" + group->backend + " process group on " + group->device.str() + ")";
#ifdef CODIEMB_WITH_NCCL
      if (group->backend == "nccl") CreateNccl(*group);
      else CreateGloo(*group, o, addr);
#else
      CreateGloo(*group, o, addr);
#endif
    } catch (const c10::Error &e) {
      throw std::runtime_error("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " + stage + " failed: " + e.what_without_backtrace());
    } catch (const std::exception &e) {
      throw std::runtime_error("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " + stage + " failed: " + e.what());
    }
    g_group = group;
    return env.Undefined();
  });
}

// distAllReduce(handles, op: 'sum' | 'avg', bucketBytes, async) -> handles (or a promise of them)
Napi::Value AllReduce(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, "distAllReduce", [&]() -> Napi::Value {
    auto g = Current("all_reduce");
    auto ts = TensorList(info[0], "all_reduce");
    std::string op = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "sum";
    if (op != "sum" && op != "avg") throw std::invalid_argument("op \"" + op + "\" (expected sum or avg)");
    int64_t cap = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : (25 << 20);
    bool async = info[3].ToBoolean().Value();
    return Dispatch(env, async, [g, ts, op, cap]() {
      DeviceScope scope(*g);
      auto buckets = MakeBuckets(ts, cap);
      uint64_t bytes = BucketBytes(buckets);
      std::string what = "all_reduce(" + op + ", " + std::to_string(ts.size()) + " tensors, " + Bytes(bytes) + ")";
      if (!g->broken.empty()) throw std::runtime_error(Where(*g, what) + ": the process group failed earlier: " + g->broken);
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (auto &b : buckets) {
        std::vector<at::Tensor> one{b.flat};
        c10d::AllreduceOptions ao;
        ao.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
        ao.timeout = g->timeout;
        works.push_back(g->pg->allreduce(one, ao));
      }
      WaitAll(*g, works, what);
      // Gloo has no AVG reduction (NCCL's needs NCCL >= 2.10): sum, then divide, on both backends
      // (exact for a power-of-two world size).
      if (op == "avg")
        for (auto &b : buckets) b.flat.div_(static_cast<double>(g->size));
      g->collectives += works.size();
      g->bytesReduced += bytes;
      return Unbucket(buckets, ts);
    });
  });
}

// distBroadcast(handles, root, bucketBytes, async) -> handles holding root's values
Napi::Value Broadcast(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, "distBroadcast", [&]() -> Napi::Value {
    auto g = Current("broadcast");
    auto ts = TensorList(info[0], "broadcast");
    int root = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    if (root < 0 || root >= g->size) throw std::invalid_argument("root rank " + std::to_string(root) + " (world size " + std::to_string(g->size) + ")");
    int64_t cap = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : (25 << 20);
    bool async = info[3].ToBoolean().Value();
    return Dispatch(env, async, [g, ts, root, cap]() {
      DeviceScope scope(*g);
      auto buckets = MakeBuckets(ts, cap);
      uint64_t bytes = BucketBytes(buckets);
      std::string what = "broadcast(from rank " + std::to_string(root) + ", " + std::to_string(ts.size()) + " tensors, " + Bytes(bytes) + ")";
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (auto &b : buckets) {
        std::vector<at::Tensor> one{b.flat};
        c10d::BroadcastOptions bo;
        bo.rootRank = root;
        bo.timeout = g->timeout;
        works.push_back(g->pg->broadcast(one, bo));
      }
      WaitAll(*g, works, what);
      g->collectives += works.size();
      g->bytesBroadcast += bytes;
      return Unbucket(buckets, ts);
    });
  });
}

// distAllGather(handle, async) -> one handle per rank, in rank order. The ranks' tensors may differ
// in their first dimension (a short last batch): sizes are gathered first, every rank pads to the
// largest, and the padding is cut off again (the list form of all-gather needs equal shapes).
Napi::Value AllGather(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, "distAllGather", [&]() -> Napi::Value {
    auto g = Current("all_gather");
    at::Tensor x = g_access.tensor(info[0], "all_gather");
    bool async = info[1].ToBoolean().Value();
    return Dispatch(env, async, [g, x]() {
      DeviceScope scope(*g);
      at::Tensor local = x.dim() == 0 ? x.reshape({1}) : x.contiguous();
      std::string what = "all_gather(" + std::to_string(local.numel() * local.element_size()) + " B per rank)";
      auto gatherList = [&](const at::Tensor &t) {
        std::vector<at::Tensor> in{t};
        std::vector<std::vector<at::Tensor>> out(1);
        for (int r = 0; r < g->size; ++r) out[0].push_back(at::empty_like(t));
        c10d::AllgatherOptions ao;
        ao.timeout = g->timeout;
        std::vector<c10::intrusive_ptr<c10d::Work>> works{g->pg->allgather(out, in, ao)};
        WaitAll(*g, works, what);
        g->collectives += 1;
        return out[0];
      };
      auto sizes = gatherList(at::full({1}, local.size(0), at::TensorOptions().dtype(at::kLong).device(local.device())));
      std::vector<int64_t> rows;
      int64_t most = 0;
      for (auto &s : sizes) {
        rows.push_back(s.item<int64_t>());
        most = std::max(most, rows.back());
      }
      at::Tensor padded = local;
      if (local.size(0) < most) {
        auto shape = local.sizes().vec();
        shape[0] = most - local.size(0);
        padded = at::cat({local, at::zeros(shape, local.options())});
      }
      auto parts = gatherList(padded);
      g->bytesGathered += static_cast<uint64_t>(padded.numel()) * padded.element_size() * g->size;
      std::vector<at::Tensor> out;
      for (int r = 0; r < g->size; ++r) {
        at::Tensor p = rows[r] == most ? parts[r] : parts[r].narrow(0, 0, rows[r]).clone();
        out.push_back(x.dim() == 0 ? p.reshape({}) : p);
      }
      return out;
    });
  });
}

// distBarrier(async) -> undefined (or a promise)
Napi::Value Barrier(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, "distBarrier", [&]() -> Napi::Value {
    auto g = Current("barrier");
    bool async = info[0].ToBoolean().Value();
    auto run = [g]() {
      DeviceScope scope(*g);
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      if (g->backend == "nccl") {
        // NCCL has no barrier of its own: c10d's all-reduces one element on a device it guesses from
        // the rank; this one all-reduces on this rank's device, then waits for the GPU to finish it.
        std::vector<at::Tensor> one{at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(g->device))};
        c10d::AllreduceOptions ao;
        ao.timeout = g->timeout;
        works.push_back(g->pg->allreduce(one, ao));
        WaitAll(*g, works, "barrier");
        one[0].cpu();
      } else {
        c10d::BarrierOptions bo;
        bo.timeout = g->timeout;
        works.push_back(g->pg->barrier(bo));
        WaitAll(*g, works, "barrier");
      }
      g->collectives += 1;
      return std::vector<at::Tensor>{};
    };
    Napi::Value r = Dispatch(env, async, run);
    return async ? r : env.Undefined();
  });
}

Napi::Value Destroy(const Napi::CallbackInfo &info) {
#if defined(CODIEMB_WITH_NCCL) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6))
  // libtorch 2.6's ProcessGroupNCCL wants an explicit shutdown (its destructor warns and does it
  // itself otherwise); a failed group's communicators are aborted instead (a shutdown would wait on
  // them). Earlier versions: the destructor alone (2.0-2.5 unchecked here).
  if (g_group && g_group->backend == "nccl") {
    auto *nccl = static_cast<c10d::ProcessGroupNCCL *>(g_group->pg.get());
    try {
      if (g_group->broken.empty()) nccl->shutdown();
      else nccl->abort();
    } catch (const std::exception &) {
      // Leaving anyway: the process is done with the group.
    }
  }
#endif
  // Dropping the references closes the connections and, on rank 0, the store's server.
  g_group.reset();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("available", true);
  auto backends = Napi::Array::New(env);
  if (kHasGloo) backends.Set(backends.Length(), "gloo");
  if (kHasNccl) backends.Set(backends.Length(), "nccl");
  out.Set("backends", backends);
  if (!kHasNccl) out.Set("ncclReason", kNoNccl);
  if (!kHasGloo) out.Set("glooReason", kNoGloo);
  out.Set("initialized", static_cast<bool>(g_group));
  if (g_group) {
    out.Set("rank", g_group->rank);
    out.Set("worldSize", g_group->size);
    out.Set("backend", g_group->backend);
    out.Set("device", g_group->device.str());
    out.Set("timeoutMs", static_cast<double>(g_group->timeout.count()));
    out.Set("collectives", static_cast<double>(g_group->collectives));
    out.Set("bytesReduced", static_cast<double>(g_group->bytesReduced));
    out.Set("bytesBroadcast", static_cast<double>(g_group->bytesBroadcast));
    out.Set("bytesGathered", static_cast<double>(g_group->bytesGathered));
    if (!g_group->broken.empty()) out.Set("failed", g_group->broken);
  }
  return out;
}

#else  // no c10d: the same exports, each saying why it cannot work.

const char *kNoC10d =
    "this torch addon was built without c10d/Gloo (distributed training needs them: apt-get install libgloo-dev, "
    "or a PyTorch/libtorch build with distributed support, then npm run build:torch)";

Napi::Value Unavailable(const Napi::CallbackInfo &info) {
  throw Napi::Error::New(info.Env(), kNoC10d);
}

Napi::Value Info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("available", false);
  out.Set("backends", Napi::Array::New(env, 0));
  out.Set("initialized", false);
  out.Set("reason", kNoC10d);
  return out;
}

Napi::Value Destroy(const Napi::CallbackInfo &info) { return info.Env().Undefined(); }

#define Init Unavailable
#define AllReduce Unavailable
#define Broadcast Unavailable
#define AllGather Unavailable
#define Barrier Unavailable

#endif

}  // namespace

void RegisterDistributed(Napi::Env env, Napi::Object exports, TensorAccess access) {
  g_access = access;
  exports.Set("distInfo", Napi::Function::New(env, Info, "distInfo"));
  exports.Set("distInit", Napi::Function::New(env, Init, "distInit"));
  exports.Set("distAllReduce", Napi::Function::New(env, AllReduce, "distAllReduce"));
  exports.Set("distBroadcast", Napi::Function::New(env, Broadcast, "distBroadcast"));
  exports.Set("distAllGather", Napi::Function::New(env, AllGather, "distAllGather"));
  exports.Set("distBarrier", Napi::Function::New(env, Barrier, "distBarrier"));
  exports.Set("distDestroy", Napi::Function::New(env, Destroy, "distDestroy"));
}

}  // namespace codiemb
