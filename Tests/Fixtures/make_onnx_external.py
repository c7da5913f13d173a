#!/usr/bin/env python3
"""Writes the external-data import fixture under Tests/Fixtures/onnx/: a model whose initializers are
stored in a data file beside it, as onnx's `save_model(save_as_external_data=True)` writes them.

external_weights.onnx — opset 17, input "input" [batch, 6]: fc1 Gemm(6 → 8, transB 1) + Relu,
  fc2 Gemm(8 → 3, transB 1) -> "logits" [batch, 3]. Every initializer (fc1.weight, fc1.bias,
  fc2.weight, fc2.bias; seeded randn) is stored in external_weights.bin, each at the offset and with
  the length the onnx library records (`location`, `offset`, `length`).
external_weights.bin — the initializers' bytes (float32, little-endian).
external_weights_golden.safetensors — float32 `x` [5, 6] (seeded randn) and `logits` [5, 3]:
  onnxruntime's outputs on x, read with the external data.

    python3 Tests/Fixtures/make_onnx_external.py     (onnx 1.23.2, onnxruntime 1.32.0, numpy 2.4.6, torch 2.15.0)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402


def main():
    rng = np.random.default_rng(17)
    weights = {
        "fc1.weight": rng.standard_normal((8, 6)).astype(np.float32),
        "fc1.bias": rng.standard_normal(8).astype(np.float32),
        "fc2.weight": rng.standard_normal((3, 8)).astype(np.float32),
        "fc2.bias": rng.standard_normal(3).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["a"], name="act"),
        helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "external", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, "external_weights.onnx")
    for stale in (path, os.path.join(OUT, "external_weights.bin")):
        if os.path.exists(stale):
            os.remove(stale)
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external_weights.bin", size_threshold=0)
    written = onnx.load(path, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in written.graph.initializer)

    x = rng.standard_normal((5, 6)).astype(np.float32)
    logits = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})[0]
    expected = np.maximum(x @ weights["fc1.weight"].T + weights["fc1.bias"], 0) @ weights["fc2.weight"].T + weights["fc2.bias"]
    assert np.allclose(logits, expected, atol=1e-5, rtol=1e-4)
    save_safetensors({"x": torch.from_numpy(x), "logits": torch.from_numpy(logits.astype(np.float32))},
                     os.path.join(OUT, "external_weights_golden.safetensors"),
                     {"generator": "Tests/Fixtures/make_onnx_external.py", "onnxruntime": ort.__version__})


if __name__ == "__main__":
    main()
