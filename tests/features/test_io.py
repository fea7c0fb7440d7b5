"""The transaction contract: readers, validation messages, the bad-rows policy, atomic writes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churnclv.contract import write_table
from churnclv.features import TransactionsError, load_transactions, validate_transactions
from churnclv.features.io import read_cdnow


def write_csv(tmp_path, text: str, name: str = "tx.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "customer_id,timestamp,amount\nA,2024-01-01,10\nA,2024-01-05 10:30,5.5\nB,2024-01-02,-3\n"


def test_csv_is_read_into_the_canonical_schema(tmp_path):
    tx = load_transactions(write_csv(tmp_path, GOOD))
    assert list(tx.columns) == ["customer_id", "timestamp", "amount"]
    assert tx["customer_id"].tolist() == ["A", "A", "B"]
    assert tx["timestamp"].dtype == "datetime64[ns]"
    assert tx["timestamp"].iloc[1] == pd.Timestamp("2024-01-05 10:30")
    assert tx["amount"].tolist() == [10.0, 5.5, -3.0]


def test_leading_zeros_of_ids_are_kept(tmp_path):
    tx = load_transactions(write_csv(tmp_path, "customer_id,timestamp,amount\n007,2024-01-01,1\n"))
    assert tx["customer_id"].iloc[0] == "007"


def test_parquet_with_other_column_names_is_mapped(tmp_path):
    raw = pd.DataFrame({"cust": [1, 2], "when": pd.to_datetime(["2024-01-01", "2024-02-01"]), "value": [1.0, 2.0],
                        "channel": ["web", "store"]})
    raw.to_parquet(tmp_path / "t.parquet")
    tx = load_transactions(tmp_path / "t.parquet", customer_col="cust", timestamp_col="when", amount_col="value")
    assert tx["customer_id"].tolist() == ["1", "2"]
    assert tx["channel"].tolist() == ["web", "store"]


UCI = ("Invoice,Quantity,InvoiceDate,Price,Customer ID\n489434,12,12/1/2009 7:45,6.95,13085.0\n"
       "489434,3,12/1/2009 7:45,0.5,13085.0\nC489449,-12,12/1/2009 10:33,2.95,16321.0\n")
UCI_COLUMNS = {"customer_col": "Customer ID", "timestamp_col": "InvoiceDate", "date_format": "%m/%d/%Y %H:%M"}


def test_an_amount_can_be_quantity_times_unit_price(tmp_path):
    """An order-line log (quantity and unit price, as the UCI Online Retail export) needs no preparing: the amount is
    the product, a cancelled line (negative quantity) a return; ``Quantity*Price`` with spaces reads the same."""
    path = write_csv(tmp_path, UCI)
    for amount in ("Quantity*Price", " Quantity * Price "):
        tx = load_transactions(path, amount_col=amount, **UCI_COLUMNS)
        assert tx["amount"].tolist() == pytest.approx([83.4, 1.5, -35.4])
        assert tx["customer_id"].tolist() == ["13085.0", "13085.0", "16321.0"]


def test_a_bad_factor_is_named_by_its_own_column(tmp_path):
    text = UCI.replace(",0.5,", ",n/a,").replace(",-12,", ",twelve,")
    with pytest.raises(TransactionsError) as err:
        load_transactions(write_csv(tmp_path, text), amount_col="Quantity*Price", **UCI_COLUMNS)
    message = str(err.value)
    assert "column 'Quantity': 1 row(s) are not finite numbers (e.g. row 3: 'twelve')" in message
    assert "column 'Price': 1 row(s) are not finite numbers (e.g. row 2: 'n/a')" in message
    report = tmp_path / "rejected.csv"
    tx = load_transactions(write_csv(tmp_path, text), amount_col="Quantity*Price", bad_rows="drop",
                           report_path=report, **UCI_COLUMNS)
    assert tx["amount"].tolist() == pytest.approx([83.4])
    assert pd.read_csv(report, keep_default_na=False)[["row", "column", "value"]].values.tolist() == [[2, "Price", "n/a"],
                                                                             [3, "Quantity", "twelve"]]


@pytest.mark.parametrize(("amount", "message"), [
    ("Quantity*Cost", "amount 'Quantity*Cost': missing column(s) 'Cost'; the input has: Invoice, Quantity"),
    ("*Price", "amount column '*Price': write one column, or two multiplied (e.g. 'Quantity*Price')"),
    ("Quantity*Price*Price", "write one column, or two multiplied"),
])
def test_a_product_that_cannot_be_read_is_named(tmp_path, amount, message):
    with pytest.raises(TransactionsError, match=re.escape(message)):
        load_transactions(write_csv(tmp_path, UCI), amount_col=amount, **UCI_COLUMNS)


def test_a_column_whose_name_holds_a_star_is_that_column():
    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "net*": ["4"], "net": ["2"]})
    assert validate_transactions(raw, amount_col="net*")[0]["amount"].tolist() == [4.0]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_delimiter_is_read_from_the_header(tmp_path, sep):
    text = GOOD.replace(",", sep)
    tx = load_transactions(write_csv(tmp_path, text, name="tx.csv"))
    assert tx["amount"].tolist() == [10.0, 5.5, -3.0]


def test_gzipped_csv(tmp_path):
    import gzip

    path = tmp_path / "tx.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    assert len(load_transactions(path)) == 3


def test_epoch_numbers_are_not_dates(tmp_path):
    with pytest.raises(TransactionsError, match=r"'timestamp': 2 row\(s\) do not parse as dates \(e.g. row 1: '1704067200'"):
        load_transactions(write_csv(tmp_path, "customer_id,timestamp,amount\nA,1704067200,1\nB,1704153600,2\n"))


def test_timezones_become_utc_naive(tmp_path):
    tx = load_transactions(write_csv(tmp_path, "customer_id,timestamp,amount\nA,2024-01-01T23:30:00-02:00,1\n"))
    assert tx["timestamp"].iloc[0] == pd.Timestamp("2024-01-02 01:30")


def test_cdnow_is_the_master_log_whole_and_unchanged():
    """Properties of the CDNOW master log (Fader & Hardie's cohort: first purchases in the first quarter of
    1997, followed to the end of June 1998), not the totals of the copy a lifetimes release ships."""
    raw, tx = read_cdnow(), load_transactions("cdnow")
    assert len(tx) == len(raw) > 0  # nothing dropped
    assert set(tx["customer_id"]) == set(raw["customer_id"].astype(str))
    assert tx["amount"].sum() == pytest.approx(raw["dollar_value"].sum(), rel=1e-12)
    assert (tx["quantity"].to_numpy() == raw["number_of_cds"].to_numpy()).all()
    assert (tx["timestamp"] == tx["timestamp"].dt.normalize()).all()  # days, read with the %Y%m%d format
    first = tx.groupby("customer_id")["timestamp"].min()
    assert first.min() >= pd.Timestamp("1997-01-01") and first.max() <= pd.Timestamp("1997-03-31")
    assert tx["timestamp"].max() <= pd.Timestamp("1998-06-30")


def test_missing_columns_name_the_columns_and_the_options(tmp_path):
    with pytest.raises(TransactionsError) as err:
        load_transactions(write_csv(tmp_path, "user,date,amount\nA,2024-01-01,1\n"))
    message = str(err.value)
    assert "'customer_id'" in message and "'timestamp'" in message
    assert "user, date, amount" in message
    assert "--customer-col" in message and "--timestamp-col" in message


@pytest.mark.parametrize(
    "body, column, count, example",
    [
        ("A,2024-01-01,1\nB,not a date,2\nC,2024-13-45,3\n", "timestamp", 2, "'not a date'"),
        ("A,2024-01-01,1\nB,2024-01-02,5 USD\nC,2024-01-02,abc\n", "amount", 2, "'5 USD'"),
        ("A,2024-01-01,1\n,2024-01-02,2\n  ,2024-01-02,3\n", "customer_id", 2, "row 2"),
        ("A,2024-01-01,inf\n", "amount", 1, "'inf'"),
    ],
)
def test_bad_values_are_reported_with_column_count_and_examples(tmp_path, body, column, count, example):
    with pytest.raises(TransactionsError) as err:
        load_transactions(write_csv(tmp_path, "customer_id,timestamp,amount\n" + body))
    message = str(err.value)
    assert f"column '{column}': {count} row(s)" in message
    assert example in message
    assert "--bad-rows drop" in message


def test_an_order_repeated_whole_is_an_error(tmp_path):
    body = "customer_id,timestamp,amount,order_id\nA,2024-01-01,1,o1\nA,2024-01-01,1,o1\nA,2024-01-01,1,o2\n"
    with pytest.raises(TransactionsError, match=r"'order_id': 1 row\(s\) repeat an earlier copy of the whole order"):
        load_transactions(write_csv(tmp_path, body))


def test_a_file_loaded_twice_is_caught_order_by_order():
    once = pd.DataFrame({"customer_id": ["A", "A", "A", "B"], "timestamp": ["2024-01-01"] * 3 + ["2024-02-01"],
                         "amount": ["5", "5", "7", "3"], "order_id": ["o1", "o1", "o1", "o2"]})
    tx, rejected = validate_transactions(pd.concat([once, once], ignore_index=True), bad_rows="drop")
    assert len(tx) == 4 and sorted(rejected["row"]) == [5, 6, 7, 8]
    assert tx["amount"].sum() == 20


def test_line_items_of_one_order_are_purchases_even_when_their_amounts_match():
    # A wholesale invoice (UCI Online Retail, invoice 536365): two products at 15.30, and one listed
    # twice beside others; only the product code tells the first two apart.
    items = pd.DataFrame({"customer_id": ["17850"] * 5, "timestamp": ["2010-12-01 08:26"] * 5,
                          "amount": ["15.30", "15.30", "20.34", "20.34", "22.00"], "order_id": ["536365"] * 5,
                          "stock_code": ["85123A", "71053", "84406B", "84406B", "84029G"]})
    for frame in (items, items.drop(columns="stock_code")):  # with the product code, and without it
        tx, rejected = validate_transactions(frame)
        assert len(tx) == 5 and rejected.empty


def test_identical_rows_without_order_ids_are_two_purchases():
    # CDNOW holds 255 such rows: two identical CDs bought on one day are two transactions.
    tx, rejected = validate_transactions(
        pd.DataFrame({"customer_id": ["A", "A"], "timestamp": ["2024-01-01"] * 2, "amount": [1.0, 1.0]})
    )
    assert len(tx) == 2 and rejected.empty


def test_drop_policy_writes_every_dropped_row_to_the_report(tmp_path):
    path = write_csv(tmp_path, "customer_id,timestamp,amount\nA,2024-01-01,1\nB,bad,2\nC,2024-01-02,x\nD,2024-01-03,4\n")
    report = tmp_path / "rejected.csv"
    tx = load_transactions(path, bad_rows="drop", report_path=report)
    assert tx["customer_id"].tolist() == ["A", "D"]
    rejected = pd.read_csv(report)
    assert rejected["row"].tolist() == [2, 3]
    assert rejected["column"].tolist() == ["timestamp", "amount"]
    assert rejected["value"].tolist() == ["bad", "x"]


def test_drop_policy_needs_a_report_path(tmp_path):
    with pytest.raises(ValueError, match="report_path"):
        load_transactions(write_csv(tmp_path, GOOD), bad_rows="drop")


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("none.csv", None, "no such file"),
        ("empty.csv", "", "not a readable"),
        ("header.csv", "customer_id,timestamp,amount\n", "no transactions"),
        ("data.json", '{"a": 1}', "unknown file type"),
        ("binary.parquet", "this is not parquet", "not a readable"),
    ],
)
def test_files_a_user_could_hand_by_mistake(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(TransactionsError, match=match):
        load_transactions(path)


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(TransactionsError, match="folder"):
        load_transactions(tmp_path)


def test_every_row_bad_is_an_error_even_when_dropping():
    raw = pd.DataFrame({"customer_id": ["A"], "timestamp": ["nope"], "amount": [1]})
    with pytest.raises(TransactionsError, match="every one of the 1 rows"):
        validate_transactions(raw, bad_rows="drop")


def test_write_table_is_atomic_and_keeps_the_earlier_file_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    write_table(pd.DataFrame({"a": [1, 2]}), target)
    unserialisable = pd.DataFrame({"a": [object()]})
    with pytest.raises(ValueError):  # pyarrow: ArrowInvalid, cannot convert the object
        write_table(unserialisable, target)
    assert pd.read_parquet(target)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_write_table_by_extension(tmp_path):
    frame = pd.DataFrame({"a": [1.5], "b": ["x"]})
    write_table(frame, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), frame, check_dtype=False)
    with pytest.raises(Exception, match="unknown output type"):
        write_table(frame, tmp_path / "t.xlsx")


def test_validation_does_not_mutate_its_input():
    raw = pd.DataFrame({"customer_id": [" A "], "timestamp": ["2024-01-01"], "amount": ["1"]})
    before = raw.copy()
    validate_transactions(raw)
    pd.testing.assert_frame_equal(raw, before)
    assert np.isfinite(validate_transactions(raw)[0]["amount"]).all()


@pytest.mark.parametrize("stamp", ["0063-09-27", "9999-01-01", "1677-01-01"])
def test_valid_dates_outside_any_transaction_log_are_named_bad_rows(stamp):
    """ISO dates pandas cannot hold in nanoseconds (or no log holds) are bad input, not an overflow."""
    raw = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": [stamp, "2020-01-01"], "amount": [1.0, 2.0]})
    with pytest.raises(TransactionsError, match=rf"column 'timestamp': 1 row\(s\) are outside 1900-01-01 .. 2199-12-31 \(e.g. row 1: '{stamp}'\)"):
        validate_transactions(raw)
    clean, rejected = validate_transactions(raw, bad_rows="drop")
    assert clean["customer_id"].tolist() == ["b"] and rejected["row"].tolist() == [1]


def test_typed_timestamps_outside_the_range_are_bad_rows_too():
    raw = pd.DataFrame({"customer_id": ["a", "b"], "amount": [1.0, 2.0],
                        "timestamp": np.array(["0063-09-27", "2020-01-01"], dtype="datetime64[s]")})
    clean, rejected = validate_transactions(raw, bad_rows="drop")
    assert clean["timestamp"].dtype == "datetime64[ns]" and clean["customer_id"].tolist() == ["b"]
    assert rejected["row"].tolist() == [1] and rejected["problem"].str.startswith("are outside").all()


def test_amounts_written_as_money_are_read_and_anything_ambiguous_is_named():
    raw = pd.DataFrame({"customer_id": list("abcde"), "timestamp": ["2024-01-01"] * 5,
                        "amount": ["$1,234.50", "-£3.20", "€ 12", "15.30", "1.234,50"]})
    with pytest.raises(TransactionsError, match=r"'amount': 1 row\(s\) are not finite numbers \(e.g. row 5: '1.234,50'\)"):
        validate_transactions(raw)
    tx, _ = validate_transactions(raw.head(4))
    assert tx["amount"].tolist() == [1234.5, -3.2, 12.0, 15.3]


@pytest.mark.parametrize(
    "content",
    [
        "customer_id,timestamp,amount\nC1,2025-01-01,NA\nC2,2025-01-02,null\n\nC3, 2025-01-03 ,\"1,5\"\n\"C4\",2025-01-04,\n",
        "\ufeffcustomer_id;timestamp;amount\r\nC1;2025-01-01;3\r\n",
        "customer_id,timestamp,amount\nC1,2025-01-01,3\nC2,2025-01-02\n",  # ragged: pyarrow refuses it
        "customer_id,timestamp,amount\nC1,2025-01-01,3,\n",  # a trailing delimiter: pyarrow refuses it
    ],
)
def test_a_csv_reads_to_the_same_text_frame_as_pandas_own_reader(tmp_path, content):
    """pyarrow reads CSV files several times faster; the frame is pandas' own (text, "" missing, "NA" kept),
    and a file pyarrow refuses is read by pandas."""
    from churnclv.features.io import _read_table

    path = tmp_path / "tx.csv"
    path.write_text(content, encoding="utf-8")
    expected = pd.read_csv(path, sep=";" if ";" in content else ",", dtype="str", keep_default_na=False,
                           na_values=[""])
    pd.testing.assert_frame_equal(_read_table(path), expected)


def test_a_csv_that_is_not_utf8_gets_pandas_message(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_id,timestamp,amount\nC\xe91,2025-01-01,3\n".encode("latin-1"))
    with pytest.raises(TransactionsError, match="not a readable .csv file: 'utf-8' codec can't decode"):
        load_transactions(path)
