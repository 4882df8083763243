"""Compute benchmark of TemporalContrastiveEmbedder: one command, one table per run.

    python benchmarks/compute.py            # default sizes (a few minutes on 2 CPU cores)
    python benchmarks/compute.py --quick    # smaller sizes, for a smoke test
    python benchmarks/compute.py --json     # the same measurements as JSON
    python benchmarks/compute.py --contended  # only the contended-CPU measurement

Every ratio compares measurements taken in the same run, on the same device:

* skorch overhead: training epochs of ``embedder.fit`` (skorch's per-epoch ``dur``) against a
  hand-written PyTorch loop on the same module, windows, batches, optimizer and loss
  (target <= 1.05). The two are run alternately ``--repeats`` times; medians are reported.
* transform throughput (sequences/s).
* peak RSS: a fresh subprocess builds the float32 data, then fits; ``ru_maxrss`` minus the RSS
  measured just before the data was built, divided by the data's float32 size (target <= 2;
  the data itself counts as 1).
* scaling: seconds per training epoch as n_samples, time points and features grow.
* contended: the same fit quiet, then with one CPU-bound process beside it (the thread
  policy of ``sklearn_tcssl._utils.threads`` at work; target slowdown <= 2.2 on 2 cores), and, for
  reference, with torch using every CPU regardless of load (``n_threads=-1``, torch's
  default behaviour before the policy).
* data loading share: fraction of a training step spent waiting for the DataLoader, for
  in-memory sequences and for 4D volumes read lazily (with and without ``cache_dir``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

import sklearn_tcssl
from sklearn_tcssl import TemporalContrastiveEmbedder, config_context
from sklearn_tcssl._utils.threads import resolve_n_threads
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.losses import TemporalContrastiveLoss
from sklearn_tcssl.nn.windows import TripletWindowDataset

SEGMENT = 5


def make_sequences(n_samples, n_timepoints, n_features, seed=0):
    """Float32 sequences, built one at a time (no temporary copy of the whole data)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(8, n_features)).astype(np.float32)
    sequences = []
    for _ in range(n_samples):
        latent = (np.cumsum(rng.normal(size=(n_timepoints, 8)), axis=0) * 0.3).astype(np.float32)
        noise = rng.standard_normal(size=(n_timepoints, n_features), dtype=np.float32)
        sequences.append(latent @ mixing + noise)
    return sequences


def embedder_params(epochs):
    return {
        "n_components": 128,
        "segment_length": SEGMENT,
        "max_epochs": epochs,
        "batch_size": 32,
        "device": "cpu" if not torch.cuda.is_available() else "cuda",
        "random_state": 0,
    }


# ------------------------------------------------------------ overhead
def hand_loop(sequences, epochs, device, seed=0):
    """The same training as the embedder, written by hand; returns seconds per epoch."""
    stacked = np.concatenate(sequences)
    mean, scale = torch.from_numpy(stacked.mean(0)), torch.from_numpy(stacked.std(0))
    del stacked
    tensors = [torch.from_numpy(s) for s in sequences]
    torch.manual_seed(seed)
    module = TimeSeriesEncoder(tensors[0].shape[1], 128).to(device)
    criterion = TemporalContrastiveLoss(0.1, "batch")
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4)
    # like the embedder: windows standardised as they are drawn
    dataset = TripletWindowDataset(tensors, SEGMENT, mean=mean, scale=scale)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=32, shuffle=True, drop_last=True, pin_memory=device.type == "cuda"
    )
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        module.train()
        for windows, _ in loader:
            windows = windows.to(device, non_blocking=True)
            z = module(windows)
            loss = criterion(*z.unbind(dim=1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # skorch reads the loss every batch too
        durations.append(time.perf_counter() - start)
    return durations


def overhead(sequences, epochs, repeats):
    device = torch.device(embedder_params(1)["device"])
    skorch_epoch, hand_epoch, fit_wall = [], [], []
    for _ in range(repeats):
        embedder = TemporalContrastiveEmbedder(**embedder_params(epochs))
        start = time.perf_counter()
        embedder.fit(sequences)
        fit_wall.append(time.perf_counter() - start)
        skorch_epoch.append(statistics.median(embedder.history_[:, "dur"]))
        hand_epoch.append(statistics.median(hand_loop(sequences, epochs, device)))
    skorch_s, hand_s = statistics.median(skorch_epoch), statistics.median(hand_epoch)
    n = len(sequences) // 32 * 32
    embedder.transform(sequences[:32])  # warm-up (first-call allocations)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        embedder.transform(sequences)
        timings.append(time.perf_counter() - start)
    transform_s = statistics.median(timings)
    return {
        "fit_sequences_per_s_embedder": n / skorch_s,
        "fit_sequences_per_s_hand_loop": n / hand_s,
        "skorch_overhead_ratio": skorch_s / hand_s,
        "fit_wall_s_incl_pca_and_standardization": statistics.median(fit_wall),
        "transform_sequences_per_s": len(sequences) / transform_s,
    }


# ---------------------------------------------------------------- memory
_RSS_CHILD = """
import resource, sys
import numpy as np
from sklearn_tcssl import TemporalContrastiveEmbedder
sys.path.insert(0, {here!r})
from compute import embedder_params, make_sequences

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) * 1024

before = rss()
X = make_sequences({n}, {t}, {v})
data = sum(x.nbytes for x in X)
TemporalContrastiveEmbedder(**embedder_params(1)).fit(X)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(before, peak, data)
"""


def peak_rss(n, t, v):
    code = _RSS_CHILD.format(here=str(Path(__file__).parent), n=n, t=t, v=v)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, peak, data = map(int, out.stdout.split()[-3:])
    return {
        "data_float32_mb": data / 2**20,
        "peak_rss_above_baseline_mb": (peak - before) / 2**20,
        "peak_rss_over_data_ratio": (peak - before) / data,
    }


# --------------------------------------------------------------- scaling
def scaling(base, grid):
    rows = []
    for name, values in grid.items():
        for value in values:
            size = {**base, name: value}
            X = make_sequences(size["n_samples"], size["n_timepoints"], size["n_features"])
            embedder = TemporalContrastiveEmbedder(**embedder_params(2)).fit(X)
            rows.append({**size, "s_per_epoch": statistics.median(embedder.history_[:, "dur"])})
    return rows


# ----------------------------------------------------------- data loading
def loading_share(dataset, module, steps, device):
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
    criterion = TemporalContrastiveLoss(0.1, "batch")
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    wait = total = 0.0
    done = 0
    while done < steps:
        iterator = iter(loader)
        while done < steps:
            start = time.perf_counter()
            try:
                windows, _ = next(iterator)
            except StopIteration:
                break
            loaded = time.perf_counter()
            z = module(windows.to(device))
            loss = criterion(*z.unbind(dim=1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            end = time.perf_counter()
            if done > 0:  # skip the first (warm-up) step
                wait += loaded - start
                total += end - start
            done += 1
    return wait / total


def volume_images(folder, n_runs, n_frames):
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n_runs):
        shape, size = ((40, 48, 40), 4.0) if i % 2 else ((53, 63, 52), 3.0)
        data = rng.normal(size=(*shape, n_frames)).astype(np.float32)
        path = Path(folder) / f"run-{i}.nii"
        nib.save(nib.Nifti1Image(data, np.diag([size, size, size, 1.0])), path)
        paths.append(str(path))
    return paths


def loading_shares(sequences, steps):
    from sklearn_tcssl._input.volumes import VolumeRun, bounding_grid, check_images
    from sklearn_tcssl.nn.volume import VolumeEncoder

    device = torch.device(embedder_params(1)["device"])
    tensors = [torch.from_numpy(s) for s in sequences]
    module = TimeSeriesEncoder(tensors[0].shape[1], 128).to(device)
    shares = {
        "sequences_in_memory": loading_share(
            TripletWindowDataset(tensors, SEGMENT), module, steps, device
        )
    }
    with tempfile.TemporaryDirectory() as folder:
        images = check_images(volume_images(folder, 8, 40), estimator_name="benchmark")
        affine, shape = bounding_grid(images, 4.0)
        for label, cache in (("volumes_lazy_no_cache", None), ("volumes_cache_dir", folder)):
            runs = [VolumeRun(img, affine, shape, cache_dir=cache) for img in images]
            if cache is not None:
                for run in runs:
                    run.read(0, 1)  # first epoch fills the cache; measure the later ones
            torch.manual_seed(0)
            module = VolumeEncoder(shape, 128).to(device)
            dataset = TripletWindowDataset(runs, 3)
            shares[label] = loading_share(dataset, module, max(steps // 4, 3), device)
        shares["volume_grid"] = "x".join(map(str, shape))
    return shares


# ------------------------------------------------------------------ contended
BUSY_LOOP = "while True: pass"


def _timed_fit(sequences, epochs, cpu=None):
    """Wall seconds of one fit; appends its CPU seconds (all threads) to ``cpu``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    TemporalContrastiveEmbedder(**embedder_params(epochs)).fit(sequences)
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start


def _beside_busy_process(function):
    """Run ``function()`` with one CPU-bound process beside it; return its result."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        time.sleep(1.0)
        return function()
    finally:
        busy.kill()
        busy.wait()


def contended(sequences, epochs, repeats):
    """Fit wall time quiet and beside one CPU-bound process; medians over ``repeats``.

    Quiet and contended fits alternate, so that a change in the machine's other load
    affects both alike.
    """
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    _timed_fit(sequences[:32], 1)  # warm-up (imports, first allocations)
    cpu = {"quiet": [], "contended": [], "all_cpus": []}
    quiet, loaded, threads = [], [], {"quiet": [], "contended": []}
    for _ in range(repeats):
        threads["quiet"].append(resolve_n_threads())
        quiet.append(_timed_fit(sequences, epochs, cpu["quiet"]))
        n_threads, seconds = _beside_busy_process(
            lambda: (resolve_n_threads(), _timed_fit(sequences, epochs, cpu["contended"]))
        )
        threads["contended"].append(n_threads)
        loaded.append(seconds)
    with config_context(n_threads=-1):  # every CPU, busy or not (torch's default)
        greedy = _beside_busy_process(lambda: _timed_fit(sequences, epochs, cpu["all_cpus"]))
    quiet_s, loaded_s = statistics.median(quiet), statistics.median(loaded)
    return {
        "quiet_s": quiet_s,
        "quiet_threads": statistics.median(threads["quiet"]),
        "contended_s": loaded_s,
        "contended_threads": statistics.median(threads["contended"]),
        "slowdown": loaded_s / quiet_s,
        "contended_all_cpus_s": greedy,
        "slowdown_all_cpus": greedy / quiet_s,
        "cpu_s": {key: statistics.median(values) for key, values in cpu.items()},
        "load_before": load_before,
        "cpus": os.cpu_count(),
    }


def contended_table(c):
    return "\n".join(
        [
            f"| fit, quiet (s; {c['quiet_threads']} torch threads) | {c['quiet_s']:.2f} | |",
            f"| fit, one busy process beside it (s; {c['contended_threads']} threads) | "
            f"{c['contended_s']:.2f} | |",
            f"| contended slowdown (thread policy) | {c['slowdown']:.2f}x | <= 2.2x on 2 cores |",
            f"| contended slowdown, every CPU regardless of load | "
            f"{c['slowdown_all_cpus']:.2f}x | (reference) |",
            f"| CPU seconds of a fit: quiet / contended / every CPU | "
            f"{c['cpu_s']['quiet']:.1f} / {c['cpu_s']['contended']:.1f} / "
            f"{c['cpu_s']['all_cpus']:.1f} | (spinning shows as extra CPU) |",
            f"| 1-min load average before (other jobs) | {c['load_before']:.1f} | |",
        ]
    )


# ------------------------------------------------------------------ main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="sklearn_tcssl.set_config(n_threads=...)"
    )
    parser.add_argument(
        "--contended", action="store_true", help="only the quiet vs. contended measurement"
    )
    args = parser.parse_args()
    if args.threads:
        sklearn_tcssl.set_config(n_threads=args.threads)
    n, t, v = (128, 40, 1000) if args.quick else (256, 60, 2000)
    epochs = 2 if args.quick else 3
    sequences = make_sequences(n, t, v)
    if args.contended:
        result = contended(sequences, epochs, args.repeats)
        print(json.dumps(result, indent=2) if args.json else contended_table(result))
        return
    result = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch_threads": resolve_n_threads(),
        "data": {"n_samples": n, "n_timepoints": t, "n_features": v},
        "throughput": overhead(sequences, epochs, args.repeats),
        "memory": peak_rss(*((200, 50, 2500) if args.quick else (400, 100, 2500))),
        "scaling": scaling(
            {"n_samples": 128, "n_timepoints": 40, "n_features": 1000},
            {"n_samples": [64, 256], "n_timepoints": [20, 80], "n_features": [250, 4000]}
            if args.quick
            else {
                "n_samples": [64, 128, 256, 512],
                "n_timepoints": [20, 40, 80, 160],
                "n_features": [250, 1000, 4000, 16000],
            },
        ),
        "data_loading_share": loading_shares(sequences, 12 if args.quick else 24),
        "contended": contended(sequences, epochs, args.repeats),
    }
    print(json.dumps(result, indent=2) if args.json else table(result))


def table(result):
    thr, mem, load = result["throughput"], result["memory"], result["data_loading_share"]
    lines = [
        f"device: {result['device']} (torch threads: {result['torch_threads']}); "
        f"data: {result['data']}",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| fit throughput, embedder (sequences/s) | "
        f"{thr['fit_sequences_per_s_embedder']:.0f} | |",
        f"| fit throughput, hand-written loop (sequences/s) | "
        f"{thr['fit_sequences_per_s_hand_loop']:.0f} | |",
        f"| skorch overhead ratio (epoch time) | {thr['skorch_overhead_ratio']:.3f} | <= 1.05 |",
        f"| fit wall time incl. PCA init + standardisation (s) | "
        f"{thr['fit_wall_s_incl_pca_and_standardization']:.2f} | |",
        f"| transform throughput (sequences/s) | {thr['transform_sequences_per_s']:.0f} | |",
        f"| data float32 (MB) / peak RSS above baseline (MB) | {mem['data_float32_mb']:.0f} / "
        f"{mem['peak_rss_above_baseline_mb']:.0f} | |",
        f"| peak RSS / float32 data size | {mem['peak_rss_over_data_ratio']:.2f} | <= 2 |",
    ]
    for key, value in load.items():
        if key != "volume_grid":
            lines.append(f"| data-loading share of a step, {key} | {value:.0%} | |")
    lines += [f"| volume grid (4 mm) | {load['volume_grid']} | |"]
    lines += [contended_table(result["contended"]), ""]
    lines += ["| n_samples | n_timepoints | n_features | s / epoch |", "|---|---|---|---|"]
    lines += [
        f"| {r['n_samples']} | {r['n_timepoints']} | {r['n_features']} | {r['s_per_epoch']:.3f} |"
        for r in result["scaling"]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
