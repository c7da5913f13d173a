#!/usr/bin/env python3
"""Runs an ONNX model with onnxruntime on one input array and writes its first output.

    python3 Tests/Fixtures/run_onnxruntime.py [--no-optimizations] MODEL.onnx INPUT.npy OUTPUT.npy [NAME=FILE.npy ...]

--no-optimizations turns onnxruntime's graph optimizations off, so that a QDQ model runs every
QuantizeLinear and DequantizeLinear as written (the float simulation of the quantized network)
rather than fused integer kernels, whose rounding (and, on CPUs without VNNI, the saturation of
AVX2's 16-bit pair sums) differs.

INPUT.npy feeds the model's first input, NAME=FILE.npy the others by name (an attention mask beside
token ids). Each is cast to the element type its input declares (float32, int64, int32, bool); the
output is written as float32 .npy. Used by Prism's export tests to compare onnxruntime's logits with
Prism's (onnxruntime 1.32.0, numpy 2.x; `.ci/install-deps` installs them). Exit status 2 with one
line on standard error when python3 lacks onnxruntime or numpy.
"""
import os
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as error:
    sys.stderr.write(f"run_onnxruntime.py: {error} (pip install onnxruntime==1.32.0 numpy)\n")
    sys.exit(2)

TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def main(model, inputs, outputs, *extra, optimize=True):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    declared = session.get_inputs()
    files = dict(entry.split("=", 1) for entry in extra)
    feeds = {declared[0].name: np.load(inputs).astype(TYPES[declared[0].type])}
    for other in declared[1:]:
        feeds[other.name] = np.load(files[other.name]).astype(TYPES[other.type])
    result = session.run([session.get_outputs()[0].name], feeds)[0]
    tmp = outputs + ".tmp.npy"
    np.save(tmp, np.ascontiguousarray(result, dtype=np.float32))
    os.replace(tmp, outputs)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    optimize = "--no-optimizations" not in arguments
    arguments = [a for a in arguments if a != "--no-optimizations"]
    if len(arguments) < 3:
        sys.stderr.write("usage: run_onnxruntime.py [--no-optimizations] MODEL.onnx INPUT.npy OUTPUT.npy [NAME=FILE.npy ...]\n")
        sys.exit(2)
    main(*arguments, optimize=optimize)
