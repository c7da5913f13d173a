#!/usr/bin/env bash
# Benchmarks/gpu/bringup.sh OUT — Prism's first run on a GPU machine, in one call, everything logged to OUT.
#
# Build here first (no Swift toolchain is needed there): `../shared/tools/gpu-bundle prism prism-bench`
# (or any script that leaves `.device/run`, `.device/prism` and `.device/prism-bench`), copy the checkout
# with `.device/` to the GPU machine, then run this from the checkout's root. It writes, each step under
# its own time limit so one hang does not cost the rest:
#   gpu.txt            nvidia-smi, the OpenCL vendor files and drivers found (what the loader sees)
#   devices.txt        `prism devices` (when .device/prism was bundled too: with the checkout the two may not fit)
#   bringup.log/.json  `prism-bench bringup`: forced-variant checks, peak, kernels, attention, SHAP evaluator
#   torch_kernels.json, torch_attention.json   the PyTorch peers on the same GPU (float32, no TF32)
set -u
out=${1:?usage: bringup.sh OUT}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
limit=${BRINGUP_LIMIT:-240}
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
{
  stamp "host: $(uname -a)"
  nvidia-smi 2>&1
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv 2>&1
  echo "--- /etc/OpenCL/vendors"; ls -l /etc/OpenCL/vendors 2>&1; cat /etc/OpenCL/vendors/*.icd 2>&1
  echo "--- OpenCL drivers on this machine"
  find / -xdev \( -name 'libnvidia-opencl.so*' -o -name 'libOpenCL.so*' \) 2>/dev/null | head -20
  ls /usr/local/nvidia/lib64 2>/dev/null | grep -i opencl
} > "$out/gpu.txt" 2>&1
# The driver folder is a read-only mount on some images: make its libraries findable by the loader.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
if [ -x .device/prism ]; then
  stamp "prism devices" | tee -a "$out/gpu.txt"
  timeout 60 .device/run .device/prism devices > "$out/devices.txt" 2>&1
  echo "exit $?" >> "$out/devices.txt"
  cat "$out/devices.txt"
fi
stamp "prism-bench bringup (limit ${limit}s)"
timeout "$limit" .device/run .device/prism-bench bringup --device "${BRINGUP_DEVICE:-gpu}" --json "$out/bringup.json" \
  --only "${BRINGUP_GROUPS:-variants,peak,sgemm,attention,shap,conv,grouped,layernorm,softmax,pool}" > "$out/bringup.log" 2>&1
echo "exit $?" >> "$out/bringup.log"
stamp "bringup done"
grep -v ' ok$' "$out/bringup.log" | tail -80
if [ -z "${BRINGUP_NO_PEERS:-}" ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  stamp "torch peers"
  PYTHONUNBUFFERED=1 timeout 90 python3 Benchmarks/peers/torch_kernels.py --device cuda --sizes 1024,2048,4096 --repeat 20 \
    --json "$out/torch_kernels.json" 2>&1 | tail -30
  PYTHONUNBUFFERED=1 timeout 60 python3 Benchmarks/peers/torch_attention.py --device cuda --lengths 256,1024,4096 --repeat 20 \
    --json "$out/torch_attention.json" 2>&1 | tail -10
fi
stamp "end"
