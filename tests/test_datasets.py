"""The shipped digits: shapes, dtypes, a fixed split, class balance, and its exact content."""

import hashlib
from importlib import resources

import numpy as np
import pytest

import graphc as gc

# sha256 over X_train, y_train, X_test, y_test as returned (float64 and int64 bytes, C order):
# pins the pixels, the labels and the split.
CHECKSUM = "a144c2c90f3e2ad683d2ec47d93f95f05905c3282b678729708a31932f6e128e"


def test_shapes_and_dtypes():
    (X_train, y_train), (X_test, y_test) = gc.datasets.digits()
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert X_train.dtype == X_test.dtype == np.float64
    assert y_train.dtype == y_test.dtype == np.int64


def test_pixels_are_the_counts_0_to_16_over_16_and_labels_are_digits():
    (X_train, y_train), (X_test, y_test) = gc.datasets.digits()
    for X in (X_train, X_test):
        counts = X * 16
        assert np.array_equal(counts, np.round(counts)) and counts.min() == 0 and counts.max() == 16
    assert set(np.unique(np.concatenate([y_train, y_test]))) == set(range(10))


def test_the_split_is_fixed_and_the_content_is_pinned():
    first, second = gc.datasets.digits(), gc.datasets.digits()
    digest = hashlib.sha256()
    for a, b in zip((*first[0], *first[1]), (*second[0], *second[1])):
        np.testing.assert_array_equal(a, b)
        digest.update(np.ascontiguousarray(a).tobytes())
    assert digest.hexdigest() == CHECKSUM


def test_every_digit_is_balanced_in_both_parts():
    (_, y_train), (_, y_test) = gc.datasets.digits()
    test_counts, train_counts = np.bincount(y_test, minlength=10), np.bincount(y_train, minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37  # stratified: 360 / 10 each, rounded
    assert train_counts.min() >= 139 and train_counts.max() <= 146
    assert test_counts.sum() + train_counts.sum() == 1797


def test_images_come_as_nchw_for_convolutions():
    (flat, _), (flat_test, _) = gc.datasets.digits()
    (images, _), (images_test, _) = gc.datasets.digits(images=True)
    assert images.shape == (1437, 1, 8, 8) and images_test.shape == (360, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(1437, 64), flat)
    np.testing.assert_array_equal(images[:, 0, 0, :], flat[:, :8])  # rows of the image are runs of 8 pixels


def test_the_data_and_its_licence_ship_in_the_package():
    files = resources.files("graphc.datasets")
    text = files.joinpath("LICENSE-digits.txt").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "10.24432/C50P49" in text and "optdigits.tes" in text
    assert files.joinpath("digits.npz").is_file()


def test_one_hot():
    np.testing.assert_array_equal(gc.datasets.one_hot(np.array([1, 0, 2]), 3),
                                  [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(gc.GraphcError, match=r"labels must lie in 0..2, found 0..3"):
        gc.datasets.one_hot(np.array([0, 3]), 3)
    with pytest.raises(gc.GraphcError, match="integer labels of shape"):
        gc.datasets.one_hot(np.array([0.5]), 3)
