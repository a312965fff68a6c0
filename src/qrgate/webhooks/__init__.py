"""Webhooks: qrgate tells a relying party's backend what happened, signed, at least once.

The flow, step by step:

1. **Configure.** The relying party (``PUT /v1/webhook``, or an operator with ``qrgate admin
   webhook set``) gives its application an https URL; qrgate makes a signing key and shows
   it once as ``whsec_...`` (:mod:`~qrgate.webhooks.repository`, key sealed under the KEK).
   The URL must reach a public address (:mod:`~qrgate.webhooks.destinations`).
2. **Record.** A decision site calls :func:`~qrgate.webhooks.outbox.emit` with the
   connection of the transaction that takes the decision: the event's rows (one per
   receiving application, see :mod:`~qrgate.webhooks.catalogue`) commit with the decision
   or not at all. This is the transactional outbox: a crash after the commit loses no
   event, and no event reports a decision that rolled back.
3. **Wake.** The commit sends a hint on the event bus (in process, and through PostgreSQL
   NOTIFY to every node); the delivery worker (:mod:`~qrgate.webhooks.worker`) of each
   server process wakes, and polls every few seconds anyway.
4. **Lease.** A worker leases due rows with one conditional UPDATE; several nodes never send
   one row at once, and a lease left by a dead node expires.
5. **Send.** The body is signed per Standard Webhooks (:mod:`~qrgate.webhooks.signing`) and
   POSTed (:mod:`~qrgate.webhooks.transport`): 10 s at most, no redirects, only to allowed
   addresses.
6. **Settle.** 2xx: delivered. Anything else: retried with backoff and jitter
   (:mod:`~qrgate.webhooks.retry`), then failed. Failed or delivered events can be replayed
   with the same ``webhook-id``; receivers deduplicate on it.
"""
