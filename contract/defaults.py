"""Defaults shared by the command line, training and the service, each defined once."""

#: Churn = no purchase in this many days after the as-of day; the purchase forecast's horizon.
HORIZON_DAYS = 90
#: The CLV's horizon in days, and its annual discount rate.
CLV_HORIZON_DAYS = 365
DISCOUNT_RATE = 0.10
#: The registered MLflow model, the alias of the version that is served, and its URI.
MODEL_NAME = "churn-clv"
CHAMPION = "champion"
MODEL_URI = f"models:/{MODEL_NAME}@{CHAMPION}"
#: Training's stacked past snapshots: at most this many cutoffs, this many days apart (``CutoffPlan``).
STACKED_CUTOFFS = 11
CUTOFF_STEP_DAYS = 14
