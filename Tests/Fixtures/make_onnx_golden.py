#!/usr/bin/env python3
"""Writes the ONNX import fixtures under Tests/Fixtures/onnx/: small PyTorch networks exported with
both of PyTorch's exporters, PyTorch's answers, and malformed files for the importer's refusals.

residual_cnn_{torchscript,dynamo}.onnx — the eval-mode network below, exported by
  torch.onnx.export(dynamo=False, opset 17) and torch.onnx.export(dynamo=True, opset 20), input
  "input" [batch, 3, 12, 10] with a dynamic batch. Both exporters fold stem.1 and block.bn1/bn2 into
  the convolutions; pool_bn follows a pooling and stays a BatchNormalization.
    stem Conv2d(3, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU
    block conv1 Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False), bn1, ReLU,
          conv2 Conv2d(8, 8, (1, 3), padding=(0, 1)), bn2 (eps 1e-3), + the block's input, ReLU
    down Conv2d(8, 16, 3, stride=2, padding=1), LeakyReLU(0.1)                        -> [16, 6, 5]
    pool MaxPool2d(2, ceil_mode=True), pool_bn BatchNorm2d(16), ELU(0.5)               -> [16, 3, 3]
    avg AvgPool2d(3, stride=1, padding=1, count_include_pad=False), Hardswish
    cat([pooled, averaged], dim=1)                                                     -> [32, 3, 3]
    AdaptiveAvgPool2d(1), x.view(x.size(0), -1)                                        -> [32]
    fc1 Linear(32, 16), Sigmoid, Dropout(0.2), fc2 Linear(16, 7)
mlp_{torchscript,dynamo}.onnx — input [batch, 20]: F.linear(20 → 24) + Tanh, x @ w + b with w a
  [24, 12] parameter (MatMul + Add) + ELU(1.0), Linear(12, 5), Softmax(dim=-1).
onnx_golden.safetensors — float32 `cnn_x` [4, 3, 12, 10], `cnn_logits` [4, 7], `mlp_x` [6, 20],
  `mlp_logits` [6, 5]: seeded randn inputs and the eval-mode PyTorch network's outputs. `--check`
  runs every export in onnxruntime when it is installed and compares.
Refusals (built with onnx.helper, opset 17, input [1, 4]): unsupported_op.onnx (an Erf node),
  external_data.onnx (an initializer stored in a file beside the model), float64_initializer.onnx
  (a Gemm weight of dtype DOUBLE); asymmetric_pads.onnx (input [1, 1, 5, 5]: a Conv with pads
  [0, 0, 1, 1]).

    python3 Tests/Fixtures/make_onnx_golden.py     (torch 2.15.0, onnx 1.23.2, onnxscript 0.7.2)
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")


# The same safetensors writer as the graph golden files (float32 tensors give F32 entries).
from make_graph_golden import save_safetensors  # noqa: E402


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, (1, 3), padding=(0, 1))
        self.bn2 = nn.BatchNorm2d(8, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block = Block()
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.1))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.pool_bn = nn.BatchNorm2d(16)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(32, 16)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(16, 7)

    def forward(self, x):
        x = self.down(self.block(self.stem(x)))
        p = F.elu(self.pool_bn(self.pool(x)), 0.5)
        a = F.hardswish(self.avg(p))
        x = self.gap(torch.cat([p, a], dim=1))
        x = x.view(x.size(0), -1)
        return self.fc2(self.drop(torch.sigmoid(self.fc1(x))))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 24)
        self.w = nn.Parameter(torch.randn(24, 12) * 0.3)
        self.b = nn.Parameter(torch.randn(12) * 0.1)
        self.fc3 = nn.Linear(12, 5)

    def forward(self, x):
        x = torch.tanh(F.linear(x, self.fc1.weight, self.fc1.bias))
        x = F.elu(x @ self.w + self.b)
        return torch.softmax(self.fc3(x), dim=-1)


def settle_batchnorm(model, shape, generator):
    """Running statistics from a few train-mode forwards, then seeded affine parameters."""
    model.train()
    with torch.no_grad():
        for i in range(6):
            model(torch.randn(8, *shape, generator=generator) + 0.2 * i)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.num_features, generator=generator))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=generator))
    model.eval()


def export(model, x, name):
    """Both exporters, dynamic batch on the input and the output."""
    kw = dict(input_names=["input"], output_names=["logits"])
    ts = os.path.join(OUT, f"{name}_torchscript.onnx")
    torch.onnx.export(model, (x,), ts + ".tmp", dynamo=False, opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **kw)
    os.replace(ts + ".tmp", ts)
    dy = os.path.join(OUT, f"{name}_dynamo.onnx")
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=20, external_data=False,
                                dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, **kw)
    program.save(dy + ".tmp", external_data=False)
    os.replace(dy + ".tmp", dy)
    return [ts, dy]


def save_model(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, path + ".tmp")
    os.replace(path + ".tmp", path)


def refusals():
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])
    opset = [helper.make_opsetid("", 17)]
    graph = helper.make_graph([helper.make_node("Erf", ["input"], ["out"], name="erf1")], "g", [x], [y])
    save_model(helper.make_model(graph, opset_imports=opset), os.path.join(OUT, "unsupported_op.onnx"))

    w = helper.make_tensor("fc.weight", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    w.data_location = TensorProto.EXTERNAL
    del w.float_data[:]
    w.external_data.add(key="location", value="weights.bin")
    graph = helper.make_graph([helper.make_node("Gemm", ["input", "fc.weight"], ["out"], name="fc", transB=1)], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=opset)
    onnx.save(model, os.path.join(OUT, "external_data.onnx"))  # not checked: the data file is absent on purpose

    w = helper.make_tensor("fc.weight", TensorProto.DOUBLE, [4, 4], [0.5] * 16)
    graph = helper.make_graph([helper.make_node("Gemm", ["input", "fc.weight"], ["out"], name="fc", transB=1)], "g",
                              [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [1, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.DOUBLE, [1, 4])], [w])
    save_model(helper.make_model(graph, opset_imports=opset), os.path.join(OUT, "float64_initializer.onnx"))

    w = helper.make_tensor("conv.weight", TensorProto.FLOAT, [2, 1, 3, 3], [0.1] * 18)
    graph = helper.make_graph([helper.make_node("Conv", ["input", "conv.weight"], ["out"], name="conv", kernel_shape=[3, 3],
                                                pads=[0, 0, 1, 1])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 5, 5])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 4, 4])], [w])
    save_model(helper.make_model(graph, opset_imports=opset), os.path.join(OUT, "asymmetric_pads.onnx"))


def check(paths):
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime is not installed: exports not run")
        return
    for path, (x, logits) in paths.items():
        got = onnxruntime.InferenceSession(path).run(None, {"input": x.numpy()})[0]
        err = np.abs(got - logits.numpy()).max()
        print(f"{os.path.basename(path)}: onnxruntime vs PyTorch max |diff| {err:.2e}")
        assert err <= 1e-5, path


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    cnn = ResidualCNN()
    settle_batchnorm(cnn, (3, 12, 10), g)
    mlp = MLP().eval()
    cnn_x = torch.randn(4, 3, 12, 10, generator=g)
    mlp_x = torch.randn(6, 20, generator=g)
    with torch.no_grad():
        cnn_logits, mlp_logits = cnn(cnn_x), mlp(mlp_x)
    paths = {}
    for p in export(cnn, cnn_x, "residual_cnn"):
        paths[p] = (cnn_x, cnn_logits)
    for p in export(mlp, mlp_x, "mlp"):
        paths[p] = (mlp_x, mlp_logits)
    refusals()
    save_safetensors({"cnn_x": cnn_x, "cnn_logits": cnn_logits, "mlp_x": mlp_x, "mlp_logits": mlp_logits},
                     os.path.join(OUT, "onnx_golden.safetensors"),
                     {"generator": "Tests/Fixtures/make_onnx_golden.py", "torch": torch.__version__, "onnx": onnx.__version__})
    if "--check" in sys.argv:
        check(paths)


if __name__ == "__main__":
    main()
