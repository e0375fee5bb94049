"""Build graphc/datasets/digits.npz from the UCI optical digits (the copy scikit-learn ships).

Usage: python scripts/make_digits.py path/to/digits.csv.gz [OUT.npz]

The source file is ``sklearn/datasets/data/digits.csv.gz`` inside the scikit-learn wheel
(1.9.1 was used): 1,797 rows of 64 pixel counts (0..16) and a label, the test set
``optdigits.tes`` of the UCI repository's "Optical Recognition of Handwritten Digits"
(E. Alpaydin, C. Kaynak, 1998; https://doi.org/10.24432/C50P49; CC BY 4.0).

The split is made here, once, and stored: 360 test images (stratified, 35 to 37 per
digit), 1,437 training images, each part in a seeded random order. Storing it keeps the
split fixed however numpy's generators change.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

TEST_SIZE = 360
SEED = 1998  # the year the data set was donated


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rt", encoding="ascii") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65) or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise SystemExit(f"{path}: expected 1797 rows of 64 pixels in 0..16 and a label, found {table.shape}")
    return table[:, :64].astype(np.uint8), table[:, 64].astype(np.uint8)


def stratified_test_rows(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` row numbers, each class's share rounded by largest remainder."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / counts.sum()
    share = np.floor(exact).astype(int)
    share[np.argsort(share - exact, kind="stable")[: size - share.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, share)]
    return np.sort(np.concatenate(chosen))


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    pixels, labels = read_csv(source)
    rng = np.random.default_rng(SEED)
    test = stratified_test_rows(labels, TEST_SIZE, rng)
    train = np.setdiff1d(np.arange(len(labels)), test)
    train, test = rng.permutation(train), rng.permutation(test)
    shipped = Path(__file__).resolve().parent.parent / "graphc" / "datasets" / "digits.npz"
    out = Path(argv[1]) if len(argv) > 1 else shipped
    np.savez_compressed(out, X_train=pixels[train], y_train=labels[train], X_test=pixels[test], y_test=labels[test])
    print(f"{out}: {out.stat().st_size} bytes, {len(train)} train / {len(test)} test")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
