#!/usr/bin/env python3
"""Compares a `latte forward ... --grads` output with a fixture's expected.safetensors, tensor by tensor.

    python3 tools/reference/compare.py OUT.safetensors tests/fixtures/<case>/expected.safetensors

For every tensor of the expected file it prints max|out - expected| / max|expected| (the absolute error when the
expected tensor is all zero, e.g. aux_loss without balance losses). Exit status 1 when logits or a loss exceeds
1e-4, a gradient exceeds 1e-3, or a tensor is missing, extra or misshapen.

Why these tolerances: latte computes in float32 (unit roundoff 6e-8); the fixtures are tiny, so the float32 run of
the reference itself stays near 1e-6 on logits and 1e-5 on gradients. 1e-4 / 1e-3 leave room for other summation
orders and blocked (flash) softmax while still catching any real formula error, which moves values by 1e-2 or more.
Gradients get the looser bound because backward passes through more cancelling sums (softmax, RMSNorm).
Only numpy is needed.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

VALUE_TOLERANCE = 1e-4
GRAD_TOLERANCE = 1e-3


def relative_error(actual, expected):
    """max |a - b| / max |b|, or max |a - b| when b is all zero."""
    if expected.size == 0:
        return 0.0
    err = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    return err / scale if scale > 0 else err


def compare(actual, expected):
    """Returns (rows, failures): rows are (name, error, tolerance); failures are human-readable lines."""
    rows, failures = [], []
    for name in sorted(expected, key=lambda n: (n.startswith("grad."), n)):
        tolerance = GRAD_TOLERANCE if name.startswith("grad.") else VALUE_TOLERANCE
        if name not in actual:
            failures.append(f"{name}: missing from the output")
            continue
        a, b = np.asarray(actual[name]), np.asarray(expected[name])
        if a.shape != b.shape:
            failures.append(f"{name}: shape {list(a.shape)}, expected {list(b.shape)}")
            continue
        error = relative_error(a, b)
        rows.append((name, error, tolerance))
        if not error <= tolerance:  # also catches NaN
            failures.append(f"{name}: relative error {error:.3e} > {tolerance:g}")
    failures += [f"{name}: not in the expected file" for name in sorted(set(actual) - set(expected))]
    return rows, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="safetensors written by `latte forward ... --grads`")
    parser.add_argument("expected", help="a fixture's expected.safetensors")
    args = parser.parse_args()
    actual, _ = safetensors_io.read(args.output)
    expected, _ = safetensors_io.read(args.expected)
    rows, failures = compare(actual, expected)
    width = max((len(name) for name, _, _ in rows), default=10)
    for name, error, tolerance in rows:
        print(f"{name:<{width}}  {error:.3e}  {'ok' if error <= tolerance else 'FAIL'}")
    worst_values = max((e for n, e, _ in rows if not n.startswith("grad.")), default=0.0)
    worst_grads = max((e for n, e, _ in rows if n.startswith("grad.")), default=0.0)
    print(f"worst: values {worst_values:.3e} (tolerance {VALUE_TOLERANCE:g}), gradients {worst_grads:.3e} "
          f"(tolerance {GRAD_TOLERANCE:g})")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all tensors within tolerance")


if __name__ == "__main__":
    main()
