#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention (CPU by default, `--device cuda` on an NVIDIA GPU: float32, each
call timed from a synchronized device to `torch.cuda.synchronize()`) on the shapes of `prism-bench attention`: [B, H, T, d] =
[8, 8, T, 64], forward and forward + backward, median wall time and GFLOP/s with FlashAttention's
counting (forward 4·B·H·T²·d, backward 2.5× the forward), in the JSON shape of the other peers.

    python3 Benchmarks/peers/torch_attention.py [--lengths 256,1024] [--repeat 10] [--threads N] [--device cuda] [--json torch_attention.json]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


SYNC = lambda: None


def median_ms(fn, repeat, warmup=2):
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--lengths", default="256,1024")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args()
    global SYNC
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        SYNC = torch.cuda.synchronize
    torch.set_default_device(dev)
    torch.manual_seed(0)
    results = []

    def add(name, shape, ms, flops):
        results.append({"name": name, "shape": shape, "median_ms": ms, "gflops": flops / ms / 1e6})
        print(f"{name:36s} {shape:22s} {ms:10.3f} ms {flops / ms / 1e6:9.1f} GFLOP/s", flush=True)

    for t in (int(x) for x in args.lengths.split(",")):
        b, h, d = 8, 8, 64
        q, k, v = (torch.rand(b, h, t, d) * 2 - 1 for _ in range(3))
        qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))
        dout = torch.rand(b, h, t, d) * 2 - 1
        flops = 4.0 * b * h * t * t * d
        shape = f"B{b} H{h} T{t} d{d}"
        with torch.no_grad():
            add("attention_forward", shape, median_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.repeat), flops)

        def step():
            for x in (qg, kg, vg):
                x.grad = None
            F.scaled_dot_product_attention(qg, kg, vg).backward(dout)
        add("attention_forward_backward", shape, median_ms(step, args.repeat), 3.5 * flops)
    if args.json:
        name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
        doc = {"device": {"name": name, "library": f"torch {torch.__version__}", "threads": torch.get_num_threads()},
               "date": time.strftime("%Y-%m-%d"), "results": results}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
