// The XLA FFI handler of JAX's float32 ``accurate`` sigmoid on CPU: the kernel of ziv_kernel.c, called by
// XLA inside jit on the input and the (aliased, donated) output buffer. Built by native.py with the C++
// compiler against jax.ffi.include_dir().
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <omp.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

#define restrict __restrict
extern "C" {
#include "ziv_kernel.c"
}
#undef restrict

namespace ffi = xla::ffi;

// out is the result aliased to the donated argument `previous`, which is never read.
static ffi::Error ZivF32(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> previous, ffi::ResultBuffer<ffi::F32> out,
                        int64_t threads) {
    (void)previous;
    sigbench_ziv_f32(x.typed_data(), out->typed_data(), static_cast<int64_t>(x.element_count()),
                     static_cast<int>(threads));
    return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SigbenchZivF32, ZivF32,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("threads"));
