"""Campaigns: every contact plan an experiment, its effect measured, save rates learned from it.

A layer above :mod:`scoring` and below :mod:`serving` (imports :mod:`contract`, :mod:`features` and
:mod:`scoring` only). One job per module:

- :mod:`campaigns.models`   the tables (SQLAlchemy 2 declarative): campaigns, members, suppressions,
  audit, measurements;
- :mod:`campaigns.store`    the engine for a URL (SQLite in WAL mode with a busy timeout; any URL);
- :mod:`campaigns.migrate`  Alembic migrations run in code; :func:`open_store` opens and migrates;
- :mod:`campaigns.assign`   deterministic control groups, stratified by segment; the global holdout;
- :mod:`campaigns.suppress` the suppression list (consent);
- :mod:`campaigns.erase`   erasure: score-file rows and members out, the id suppressed, a receipt;
- :mod:`campaigns.audit`    the audit trail;
- :mod:`campaigns.create`   recording a campaign and its frozen members, idempotently;
- :mod:`campaigns.read`     campaigns, members and measurements back out of the store;
- :mod:`campaigns.effect`   the measured effect of a campaign from a transaction log;
- :mod:`campaigns.rates`    save rates per segment learned from finished campaigns.

Nothing here reads the environment or touches a database at import: entry points pass the URL.
"""

from churnclv.campaigns.assign import assign_groups, customer_hash, in_global_holdout
from churnclv.campaigns.audit import audit_trail, log_action
from churnclv.campaigns.create import CampaignRequest, Created, create_campaign
from churnclv.campaigns.effect import Effect, measure_effect
from churnclv.campaigns.erase import ERASED, Receipt, erased_ids, forget
from churnclv.campaigns.errors import (
    CampaignConflictError,
    CampaignInputError,
    CampaignNotFoundError,
    CampaignStoreError,
)
from churnclv.campaigns.migrate import open_store, upgrade
from churnclv.campaigns.rates import PRIOR, learn_save_rates
from churnclv.campaigns.read import CampaignInfo, campaign_members, get_campaign, list_campaigns, measurements
from churnclv.campaigns.record import record_effect
from churnclv.campaigns.store import default_url
from churnclv.campaigns.suppress import (
    drop_suppressed,
    suppress,
    suppressed_ids,
    suppression_list,
    unsuppress,
)

__all__ = [
    "ERASED", "PRIOR", "CampaignConflictError", "CampaignInfo", "CampaignInputError", "CampaignNotFoundError",
    "CampaignRequest", "CampaignStoreError", "Created", "Effect", "assign_groups", "audit_trail",
    "campaign_members", "create_campaign", "customer_hash", "default_url", "drop_suppressed", "erased_ids", "forget", "get_campaign",
    "in_global_holdout", "learn_save_rates", "list_campaigns", "log_action", "measure_effect", "measurements",
    "open_store", "Receipt", "record_effect", "suppress", "suppressed_ids", "suppression_list", "unsuppress", "upgrade",
]
