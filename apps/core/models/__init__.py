"""The shared domain model: ledger, parameters and the network.

Every feature app imports from here; see the module of each group.
"""

from .ledger import (  # noqa: F401
    BUCKETS,
    VOTING_BUCKETS,
    Account,
    AccountKind,
    AccountQuerySet,
    Bucket,
    ChainHead,
    Checkpoint,
    Entry,
    LedgerTransaction,
    ModuleAccount,
    TxKind,
    new_address,
)
from .network import (  # noqa: F401
    CHECKED_STATUSES,
    AgentToken,
    CheckerNode,
    CheckerStatus,
    GpuModel,
    GpuNode,
    NodeStatus,
    Region,
    SlaTier,
    hash_token,
)
from .outbox import OutboxCursor, OutboxEvent  # noqa: F401
from .parameters import ParameterChange  # noqa: F401
from .trust import IdempotencyKey, SignedCheckpoint  # noqa: F401
