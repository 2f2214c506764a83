{
  "variables": { "opt": ["-O3", "-fPIC", "-std=c++17", "-fno-math-errno"] },
  "targets": [
    {
      "target_name": "kernels_generic", "type": "static_library",
      "sources": ["src/gemm_generic.cc"], "cflags_cc": ["<@(opt)"]
    },
    {
      "target_name": "elementwise_generic", "type": "static_library",
      "sources": ["src/elementwise_generic.cc"], "cflags_cc": ["<@(opt)", "-ffp-contract=off"]
    },
    {
      "target_name": "shortened_native",
      "sources": ["src/addon.cc"],
      "cflags_cc": ["<@(opt)"],
      "dependencies": ["kernels_generic", "elementwise_generic"],
      "conditions": [
        ["target_arch=='x64'", {
          "dependencies": ["kernels_avx2", "kernels_avx512", "kernels_amx", "elementwise_avx2"],
          "defines": ["HAVE_X86_KERNELS"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "kernels_avx2", "type": "static_library",
          "sources": ["src/gemm_avx2.cc"], "cflags_cc": ["<@(opt)", "-mavx2", "-mfma", "-mf16c"]
        },
        {
          "target_name": "elementwise_avx2", "type": "static_library",
          "sources": ["src/elementwise_avx2.cc"], "cflags_cc": ["<@(opt)", "-mavx2", "-ffp-contract=off"]
        },
        {
          "target_name": "kernels_amx", "type": "static_library",
          "sources": ["src/gemm_amx.cc"], "cflags_cc": ["<@(opt)", "-mavx512f", "-mavx512bf16", "-mamx-tile", "-mamx-bf16"]
        },
        {
          "target_name": "kernels_avx512", "type": "static_library",
          "sources": ["src/gemm_avx512.cc"], "cflags_cc": ["<@(opt)", "-Wno-maybe-uninitialized", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mf16c"]
        }
      ]
    }]
  ]
}
