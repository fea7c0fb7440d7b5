"""The scoring artifact: what a registered model is and how it scores.

The bundle (:mod:`scoring.bundle`) turns transactions and an as-of day into the score table from data
only: the CLV parameters (:mod:`scoring.clv`, closed forms in :mod:`scoring.btyd`), the LightGBM
boosters (:mod:`scoring.boosters`), the segment rules (:mod:`scoring.segments`). It is loaded from the
MLflow registry by :mod:`scoring.registry`. Imports :mod:`contract` and :mod:`features` only; the
service depends on this package and never on ``training``.
"""
