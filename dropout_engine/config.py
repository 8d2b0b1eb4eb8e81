"""Compiler and linker flags for embedding dropout_engine in C (pkg-config style).

    cc prog.c $(python -m dropout_engine.config --cflags --libs)
    cc prog.c $(python -m dropout_engine.config --cflags --libs --static)

--cflags   -I for dropout_engine.h
--libs     link the shared library, with an rpath so the program finds it
--static   with --libs: link libdropout_engine.a instead (plus OpenMP, libm)
--libdir / --includedir   print the directories only

Importing this module does not load the engine.
"""
import argparse
import os
import shlex
import sys

_PKG = os.path.dirname(os.path.abspath(__file__))


def get_include():
    """The directory holding dropout_engine.h."""
    return os.path.join(_PKG, "_csrc")


def get_lib_dir():
    """The directory holding libdropout_engine.a and libdropout_engine.so."""
    return os.path.join(_PKG, "lib")


def cflags():
    return ["-I" + get_include()]


def libs(static=False):
    lib = get_lib_dir()
    if static:
        with open(os.path.join(lib, "static_libs.txt")) as f:
            extra = f.read().split()
        return [os.path.join(lib, "libdropout_engine.a")] + extra
    return ["-L" + lib, "-Wl,-rpath," + lib, "-ldropout_engine"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m dropout_engine.config",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--cflags", action="store_true", help="flags to compile")
    p.add_argument("--libs", action="store_true", help="flags to link")
    p.add_argument("--static", action="store_true", help="with --libs: the static library")
    p.add_argument("--libdir", action="store_true", help="the library directory")
    p.add_argument("--includedir", action="store_true", help="the header directory")
    args = p.parse_args(argv)
    out = []
    if args.includedir:
        out.append(get_include())
    if args.libdir:
        out.append(get_lib_dir())
    if args.cflags:
        out += cflags()
    if args.libs:
        if not os.path.exists(os.path.join(get_lib_dir(), "libdropout_engine.a")):
            p.exit(1, f"dropout_engine: no library in {get_lib_dir()}; the package "
                      "was installed without its C build\n")
        out += libs(static=args.static)
    if not out:
        p.print_help(sys.stderr)
        return 2
    print(" ".join(shlex.quote(a) for a in out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
