#!/usr/bin/env python3
"""The peer of `prism-bench onnx`: model evaluations/s of ONNX files in onnxruntime (default session
options, `intra_op_num_threads` 2, CPU execution provider), one `session.run` per batch of seeded
uniform [-1, 1) inputs, timed by the wall clock (median and minimum after warm-up). Rows are named as
prism-bench names them (`onnx_<file name>`, shape `batch N`), so `prism-bench onnx --peer FILE`
puts them beside Prism's.

    python3 Benchmarks/peers/onnxruntime_eval.py --json ort.json [--model m.onnx ...] [--batches 256,1024,4096]
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

DEFAULT_MODELS = [
    "Tests/Fixtures/onnx/residual_cnn_torchscript.onnx",
    "Tests/Fixtures/onnx/transformer_torchscript.onnx",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--batches", default="256,1024,4096")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    models = args.model or [m for m in DEFAULT_MODELS if os.path.exists(m)]
    if not models:
        sys.exit("onnxruntime_eval: no model given and no fixture found (run from the repository root)")
    batches = [int(b) for b in args.batches.split(",")]
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    results = []
    for path in models:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        spec = session.get_inputs()[0]
        name = "onnx_" + os.path.splitext(os.path.basename(path))[0]
        per_example = [int(d) for d in spec.shape[1:]]
        for batch in batches:
            rng = np.random.default_rng(7)
            x = rng.uniform(-1, 1, size=[batch] + per_example).astype(np.float32)
            for _ in range(args.warmup):
                session.run(None, {spec.name: x})
            seconds = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                session.run(None, {spec.name: x})
                seconds.append(time.perf_counter() - start)
            median = statistics.median(seconds)
            print(f"{name} batch {batch}: {median * 1e3:.3f} ms, {batch / median:.0f} model evaluations/s")
            results.append({"name": name, "shape": f"batch {batch}", "median_ms": median * 1e3, "min_ms": min(seconds) * 1e3})
    if args.json:
        doc = {
            "device": {"name": platform.processor() or platform.machine(), "library": f"onnxruntime {ort.__version__}",
                       "threads": args.threads},
            "date": datetime.date.today().isoformat(),
            "results": results,
        }
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
