"""How the product runs, apart from what it means.

The domain (ledger, parameters, epochs, amounts, verification, checkpoints,
the outbox rows, the idempotency rules) lives in ``apps.core``. This package
holds the machinery around it: the pooled SQLite backend, the cache that
survives a Redis outage, middleware, the static files finder, the rate
limiter and the client address rule, the outbox relay and the base consumer
of live pages, chart axes, context processors, template tags, the REST
amount fields and the ``serve`` command.

The dependency rule: platform may import core; core imports no platform and
no feature app. Feature apps may import both.
"""
