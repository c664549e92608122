// codiemb_torch: a Node-API addon that exposes libtorch (ATen) tensors and operators to JavaScript.
//
// Tensors cross into JS as externals that own a heap `at::Tensor`; the GC finalizer frees what JS
// forgets, and `release()` frees eagerly (the tfjs backend calls it from disposeData, so memory does
// not wait for the GC). Operators are reached through the boxed dispatcher: `op(name, overload)`
// returns a JS function bound to that operator's schema, which converts each JS argument according to
// the schema's declared type. Every call is wrapped so ATen errors surface as JS exceptions naming the
// operator and the shapes of its tensor arguments.
#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/api/include/torch/cuda.h>

#include <dlfcn.h>

#include "attention.h"
#include "device-memory.h"
#include "distributed.h"
#include "search.h"

#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

// Tags externals so a stray JS value (another addon's external) is never reinterpreted as a tensor.
const napi_type_tag kTensorTag = {0x6c0d1e3b5a7f4c21ULL, 0x9e2d4b8a17f3c605ULL};

struct TensorBox {
  at::Tensor t;
  // Bytes reported to V8 as external memory for this handle (so the GC runs when ATen memory grows;
  // otherwise a kernel's temporaries, freed only by finalizers, pile up behind a small JS heap).
  int64_t reported = 0;
  // Whether the handle became a tfjs data id's (the backend's output()/materialize): a kernel that
  // returns such a handle unchanged must hand back an alias instead. Kept here rather than in a JS
  // WeakSet, whose insertion cost about 0.5 us per kernel output (identity hash, ephemeron table).
  bool owned = false;
};

// Handles whose tensor is still held (not released, not finalized): a leak check for tests.
int64_t g_liveTensors = 0;
// The bytes the live handles reported to V8 (process.memoryUsage() does not show them).
int64_t g_reportedBytes = 0;

void Unreport(Napi::Env env, TensorBox *b) {
  if (b->reported) {
    g_reportedBytes -= b->reported;
    Napi::MemoryManagement::AdjustExternalMemory(env, -b->reported);
    b->reported = 0;
  }
}

// The bytes to report to V8 for a new handle: host memory only, and only once per storage. A CUDA
// tensor's bytes are the device's: V8 starts a garbage collection each time external memory grows
// about 64 MB past its last mark-compact, and counting activations on the GPU (tens of GB per
// training step) ran hundreds of collections per step for memory no collection frees (a training
// step's temporaries are released as their kernel returns; a finalizer only backs up a handle that
// JS dropped). A view (reshape, slice, transpose) shares its base's storage, already counted.
int64_t BytesToReport(const at::Tensor &t) {
  if (!t.defined() || !t.has_storage() || !t.device().is_cpu()) return 0;
  const c10::Storage &storage = t.storage();
  return storage.use_count() == 1 ? static_cast<int64_t>(storage.nbytes()) : 0;
}

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  const int64_t bytes = BytesToReport(t);
  auto *box = new TensorBox{std::move(t), bytes};
  if (box->t.defined()) ++g_liveTensors;
  if (bytes) {
    g_reportedBytes += bytes;
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  }
  auto ext = Napi::External<TensorBox>::New(env, box, [](Napi::Env e, TensorBox *b) {
    if (b->t.defined()) --g_liveTensors;
    Unreport(e, b);
    delete b;
  });
  ext.TypeTag(&kTensorTag);
  return ext;
}

TensorBox *Box(const Napi::Value &v, const char *what) {
  if (!v.IsExternal() || !v.As<Napi::Object>().CheckTypeTag(&kTensorTag)) {
    throw std::invalid_argument(std::string(what) + ": expected a torch tensor handle");
  }
  return v.As<Napi::External<TensorBox>>().Data();
}

const at::Tensor &Tensor(const Napi::Value &v, const char *what) {
  TensorBox *b = Box(v, what);
  if (!b->t.defined()) throw std::invalid_argument(std::string(what) + ": tensor handle was already released");
  return b->t;
}

std::string ShapeString(const at::Tensor &t) {
  std::ostringstream s;
  s << '[';
  for (int64_t i = 0; i < t.dim(); ++i) s << (i ? "," : "") << t.size(i);
  s << ']' << c10::toString(t.scalar_type());
  if (!t.device().is_cpu()) s << '@' << t.device();
  return s.str();
}

// dtype names shared with the JS side (tfjs names plus the torch-only ones that can appear).
at::ScalarType ParseDtype(const std::string &name) {
  if (name == "float32") return at::kFloat;
  if (name == "int32") return at::kInt;
  if (name == "bool") return at::kBool;
  if (name == "int64") return at::kLong;
  if (name == "float64") return at::kDouble;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "uint8") return at::kByte;
  throw std::invalid_argument("unknown dtype \"" + name + "\" (expected float32, int32, bool, int64, float64, float16, bfloat16, uint8)");
}

const char *DtypeName(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return "float32";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    case at::kLong: return "int64";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kByte: return "uint8";
    default: return c10::toString(st);
  }
}

std::vector<int64_t> IntList(const Napi::Value &v, const char *what) {
  if (!v.IsArray()) throw std::invalid_argument(std::string(what) + ": expected an array of integers");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

// Runs `body`, turning C++ exceptions into JS exceptions (with `context` describing the call).
template <typename F>
Napi::Value Guard(Napi::Env env, F &&body, const std::function<std::string()> &context) {
  try {
    return body();
  } catch (const Napi::Error &e) {
    throw Napi::Error::New(env, context() + ": " + e.Message());
  } catch (const c10::Error &e) {
    throw Napi::Error::New(env, context() + ": " + e.what_without_backtrace());
  } catch (const std::exception &e) {
    throw Napi::Error::New(env, context() + ": " + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Tensors from and to typed arrays

// fromArray(typedArray, shape: number[], dtype: string, device?: string) -> handle
Napi::Value FromArray(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsTypedArray()) throw std::invalid_argument("expected a typed array");
    auto ta = info[0].As<Napi::TypedArray>();
    auto shape = IntList(info[1], "shape");
    at::ScalarType st = ParseDtype(info[2].As<Napi::String>().Utf8Value());
    int64_t numel = 1;
    for (auto d : shape) numel *= d;
    size_t elem = c10::elementSize(st);
    if (ta.ByteLength() != static_cast<size_t>(numel) * elem) {
      std::ostringstream m;
      m << "typed array has " << ta.ByteLength() << " bytes but shape needs " << numel * elem;
      throw std::invalid_argument(m.str());
    }
    at::Device dev(at::kCPU);
    if (info.Length() > 3 && info[3].IsString()) dev = at::Device(info[3].As<Napi::String>().Utf8Value());
    // For a GPU the values go through page-locked host memory and an asynchronous copy: a copy from
    // pageable memory waits for every kernel queued before it, so each upload during a training
    // step (a scalar, a batch's token ids) drained the GPU's queue. The caching host allocator keeps
    // the page-locked block from reuse until the copy has run.
    const bool toDevice = !dev.is_cpu();
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st).pinned_memory(toDevice));
    if (numel > 0) {
      auto *src = static_cast<uint8_t *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      std::memcpy(t.data_ptr(), src, ta.ByteLength());
    }
    if (toDevice) t = t.to(at::TensorOptions().device(dev), /*non_blocking=*/true);
    return Wrap(env, std::move(t));
  }, [] { return std::string("fromArray"); });
}

// toArray(handle) -> Float32Array | Int32Array | Uint8Array | BigInt64Array | Float64Array
Napi::Value ToArray(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    at::Tensor t = Tensor(info[0], "toArray").to(at::kCPU).contiguous();
    at::ScalarType st = t.scalar_type();
    if (st == at::kHalf || st == at::kBFloat16) {
      t = t.to(at::kFloat);
      st = at::kFloat;
    }
    size_t n = static_cast<size_t>(t.numel());
    size_t bytes = n * t.element_size();
    auto buf = Napi::ArrayBuffer::New(env, bytes);
    if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
    switch (st) {
      case at::kFloat: return Napi::Float32Array::New(env, n, buf, 0);
      case at::kInt: return Napi::Int32Array::New(env, n, buf, 0);
      case at::kBool:
      case at::kByte: return Napi::Uint8Array::New(env, n, buf, 0);
      case at::kLong: return Napi::TypedArrayOf<int64_t>::New(env, n, buf, 0, napi_bigint64_array);
      case at::kDouble: return Napi::Float64Array::New(env, n, buf, 0);
      default: throw std::invalid_argument(std::string("cannot read dtype ") + c10::toString(st));
    }
  }, [] { return std::string("toArray"); });
}

// scalar(value: number, dtype, device?) -> 0-dim handle
Napi::Value ScalarTensor(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    double v = info[0].As<Napi::Number>().DoubleValue();
    at::ScalarType st = ParseDtype(info[1].As<Napi::String>().Utf8Value());
    auto opts = at::TensorOptions().dtype(st);
    if (info.Length() > 2 && info[2].IsString()) opts = opts.device(at::Device(info[2].As<Napi::String>().Utf8Value()));
    return Wrap(env, at::scalar_tensor(v, opts));
  }, [] { return std::string("scalar"); });
}

Napi::Value Release(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    TensorBox *b = Box(info[0], "release");
    if (b->t.defined()) --g_liveTensors;
    b->t.reset();
    Unreport(env, b);
    return env.Undefined();
  }, [] { return std::string("release"); });
}

Napi::Value Shape(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const at::Tensor &t = Tensor(info[0], "shape");
    auto out = Napi::Array::New(env, t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
    return out;
  }, [] { return std::string("shape"); });
}

Napi::Value Dtype(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    return Napi::String::New(env, DtypeName(Tensor(info[0], "dtype").scalar_type()));
  }, [] { return std::string("dtype"); });
}

Napi::Value DeviceOf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    return Napi::String::New(env, Tensor(info[0], "device").device().str());
  }, [] { return std::string("device"); });
}

// conform(handle, dtype) -> shape: casts the tensor inside the handle to `dtype` when it differs
// (ATen widens int32 sums and index results to int64; tfjs wants int32) and returns its shape, so a
// kernel's output costs one crossing.
Napi::Value Conform(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    TensorBox *b = Box(info[0], "conform");
    at::ScalarType want = ParseDtype(info[1].As<Napi::String>().Utf8Value());
    if (b->t.scalar_type() != want) b->t = b->t.to(want);
    const at::Tensor &t = b->t;
    auto out = Napi::Array::New(env, t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
    return out;
  }, [] { return std::string("conform"); });
}

// dtype codes of conformTo, in this order on the JS side too (src/tensor/torch/backend.ts DTYPE_CODES).
const at::ScalarType kDtypeCodes[] = {at::kFloat, at::kInt, at::kBool, at::kLong, at::kDouble, at::kHalf, at::kBFloat16, at::kByte};

// conformTo(handle, dtypeCode, dims: Float64Array) -> rank: conform without building a JS array, for
// the backend's output() (once per kernel output, so its cost is per-kernel host time): the dtype is a
// code (no string to decode) and the shape goes into the caller's reusable `dims`. Marks the handle
// owned (see own()).
Napi::Value ConformTo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    TensorBox *b = Box(info[0], "conformTo");
    const int64_t code = info[1].As<Napi::Number>().Int64Value();
    if (code < 0 || code >= static_cast<int64_t>(sizeof kDtypeCodes / sizeof kDtypeCodes[0])) throw std::invalid_argument("unknown dtype code");
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw std::invalid_argument("dims: expected a Float64Array");
    auto dims = info[2].As<Napi::Float64Array>();
    if (!b->t.defined()) throw std::invalid_argument("tensor handle was already released");
    if (b->t.scalar_type() != kDtypeCodes[code]) b->t = b->t.to(kDtypeCodes[code]);
    b->owned = true;
    const at::Tensor &t = b->t;
    const int64_t rank = t.dim();
    if (rank > static_cast<int64_t>(dims.ElementLength())) throw std::invalid_argument("dims: too short for the tensor's rank");
    double *out = dims.Data();
    for (int64_t i = 0; i < rank; ++i) out[i] = static_cast<double>(t.size(i));
    return Napi::Number::New(env, static_cast<double>(rank));
  }, [] { return std::string("conformTo"); });
}

// own(handle): marks the handle as a tfjs data id's; owned(handle) -> whether it is.
Napi::Value Own(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    Box(info[0], "own")->owned = true;
    return env.Undefined();
  }, [] { return std::string("own"); });
}

Napi::Value Owned(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    return Napi::Boolean::New(env, Box(info[0], "owned")->owned);
  }, [] { return std::string("owned"); });
}

// ---------------------------------------------------------------------------------------------
// Generic operator calls through the boxed dispatcher

struct BoundOp {
  c10::OperatorHandle handle;
  std::string label;
};

c10::IValue ToIValue(const Napi::Value &v, const c10::TypePtr &type, const c10::Argument &arg);

c10::IValue ScalarIValue(const Napi::Value &v) {
  if (v.IsBoolean()) return c10::IValue(at::Scalar(v.As<Napi::Boolean>().Value()));
  double d = v.As<Napi::Number>().DoubleValue();
  // Integral JS numbers stay integral so integer tensors are not promoted to float.
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) return c10::IValue(at::Scalar(static_cast<int64_t>(d)));
  return c10::IValue(at::Scalar(d));
}

c10::IValue ToIValue(const Napi::Value &v, const c10::TypePtr &type, const c10::Argument &arg) {
  using K = c10::TypeKind;
  switch (type->kind()) {
    case K::OptionalType: {
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return ToIValue(v, type->castRaw<c10::OptionalType>()->getElementType(), arg);
    }
    case K::TensorType:
      return c10::IValue(Tensor(v, arg.name().c_str()));
    case K::IntType:
    case K::SymIntType:
      // Schemas type ScalarType arguments as int; accept dtype names for them.
      if (v.IsString()) return c10::IValue(static_cast<int64_t>(ParseDtype(v.As<Napi::String>().Utf8Value())));
      if (v.IsBoolean()) return c10::IValue(static_cast<int64_t>(v.As<Napi::Boolean>().Value()));
      return c10::IValue(v.As<Napi::Number>().Int64Value());
    case K::FloatType:
      return c10::IValue(v.As<Napi::Number>().DoubleValue());
    case K::BoolType:
      return c10::IValue(v.ToBoolean().Value());
    case K::NumberType:
      return ScalarIValue(v);
    case K::StringType:
      return c10::IValue(v.As<Napi::String>().Utf8Value());
    case K::ScalarTypeType:
      if (v.IsString()) return c10::IValue(static_cast<int64_t>(ParseDtype(v.As<Napi::String>().Utf8Value())));
      return c10::IValue(v.As<Napi::Number>().Int64Value());
    case K::DeviceObjType:
      return c10::IValue(at::Device(v.As<Napi::String>().Utf8Value()));
    case K::ListType: {
      auto elem = type->castRaw<c10::ListType>()->getElementType();
      if (!v.IsArray()) throw std::invalid_argument(std::string("argument ") + arg.name() + ": expected an array");
      auto a = v.As<Napi::Array>();
      uint32_t n = a.Length();
      switch (elem->kind()) {
        case K::IntType:
        case K::SymIntType: {
          c10::List<int64_t> l;
          l.reserve(n);
          for (uint32_t i = 0; i < n; ++i) l.push_back(a.Get(i).As<Napi::Number>().Int64Value());
          return c10::IValue(l);
        }
        case K::FloatType: {
          c10::List<double> l;
          for (uint32_t i = 0; i < n; ++i) l.push_back(a.Get(i).As<Napi::Number>().DoubleValue());
          return c10::IValue(l);
        }
        case K::BoolType: {
          c10::List<bool> l;
          for (uint32_t i = 0; i < n; ++i) l.push_back(a.Get(i).ToBoolean().Value());
          return c10::IValue(l);
        }
        case K::TensorType: {
          c10::List<at::Tensor> l;
          l.reserve(n);
          for (uint32_t i = 0; i < n; ++i) l.push_back(Tensor(a.Get(i), arg.name().c_str()));
          return c10::IValue(l);
        }
        case K::OptionalType: {
          c10::List<c10::optional<at::Tensor>> l;
          for (uint32_t i = 0; i < n; ++i) {
            Napi::Value e = a.Get(i);
            if (e.IsNull() || e.IsUndefined()) l.push_back(c10::nullopt);
            else l.push_back(Tensor(e, arg.name().c_str()));
          }
          return c10::IValue(l);
        }
        default:
          break;
      }
      throw std::invalid_argument(std::string("argument ") + arg.name() + ": unsupported list type " + type->str());
    }
    default:
      break;
  }
  throw std::invalid_argument(std::string("argument ") + arg.name() + ": unsupported type " + type->str());
}

Napi::Value FromIValue(Napi::Env env, const c10::IValue &iv) {
  if (iv.isTensor()) return Wrap(env, iv.toTensor());
  if (iv.isNone()) return env.Null();
  if (iv.isInt()) return Napi::Number::New(env, static_cast<double>(iv.toInt()));
  if (iv.isDouble()) return Napi::Number::New(env, iv.toDouble());
  if (iv.isBool()) return Napi::Boolean::New(env, iv.toBool());
  if (iv.isTensorList()) {
    auto l = iv.toTensorList();
    auto out = Napi::Array::New(env, l.size());
    for (size_t i = 0; i < l.size(); ++i) out.Set(static_cast<uint32_t>(i), Wrap(env, l.get(i)));
    return out;
  }
  if (iv.isTuple()) {
    const auto &el = iv.toTupleRef().elements();
    auto out = Napi::Array::New(env, el.size());
    for (size_t i = 0; i < el.size(); ++i) out.Set(static_cast<uint32_t>(i), FromIValue(env, el[i]));
    return out;
  }
  if (iv.isIntList()) {
    auto l = iv.toIntVector();
    auto out = Napi::Array::New(env, l.size());
    for (size_t i = 0; i < l.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(l[i])));
    return out;
  }
  throw std::invalid_argument(std::string("unsupported return type ") + iv.tagKind());
}

std::string DescribeCall(const BoundOp &op, const Napi::CallbackInfo &info) {
  std::ostringstream s;
  s << op.label << '(';
  for (size_t i = 0; i < info.Length(); ++i) {
    if (i) s << ", ";
    Napi::Value v = info[i];
    if (v.IsExternal() && v.As<Napi::Object>().CheckTypeTag(&kTensorTag)) {
      auto *b = v.As<Napi::External<TensorBox>>().Data();
      s << (b->t.defined() ? ShapeString(b->t) : std::string("<released>"));
    } else if (v.IsArray()) {
      s << "[…" << v.As<Napi::Array>().Length() << "]";
    } else if (v.IsNumber()) {
      s << v.As<Napi::Number>().DoubleValue();
    } else if (v.IsString()) {
      s << '"' << v.As<Napi::String>().Utf8Value() << '"';
    } else if (v.IsBoolean()) {
      s << (v.As<Napi::Boolean>().Value() ? "true" : "false");
    } else if (v.IsNull() || v.IsUndefined()) {
      s << "None";
    } else {
      s << '?';
    }
  }
  s << ')';
  return s.str();
}

Napi::Value CallBound(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto *op = static_cast<BoundOp *>(info.Data());
  return Guard(env, [&]() -> Napi::Value {
    const auto &schema = op->handle.schema();
    const auto &args = schema.arguments();
    if (info.Length() > args.size()) {
      std::ostringstream m;
      m << "takes at most " << args.size() << " arguments (" << schema << "), got " << info.Length();
      throw std::invalid_argument(m.str());
    }
    torch::jit::Stack stack;
    stack.reserve(args.size());
    for (size_t i = 0; i < args.size(); ++i) {
      const auto &arg = args[i];
      Napi::Value v = i < info.Length() ? info[i] : env.Undefined();
      if (v.IsUndefined()) {
        if (arg.default_value()) {
          stack.push_back(*arg.default_value());
          continue;
        }
        if (arg.type()->kind() == c10::TypeKind::OptionalType) {
          stack.emplace_back();
          continue;
        }
        throw std::invalid_argument(std::string("missing argument ") + arg.name());
      }
      stack.push_back(ToIValue(v, arg.type(), arg));
    }
    op->handle.callBoxed(&stack);
    if (stack.size() == 1) return FromIValue(env, stack[0]);
    auto out = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); ++i) out.Set(static_cast<uint32_t>(i), FromIValue(env, stack[i]));
    return out;
  }, [&] { return DescribeCall(*op, info); });
}

// op(name: "aten::matmul", overload = "") -> function calling that operator
Napi::Value Op(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  return Guard(env, [&]() -> Napi::Value {
    auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), overload.c_str());
    auto *bound = new BoundOp{handle, overload.empty() ? name : name + "." + overload};
    auto fn = Napi::Function::New(env, CallBound, bound->label, bound);
    // Bound functions live as long as the JS function; free the binding with it.
    fn.AddFinalizer([](Napi::Env, BoundOp *b) { delete b; }, bound);
    return fn;
  }, [&] { return "op(" + name + (overload.empty() ? "" : "." + overload) + ")"; });
}

Napi::Value Schema(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  return Guard(env, [&]() -> Napi::Value {
    auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), overload.c_str());
    std::ostringstream s;
    s << handle.schema();
    return Napi::String::New(env, s.str());
  }, [&] { return "schema(" + name + ")"; });
}

// ---------------------------------------------------------------------------------------------
// Fused AdamW over many parameters at once (decoupled weight decay, bias-corrected moments).
// adamw(params[], grads[], m[], v[], lr, beta1, beta2, eps, weightDecay, step, inPlace[]?) -> [p'[], m'[], v'[]]
// Returns fresh tensors (tfjs tensors are immutable and may share storage), except for parameter i
// when inPlace[i] (the caller's word that no other tfjs tensor holds p, m or v) and ATen agrees that
// nothing else holds their storage: those are updated in place, as PyTorch's AdamW does, and come back
// as null. In place, a step allocates no new parameter/moment memory: the out-of-place form allocated
// all three copies of every parameter before freeing the old ones, and churning long-lived memory
// fragmented the heap (bert-base bench: +1 GB peak resident memory from the second step on).
// True when t is float32 and no other tensor (a view, an alias handle) shares its storage, so
// writing it in place changes nothing anyone else can see.
bool SoleOwner(const at::Tensor &t) {
  return t.defined() && t.scalar_type() == at::kFloat && t.use_count() == 1 && t.storage().use_count() == 1 && t.is_non_overlapping_and_dense();
}

Napi::Value AdamW(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto params = info[0].As<Napi::Array>();
    auto grads = info[1].As<Napi::Array>();
    auto ms = info[2].As<Napi::Array>();
    auto vs = info[3].As<Napi::Array>();
    double lr = info[4].As<Napi::Number>().DoubleValue();
    double b1 = info[5].As<Napi::Number>().DoubleValue();
    double b2 = info[6].As<Napi::Number>().DoubleValue();
    double eps = info[7].As<Napi::Number>().DoubleValue();
    double wd = info[8].As<Napi::Number>().DoubleValue();
    double step = info[9].As<Napi::Number>().DoubleValue();
    uint32_t n = params.Length();
    if (grads.Length() != n || ms.Length() != n || vs.Length() != n) throw std::invalid_argument("params, grads, m and v must have the same length");
    double bc1 = 1.0 - std::pow(b1, step);
    double bc2 = 1.0 - std::pow(b2, step);
    double stepSize = lr / bc1;
    double bc2Sqrt = std::sqrt(bc2);
    auto outP = Napi::Array::New(env, n), outM = Napi::Array::New(env, n), outV = Napi::Array::New(env, n);
    at::NoGradGuard noGrad;
    Napi::Array inPlace = info.Length() > 10 && info[10].IsArray() ? info[10].As<Napi::Array>() : Napi::Array::New(env, 0);
    for (uint32_t i = 0; i < n; ++i) {
      const at::Tensor &p = Tensor(params.Get(i), "adamw param");
      const at::Tensor &g = Tensor(grads.Get(i), "adamw grad");
      if (i < inPlace.Length() && inPlace.Get(i).ToBoolean().Value()) {
        at::Tensor &pm = Box(params.Get(i), "adamw param")->t;
        at::Tensor &mm = Box(ms.Get(i), "adamw m")->t;
        at::Tensor &vm = Box(vs.Get(i), "adamw v")->t;
        if (SoleOwner(pm) && SoleOwner(mm) && SoleOwner(vm) && pm.storage().data() != mm.storage().data() &&
            pm.storage().data() != vm.storage().data() && mm.storage().data() != vm.storage().data() &&
            pm.storage().data() != g.storage().data()) {
          // The same arithmetic as below, in the same order, so values are bit-identical.
          mm.mul_(b1).add_(g, 1.0 - b1);
          vm.mul_(b2).addcmul_(g, g, 1.0 - b2);
          at::Tensor denom = vm.sqrt().div_(bc2Sqrt).add_(eps);
          if (wd != 0.0) pm.mul_(1.0 - lr * wd);
          pm.addcdiv_(mm, denom, -stepSize);
          outP.Set(i, env.Null());
          outM.Set(i, env.Null());
          outV.Set(i, env.Null());
          continue;
        }
      }
      at::Tensor m = Tensor(ms.Get(i), "adamw m").mul(b1).add_(g, 1.0 - b1);
      at::Tensor v = Tensor(vs.Get(i), "adamw v").mul(b2).addcmul_(g, g, 1.0 - b2);
      at::Tensor denom = v.sqrt().div_(bc2Sqrt).add_(eps);
      at::Tensor np = wd != 0.0 ? p.mul(1.0 - lr * wd) : p.clone();
      np.addcdiv_(m, denom, -stepSize);
      outP.Set(i, Wrap(env, np));
      outM.Set(i, Wrap(env, m));
      outV.Set(i, Wrap(env, v));
    }
    auto out = Napi::Array::New(env, 3);
    out.Set(0u, outP);
    out.Set(1u, outM);
    out.Set(2u, outV);
    return out;
  }, [] { return std::string("adamw"); });
}

// ---------------------------------------------------------------------------------------------
// Memory-efficient attention (attention.cc)

// {scale, dropout, seed, blockRows, bf16, kernel} from a JS object.
codiemb::AttentionConfig AttentionOptions(const Napi::Value &v) {
  if (!v.IsObject()) throw std::invalid_argument("attention: expected an options object");
  auto o = v.As<Napi::Object>();
  codiemb::AttentionConfig cfg;
  auto number = [&](const char *key, double fallback) {
    Napi::Value x = o.Get(key);
    return x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : fallback;
  };
  cfg.scale = number("scale", 1.0);
  cfg.dropout = number("dropout", 0.0);
  if (!(cfg.dropout >= 0.0 && cfg.dropout < 1.0)) throw std::invalid_argument("attention: dropout must be in [0, 1)");
  cfg.seed = static_cast<uint64_t>(number("seed", 0.0));
  cfg.blockRows = static_cast<int64_t>(number("blockRows", 64.0));
  cfg.bf16 = o.Get("bf16").ToBoolean().Value();
  Napi::Value kernel = o.Get("kernel");
  if (kernel.IsString()) cfg.kernel = kernel.As<Napi::String>().Utf8Value();
  return cfg;
}

at::Tensor OptionalTensor(const Napi::Value &v, const char *what) {
  return v.IsNull() || v.IsUndefined() ? at::Tensor() : Tensor(v, what);
}

codiemb::AttentionSaved SavedState(const Napi::Value &v) {
  if (!v.IsArray()) throw std::invalid_argument("attention: expected the saved state (an array of handles)");
  auto a = v.As<Napi::Array>();
  codiemb::AttentionSaved saved;
  for (uint32_t i = 0; i < a.Length(); ++i) saved.state.push_back(Tensor(a.Get(i), "attention saved state"));
  return saved;
}

Napi::Array HandleArray(Napi::Env env, const std::vector<at::Tensor> &ts) {
  auto out = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) out.Set(static_cast<uint32_t>(i), Wrap(env, ts[i]));
  return out;
}

// attention(q, k, v, bias | null, options, save) -> [out, saved handles (empty unless save), path]
Napi::Value Attention(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const codiemb::AttentionConfig cfg = AttentionOptions(info[4]);
    const bool save = info[5].ToBoolean().Value();
    codiemb::AttentionSaved saved;
    at::NoGradGuard noGrad;
    at::Tensor out = codiemb::AttentionForward(Tensor(info[0], "q"), Tensor(info[1], "k"), Tensor(info[2], "v"), OptionalTensor(info[3], "bias"),
                                               cfg, &saved);
    auto result = Napi::Array::New(env, 3);
    result.Set(0u, Wrap(env, out));
    result.Set(1u, HandleArray(env, save ? saved.state : std::vector<at::Tensor>{}));
    result.Set(2u, Napi::String::New(env, codiemb::AttentionPathName(saved)));
    return result;
  }, [&] { return std::string("attention"); });
}

// attentionBackward(dy, q, k, v, bias | null, out, saved, options, wantQkv, wantBias) -> [dq, dk, dv][, dbias]
Napi::Value AttentionBackward(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    at::NoGradGuard noGrad;
    auto grads = codiemb::AttentionBackward(Tensor(info[0], "dy"), Tensor(info[1], "q"), Tensor(info[2], "k"), Tensor(info[3], "v"),
                                            OptionalTensor(info[4], "bias"), Tensor(info[5], "out"), SavedState(info[6]), AttentionOptions(info[7]),
                                            info[8].ToBoolean().Value(), info[9].ToBoolean().Value());
    return HandleArray(env, grads);
  }, [&] { return std::string("attentionBackward"); });
}

// dropout(x, rate, seed | null) -> [y, mask]: inverted dropout of a float32 CPU tensor with a
// counter-based mask (attention.cc); without a seed, one is drawn from the default CPU generator.
Napi::Value Dropout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    at::NoGradGuard noGrad;
    const double rate = info[1].As<Napi::Number>().DoubleValue();
    uint64_t seed;
    if (info[2].IsNumber()) seed = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
    else seed = static_cast<uint64_t>(at::empty({}, at::kLong).random_().item<int64_t>());
    return HandleArray(env, codiemb::Dropout(Tensor(info[0], "x"), rate, seed));
  }, [&] { return std::string("dropout"); });
}

// ---------------------------------------------------------------------------------------------
// Runtime facts and settings

// The GPU's marketing name through the CUDA driver API, loaded at run time so the addon needs no CUDA
// headers to build (libtorch_cuda has already loaded libcuda when CUDA is available).
std::string CudaDeviceName(int index) {
  void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) lib = dlopen("libcuda.so.1", RTLD_LAZY);
  if (!lib) return "unknown (libcuda.so.1 not loadable)";
  using InitFn = int (*)(unsigned);
  using GetFn = int (*)(int *, int);
  using NameFn = int (*)(char *, int, int);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<GetFn>(dlsym(lib, "cuDeviceGet"));
  auto name = reinterpret_cast<NameFn>(dlsym(lib, "cuDeviceGetName"));
  if (!init || !get || !name) return "unknown (driver API missing)";
  int dev = 0;
  char buf[256] = {0};
  if (init(0) != 0 || get(&dev, index) != 0 || name(buf, sizeof buf, dev) != 0) return "unknown (driver call failed)";
  return buf;
}

// The GPU's total memory in bytes through the driver API (cuDeviceTotalMem_v2), or -1 when it cannot
// be read; loaded at run time like CudaDeviceName, so no CUDA headers are needed.
double CudaDeviceTotalMemory(int index) {
  void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) lib = dlopen("libcuda.so.1", RTLD_LAZY);
  if (!lib) return -1;
  using InitFn = int (*)(unsigned);
  using GetFn = int (*)(int *, int);
  using TotalFn = int (*)(size_t *, int);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<GetFn>(dlsym(lib, "cuDeviceGet"));
  auto total = reinterpret_cast<TotalFn>(dlsym(lib, "cuDeviceTotalMem_v2"));
  if (!init || !get || !total) return -1;
  int dev = 0;
  size_t bytes = 0;
  if (init(0) != 0 || get(&dev, index) != 0 || total(&bytes, dev) != 0) return -1;
  return static_cast<double>(bytes);
}

Napi::Value Info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto out = Napi::Object::New(env);
    out.Set("version", TORCH_VERSION);
    // torch::cuda's functions keep their names across libtorch versions (the hooks interface does not).
    bool cuda = torch::cuda::is_available();
    out.Set("cudaAvailable", cuda);
    int count = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
    out.Set("cudaDeviceCount", count);
    auto names = Napi::Array::New(env);
#ifdef CODIEMB_WITH_CUDA
    out.Set("builtWithCuda", true);
#else
    out.Set("builtWithCuda", false);
#endif
    auto memory = Napi::Array::New(env);
    for (int i = 0; i < count; ++i) {
      names.Set(static_cast<uint32_t>(i), CudaDeviceName(i));
      memory.Set(static_cast<uint32_t>(i), CudaDeviceTotalMemory(i));
    }
    out.Set("cudaDeviceNames", names);
    out.Set("cudaDeviceTotalMemory", memory);
    out.Set("numThreads", at::get_num_threads());
    out.Set("parallelInfo", at::get_parallel_info());
    out.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
    auto kernels = codiemb::AttentionFusedKernels();
    auto fused = Napi::Array::New(env, kernels.size());
    for (size_t i = 0; i < kernels.size(); ++i) fused.Set(static_cast<uint32_t>(i), kernels[i]);
    out.Set("attentionKernels", fused);
    return out;
  }, [] { return std::string("info"); });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
    return env.Undefined();
  }, [] { return std::string("setNumThreads"); });
}

Napi::Value ManualSeed(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    at::manual_seed(seed);
    if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
    return env.Undefined();
  }, [] { return std::string("manualSeed"); });
}

// setAllowTF32(bool): TF32 for CUDA matmuls and cuDNN (a no-op on CPU).
Napi::Value SetAllowTF32(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    bool on = info[0].ToBoolean().Value();
    at::globalContext().setAllowTF32CuBLAS(on);
    at::globalContext().setAllowTF32CuDNN(on);
    return env.Undefined();
  }, [] { return std::string("setAllowTF32"); });
}

// synchronize(device): waits for queued CUDA work (timings, benchmarks).
Napi::Value Synchronize(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (torch::cuda::is_available()) {
      int64_t index = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : -1;
      torch::cuda::synchronize(index);
    }
    return env.Undefined();
  }, [] { return std::string("synchronize"); });
}

Napi::Value LiveTensors(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_liveTensors));
}

Napi::Value ReportedBytes(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_reportedBytes));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors, "liveTensors"));
  exports.Set("reportedBytes", Napi::Function::New(env, ReportedBytes, "reportedBytes"));
  exports.Set("fromArray", Napi::Function::New(env, FromArray, "fromArray"));
  exports.Set("toArray", Napi::Function::New(env, ToArray, "toArray"));
  exports.Set("scalar", Napi::Function::New(env, ScalarTensor, "scalar"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("shape", Napi::Function::New(env, Shape, "shape"));
  exports.Set("dtype", Napi::Function::New(env, Dtype, "dtype"));
  exports.Set("device", Napi::Function::New(env, DeviceOf, "device"));
  exports.Set("conform", Napi::Function::New(env, Conform, "conform"));
  exports.Set("conformTo", Napi::Function::New(env, ConformTo, "conformTo"));
  exports.Set("own", Napi::Function::New(env, Own, "own"));
  exports.Set("owned", Napi::Function::New(env, Owned, "owned"));
  exports.Set("op", Napi::Function::New(env, Op, "op"));
  exports.Set("schema", Napi::Function::New(env, Schema, "schema"));
  exports.Set("adamw", Napi::Function::New(env, AdamW, "adamw"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("dropout", Napi::Function::New(env, Dropout, "dropout"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("setAllowTF32", Napi::Function::New(env, SetAllowTF32, "setAllowTF32"));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  codiemb::RegisterDistributed(env, exports, {&Wrap, &Tensor});
  codiemb::RegisterSearch(env, exports, {&Wrap, &Tensor});
  codiemb::RegisterDeviceMemory(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(codiemb_torch, Init)
