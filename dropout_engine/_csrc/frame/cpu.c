/*
 * cpu.c -- feature detection, the dispatch table, the thread count.
 *
 * The ISA is chosen once (at import, by Python calling de_isa_set with
 * de_isa_best() or DROPOUT_ENGINE_ISA); afterwards `de_kt` is read-only.
 * An ISA counts as available only when its kernels were compiled in (the
 * build drops a target its compiler cannot emit) and the CPU *and* OS
 * support it: GCC's __builtin_cpu_supports checks XCR0 via xgetbv, so an OS
 * that does not save zmm state reports no AVX-512.
 */
#include "frame/dispatch.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const de_kernel_table_t tables[DE_N_ISA] = {
    {DE_ISA_GENERIC, &de_gemm_kernels_generic, &de_elementwise_generic},
#ifdef DE_HAVE_AVX2
    {DE_ISA_AVX2, &de_gemm_kernels_avx2, &de_elementwise_avx2},
#else
    {DE_ISA_AVX2, NULL, NULL},
#endif
#ifdef DE_HAVE_AVX512
    {DE_ISA_AVX512, &de_gemm_kernels_avx512, &de_elementwise_avx512},
#else
    {DE_ISA_AVX512, NULL, NULL},
#endif
};

const de_kernel_table_t *de_kt = &tables[DE_ISA_GENERIC];
const de_qgemm_kernels_t *de_qk = &de_qgemm_generic;
const de_gemm_kernels_t *de_bk = &de_gemm_bf16_generic;

static const char *const isa_names[DE_N_ISA] = {"generic", "avx2", "avx512"};

static int cpu_has(int isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (isa) {
    case DE_ISA_GENERIC:
        return 1;
    case DE_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DE_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    }
    return 0;
#else
    return isa == DE_ISA_GENERIC;
#endif
}

#ifdef DE_HAVE_VNNI
/* Only consulted for the AVX-512 path, whose check already covered the OS
 * saving zmm state. */
static int cpu_has_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
}
#endif

#ifdef DE_HAVE_AVX512BF16
#include <cpuid.h>
/* AVX512_BF16: CPUID leaf 7 subleaf 1, EAX bit 5 (only consulted for the
 * AVX-512 path, whose check covered the OS saving zmm state). */
static int cpu_has_avx512bf16(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7 || !__get_cpuid_count(7, 1, &a, &b, &c, &d))
        return 0;
    return (a >> 5) & 1;
}
#endif

/* 0 after de_bf16_set_native(0): the AVX-512 path emulates VDPBF16PS. */
static int bf16_native = 1;

/* The bf16 GEMM kernels that go with an (available) ISA. */
static const de_gemm_kernels_t *bkernels_for(int isa)
{
#ifdef DE_HAVE_AVX512BF16
    if (isa == DE_ISA_AVX512 && bf16_native && cpu_has_avx512bf16())
        return &de_gemm_bf16_avx512bf16;
#endif
#ifdef DE_HAVE_AVX512
    if (isa == DE_ISA_AVX512)
        return &de_gemm_bf16_avx512;
#endif
#ifdef DE_HAVE_AVX2
    if (isa >= DE_ISA_AVX2)
        return &de_gemm_bf16_avx2;
#endif
    (void)isa;
    return &de_gemm_bf16_generic;
}

int de_bf16_native_available(void)
{
#ifdef DE_HAVE_AVX512BF16
    return de_isa_available(DE_ISA_AVX512) && cpu_has_avx512bf16();
#else
    return 0;
#endif
}

void de_bf16_set_native(int on)
{
    bf16_native = on != 0;
    de_bk = bkernels_for(de_kt->isa);
}

const char *de_bf16_kernel(void)
{
    static const char *const emulated[DE_N_ISA] = {
        "generic-emulated", "avx2-emulated", "avx512-emulated"};
    return de_bk->pairs ? "avx512-bf16" : emulated[de_kt->isa];
}

/* The int8 kernels that go with an (available) ISA. */
static const de_qgemm_kernels_t *qkernels_for(int isa)
{
#ifdef DE_HAVE_VNNI
    if (isa == DE_ISA_AVX512 && cpu_has_vnni())
        return &de_qgemm_vnni;
#endif
#ifdef DE_HAVE_AVX2
    if (isa >= DE_ISA_AVX2)
        return &de_qgemm_avx2;
#endif
    (void)isa;   /* unused when no SIMD target was built */
    return &de_qgemm_generic;
}

int de_isa_available(int isa)
{
    if (isa < 0 || isa >= DE_N_ISA || tables[isa].gemm == NULL)
        return 0;
    return cpu_has(isa);
}

int de_isa_best(void)
{
    for (int isa = DE_N_ISA - 1; isa > DE_ISA_GENERIC; isa--)
        if (de_isa_available(isa))
            return isa;
    return DE_ISA_GENERIC;
}

int de_isa_set(int isa)
{
    if (!de_isa_available(isa))
        return DE_EINVAL;
    de_kt = &tables[isa];
    de_qk = qkernels_for(isa);
    de_bk = bkernels_for(isa);
    de_gemm_packs_stale();   /* packed panels are per ISA */
    return DE_OK;
}

int de_isa_get(void) { return de_kt->isa; }

const char *de_qdense_kernel(void) { return de_qk->name; }

const char *de_isa_name(int isa)
{
    return (isa >= 0 && isa < DE_N_ISA) ? isa_names[isa] : "unknown";
}

/* 0 = not set by the user: follow OpenMP's own default (OMP_NUM_THREADS or
 * the core count), which is also what threadpoolctl changes. */
static int user_threads = 0;

void de_set_num_threads(int n)
{
    user_threads = n < 1 ? 1 : n;
#ifdef _OPENMP
    omp_set_num_threads(user_threads);
#endif
}

int de_get_num_threads(void) { return de_threads(); }

int de_threads(void)
{
#ifdef _OPENMP
    int omp = omp_get_max_threads();
    int n = (user_threads > 0 && user_threads < omp) ? user_threads : omp;
    return n < 1 ? 1 : n;
#else
    return 1;
#endif
}

int de_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
