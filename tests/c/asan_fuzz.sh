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
       -fno-omit-frame-pointer -fopenmp -DDE_HAVE_AVX2=1 -DDE_HAVE_AVX512=1
       -DDE_HAVE_VNNI=1 -I$SRC"
AVX2="-mavx2 -mfma"
for f in gemm_kernels_avx2 elementwise_avx2 qgemm_kernels_avx2; do
    cc $FLAGS $AVX2 -c "$SRC/$f.c" -o "$OUT/$f.o"
done
AVX512="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma"
for f in gemm_kernels_avx512 elementwise_avx512; do
    cc $FLAGS $AVX512 -c "$SRC/$f.c" -o "$OUT/$f.o"
done
cc $FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512vnni \
   -c "$SRC/qgemm_kernels_vnni.c" -o "$OUT/qgemm_kernels_vnni.o"
# setup.py's BASE_SOURCES and EMBED_SOURCES.
cc $FLAGS -o "$OUT/embed_fuzz" "$(dirname "$0")/embed_fuzz.c" \
   "$SRC"/json.c "$SRC"/safetensors.c "$SRC"/model_file.c "$SRC"/cpu.c \
   "$SRC"/rng.c "$SRC"/gemm.c "$SRC"/dense.c "$SRC"/loss.c "$SRC"/optim.c \
   "$SRC"/train.c "$SRC"/schedule.c "$SRC"/noise.c "$SRC"/buildinfo.c \
   "$SRC"/qdense.c "$SRC"/gemm_kernels_generic.c "$SRC"/elementwise_generic.c \
   "$SRC"/qgemm_kernels_generic.c "$OUT"/*_avx2.o "$OUT"/*_avx512.o \
   "$OUT"/qgemm_kernels_vnni.o -lm
"$OUT/embed_fuzz" "$MODEL" "$OUT/damaged.safetensors"
