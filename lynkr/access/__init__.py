"""Inbound access control: client keys, the admin key, rate limits and budgets per key.

The request path stays lean: authentication is one dict lookup on the key's SHA-256 plus one
``hmac.compare_digest``; rate limits are token buckets in memory (or one Redis script call); budget
counters are in memory (or Redis) and persisted to SQLite off the hot path.
"""
