"""Build of dropout_engine: one Cython binding plus the C engine in _csrc/.

Why a custom build_ext: each ISA's kernel files must be compiled with their
own flags (numpy-style dispatch), never tuned to the build host, and a target
the compiler cannot emit is simply left out (the portable path always
builds).  OpenMP is probed the same way: without it the engine runs on one
thread.  Set DROPOUT_ENGINE_SANITIZE=1 to build with ASan + UBSan.
"""
import os
import platform
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CSRC = os.path.join("dropout_engine", "_csrc")

# The C tree (paths relative to CSRC, the one include directory: every
# #include names its file from there, "frame/dispatch.h").  frame/ and nn/
# are compiled with the baseline flags (any x86-64 or aarch64), as are the
# portable kernels in kernels/generic/.
BASE_SOURCES = [
    "frame/cpu.c", "frame/gemm.c", "frame/buildinfo.c",
    "nn/rng.c", "nn/dense.c", "nn/loss.c", "nn/optim.c", "nn/train.c",
    "nn/schedule.c", "nn/noise.c", "nn/stage.c", "nn/qdense.c", "nn/norm.c",
    "nn/allreduce.c", "nn/shm_reduce.c", "nn/graph.c", "io/rows.c",
]


def _kernel_sources(isa):
    """Every .c in kernels/<isa>/: an ISA's folder is compiled as a whole."""
    folder = os.path.join("kernels", isa)
    return sorted(os.path.join(folder, f)
                  for f in os.listdir(os.path.join(CSRC, folder)) if f.endswith(".c"))


def _tree(*suffixes):
    """The files below CSRC ending in `suffixes`: what a source may include."""
    return sorted(os.path.join(root, f) for root, _, files in os.walk(CSRC)
                  for f in files if f.endswith(suffixes))


# The SIMD targets: kernels/<name lowercased>/ is compiled with these flags,
# and only if the compiler accepts the probe with them (a target it cannot
# emit is left out; the portable kernels always build).  A new ISA is a new
# folder of kernels plus an entry here (and its tables in frame/dispatch.h
# and frame/cpu.c).
ISA_TARGETS = {
    "AVX2": (["-mavx2", "-mfma"],
             "#include <immintrin.h>\nint f(void){__m256 a=_mm256_set1_ps(1);"
             "a=_mm256_fmadd_ps(a,a,a);return (int)_mm256_cvtss_f32(a);}\n"),
    "AVX512": (["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
                "-mavx2", "-mfma"],
               "#include <immintrin.h>\nint f(void){__m512 a=_mm512_set1_ps(1);"
               "__mmask16 m=_mm512_cmp_ps_mask(a,a,_CMP_EQ_OQ);"
               "return (int)m;}\n"),
    # The int8 kernel (cpu.c runs it only where the CPU reports AVX512_VNNI).
    "VNNI": (["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni"],
             "#include <immintrin.h>\nint f(void){__m512i a=_mm512_set1_epi32(1);"
             "a=_mm512_dpbusd_epi32(a,a,a);"
             "return _mm512_reduce_add_epi32(a);}\n"),
    # The bf16 GEMM kernel (cpu.c runs it only where the CPU reports
    # AVX512_BF16; elsewhere the other ISAs emulate it bit for bit).
    "AVX512BF16": (["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
                    "-mavx512bf16"],
                   "#include <immintrin.h>\nint f(void){__m512 a=_mm512_set1_ps(1);"
                   "__m512i b=_mm512_set1_epi32(1);"
                   "a=_mm512_dpbf16_ps(a,(__m512bh)b,(__m512bh)b);"
                   "return (int)_mm512_reduce_add_ps(a);}\n"),
}

BASE_FLAGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math",
              "-Wall", "-Wno-unknown-pragmas"]
# The embedding library (issue 8): libdropout_engine.a and .so in
# dropout_engine/lib/, built from the extension's own objects (each ISA file
# with its flags) plus these sources, which only the library needs.  The
# .so exports only the API of _csrc/dropout_engine.h.
EMBED_SOURCES = ["io/json.c", "io/safetensors.c", "embed/model_plan.c", "embed/de_model.c",
                 "embed/de_norm.c"]
EMBED_EXPORTS = ["de_model_load", "de_model_predict", "de_model_input_dim",
                 "de_model_output_dim", "de_model_free", "de_last_error",
                 "de_set_num_threads", "de_version"]
LIB_DIR = "lib"
OPENMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads()<1;}\n"


def _sanitize():
    return os.environ.get("DROPOUT_ENGINE_SANITIZE", "") not in ("", "0")


class BuildExt(build_ext):
    def _try(self, code, cflags, link=False):
        """True if the compiler accepts `code` with `cflags` (and links it)."""
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(code)
            try:
                objs = self.compiler.compile([src], output_dir=tmp,
                                             extra_postargs=cflags)
                if link:
                    self.compiler.link_executable(
                        objs, os.path.join(tmp, "probe"), extra_postargs=cflags)
            except Exception:  # any compiler/linker failure means "no"
                return False
        return True

    def build_extension(self, ext):
        flags = list(BASE_FLAGS)
        link = []
        if self._try(OPENMP_PROBE, ["-fopenmp"], link=True):
            flags.append("-fopenmp")
            link.append("-fopenmp")
        else:
            print("dropout_engine: no OpenMP, building single-threaded",
                  file=sys.stderr)
        if _sanitize():
            san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                   "-fno-sanitize-recover=undefined", "-g", "-O1"]
            flags += san
            link += ["-fsanitize=address,undefined"]

        macros = []
        extra_objects = []
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
        for name, (isa_flags, probe) in ISA_TARGETS.items():
            if not x86 or not self._try(probe, isa_flags):
                print(f"dropout_engine: compiler cannot target {name}, "
                      "leaving it out", file=sys.stderr)
                continue
            macros.append((f"DE_HAVE_{name}", "1"))
            extra_objects += self.compiler.compile(
                [os.path.join(CSRC, s) for s in _kernel_sources(name.lower())],
                output_dir=self.build_temp, macros=macros[-1:],
                include_dirs=[CSRC], extra_postargs=flags + isa_flags,
                depends=_tree(".h", ".inc"))
        ext.define_macros += macros
        ext.extra_compile_args = flags
        ext.extra_link_args = link
        ext.extra_objects = extra_objects
        super().build_extension(ext)
        self._build_embed_libs(ext, flags, link, macros, extra_objects)

    def _build_embed_libs(self, ext, flags, link, macros, isa_objects):
        """libdropout_engine.a/.so beside the extension, in lib/."""
        base = self.compiler.object_filenames(
            [s for s in ext.sources if s.startswith(CSRC)],
            output_dir=self.build_temp)
        embed = self.compiler.compile(
            [os.path.join(CSRC, s) for s in EMBED_SOURCES],
            output_dir=self.build_temp, macros=macros, include_dirs=[CSRC],
            extra_postargs=flags, depends=_tree(".h", ".inc"))
        objects = base + list(isa_objects) + embed
        libdir = os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), LIB_DIR)
        os.makedirs(libdir, exist_ok=True)
        self.compiler.create_static_lib(objects, "dropout_engine", output_dir=libdir)
        script = os.path.join(self.build_temp, "dropout_engine.map")
        with open(script, "w") as f:
            f.write("{ global: %s; local: *; };\n" % "; ".join(EMBED_EXPORTS))
        so = os.path.join(libdir, "libdropout_engine.so")
        soname = ["-Wl,-soname,libdropout_engine.so", "-lm", "-lpthread"]
        try:
            self.compiler.link_shared_object(
                objects, so, extra_postargs=link + soname + ["-Wl,--version-script=" + script])
        except Exception:  # a linker without version scripts: export everything
            self.compiler.link_shared_object(objects, so, extra_postargs=link + soname)
        # What a static link needs besides the archive (config.py --static).
        with open(os.path.join(libdir, "static_libs.txt"), "w") as f:
            f.write(" ".join(link + ["-lm", "-lpthread"]) + "\n")

    def run(self):
        super().run()
        if self.inplace:  # build_ext built into build_lib; bring lib/ along
            src = os.path.join(self.build_lib, "dropout_engine", LIB_DIR)
            dst = os.path.join("dropout_engine", LIB_DIR)
            os.makedirs(dst, exist_ok=True)
            for name in os.listdir(src):
                self.copy_file(os.path.join(src, name), os.path.join(dst, name))


def _extensions():
    from Cython.Build import cythonize
    import numpy

    ext = Extension(
        "dropout_engine._engine",
        sources=[os.path.join("dropout_engine", "_engine.pyx")]
        + [os.path.join(CSRC, s) for s in BASE_SOURCES + _kernel_sources("generic")],
        include_dirs=[CSRC, numpy.get_include()],
        depends=_tree(".c", ".h", ".inc"),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    return cythonize([ext], language_level=3,
                     compiler_directives={"boundscheck": False,
                                          "wraparound": False,
                                          "cdivision": True})


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
