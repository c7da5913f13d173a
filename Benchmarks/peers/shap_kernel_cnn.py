#!/usr/bin/env python3
"""shap's KernelExplainer on the same problem as `prism explain`: a model file written by
`prism train` (loaded into PyTorch), one Fashion-MNIST test image, 49 superpixels of 4x4 pixels,
the same background training rows (read from Prism's explanation JSON), the same budget. Prints
seconds, model evaluations per second, and the largest difference from Prism's values.

    prism explain --model m.safetensors --index 1 --background 50 --json e.json
    python3 Benchmarks/peers/shap_kernel_cnn.py m.safetensors e.json [--threads N] [--captum] [--reference ref.json]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import shap
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402
from torch_train import load  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("explanation")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--batch", type=int, default=5000, help="model rows per forward pass")
    ap.add_argument("--reference", help="a prism explain JSON of the same image and background with a much larger budget: "
                                          "print shap's and Prism's relative errors ‖φ − φ_ref‖ / ‖φ_ref‖ against it")
    ap.add_argument("--captum", action="store_true",
                    help="also Captum's KernelShap (same budget and superpixels, one baseline: the background mean, "
                         "the predicted class only; Captum has no background average)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with safe_open(args.model, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(args.model))
    model.eval()
    doc = json.load(open(args.explanation))
    method = next((m for m in doc["methods"] if m["method"] == "kernel-shap"), None)
    if method is None:
        sys.exit(f"{args.explanation}: no kernel-shap explanation")
    settings = method["settings"]
    if doc["features"]["kind"] != "superpixels" or doc["background"].get("indices") is None \
            or doc["background"].get("shap_reference"):
        sys.exit("shap_kernel_cnn.py: needs an explanation over grid superpixels against training rows "
                 "(no --segments, --shap-baseline or --kmeans)")
    index = doc["inputs"]["indices"][0]
    rows = doc["background"]["indices"]
    budget = settings["budget"]
    cell = doc["features"]["superpixel"]
    xtr, _ = load("train")
    xte, _ = load("t10k")
    x = xte[index:index + 1]
    background = xtr[rows]
    side = 28 // cell
    features = side * side
    # Pixel → superpixel map, as Prism's grid groups (row-major cells).
    cells = torch.arange(28).div(cell, rounding_mode="floor")
    group = (cells[:, None] * side + cells[None, :]).reshape(-1)
    evaluations = 0

    def f(z):
        nonlocal evaluations
        z = torch.from_numpy(z).float()
        out = []
        with torch.no_grad():
            per = max(1, args.batch // len(rows))
            for i in range(0, len(z), per):
                mask = z[i:i + per][:, group].reshape(-1, 1, 1, 28, 28)
                images = mask * x + (1 - mask) * background[None]
                logits = model(images.reshape(-1, 1, 28, 28)).reshape(len(mask), len(rows), -1)
                out.append(logits.mean(1))
                evaluations += images.shape[0] * images.shape[1]
        return torch.cat(out).numpy().astype(np.float64)

    explainer = shap.KernelExplainer(f, np.zeros((1, features)))
    start = time.perf_counter()
    values = explainer.shap_values(np.ones((1, features)), nsamples=budget, l1_reg=False, silent=True)
    seconds = time.perf_counter() - start
    phi = np.stack(values, -1)[0] if isinstance(values, list) else values[0]
    prism = np.array(method["values"]["values"])[0]
    print(f"shap {shap.__version__} KernelExplainer: {seconds:.2f} s, {evaluations} model rows, "
          f"{evaluations / seconds:.0f} rows/s, torch {torch.__version__} with {torch.get_num_threads()} threads")
    scale = np.abs(prism).max()
    print(f"largest |shap - prism| / max|prism|: {np.abs(phi - prism).max() / scale:.4f} "
          f"(both sample coalitions; Prism's reported standard errors: max {np.max(method['standard_errors']['values']):.4f})")
    if args.reference:
        ref_doc = json.load(open(args.reference))
        ref_method = next(m for m in ref_doc["methods"] if m["method"] == "kernel-shap")
        if ref_doc["background"].get("indices") != rows or ref_doc["inputs"]["indices"][0] != index:
            sys.exit("--reference: a different image or background")
        ref = np.array(ref_method["values"]["values"])[0]
        ref_se = np.linalg.norm(ref_method["standard_errors"]["values"]) / np.linalg.norm(ref)
        print(f"relative error against the reference (budget {ref_method['settings']['budget']}, its own relative standard error "
              f"{100 * ref_se:.2f}%): shap {100 * np.linalg.norm(phi - ref) / np.linalg.norm(ref):.2f}%, "
              f"Prism {100 * np.linalg.norm(prism - ref) / np.linalg.norm(ref):.2f}%")
    if args.captum:
        import captum
        from captum.attr import KernelShap
        with torch.no_grad():
            target = int(model(x).argmax())
        ks = KernelShap(model)
        mask = group.reshape(1, 1, 28, 28)
        baseline = background.mean(0, keepdim=True)
        ks.attribute(x, baselines=baseline, target=target, feature_mask=mask, n_samples=64, perturbations_per_eval=64)  # warm-up
        start = time.perf_counter()
        attr = ks.attribute(x, baselines=baseline, target=target, feature_mask=mask, n_samples=budget,
                            perturbations_per_eval=budget)
        seconds = time.perf_counter() - start
        per_feature = np.array([attr[0, 0].reshape(-1)[(group == g).nonzero()[0, 0]].item() for g in range(features)])
        print(f"captum {captum.__version__} KernelShap: {seconds:.2f} s for class {target} ({budget} samples, one mean baseline: "
              f"{budget} model rows); largest difference from Prism's background-averaged values for that class / max: "
              f"{np.abs(per_feature - prism[:, target]).max() / np.abs(prism[:, target]).max():.3f}")


if __name__ == "__main__":
    main()
