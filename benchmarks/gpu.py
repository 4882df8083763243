"""GPU benchmark: pretraining throughput fp32 vs bf16, peak GPU memory, against the CPU.

One command on a machine with a CUDA GPU (nothing to configure)::

    python benchmarks/gpu.py                  # a table
    python benchmarks/gpu.py --out gpu.json   # and the rows as JSON
    python -m pytest -m gpu tests/training/test_gpu.py # the GPU tests

Every row fits the same embedder (same data, parameters and ``random_state``) after a
one-epoch warm-up fit (kernels, caches), and reports the whole fit's seconds (setup
included), the training windows per second over that fit and the peak GPU memory. The
CPU row runs with the package's default thread policy. Without a CUDA GPU the script says
so and exits with 0 after the CPU row, so that it can be part of a prepared script.
"""

import argparse
import json
import time

import numpy as np
import torch

from sklearn_tcssl import TemporalContrastiveEmbedder


def _data(n_sequences, n_timepoints, n_features, seed=0):
    rng = np.random.default_rng(seed)
    return [
        np.cumsum(rng.normal(size=(n_timepoints, n_features)), axis=0).astype(np.float32)
        for _ in range(n_sequences)
    ]


def _row(X, device, precision, args):
    params = {
        "n_components": args.n_components,
        "batch_size": args.batch_size,
        "random_state": 0,
        "device": device,
        "precision": precision,
    }
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    TemporalContrastiveEmbedder(max_epochs=1, **params).fit(X)  # warm-up: kernels, caches
    start = time.perf_counter()
    embedder = TemporalContrastiveEmbedder(max_epochs=args.epochs, **params).fit(X)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    steps = int(embedder.net_.history[-1, "n_steps"])
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    return {
        "device": device,
        "precision": precision,
        "fit_seconds": round(seconds, 3),
        "windows_per_second": round(steps * args.batch_size / seconds, 1),
        "peak_gpu_mib": round(peak, 1),
    }


def main(argv=None):
    """Run the benchmark and print the table (and write JSON with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--timepoints", type=int, default=60)
    parser.add_argument("--features", type=int, default=20000)
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    X = _data(args.sequences, args.timepoints, args.features)
    rows = [_row(X, "cpu", "32", args)]
    if torch.cuda.is_available():
        rows += [_row(X, "cuda", precision, args) for precision in ("32", "bf16")]
    else:
        print("no CUDA GPU here: only the CPU row was measured")
    header = f"{'device':<7}{'precision':>10}{'fit s':>9}{'windows/s':>12}{'peak MiB':>10}"
    print(header)
    for row in rows:
        print(
            f"{row['device']:<7}{row['precision']:>10}{row['fit_seconds']:>9.2f}"
            f"{row['windows_per_second']:>12.0f}{row['peak_gpu_mib']:>10.0f}"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
