"""Column names of every table that crosses a layer, each defined once."""

#: The transaction contract (``features.validate_transactions``): required, optional text, optional numbers.
TRANSACTION_REQUIRED = ("customer_id", "timestamp", "amount")
TRANSACTION_OPTIONAL_TEXT = ("order_id", "channel", "category")
TRANSACTION_OPTIONAL_NUMBER = ("quantity",)
TRANSACTION_COLUMNS = TRANSACTION_REQUIRED + TRANSACTION_OPTIONAL_TEXT + TRANSACTION_OPTIONAL_NUMBER

#: The RFM table (lifetimes conventions, days).
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
#: What the CLV model predicts per customer (prefixed ``bgnbd_`` in a snapshot).
PREDICTION_COLUMNS = (
    "p_alive", "expected_purchases", "p_no_purchase", "expected_spend_per_purchase", "expected_spend", "clv",
)
#: The score table: one row per customer.
SCORE_NUMBERS = ("churn_probability", "p_alive", "expected_purchases", "expected_spend", "clv", "value_at_risk")
SCORE_TEXTS = ("segment", "recommended_action")
SCORE_COLUMNS = ("customer_id", *SCORE_NUMBERS, *SCORE_TEXTS)
#: The intervals on the score table's figures (at the model's interval level, 80% by default); score tables
#: written before them lack these columns.
SCORE_INTERVALS = ("expected_purchases_low", "expected_purchases_high", "clv_low", "clv_high")

#: The events contract (``features.validate_events``): touchpoints beside the transactions, one row each.
EVENT_COLUMNS = ("customer_id", "timestamp", "kind", "value")
