"""Out-of-core benchmark: pretraining from ``.npy`` runs on disk, memory and throughput.

    python benchmarks/out_of_core.py                   # corpora of 1 and 4 GB (about 10 min)
    python benchmarks/out_of_core.py --gb 0.25 --quick # a smoke test
    python benchmarks/out_of_core.py --gb 1 4 --out out.json --rst docs/large_corpora_table.rst.inc
    python benchmarks/out_of_core.py --gb 30 --repeats 0 --no-resume  # larger than RAM

For each size, a corpus of float32 ``(n_timepoints, n_features)`` runs is written as ``.npy``
files in a temporary folder (``--dir``), and :class:`TemporalContrastiveEmbedder` is fitted on
the list of paths (memory maps) in a fresh process, with the files dropped from the page cache
first (``posix_fadvise(DONTNEED)``), so setup reads them from disk. The child samples its own
``/proc/self/status`` every 20 ms and reports, above its baseline (after imports, before the
fit):

* **anonymous memory** (``RssAnon``): what the process allocated; the bound that matters, as
  it cannot be given back without swap;
* **file-backed memory** (``RssFile``): pages of the memory-mapped runs (and libraries) that
  the process has touched. They are the kernel's page cache, counted in the RSS while mapped,
  and reclaimed under memory pressure (clean pages, re-read from disk when needed): a corpus
  larger than RAM trains without the OOM killer, at disk speed once it no longer fits.

Throughput is windows per second of the best training epoch after the first (skorch's epoch
``dur``; and per CPU second of the process, which a busy machine disturbs less), for the
same first runs held in memory (``np.load`` without a memory map) and as memory maps
(alternated, ``--repeats`` times each, as the machine's load drifts), and for the whole
corpus as memory maps. Setup (the fit's time outside its epochs: validation, statistics,
PCA initialisation) is timed apart. Last, a resume check: a fit with ``checkpoint_dir`` is
killed (SIGKILL) after its first checkpoint, started again, and must end with the same
weights as an uninterrupted fit.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SEGMENT_LENGTH = 3
_STATUS_KEYS = ("RssAnon", "RssFile", "VmHWM")


# ------------------------------------------------------------------ the child process
def _status():
    """``RssAnon``, ``RssFile``, ``VmHWM`` of this process, in bytes."""
    values = {}
    with open("/proc/self/status") as file:
        for line in file:
            key, _, rest = line.partition(":")
            if key in _STATUS_KEYS:
                values[key] = int(rest.split()[0]) * 1024
    return values


class _PeakSampler(threading.Thread):
    """Sample ``/proc/self/status`` every ``interval`` s and keep the peaks."""

    def __init__(self, interval=0.02):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, _status(), threading.Event()

    def run(self):
        while not self._done.wait(self.interval):
            now = _status()
            self.peak = {k: max(self.peak[k], now[k]) for k in now}

    def stop(self):
        self._done.set()
        self.join()
        now = _status()
        return {k: max(self.peak[k], now[k]) for k in now}


def _drop_from_page_cache(paths):
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _weights_digest(embedder):
    digest = hashlib.sha256()
    for name, tensor in sorted(embedder.net_.module_.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _child(args):
    """Fit once as told by ``args``; print one JSON line of measurements."""
    import torch
    from skorch.callbacks import Callback

    class EpochsRunHere(Callback):  # epochs trained by this process, and their CPU time
        def initialize(self):
            self.cpu_s = getattr(self, "cpu_s", [])
            return self

        def on_epoch_begin(self, net, **kwargs):
            self._start = time.process_time()

        def on_epoch_end(self, net, **kwargs):
            self.cpu_s.append(time.process_time() - self._start)

        @property
        def count(self):
            return len(self.cpu_s)

    from sklearn_tcssl import TemporalContrastiveEmbedder
    from sklearn_tcssl.nn.windows import windows_per_sequence

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # import torch._dynamo now
    paths = json.loads(Path(args.paths).read_text())
    _drop_from_page_cache(paths)
    baseline = _status()
    sampler = _PeakSampler()
    sampler.start()
    start = time.perf_counter()
    X = [np.load(p) for p in paths] if args.mode == "memory" else paths
    loaded = time.perf_counter() - start
    counter = EpochsRunHere()
    fit_start = time.perf_counter()
    embedder = TemporalContrastiveEmbedder(
        callbacks=[counter],
        segment_length=SEGMENT_LENGTH,
        max_epochs=args.max_epochs,
        random_state=0,
        checkpoint_dir=args.checkpoint_dir,
        device="cpu",
    ).fit(X)
    fit_s = time.perf_counter() - fit_start
    peak = sampler.stop()
    lengths = [len(np.load(p, mmap_mode="r")) for p in paths]
    n_windows = int(windows_per_sequence(lengths, 3 * SEGMENT_LENGTH).sum())
    durations = embedder.history_[:, "dur"]
    result = {
        "mode": args.mode,
        "n_runs": len(paths),
        "gb": sum(os.path.getsize(p) for p in paths) / 2**30,
        "anon_above_baseline_gb": (peak["RssAnon"] - baseline["RssAnon"]) / 2**30,
        "file_above_baseline_gb": (peak["RssFile"] - baseline["RssFile"]) / 2**30,
        "hwm_gb": peak["VmHWM"] / 2**30,
        "load_s": loaded,
        "setup_s": fit_s - float(sum(durations[-counter.count :])),  # epochs run here
        "epoch_s": float(min(durations[1:] or durations)),  # the best after the first
        "windows_per_s": n_windows / float(min(durations[1:] or durations)),
        "windows_per_cpu_s": n_windows / min(counter.cpu_s[1:] or counter.cpu_s),
        "epochs": len(durations),
        "epochs_run_here": counter.count,
        "weights": _weights_digest(embedder),
    }
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ the parent process
def write_corpus(folder, gb, n_timepoints, n_features, seed=0):
    """Write float32 ``.npy`` runs totalling about ``gb`` GiB; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    run_bytes = n_timepoints * n_features * 4
    n_runs = max(2, round(gb * 2**30 / run_bytes))
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal((4096 + 256, n_features), dtype=np.float32)  # noise to reuse
    paths = []
    for i in range(n_runs):
        path = folder / f"run-{i:04d}.npy"
        out = np.lib.format.open_memmap(path, "w+", np.float32, (n_timepoints, n_features))
        for start in range(0, n_timepoints, 256):  # a slow drift + noise, 256 rows at a time
            rows = out[start : start + 256]
            offset = int(rng.integers(4096))
            np.add(pool[offset : offset + len(rows)], np.sin(start / 40.0 + i), out=rows)
        out.flush()
        del out
        paths.append(str(path))
    return paths


def _run_child(paths, mode, max_epochs, workdir, checkpoint_dir=None, kill_after=None):
    listing = workdir / f"paths-{len(paths)}-{mode}.json"
    listing.write_text(json.dumps(paths))
    command = [sys.executable, __file__, "--child", "--mode", mode, "--paths", str(listing)]
    command += ["--max-epochs", str(max_epochs)]
    if checkpoint_dir is not None:
        command += ["--checkpoint-dir", str(checkpoint_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKLEARN_TCSSL_N_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    if kill_after is not None:  # crash the fit as soon as its first checkpoint exists
        while process.poll() is None and not any(Path(checkpoint_dir).glob(kill_after)):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"child failed ({process.returncode}): {' '.join(command)}")
    return json.loads(out.strip().splitlines()[-1])


def _resume_check(paths, workdir):
    """Uninterrupted 3-epoch fit vs one killed after its first checkpoint and restarted."""
    whole = _run_child(paths, "memmap", 3, workdir, checkpoint_dir=workdir / "ckpt-a")
    killed = workdir / "ckpt-b"
    _run_child(paths, "memmap", 3, workdir, checkpoint_dir=killed, kill_after="epoch-*")
    at_kill = sorted(p.name for p in killed.glob("epoch-*"))
    resumed = _run_child(paths, "memmap", 3, workdir, checkpoint_dir=killed)
    return {
        "checkpoints_at_kill": at_kill,
        "epochs_run_after_restart": resumed["epochs_run_here"],
        "identical_weights": whole["weights"] == resumed["weights"],
        "uninterrupted_epoch_s": whole["epoch_s"],
    }


def _table(rows):
    head = (
        f"{'corpus':>8} {'runs':>5} {'X as':>8} {'anon GB':>8} {'file GB':>8} "
        f"{'setup s':>8} {'windows/s':>10} {'per CPU s':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['gb']:>7.2f}G {r['n_runs']:>5} {r['mode']:>8} "
            f"{r['anon_above_baseline_gb']:>8.2f} {r['file_above_baseline_gb']:>8.2f} "
            f"{r['setup_s']:>8.1f} {r['windows_per_s']:>10.0f} {r['windows_per_cpu_s']:>10.0f}"
        )
    return "\n".join(lines)


def _rst(rows, resume, load):
    """The table of the docs (``docs/large_corpora_table.rst.inc``)."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - corpus on disk (GiB)",
        "     - X given as",
        "     - peak anonymous memory above baseline (MiB)",
        "     - peak file-backed memory above baseline (MiB)",
        "     - setup (s)",
        "     - windows/s (wall)",
        "     - windows per CPU second",
    ]
    for r in rows:
        given = "arrays in memory" if r["mode"] == "memory" else ".npy paths (memory maps)"
        lines += [
            f"   * - {r['gb']:.2f} ({r['n_runs']} runs)",
            f"     - {given}",
            f"     - {r['anon_above_baseline_gb'] * 1024:,.0f}",
            f"     - {r['file_above_baseline_gb'] * 1024:,.0f}",
            f"     - {r['setup_s']:.1f}",
            f"     - {r['windows_per_s']:.0f}",
            f"     - {r['windows_per_cpu_s']:.0f}",
        ]
    if resume is not None:
        same = "identical" if resume["identical_weights"] else "DIFFERENT"
        lines += [
            "",
            f"Resume: a 3-epoch fit killed with SIGKILL after its checkpoint "
            f"{resume['checkpoints_at_kill'][-1]}, started again, trained "
            f"{resume['epochs_run_after_restart']} epoch(s) and ended with {same} weights to "
            "an uninterrupted fit.",
        ]
    lines += ["", f"Load average during the run: {load[1]:.1f} (5 min, 2 cores, 1 thread)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, nargs="+", default=[1.0, 4.0], help="corpus sizes")
    parser.add_argument("--subset-gb", type=float, default=0.5, help="in-memory comparison")
    parser.add_argument("--n-timepoints", type=int, default=1200, help="time points per run")
    parser.add_argument("--n-features", type=int, default=5000, help="features per run")
    parser.add_argument("--max-epochs", type=int, default=3, help="the best after the first")
    parser.add_argument("--repeats", type=int, default=2, help="alternated subset fits")
    parser.add_argument("--dir", type=Path, default=None, help="where corpora are written")
    parser.add_argument("--quick", action="store_true", help="small runs, 1 epoch")
    parser.add_argument("--no-resume", action="store_true", help="skip the resume check")
    parser.add_argument("--out", type=Path, default=None, help="also write JSON here")
    parser.add_argument("--rst", type=Path, default=None, help="also write the docs' table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="memmap", help=argparse.SUPPRESS)
    parser.add_argument("--paths", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    if args.quick:
        args.n_timepoints, args.n_features, args.max_epochs, args.repeats = 300, 500, 2, 1
    workdir = Path(tempfile.mkdtemp(prefix="tcssl-ooc-", dir=args.dir))
    try:
        rows = []
        largest = max(args.gb)
        corpus = write_corpus(workdir / "corpus", largest, args.n_timepoints, args.n_features)
        run_gb = args.n_timepoints * args.n_features * 4 / 2**30
        subset = corpus[: max(2, round(args.subset_gb / run_gb))]
        for mode in ("memory", "memmap") * args.repeats:  # alternated: the load drifts
            rows.append(_run_child(subset, mode, args.max_epochs, workdir))
            print(_table(rows[-1:]).splitlines()[-1], flush=True)
        for gb in sorted(args.gb):
            paths = corpus[: max(2, round(gb / run_gb))]
            rows.append(_run_child(paths, "memmap", args.max_epochs, workdir))
            print(_table(rows[-1:]).splitlines()[-1], flush=True)
        resume = None
        if not args.no_resume:
            resume = _resume_check(subset[: max(2, len(subset) // 4)], workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    print()
    print(_table(rows))
    if resume is not None:
        print(f"resume after SIGKILL: {resume}")
    print(f"load average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min); 1 thread")
    if args.rst is not None:
        args.rst.write_text(_rst(rows, resume, load))
    if args.out is not None:
        payload = {"rows": rows, "resume": resume, "load": load, "args": vars(args)}
        args.out.write_text(json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
