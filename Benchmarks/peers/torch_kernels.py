#!/usr/bin/env python3
"""PyTorch running the same kernel work as `prism-bench kernels`, writing the same JSON shape (on the
CPU by default; `--device cuda` on an NVIDIA GPU, float32 without TF32, as Prism computes).

Cases: SGEMM 1024^3 and 2048^3; the reference CNN's two convolutions at batch 256
(Conv(1->32, 3x3) on 28x28 and Conv(32->64, 3x3) on 13x13), forward, backward-input,
backward-weight, and forward+backward; the grouped convolutions of `prism-bench kernels --only
grouped` (forward without autograd, and forward+backward). Times are medians of wall-clock time per call after warm-up
(PyTorch on the CPU runs synchronously; on a GPU each call is timed from a synchronized device to
`torch.cuda.synchronize()`).

    python3 Benchmarks/peers/torch_kernels.py --json torch.json [--repeat 20] [--threads N] [--device cuda] [--sizes 1024,2048]
"""
import argparse
import datetime
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F


SYNC = lambda: None


def median_ms(fn, repeat, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        SYNC()
        t0 = time.perf_counter()
        fn()
        SYNC()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def conv_flops(n, c, k, r, s, p, q):
    return 2.0 * n * k * p * q * c * r * s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--sizes", default="1024,2048", help="SGEMM sizes, comma-separated")
    args = ap.parse_args()
    global SYNC
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        # Float32 as Prism computes it: no TF32 in matrix products or cuDNN convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        SYNC = torch.cuda.synchronize
    torch.set_default_device(dev)
    torch.manual_seed(0)
    results = []

    def add(name, shape, ms, flops):
        results.append({"name": name, "shape": shape, "median_ms": ms, "gflops": flops / ms / 1e6})
        print(f"{name:28s} {shape:28s} {ms:10.3f} ms {flops / ms / 1e6:9.1f} GFLOP/s", flush=True)

    for n in (int(v) for v in args.sizes.split(",")):
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        c = torch.empty(n, n)
        ms = median_ms(lambda: torch.mm(a, b, out=c), args.repeat)
        add("sgemm", f"{n}x{n}x{n}", ms, 2.0 * n * n * n)

    for label, (n, c, h, w, k) in {"conv1": (256, 1, 28, 28, 32), "conv2": (256, 32, 13, 13, 64)}.items():
        x = torch.randn(n, c, h, w, requires_grad=True)
        wt = torch.randn(k, c, 3, 3, requires_grad=True)
        bias = torch.randn(k, requires_grad=True)
        p, q = h - 2, w - 2
        flops = conv_flops(n, c, k, 3, 3, p, q)
        shape = f"N{n} C{c} H{h} W{w} K{k} 3x3"
        with torch.no_grad():
            ms = median_ms(lambda: F.conv2d(x, wt, bias), args.repeat)
        add(f"{label}_forward", shape, ms, flops)
        y = F.conv2d(x, wt, bias)
        dy = torch.randn_like(y)
        ms = median_ms(lambda: torch.autograd.grad(y, (x,), dy, retain_graph=True), args.repeat)
        add(f"{label}_backward_input", shape, ms, flops)
        ms = median_ms(lambda: torch.autograd.grad(y, (wt, bias), dy, retain_graph=True), args.repeat)
        add(f"{label}_backward_weight", shape, ms, flops)

        def step():
            out = F.conv2d(x, wt, bias)
            torch.autograd.grad(out, (x, wt, bias), dy)

        ms = median_ms(step, args.repeat)
        add(f"{label}_forward_backward", shape, ms, 3 * flops)

    # The grouped cases of Benchmarks/prism-bench/GroupedCases.swift (batch 256: 1024 and 64 images).
    grouped = [
        ("resnet_block", (1024, 8, 12, 10), (8, 4, 3, 3), 2, 2, 2),
        ("g4", (64, 64, 14, 14), (64, 16, 3, 3), 4, 1, 1),
        ("g8", (64, 64, 14, 14), (64, 8, 3, 3), 8, 1, 1),
        ("g16", (64, 64, 14, 14), (64, 4, 3, 3), 16, 1, 1),
        ("resnext", (64, 128, 14, 14), (128, 4, 3, 3), 32, 1, 1),
        ("depthwise", (64, 64, 14, 14), (64, 1, 3, 3), 64, 1, 1),
    ]
    for label, (n, c, h, w), (k, cg, r, s), groups, pad, dil in grouped:
        x = torch.randn(n, c, h, w, requires_grad=True)
        wt = torch.randn(k, cg, r, s, requires_grad=True)
        bias = torch.randn(k, requires_grad=True)
        p, q = h + 2 * pad - dil * (r - 1), w + 2 * pad - dil * (s - 1)
        flops = conv_flops(n, cg, k, r, s, p, q)
        shape = f"N{n} C{c} H{h} W{w} K{k} {r}x{s} G{groups}" + ("" if dil == 1 else f" d{dil}")
        with torch.no_grad():
            ms = median_ms(lambda: F.conv2d(x, wt, bias, padding=pad, dilation=dil, groups=groups), args.repeat)
        add(f"grouped_{label}_forward", shape, ms, flops)
        dy = torch.randn(n, k, p, q)

        def grouped_step():
            out = F.conv2d(x, wt, bias, padding=pad, dilation=dil, groups=groups)
            torch.autograd.grad(out, (x, wt, bias), dy)

        ms = median_ms(grouped_step, args.repeat)
        add(f"grouped_{label}_forward_backward", shape, ms, 3 * flops)

    if args.json:
        doc = {
            "device": {"name": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or platform.machine(),
                       "library": f"torch {torch.__version__}" + (f" (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})"
                                                                   if dev.type == "cuda" else ""),
                       "threads": torch.get_num_threads()},
            "date": datetime.date.today().isoformat(),
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
