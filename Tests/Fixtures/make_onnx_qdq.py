#!/usr/bin/env python3
"""Writes the quantized (QDQ) fixtures of the ONNX import: the MLP and the residual CNN of
make_onnx_golden.py quantized by onnxruntime's static quantization (QDQ format: uint8 activations,
int8 weights, per-tensor, 16 seeded calibration inputs), and onnxruntime's logits for them.

onnx/{mlp,residual_cnn}_qdq.onnx — onnxruntime.quantization.quantize_static(…_torchscript.onnx,
  quant_format=QDQ, activation_type=QUInt8, weight_type=QInt8): QuantizeLinear → DequantizeLinear
  pairs on activations, DequantizeLinear of int8/int32 initializers for weights and biases.
onnx/onnx_qdq.safetensors — float32 "mlp_x" [6, 20] and "cnn_x" [4, 3, 12, 10] (onnx_golden's inputs),
  "mlp_logits" / "cnn_logits": onnxruntime's outputs with graph optimizations off, so that it runs
  every QuantizeLinear and DequantizeLinear as written (the float simulation of the quantized
  network); "mlp_logits_optimized" / "cnn_logits_optimized": with its default optimizations (integer
  kernels such as QLinearConv, whose rounding differs), for reference.

    python3 Tests/Fixtures/make_onnx_qdq.py     (onnxruntime 1.32.0, onnx 1.23.2)
"""
import json
import os
import struct
import sys

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402


class Calibration(CalibrationDataReader):
    def __init__(self, shape):
        rng = np.random.default_rng(20261203)
        self.batches = [{"input": rng.standard_normal([1] + shape).astype(np.float32)} for _ in range(16)]

    def get_next(self):
        return self.batches.pop(0) if self.batches else None


def load_f32(path):
    """The F32 tensors of a safetensors file, as NumPy arrays."""
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    return {name: np.frombuffer(data[8 + size + e["data_offsets"][0]:8 + size + e["data_offsets"][1]], dtype="<f4").reshape(e["shape"])
            for name, e in header.items() if name != "__metadata__" and e["dtype"] == "F32"}


golden = load_f32(os.path.join(OUT, "onnx_golden.safetensors"))
tensors = {}
for stem, prefix in (("mlp", "mlp"), ("residual_cnn", "cnn")):
    x = golden[f"{prefix}_x"]
    path = os.path.join(OUT, f"{stem}_qdq.onnx")
    quantize_static(os.path.join(OUT, f"{stem}_torchscript.onnx"), path + ".tmp", Calibration(list(x.shape[1:])),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.replace(path + ".tmp", path)
    literal = ort.SessionOptions()
    literal.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    tensors[f"{prefix}_x"] = torch.from_numpy(x.copy())
    tensors[f"{prefix}_logits"] = torch.from_numpy(ort.InferenceSession(path, literal, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0])
    tensors[f"{prefix}_logits_optimized"] = torch.from_numpy(ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0])
    gap = (tensors[f"{prefix}_logits"] - tensors[f"{prefix}_logits_optimized"]).abs().max().item()
    print(f"{stem}_qdq.onnx: literal vs optimized onnxruntime logits differ by {gap:.3g}")
save_safetensors(tensors, os.path.join(OUT, "onnx_qdq.safetensors"), {"generator": "Tests/Fixtures/make_onnx_qdq.py"})
