"""How long a consumer's fetch may wait at the broker for records that are not there yet.

Kafka answers a waiting fetch as soon as records arrive; the local broker (tansu) answers
only when the wait runs out (measured: 203 ms p50 per hop at the clients' default of
500 ms, 4 ms at 10). So on the way of a command to the registers or of a command's result
back to its sender, the wait is the hop's latency. An idle consumer pays for a short wait
with one empty fetch per wait: at 5 ms, about 1% of a core. Consumers off those paths
(the audit trail, which also catches up on a timer) keep the default."""

from __future__ import annotations

FETCH_MAX_WAIT_MS = 5
