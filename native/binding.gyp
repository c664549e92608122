# Built by scripts/build-torch.mjs, which finds libtorch and passes the variables below
# (run `npm run build:torch`; plain `node-gyp rebuild` uses the system defaults).
{
  "variables": {
    "torch_include%": "/usr/include",
    "torch_lib%": "/usr/lib/x86_64-linux-gnu",
    "cxx11_abi%": "1",
    "cxx_std%": "c++17",
    "with_cuda%": "0",
    "with_c10d%": "0",
    "with_gloo%": "0",
    "cuda_headers%": "0",
    "gloo_lib%": "",
    "with_nccl%": "0",
    "cuda_includes%": ""
  },
  "targets": [
    {
      "target_name": "codiemb_torch",
      "sources": ["src/addon.cc", "src/attention.cc", "src/device-memory.cc", "src/distributed.cc", "src/search.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "include_dirs": ["<(torch_include)", "<(torch_include)/torch/csrc/api/include"],
      "defines": ["_GLIBCXX_USE_CXX11_ABI=<(cxx11_abi)", "NAPI_VERSION=8"],
      "cflags_cc!": ["-fno-rtti", "-std=gnu++14", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=<(cxx_std)", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": ["-L<(torch_lib)", "-Wl,-rpath,<(torch_lib)", "-lc10", "-ltorch_cpu", "-ltorch", "-ldl"],
      "conditions": [
        # c10d (TCPStore, ProcessGroupGloo) for multi-process training; USE_C10D_GLOO unlocks the
        # Gloo group in libtorch's headers. gloo_lib: Debian ships Gloo as its own library (-lgloo);
        # PyTorch's wheels link it into libtorch_cpu (empty).
        ["'<(with_c10d)'=='1'", {
          "defines": ["CODIEMB_WITH_C10D=1"]
        }],
        ["'<(with_c10d)'=='1' and '<(with_gloo)'=='1'", {
          "defines": ["USE_C10D_GLOO=1"]
        }],
        ["'<(with_c10d)'=='1' and '<(with_gloo)'=='1' and '<(gloo_lib)'!=''", {
          "libraries": ["-L<(gloo_lib)", "-Wl,-rpath,<(gloo_lib)", "-lgloo"]
        }],
        # NCCL process groups (CUDA tensors): ProcessGroupNCCL lives in libtorch_cuda; its headers need
        # USE_C10D_NCCL and the CUDA and NCCL headers (cuda_includes: space-separated folders, e.g. the
        # toolkit's include/ and the nvidia-*-cu12 wheels' include/ folders; found by build-torch.mjs).
        ["'<(with_c10d)'=='1' and '<(with_cuda)'=='1' and '<(with_nccl)'=='1'", {
          "defines": ["CODIEMB_WITH_NCCL=1", "USE_C10D_NCCL=1"],
          "include_dirs": ["<@(cuda_includes)"]
        }],
        # The CUDA caching allocator's statistics (src/device-memory.cc) need the CUDA runtime's headers.
        ["'<(with_cuda)'=='1' and '<(cuda_headers)'=='1'", {
          "include_dirs": ["<@(cuda_includes)"]
        }],
        ["'<(with_cuda)'=='1' and '<(cuda_headers)'!='1'", {
          "defines": ["CODIEMB_NO_CUDA_MEMORY_STATS=1"]
        }],
        ["'<(with_cuda)'=='1'", {
          "defines": ["CODIEMB_WITH_CUDA=1"],
          # libtorch_cuda registers its kernels from static initialisers; without --no-as-needed the
          # linker drops it (nothing references it by symbol) and CUDA tensors have no kernels.
          "libraries": ["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed"]
        }]
      ]
    }
  ]
}
