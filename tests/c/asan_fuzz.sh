#!/bin/sh
# Build embed_fuzz with the library's sources under AddressSanitizer and
# UBSan (each ISA folder of kernels/ with its own flags, as setup.py does)
# and run it on MODEL:   sh tests/c/asan_fuzz.sh MODEL [OUT_DIR]
set -e
MODEL=$1
OUT=${2:-${TMPDIR:-/tmp}/de_asan}
SRC=$(dirname "$0")/../../dropout_engine/_csrc
mkdir -p "$OUT"
FLAGS="-O1 -g -std=gnu11 -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -fopenmp -DDE_HAVE_AVX2=1 -DDE_HAVE_AVX512=1
       -DDE_HAVE_VNNI=1 -I$SRC"
# kernels/<isa>/*.c with setup.py's ISA_TARGETS flags; OBJS collects them.
OBJS=
isa() {
    dir=$1; shift
    for f in "$SRC/kernels/$dir"/*.c; do
        o="$OUT/$(basename "$f" .c).o"
        cc $FLAGS "$@" -c "$f" -o "$o"
        OBJS="$OBJS $o"
    done
}
isa avx2 -mavx2 -mfma
isa avx512 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma
isa vnni -mavx512f -mavx512bw -mavx512vl -mavx512vnni
# setup.py's BASE_SOURCES, the generic kernels and EMBED_SOURCES.
# shellcheck disable=SC2086
cc $FLAGS -o "$OUT/embed_fuzz" "$(dirname "$0")/embed_fuzz.c" \
   "$SRC"/frame/*.c "$SRC"/nn/*.c "$SRC"/kernels/generic/*.c \
   "$SRC"/io/*.c "$SRC"/embed/*.c $OBJS -lm
"$OUT/embed_fuzz" "$MODEL" "$OUT/damaged.safetensors"
