/*
 * buildinfo.c -- how this library was compiled, for bug reports
 * (dropout_engine.show_config): the compiler and the OpenMP version it
 * implemented.  Compiled with the baseline flags, like every base source.
 */
#include "engine.h"

#define DE_STR2(x) #x
#define DE_STR(x) DE_STR2(x)

const char *de_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " DE_STR(_MSC_VER);
#else
    return "unknown";
#endif
}

long de_openmp_version(void)
{
#ifdef _OPENMP
    return (long)_OPENMP;
#else
    return 0;
#endif
}
