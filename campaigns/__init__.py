"""Campaigns: every contact plan an experiment, its effect measured, save rates learned from it.

A layer above :mod:`scoring` and below :mod:`serving` (imports :mod:`contract`, :mod:`features` and
:mod:`scoring` only). One job per module:

- :mod:`campaigns.models`   the tables (SQLAlchemy 2 declarative): campaigns, members, suppressions,
  audit, measurements;
- :mod:`campaigns.store`    the engine for a URL (SQLite in WAL mode with a busy timeout; any URL);
- :mod:`campaigns.migrate`  Alembic migrations run in code; :func:`open_store` opens and migrates;
- :mod:`campaigns.assign`   deterministic control groups, stratified by segment; the global holdout;
- :mod:`campaigns.suppress` the suppression list (consent);
- :mod:`campaigns.audit`    the audit trail;
- :mod:`campaigns.create`   recording a campaign and its frozen members, idempotently;
- :mod:`campaigns.read`     campaigns, members and measurements back out of the store;
- :mod:`campaigns.effect`   the measured effect of a campaign from a transaction log;
- :mod:`campaigns.rates`    save rates per segment learned from finished campaigns.

Nothing here reads the environment or touches a database at import: entry points pass the URL.
"""
