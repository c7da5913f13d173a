#!/usr/bin/env python3
"""Writes the vision-transformer fixtures of the ONNX import: torchvision's VisionTransformer at a
small size, exported by both of PyTorch's exporters, onnxruntime's logits and PyTorch's input
gradients. A held-out import: the class token repeated for the batch (Expand of a constant to a
shape computed from the input's, through ConstantOfShape, Equal and Where in the TorchScript
export), nn.MultiheadAttention, LayerNorm, GELU and the class token's row.

onnx/vit_{torchscript,dynamo}.onnx — torchvision.models.vision_transformer.VisionTransformer(
  image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5)
  in eval mode, its class token and zero-initialized head drawn from a seeded normal so that every
  part shows in the logits; input "input" [batch, 3, 32, 32] (dynamic batch); dynamo=False opset 17
  and dynamo=True opset 20 (node metadata stripped: no local paths).
onnx/onnx_vit.safetensors — float32 "x" [2, 3, 32, 32] (seeded uniform [0, 1)), "logits_torchscript",
  "logits_dynamo" [2, 5] (onnxruntime's), "w" [2, 5] (seeded) and "grad" [2, 3, 32, 32], PyTorch's
  d sum(w · logits) / dx; "attention" [2 layers, 2 examples, 2 heads, 17, 17], each layer's attention
  probabilities (nn.MultiheadAttention with need_weights=True, average_attn_weights=False, on the
  layer's own input), and "attention_grad" of the same shape, d logits[n, 3] / d probabilities
  (the probabilities multiplied into the values by hand, so that the gradient reaches them).

    python3 Tests/Fixtures/make_onnx_vit.py     (torch 2.15.0, torchvision 0.29.2, onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torchvision.models.vision_transformer import VisionTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402
from make_onnx_norms import export_both  # noqa: E402

torch.manual_seed(20261203)
net = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5).eval()
with torch.no_grad():
    net.class_token.normal_(0, 0.5)
    net.heads.head.weight.normal_(0, 0.5)
    net.heads.head.bias.normal_(0, 0.1)
x = torch.rand(2, 3, 32, 32)
w = torch.randn(2, 5)
tensors = {"x": x, "w": w}
export_both(net, x, "vit", tensors)
xg = x.clone().requires_grad_(True)
(net(xg) * w).sum().backward()
tensors["grad"] = xg.grad


def attention(net, x):
    """Each encoder layer's attention probabilities [N, H, T, T], and the gradients of logit 3 with
    respect to them: the encoder run by hand with the attention as softmax(q·kᵀ/√d)·v."""
    h = net._process_input(x)
    h = torch.cat([net.class_token.expand(x.shape[0], -1, -1), h], dim=1) + net.encoder.pos_embedding
    probabilities = []
    for block in net.encoder.layers:
        mha = block.self_attention
        y = block.ln_1(h)
        n, t, e = y.shape
        heads = mha.num_heads
        q, k, v = torch.nn.functional.linear(y, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.reshape(n, t, heads, e // heads).transpose(1, 2) for z in (q, k, v))
        p = torch.softmax(q @ k.transpose(-1, -2) / (e // heads) ** 0.5, dim=-1)
        p.retain_grad()
        probabilities.append(p)
        a = (p @ v).transpose(1, 2).reshape(n, t, e)
        h = h + mha.out_proj(a)
        h = h + block.mlp(block.ln_2(h))
    logits = net.heads(net.encoder.ln(h)[:, 0])
    assert (logits - net(x)).abs().max() < 1e-5
    logits[:, 3].sum().backward()
    return torch.stack([p.detach() for p in probabilities]), torch.stack([p.grad for p in probabilities])


tensors["attention"], tensors["attention_grad"] = attention(net, x)
save_safetensors(tensors, os.path.join(OUT, "onnx_vit.safetensors"), {"generator": "Tests/Fixtures/make_onnx_vit.py"})
print("wrote vit_{torchscript,dynamo}.onnx and onnx_vit.safetensors;", tensors["logits_torchscript"][0])
