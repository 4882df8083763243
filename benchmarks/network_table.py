"""Per-network decoding on the default simulation: the table of the user guide.

    python benchmarks/network_table.py                 # prints the table (about 10 min, 2 cores)
    python benchmarks/network_table.py --rst FILE      # also writes it as a list-table

Every decoder is scored on the same subject-wise folds (``GroupKFold(5)``) within each Yeo
network: block mean + shrinkage LDA (the strongest classical reference), block mean +
logistic regression, and the TCSSL embedder (default settings, ``random_state=0``) with the
same two readouts. Mean ± sd of the accuracy over the folds.
"""

import argparse
import time

from sklearn.model_selection import GroupKFold

from sklearn_tcssl.datasets import make_task_fmri
from sklearn_tcssl.report import network_decoding_report, summarize


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rst", default=None, help="write the table as an RST list-table")
    parser.add_argument("--max-epochs", type=int, default=None, help="embedder epochs")
    args = parser.parse_args()
    params = {"random_state": 0}
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    start = time.perf_counter()
    data = make_task_fmri(random_state=0)
    scores = network_decoding_report(
        data.imgs,
        data.y,
        data.groups,
        atlas=data.networks_img,
        mask_img=data.mask_img,
        cv=GroupKFold(5),
        progress=print,
        **params,
    )
    summary = summarize(scores, by=("network", "decoder"))
    cells = {key: f"{row['mean']:.2f} ± {row['sd']:.2f}" for key, row in summary.iterrows()}
    networks = list(dict.fromkeys(k[0] for k in cells))
    decoders = list(dict.fromkeys(k[1] for k in cells))
    print(f"\n{time.perf_counter() - start:.0f} s")
    print(" | ".join(["network", *decoders]))
    for network in networks:
        print(" | ".join([network, *(cells[network, d] for d in decoders)]))
    if args.rst:
        lines = [".. list-table::", "   :header-rows: 1", ""]
        lines += ["   * - network", *(f"     - {d}" for d in decoders)]
        for network in networks:
            lines += [f"   * - {network}", *(f"     - {cells[network, d]}" for d in decoders)]
        with open(args.rst, "w") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
