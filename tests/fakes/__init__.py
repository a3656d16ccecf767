"""Fake upstream backends: real aiohttp apps speaking each provider's wire format, scripted."""
