#!/bin/sh
# Build embed_fuzz with the library's sources under AddressSanitizer and
# UBSan (each ISA file with its own flags, as setup.py does) and run it on
# MODEL:   sh tests/c/asan_fuzz.sh MODEL [OUT_DIR]
set -e
MODEL=$1
OUT=${2:-${TMPDIR:-/tmp}/de_asan}
SRC=$(dirname "$0")/../../dropout_engine/_csrc
mkdir -p "$OUT"
FLAGS="-O1 -g -std=gnu11 -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -fopenmp -DDE_HAVE_AVX2=1 -DDE_HAVE_AVX512=1 -I$SRC"
cc $FLAGS -mavx2 -mfma -c "$SRC/gemm_kernels_avx2.c" -o "$OUT/gk2.o"
cc $FLAGS -mavx2 -mfma -c "$SRC/elementwise_avx2.c" -o "$OUT/ew2.o"
AVX512="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma"
cc $FLAGS $AVX512 -c "$SRC/gemm_kernels_avx512.c" -o "$OUT/gk5.o"
cc $FLAGS $AVX512 -c "$SRC/elementwise_avx512.c" -o "$OUT/ew5.o"
cc $FLAGS -o "$OUT/embed_fuzz" "$(dirname "$0")/embed_fuzz.c" \
   "$SRC"/json.c "$SRC"/safetensors.c "$SRC"/model_file.c "$SRC"/cpu.c \
   "$SRC"/rng.c "$SRC"/gemm.c "$SRC"/dense.c "$SRC"/loss.c "$SRC"/optim.c \
   "$SRC"/train.c "$SRC"/gemm_kernels_generic.c "$SRC"/elementwise_generic.c \
   "$OUT"/gk2.o "$OUT"/ew2.o "$OUT"/gk5.o "$OUT"/ew5.o -lm
"$OUT/embed_fuzz" "$MODEL" "$OUT/damaged.safetensors"
