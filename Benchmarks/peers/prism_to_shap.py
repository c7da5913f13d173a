"""Prism's explanation document as shap.Explanation objects, so that shap's plots work on them.

    prism explain --model m.safetensors ... --json e.json
    python3 Benchmarks/peers/prism_to_shap.py e.json [--method kernel-shap] [--plot waterfall.png]
    python3 Benchmarks/peers/prism_to_shap.py e.json --check     # exits 0 when every check holds

The conversion is the few lines of `to_shap` below. `--check` verifies, for every SHAP method of the
document, that the Explanation's values of each example's explained output plus its base value
equal f(x) from the document's predictions, and that `data` holds the inputs; then it draws shap's waterfall and bar plots (Agg backend) to make sure they accept it.
Exits 3 when shap is not installed.
"""
import argparse
import json
import sys

import numpy as np


def to_shap(doc, method=None):
    """One shap.Explanation per document method (or the one named), for the explained output of
    each example: values [examples, features], base_values [examples], data [examples, features]."""
    import shap

    entry = next(m for m in doc["methods"] if method in (None, m["method"]))
    values = np.array(entry["values"]["values"])                      # [examples, features, outputs]
    slots = np.array(entry["output_slots"])
    n = values.shape[0]
    phi = values[np.arange(n), :, slots]                              # the explained output's values
    base = None
    if "base_values" in entry:
        base = np.array(entry["base_values"]["values"])[np.arange(n), slots]
    inputs = np.array(doc["inputs"]["values"]["values"]).reshape(n, -1)
    features = doc["features"]
    # Feature values shap shows next to each feature: the inputs when features are input elements,
    # else (superpixels, groups) none.
    data = inputs if phi.shape[1] == inputs.shape[1] else None
    names = entry.get("feature_names") or (features["names"] if phi.shape[1] == features["count"] else None)
    return entry, shap.Explanation(values=phi, base_values=base, data=data, feature_names=names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("document")
    parser.add_argument("--method")
    parser.add_argument("--plot", help="write shap's waterfall plot of the first example to this PNG file")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    try:
        import shap  # noqa: F401
    except ImportError:
        print("prism_to_shap.py: shap is not installed (pip install shap)", file=sys.stderr)
        sys.exit(3)
    doc = json.load(open(args.document))
    if doc.get("format") != "prism-explanation" or doc.get("version") != 1:
        sys.exit(f"{args.document}: not a version 1 Prism explanation document")
    methods = [args.method] if args.method else [m["method"] for m in doc["methods"]]
    failures = []
    for name in methods:
        entry, explanation = to_shap(doc, name)
        print(f"{name}: shap.Explanation values {explanation.values.shape}, "
              f"base values {None if explanation.base_values is None else explanation.base_values.shape}")
        if not args.check:
            continue
        n = len(entry["output_slots"])
        if explanation.base_values is not None and name.endswith("-shap"):
            # Additivity against f(x) from the document's own forward pass (`predictions`), not the
            # method's: the shap object's values for each example's explained output must add up to it.
            fx = np.array(doc["predictions"]["outputs"]["values"])[np.arange(n), doc["predictions"]["targets"]]
            gap = np.abs(explanation.values.sum(1) + explanation.base_values - fx).max()
            if not gap <= 1e-4 * max(1.0, np.abs(fx).max()):
                failures.append(f"{name}: values + base value differ from the predicted f(x) by {gap}")
        if explanation.data is not None:
            inputs = np.array(doc["inputs"]["values"]["values"]).reshape(n, -1)
            if not np.array_equal(explanation.data, inputs):
                failures.append(f"{name}: data differs from the inputs")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import shap
        if explanation.base_values is not None:
            shap.plots.waterfall(explanation[0], show=False)
            plt.close("all")
        shap.plots.bar(explanation, show=False)
        plt.close("all")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import shap
        _, explanation = to_shap(doc, methods[0])
        shap.plots.waterfall(explanation[0], show=False)
        plt.savefig(args.plot, bbox_inches="tight")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    if args.check:
        print(f"checked {len(methods)} method(s): SHAP values and base values add up to the predicted f(x), and shap plots every method")


if __name__ == "__main__":
    main()
