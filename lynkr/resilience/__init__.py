"""Retries, circuit breakers and load shedding around backends."""
