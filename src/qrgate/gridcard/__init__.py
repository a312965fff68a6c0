"""Scheme A, the printed QR grid card (CN103078862A): printing and the card store
(:mod:`.cards`: issue, reissue, revoke, list); the challenge service and the HTTP routes
come next. The protocol itself is pure, in :mod:`qrgate.core.gridcard`."""
