#!/usr/bin/env python3
"""Writes the fixtures of a model of two inputs under Tests/Fixtures/onnx/: a small text classifier
taking token ids and an attention mask, exported with both of PyTorch's exporters, onnxruntime's
logits, PyTorch's gradients with respect to the token embeddings, and exact Shapley values over the
tokens.

text_{torchscript,dynamo}.onnx — the eval-mode `TextClassifier` below, exported by
  torch.onnx.export(dynamo=False, opset 17) and torch.onnx.export(dynamo=True, opset 20) with inputs
  "input_ids" [batch, 10] int64 and "attention_mask" [batch, 10] int64 (1 for a token, 0 for padding),
  a dynamic batch:
    tok Embedding(40, 16, padding_idx=0) + pos (a learned [1, 10, 16] parameter)
    encoder: 1 × TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0,
             activation="gelu", batch_first=True), src_key_padding_mask = (attention_mask == 0)
    the mean of the unmasked positions, head Linear(16, 3)                              -> [3]
  (the masked mean is Unsqueeze, Cast, Mul, ReduceSum, Max/Clip, Div; the padding mask becomes
  Equal, Where(-inf, 0), Reshape, Expand over the heads and an Add to the attention scores).
onnx_text.safetensors:
  `ids` [4, 10] int64 token ids (padding id 0 where the mask is 0), `mask` [4, 10] int64;
  `logits_torchscript`, `logits_dynamo` [4, 3]: onnxruntime's outputs for each file;
  `logits` [4, 3]: PyTorch's; `w` [4, 3] seeded randn;
  `embedding_grad` [4, 10, 16]: d sum(w · logits) / d(tok(ids)) from PyTorch (the gradient with
  respect to the token embeddings, as Captum's layer attributions read it);
  `shapley` [10, 3]: the exact Shapley values of example 0's logits over its 10 positions, a
  position left out taking token id 0 (the mask unchanged), by enumerating all 1024 coalitions
  in float64.

    python3 Tests/Fixtures/make_onnx_text.py
      (torch 2.15.0, onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0)
"""
import itertools
import math
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)

from make_graph_golden import save_safetensors  # noqa: E402

TOKENS, VOCAB = 10, 40


class TextClassifier(nn.Module):
    def __init__(self, vocab=VOCAB, width=16, tokens=TOKENS, classes=3):
        super().__init__()
        self.tok = nn.Embedding(vocab, width, padding_idx=0)
        self.pos = nn.Parameter(0.1 * torch.randn(1, tokens, width))
        layer = nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def encode(self, embedded, attention_mask):
        x = self.encoder(embedded + self.pos, src_key_padding_mask=(attention_mask == 0))
        m = attention_mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)
        return self.head(pooled)

    def forward(self, input_ids, attention_mask):
        return self.encode(self.tok(input_ids), attention_mask)


def export(net, ids, mask, tensors):
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    for exporter, dynamo, opset in (("torchscript", False, 17), ("dynamo", True, 20)):
        path = os.path.join(OUT, f"text_{exporter}.onnx")
        if dynamo:
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(net, (ids, mask), dynamo=True, opset_version=opset, input_names=["input_ids", "attention_mask"],
                                        output_names=["logits"], external_data=False,
                                        dynamic_shapes={"input_ids": {0: batch}, "attention_mask": {0: batch}})
            program.save(path + ".tmp", external_data=False)
            exported = onnx.load(path + ".tmp")
            for node in exported.graph.node:
                del node.metadata_props[:]
            onnx.save(exported, path + ".tmp")
        else:
            torch.onnx.export(net, (ids, mask), path + ".tmp", dynamo=False, opset_version=opset,
                              input_names=["input_ids", "attention_mask"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "logits": {0: "batch"}})
        os.replace(path + ".tmp", path)
        logits = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        assert np.abs(logits - net(ids, mask).detach().numpy()).max() < 1e-5, exporter
        tensors[f"logits_{exporter}"] = torch.from_numpy(logits)


def shapley(net, ids, mask):
    """Exact Shapley values of net(ids, mask) over the positions, an absent position's id set to 0."""
    n = ids.shape[1]
    coalitions = list(itertools.product([0, 1], repeat=n))
    rows = torch.stack([torch.where(torch.tensor(c, dtype=torch.bool), ids[0], torch.zeros_like(ids[0])) for c in coalitions])
    with torch.no_grad():
        values = net.double()(rows, mask.expand(len(coalitions), -1)).numpy()
    net.float()
    index = {c: k for k, c in enumerate(coalitions)}
    phi = np.zeros((n, values.shape[1]))
    for c in coalitions:
        s = sum(c)
        for i in range(n):
            if c[i]:
                continue
            weight = math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
            with_i = c[:i] + (1,) + c[i + 1:]
            phi[i] += weight * (values[index[with_i]] - values[index[c]])
    return phi


def main():
    torch.manual_seed(20261203)
    net = TextClassifier().eval()
    ids = torch.randint(1, VOCAB, (4, TOKENS))
    mask = torch.ones(4, TOKENS, dtype=torch.int64)
    for row, length in enumerate((7, 10, 4, 9)):
        mask[row, length:] = 0
        ids[row, length:] = 0
    tensors = {"ids": ids, "mask": mask}
    export(net, ids, mask, tensors)
    tensors["logits"] = net(ids, mask).detach()
    w = torch.randn(4, 3)
    tensors["w"] = w
    embedded = net.tok(ids).detach().requires_grad_(True)
    (w * net.encode(embedded, mask)).sum().backward()
    tensors["embedding_grad"] = embedded.grad
    tensors["shapley"] = torch.from_numpy(shapley(net, ids[:1], mask[:1])).float()
    save_safetensors(tensors, os.path.join(OUT, "onnx_text.safetensors"), {"generator": "make_onnx_text.py"})


if __name__ == "__main__":
    main()
