"""features._prep.factorize: numbered ids ("C00012345") are encoded through a table over their numbers,
without hashing a string; the codes and uniques are pandas' own (first appearance), whatever the ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.features._prep import _numbered_factorize, argsort_ids, factorize, positions


def assert_like_pandas(ids: list[str], *, numbered: bool) -> None:
    values = pd.Series(pd.array(ids, dtype="str"))
    codes, uniques = factorize(values)
    want_codes, want_uniques = pd.factorize(np.array(ids, dtype=object))
    assert codes.tolist() == want_codes.tolist()
    assert uniques.tolist() == list(want_uniques) and uniques.dtype == "str"
    assert (_numbered_factorize(values) is not None) == numbered


@pytest.mark.parametrize("seed", range(5))
def test_numbered_ids_encode_like_pandas(seed):
    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 10))
    numbers = rng.integers(0, min(10**width, 3000), 2000)
    assert_like_pandas([f"CU-{k:0{width}d}" for k in numbers], numbered=True)


def test_long_numbers_and_bare_digits():
    rng = np.random.default_rng(1)
    base = 10**17  # 18 digits: int64 numbers
    assert_like_pandas([str(base + k) for k in rng.integers(0, 500, 1000)], numbered=True)
    assert_like_pandas(["7", "3", "7", "0", "9"], numbered=True)


@pytest.mark.parametrize("ids", [
    ["C001", "C002", "C0003", "C001"],          # widths differ
    ["C001", "D002", "C001"],                   # prefixes differ
    ["C001", "C00A", "C001"],                   # a letter among the digits
    ["C+01", "C001", "C-01", "C+01"],           # "+01" and "001" are different ids, not one number
    ["C0000000001", "C9999999999"],             # 10 numbers over a range of 10 billion: no table
    ["A", "B", "A"],                            # no digit
    ["1234567890123456789", "1234567890123456788"],  # 19 digits
    ["é01", "é02", "é01"],                      # a non-ASCII prefix of the same byte length
])
def test_other_ids_are_hashed_with_the_same_result(ids):
    assert_like_pandas(ids, numbered=ids[0] == "é01")


def test_missing_ids_and_other_dtypes_are_left_to_pandas():
    with_missing = pd.Series(pd.array(["C01", None, "C01"], dtype="str"))
    assert _numbered_factorize(with_missing) is None
    assert factorize(with_missing)[0].tolist() == [0, -1, 0]
    objects = pd.Series(["C01", "C02", "C01"], dtype=object)
    assert _numbered_factorize(objects) is None and factorize(objects)[0].tolist() == [0, 1, 0]


def test_fixed_width_ids_sort_like_strings():
    rng = np.random.default_rng(3)
    ids = pd.Index(pd.array([f"X{k:06d}" for k in rng.permutation(5000)[:3000]], dtype="str"))
    assert ids.take(argsort_ids(ids)).tolist() == sorted(ids.tolist())


@pytest.mark.parametrize(("ids", "values", "want"), [
    (["C003", "C001", "C002"], ["C001", "C009", "C003", "C001", "X001", "C01"], [1, -1, 0, 1, -1, -1]),
    (["C003", "C001", "C002"], ["D001", "D003"], [-1, -1]),                     # another prefix
    (["C003", "C001"], ["C0001", "C001"], [-1, 1]),                             # another width
    (["a", "bb"], ["bb", "c", "a"], [1, -1, 0]),                                # not numbered: hashed
    (["C001"], [], []),
    ([], ["C001"], [-1]),
])
def test_positions_of_values_among_ids(ids, values, want):
    got = positions(pd.Index(pd.array(ids, dtype="str")), pd.Series(pd.array(values, dtype="str")))
    assert got.tolist() == want


def test_positions_agree_with_get_indexer_whatever_the_ids():
    rng = np.random.default_rng(4)
    ids = pd.Index(pd.array([f"K{k:07d}" for k in rng.permutation(20_000)[:5000]], dtype="str"))
    values = pd.Series(pd.array([f"K{k:07d}" for k in rng.integers(0, 30_000, 40_000)], dtype="str"))
    want = ids.get_indexer(values)
    assert (positions(ids, values) == want).all() and (want >= 0).mean() > 0.1
    assert (positions(ids, values.astype(object)) == want).all()  # hashed
