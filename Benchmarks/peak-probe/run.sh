#!/bin/sh
# Builds fma_peak.c for AVX2 (gcc -mavx2 -mfma) and, where the CPU has it, AVX-512 (-mavx512f),
# and runs each on THREADS threads (default 2): the native FMA ceiling that `prism-bench peak`
# is checked against (Benchmarks/RESULTS.md).
#
#     Benchmarks/peak-probe/run.sh [THREADS]
set -eu
here=$(dirname "$0")
threads=${1:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
case "$flags" in *" avx2"*) ;; *) echo "this CPU has no AVX2: nothing to measure" >&2; exit 1 ;; esac
gcc -O2 -mavx2 -mfma -pthread -o "$out/fma_peak_avx2" "$here/fma_peak.c"
"$out/fma_peak_avx2" "$threads"
case "$flags" in
*" avx512f"*)
    gcc -O2 -mavx512f -pthread -o "$out/fma_peak_avx512" "$here/fma_peak.c"
    "$out/fma_peak_avx512" "$threads" ;;
*) echo "avx512: not supported by this CPU" ;;
esac
