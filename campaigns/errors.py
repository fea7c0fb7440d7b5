"""The campaign store's errors: each message is one line naming the problem (never a password).

Every class is a :class:`contract.errors.ChurnclvError`, so the command line prints it without a
traceback and the service can answer it with a clear status while its scoring endpoints keep working.
"""

from __future__ import annotations

from churnclv.contract.errors import ChurnclvError


class CampaignStoreError(ChurnclvError):
    """The campaign store cannot be used (the base of the database errors below)."""


class StoreUrlError(CampaignStoreError, ValueError):
    """The database URL cannot be parsed, or its driver is not installed."""


class StoreMissingError(CampaignStoreError):
    """The SQLite file's folder does not exist."""


class StoreLockedError(CampaignStoreError):
    """Another process held the database's write lock for longer than the busy timeout."""


class StoreTooNewError(CampaignStoreError):
    """The database was migrated by a newer churnclv than this one (an unknown Alembic revision)."""


class StoreUnreachableError(CampaignStoreError):
    """The database server cannot be reached, or the file cannot be opened."""


class CampaignConflictError(ChurnclvError, ValueError):
    """A campaign of this name exists with a different request."""


class CampaignNotFoundError(ChurnclvError, LookupError):
    """No campaign of this name."""


class CampaignInputError(ChurnclvError, ValueError):
    """A frame or a setting given to the campaign functions is unusable (which column, which value)."""
