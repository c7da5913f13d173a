#!/usr/bin/env python3
"""The onnxruntime peer of `prism compress quantize`: static int8 quantization of the same model
(exported with `prism export --model M --onnx m.onnx`), QDQ format, uint8 activations, int8 weights
per channel, min-max calibration on the same number of training examples (a seeded sample, as Prism
takes one), then the Fashion-MNIST test accuracy, the file sizes and evaluations/s of both files at
batch 256 (2 intra-op threads, default optimizations, wall clock: median of 10 runs after 2 warm-up
runs).

    python3 Benchmarks/peers/ort_quantize.py m.onnx [--calibration 256] [--threads 2]

Needs onnxruntime and onnx (onnxruntime.quantization imports it): pip install onnxruntime onnx.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_mnist import arrays  # noqa: E402


class Calibration(CalibrationDataReader):
    def __init__(self, x, name):
        self.batches = [{name: x[i:i + 1]} for i in range(len(x))]

    def get_next(self):
        return self.batches.pop(0) if self.batches else None


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def measure(path, x, y, threads, label):
    s = session(path, threads)
    name = s.get_inputs()[0].name
    logits = np.concatenate([s.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    accuracy = float((logits.argmax(1) == y).mean())
    batch = x[:256]
    for _ in range(2):
        s.run(None, {name: batch})
    times = []
    for _ in range(10):
        start = time.perf_counter()
        s.run(None, {name: batch})
        times.append(time.perf_counter() - start)
    rate = 256 / statistics.median(times)
    print(f"{label}: {os.path.getsize(path)} bytes, test accuracy {accuracy:.4f}, {rate:.0f} evaluations/s at batch 256 "
          f"(median {1e3 * statistics.median(times):.2f} ms)", flush=True)
    return logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="the quantized file (default: beside the model, _int8.onnx)")
    ap.add_argument("--reduce-range", action="store_true",
                    help="7-bit weights, as onnxruntime advises on CPUs without VNNI (its AVX2 u8s8 kernels saturate 16-bit pair sums)")
    args = ap.parse_args()
    xt, _ = arrays("train")
    x, y = arrays("t10k")
    rng = np.random.default_rng(0)
    sample = xt[rng.choice(len(xt), args.calibration, replace=False)]
    name = session(args.model, args.threads).get_inputs()[0].name
    out = args.out or os.path.splitext(args.model)[0] + "_int8.onnx"
    start = time.perf_counter()
    quantize_static(args.model, out, Calibration(sample, name), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, reduce_range=args.reduce_range, calibrate_method=CalibrationMethod.MinMax)
    print(f"onnxruntime {ort.__version__}: quantize_static (QDQ, per-channel int8 weights{' reduce_range' if args.reduce_range else ''}, "
          f"uint8 activations, min-max on {args.calibration} examples) in {time.perf_counter() - start:.1f} s", flush=True)
    a = measure(args.model, x, y, args.threads, "float32")
    b = measure(out, x, y, args.threads, "int8 QDQ")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(out, options, providers=["CPUExecutionProvider"])
    c = np.concatenate([plain.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    print(f"int8 QDQ run as written (graph optimizations off: the float simulation): test accuracy {float((c.argmax(1) == y).mean()):.4f}")
    print(f"argmax agreement float32 vs int8: {float((a.argmax(1) == b.argmax(1)).mean()):.4f}")


if __name__ == "__main__":
    main()
