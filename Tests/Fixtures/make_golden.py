#!/usr/bin/env python3
"""Writes golden.safetensors: a small CNN evaluated by PyTorch, for the whole-model test.

The network is nn.Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Conv2d(4, 8, 3), ReLU(),
MaxPool2d(2), Flatten(), Linear(32, 10)) on a batch of 3 images of 14x14, trained with
cross-entropy (mean over the batch). The file holds the weights under nn.Sequential's state_dict
names (0.weight, 0.bias, 3.weight, 3.bias, 7.weight, 7.bias), the input ("input", [3, 1, 14, 14]),
the labels as floats ("labels", [3]), the logits ("logits", [3, 10]), the loss ("loss", [1]),
every parameter gradient ("grad.<name>") and the gradient of the loss with respect to the input
("grad.input"). Tests read this file and never need Python.

    python3 Tests/Fixtures/make_golden.py      (needs torch and safetensors; see Benchmarks/peers/requirements.txt)
"""
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

torch.manual_seed(20261122)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32, 10),
).double()
x = torch.rand(3, 1, 14, 14, dtype=torch.float64, requires_grad=True)
labels = torch.tensor([3, 0, 9])
logits = model(x)
loss = nn.functional.cross_entropy(logits, labels)
loss.backward()

tensors = {name: p.detach().float().contiguous() for name, p in model.state_dict().items()}
tensors["input"] = x.detach().float().contiguous()
tensors["labels"] = labels.float()
tensors["logits"] = logits.detach().float().contiguous()
tensors["loss"] = loss.detach().float().reshape(1)
for name, p in model.named_parameters():
    tensors["grad." + name] = p.grad.float().contiguous()
tensors["grad.input"] = x.grad.float().contiguous()
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.safetensors")
save_file(tensors, out, metadata={"generator": "Tests/Fixtures/make_golden.py", "torch": torch.__version__})
print(f"wrote {out}: loss {loss.item():.6f}")
