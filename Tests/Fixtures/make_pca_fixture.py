#!/usr/bin/env python3
"""Writes the PCA parity fixture: a seeded matrix with decaying column scales and numpy's SVD of it
after centering, as scikit-learn's PCA computes it.

pca.safetensors — float32 "x" [300, 12]; float64-computed, float32-stored "components" [12, 12] (rows
are the right singular vectors, by decreasing singular value), "explained_variance" [12] (s² / (N − 1))
and "mean" [12].

    python3 Tests/Fixtures/make_pca_fixture.py     (numpy 2)
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402

rng = np.random.default_rng(20261204)
scales = np.array([5.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
mix = np.linalg.qr(rng.standard_normal((12, 12)))[0]
x = ((rng.standard_normal((300, 12)) * scales) @ mix.T + rng.uniform(-2, 2, 12)).astype(np.float32)
centered = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
_, s, vt = np.linalg.svd(centered, full_matrices=False)
tensors = {"x": x, "components": vt, "explained_variance": s ** 2 / (len(x) - 1), "mean": x.astype(np.float64).mean(axis=0)}
tensors = {k: torch.from_numpy(np.ascontiguousarray(np.asarray(v, dtype=np.float32))) for k, v in tensors.items()}
save_safetensors(tensors, os.path.join(HERE, "pca.safetensors"), {"generator": "Tests/Fixtures/make_pca_fixture.py", "numpy": np.__version__})
print(f"wrote pca.safetensors: explained variance {np.round(s ** 2 / (len(x) - 1), 3)}")
