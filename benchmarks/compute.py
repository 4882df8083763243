"""Compute benchmark of TemporalContrastiveEmbedder against the limit for its model.

    python benchmarks/compute.py                 # the sizes of the docs (a few minutes, 2 cores)
    python benchmarks/compute.py --quick         # smaller, a smoke test
    python benchmarks/compute.py --out out.json  # also write the measurements as JSON
    python benchmarks/compute.py --parts speed,memory  # only some parts

Every ratio compares measurements of the same run, on the same device, under the same
thread budget (:func:`sklearn_tcssl._utils.threads.thread_budget`, the one the estimators
use), so no row gets more CPU than another:

* **reference row, "the limit for this model"**: a vectorised hand-written loop with the
  same encoder, loss, optimizer (AdamW, fused where torch has it), windows per epoch, batch
  size and number of steps; its setup standardises a stacked copy of the data once and each
  batch is one gather from it. No PCA initialisation, no validation, no checks.
* **whole fit** (setup included: validation, statistics, PCA initialisation) of the
  embedder with its defaults, as the headline ratio; the per-epoch ratio beside it
  (skorch's epoch ``dur`` against the loop's epoch).
* **setup**: the PCA initialisation and the statistics pass, timed alone, and the subspace
  quality of the default power iterations against an exact SVD.
* **memory**: a fresh process builds the float32 data, fits, then transforms; the peak
  resident memory (``VmHWM``, reset before each phase through ``/proc/self/clear_refs``) above
  the memory before the data existed, as a multiple of the data's size (the data itself
  counts as 1 for the fit; the transform figure is what it needs on top).
* **contended**: the same default fit quiet and beside 2 CPU-bound processes: the slowdown,
  and whether the two fitted models give bit-identical outputs.
* **throughput**: our training windows per second at several batch sizes (median epoch,
  setup excluded) beside, when ``cebra`` is importable, CEBRA-Time's samples per second on
  the same data and threads (its setup excluded too: two fits of different lengths).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_tcssl import TemporalContrastiveEmbedder
from sklearn_tcssl._input.sequences import PCA_POWER_ITERATIONS, principal_axes
from sklearn_tcssl._input.standardize import Standardizer
from sklearn_tcssl._training.net import optimizer_options
from sklearn_tcssl._utils.threads import resolve_n_threads, thread_budget
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.losses import TemporalContrastiveLoss
from sklearn_tcssl.nn.windows import windows_per_sequence

SHAPES = {  # name: (n_sequences, n_timepoints, n_features)
    "many short sequences": (100, 20, 50_000),  # 381 MB of float32
    "Sherlock-like runs": (17, 946, 481),
}
QUICK = {"many short sequences": (32, 20, 4_000), "Sherlock-like runs": (4, 300, 481)}
PARTS = ("speed", "memory", "contended", "throughput")
LEADING = 8  # axes with signal in make_sequences (8 latent dynamics + noise)


def make_sequences(n, t, v, seed=0):
    """Float32 sequences with slow shared dynamics plus noise, built one at a time."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(8, v)).astype(np.float32)
    out = []
    for _ in range(n):
        latent = (np.cumsum(rng.normal(size=(t, 8)), axis=0) * 0.3).astype(np.float32)
        out.append(latent @ mixing + rng.standard_normal(size=(t, v), dtype=np.float32))
    return out


def embedder_params(epochs, segment_length):
    return {"max_epochs": epochs, "segment_length": segment_length, "random_state": 0}


# ------------------------------------------------------------ reference
def vectorised_loop(sequences, epochs, segment_length, batch_size=32, seed=0):
    """The limit for this model: returns (whole seconds, per-epoch seconds)."""
    start = time.perf_counter()
    stacked = torch.from_numpy(np.concatenate(sequences))  # setup: one standardised copy
    stacked.sub_(stacked.mean(0)).div_(stacked.std(0).clamp_min(1e-8))
    lengths = np.array([len(s) for s in sequences])
    window = 3 * segment_length
    counts = windows_per_sequence(lengths, window)
    owner = torch.from_numpy(np.repeat(np.arange(len(lengths)), counts))
    starts = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    n_offsets = torch.from_numpy(lengths - window + 1)
    steps = torch.arange(window)
    torch.manual_seed(seed)
    module = TimeSeriesEncoder(stacked.shape[1], 128)
    criterion = TemporalContrastiveLoss(0.1, "batch")
    fused = optimizer_options(torch.device("cpu")).get("optimizer__fused", False)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4, fused=fused)
    batch = min(batch_size, len(owner))
    epoch_s = []
    for _ in range(epochs):
        begin = time.perf_counter()
        order = owner[torch.randperm(len(owner))]
        offsets = (torch.rand(len(order), dtype=torch.float64) * n_offsets[order]).long()
        rows = (starts[order] + offsets)[:, None] + steps  # (N, W)
        for i in range(0, len(rows) - batch + 1, batch):
            windows = stacked[rows[i : i + batch]].view(batch, 3, segment_length, -1)
            loss = criterion(*module(windows).unbind(dim=1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # one read per step, as skorch
        epoch_s.append(time.perf_counter() - begin)
    return time.perf_counter() - start, statistics.median(epoch_s)


def embedder_fit(sequences, epochs, segment_length):
    start = time.perf_counter()
    embedder = TemporalContrastiveEmbedder(**embedder_params(epochs, segment_length))
    embedder.fit(sequences)
    return time.perf_counter() - start, statistics.median(embedder.history_[:, "dur"]), embedder


def setup_costs(sequences):
    standardizer = Standardizer.fit(sequences)
    start = time.perf_counter()
    Standardizer.fit(sequences)
    stats_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = principal_axes(sequences, 128, 0, standardizer=standardizer)
    pca_s = time.perf_counter() - start
    exact = _exact_axes(sequences, standardizer, len(ours))
    cosines = np.linalg.svd(ours.astype(np.float64) @ exact.T, compute_uv=False)
    leading = np.linalg.svd(
        ours[:LEADING].astype(np.float64) @ exact[:LEADING].T, compute_uv=False
    )
    return {
        "statistics_s": stats_s,
        "pca_s": pca_s,
        "pca_power_iterations": PCA_POWER_ITERATIONS,
        "pca_mean_subspace_cosine": float(cosines.mean()),
        "pca_min_subspace_cosine": float(cosines.min()),
        "pca_leading_min_cosine": float(leading.min()),
    }


def _exact_axes(sequences, standardizer, k):
    """Leading right singular vectors of the standardised, centred rows (float64)."""
    A = standardizer.transform(np.concatenate(sequences)).astype(np.float64)
    A -= A.mean(axis=0)
    if A.shape[0] >= A.shape[1]:
        return np.linalg.svd(A, full_matrices=False)[2][:k]
    values, vectors = np.linalg.eigh(A @ A.T)  # rows < features: through the Gram matrix
    top = np.argsort(values)[::-1][:k]
    axes = (A.T @ vectors[:, top]) / np.sqrt(values[top])
    return axes.T


def _say(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def speed(name, shape, epochs, segment_length, repeats):
    _say(f"speed: {name} {shape}")
    sequences = make_sequences(*shape)
    n_windows = int(windows_per_sequence([shape[1]] * shape[0], 3 * segment_length).sum())
    rows = {"fit": [], "fit_epoch": [], "loop": [], "loop_epoch": []}
    with thread_budget():  # the loop under the estimators' own budget
        threads = torch.get_num_threads()
        vectorised_loop(sequences[:4], 1, segment_length)  # warm-up (first allocations)
        embedder_fit(sequences[:8], 1, segment_length)
        for _ in range(repeats):  # alternate, so that other load hits both alike
            whole, epoch, embedder = embedder_fit(sequences, epochs, segment_length)
            rows["fit"].append(whole)
            rows["fit_epoch"].append(epoch)
            whole, epoch = vectorised_loop(sequences, epochs, segment_length)
            rows["loop"].append(whole)
            rows["loop_epoch"].append(epoch)
    med = {key: statistics.median(values) for key, values in rows.items()}
    steps_per_epoch = n_windows // min(32, n_windows)
    return {
        "shape": name,
        "n_sequences": shape[0],
        "n_timepoints": shape[1],
        "n_features": shape[2],
        "data_mb": sum(s.nbytes for s in sequences) / 2**20,
        "epochs": epochs,
        "threads": threads,
        "fit_s": med["fit"],
        "loop_s": med["loop"],
        "whole_fit_ratio": med["fit"] / med["loop"],
        "epoch_s": med["fit_epoch"],
        "loop_epoch_s": med["loop_epoch"],
        "epoch_ratio": med["fit_epoch"] / med["loop_epoch"],
        "windows_per_s": steps_per_epoch * 32 / med["fit_epoch"],
        **setup_costs(sequences),
        "fitted": embedder,
    }


# ---------------------------------------------------------------- memory
_MEMORY_CHILD = """
import sys
sys.path.insert(0, {here!r})
from compute import embedder_params, make_sequences
from sklearn_tcssl import TemporalContrastiveEmbedder

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) * 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

embedder = TemporalContrastiveEmbedder(**embedder_params(1, {segment}))
embedder.fit(make_sequences(4, {t}, {v}, seed=1))  # imports, first allocations
reset_peak()
before = status("VmRSS")
X = make_sequences({n}, {t}, {v})
data = sum(x.nbytes for x in X)
embedder.fit(X)
fit_peak = status("VmHWM") - before
reset_peak()
ready = status("VmRSS")
embedder.transform(X)
print(data, fit_peak, status("VmHWM") - ready)
"""


def peak_memory(shape, segment_length):
    n, t, v = shape
    code = _MEMORY_CHILD.format(
        here=str(Path(__file__).parent), n=n, t=t, v=v, segment=segment_length
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    data, fit_peak, transform_extra = map(int, out.stdout.split()[-3:])
    return {
        "data_mb": data / 2**20,
        "fit_peak_over_data": fit_peak / data,
        "transform_extra_over_data": transform_extra / data,
    }


# ------------------------------------------------------------ contended
def contended(shape, epochs, segment_length):
    """Default fit quiet, then beside 2 CPU-bound processes: slowdown and identical bits."""
    sequences = make_sequences(*shape)

    def fit():
        start = time.perf_counter()
        model = TemporalContrastiveEmbedder(**embedder_params(epochs, segment_length))
        model.fit(sequences)
        return time.perf_counter() - start, model.transform(sequences)

    quiet_s, quiet_out = fit()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(1.0)
        loaded_s, loaded_out = fit()
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return {
        "quiet_s": quiet_s,
        "contended_s": loaded_s,
        "slowdown": loaded_s / quiet_s,
        "bit_identical": bool(np.array_equal(quiet_out, loaded_out)),
        "threads": resolve_n_threads(),
    }


# ------------------------------------------------------------ throughput
def windows_per_second(sequences, batch_size, epochs, segment_length=3):
    """Our training windows per second (median epoch, setup excluded) at ``batch_size``."""
    model = TemporalContrastiveEmbedder(
        **embedder_params(epochs, segment_length), batch_size=batch_size
    ).fit(sequences)
    steps = model.history_[:, "n_steps"]
    per_epoch = [b - a for a, b in zip([0, *steps[:-1]], steps)]
    rates = [n * batch_size / d for n, d in zip(per_epoch, model.history_[:, "dur"])]
    return statistics.median(rates)


def cebra_throughput(sequences, iterations=(100, 400)):
    """CEBRA-Time samples per second (batch 512, offset10 model), or None without cebra.

    Two fits of different lengths on the first sequence; the rate is their difference in
    samples over their difference in time, so CEBRA's setup is excluded as ours is.
    """
    try:
        import cebra
    except ImportError:
        return None
    data = sequences[0]
    seconds = []
    for n in iterations:
        model = cebra.CEBRA(
            model_architecture="offset10-model",
            batch_size=512,
            max_iterations=n,
            conditional="time",
            device="cpu",
            verbose=False,
        )
        with thread_budget():
            start = time.perf_counter()
            model.fit(data)
            seconds.append(time.perf_counter() - start)
    return (iterations[1] - iterations[0]) * 512 / (seconds[1] - seconds[0])


def throughput(shape, batch_sizes, epochs):
    """Our windows/s per batch size beside CEBRA's samples/s, measured alternately."""
    sequences = make_sequences(*shape)
    rows = {"ours": {b: [] for b in batch_sizes}, "cebra": []}
    with thread_budget():
        for _ in range(2):  # alternate, so that other load hits every row alike
            for b in batch_sizes:
                _say(f"throughput: batch {b}")
                rows["ours"][b].append(windows_per_second(sequences, b, epochs))
            _say("throughput: CEBRA")
            rows["cebra"].append(cebra_throughput(sequences))
    cebra = None if rows["cebra"][0] is None else statistics.median(rows["cebra"])
    return {
        "shape": list(shape),
        "windows_per_s": {b: statistics.median(v) for b, v in rows["ours"].items()},
        "cebra_samples_per_s": cebra,
    }


# ------------------------------------------------------------------ main
def table(result):
    load = " ".join(f"{x:.2f}" for x in result["load_average"])
    lines = [
        f"torch {torch.__version__}, {result['threads']} thread(s), {os.cpu_count()} CPUs, "
        f"load average at the end {load}",
        "",
        "| data | whole fit (s) | vectorised loop (s) | whole-fit ratio | epoch ratio "
        "| windows/s | PCA (s) | PCA share of the fit | statistics (s) "
        "| PCA cosine: 128 mean / 8 leading min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["speed"]:
        lines.append(
            f"| {r['n_sequences']} x {r['n_timepoints']} x {r['n_features']:,} "
            f"({r['data_mb']:.0f} MB, {r['epochs']} epochs) | {r['fit_s']:.2f} | "
            f"{r['loop_s']:.2f} | {r['whole_fit_ratio']:.2f} | {r['epoch_ratio']:.2f} | "
            f"{r['windows_per_s']:.0f} | {r['pca_s']:.2f} | {r['pca_s'] / r['fit_s']:.1%} | "
            f"{r['statistics_s']:.2f} | "
            f"{r['pca_mean_subspace_cosine']:.3f} / {r['pca_leading_min_cosine']:.3f} |"
        )
    lines += ["", "| measure | value | target |", "|---|---|---|"]
    mem, c = result["memory"], result["contended"]
    if mem is not None:
        lines += [
            f"| fit peak / float32 data ({mem['data_mb']:.0f} MB) | "
            f"{mem['fit_peak_over_data']:.2f} | <= 1.6 |",
            f"| transform extra / data | {mem['transform_extra_over_data']:.2f} | <= 1.0 |",
        ]
    if c is not None:
        lines += [
            f"| default fit, quiet (s) | {c['quiet_s']:.2f} | |",
            f"| same fit beside 2 CPU-bound processes (s) | {c['contended_s']:.2f} | |",
            f"| contended slowdown | {c['slowdown']:.2f}x | |",
            f"| outputs bit-identical quiet vs contended | {c['bit_identical']} | True |",
        ]
    t = result["throughput"]
    if t is not None:
        shape = " x ".join(f"{n:,}" for n in t["shape"])
        for b, rate in t["windows_per_s"].items():
            lines.append(f"| our windows/s, batch {b} ({shape}) | {rate:.0f} | |")
        cebra = t["cebra_samples_per_s"]
        lines.append(
            "| CEBRA-Time samples/s, batch 512 (first sequence, same threads) | "
            + ("skipped (cebra not installed)" if cebra is None else f"{cebra:.0f}")
            + " | |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--epochs", type=int, default=None, help="default: max_epochs=50")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--shapes",
        default="all",
        choices=["all", "short", "runs"],
        help="speed rows: both shapes, only the many short sequences, or only the runs",
    )
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(b) for b in text.split(",")],
        default=[32, 64, 128, 256],
        help="batch sizes of the throughput rows (comma-separated)",
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts {args.parts!r}: choose among {','.join(PARTS)}")
    shapes = QUICK if args.quick else SHAPES
    epochs = args.epochs or (2 if args.quick else 50)  # 50: the default max_epochs
    small = shapes["many short sequences"]
    result = {
        "threads": resolve_n_threads(),
        "speed": [],
        "memory": None,
        "contended": None,
        "throughput": None,
    }
    if "speed" in parts:
        chosen = {"all": list(shapes), "short": list(shapes)[:1], "runs": list(shapes)[1:]}
        result["speed"] = [
            speed(name, shapes[name], epochs, 3, args.repeats) for name in chosen[args.shapes]
        ]
    if "memory" in parts:
        _say("memory")
        result["memory"] = peak_memory(small, 3)
    if "contended" in parts:
        _say("contended")
        result["contended"] = contended(shapes["Sherlock-like runs"], epochs, 3)
    if "throughput" in parts:
        result["throughput"] = throughput(
            shapes["Sherlock-like runs"], args.batch_sizes, 3 if args.quick else 5
        )
    result["load_average"] = os.getloadavg()
    for row in result["speed"]:
        row.pop("fitted")
    print(table(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
