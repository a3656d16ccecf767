"""lynkr benchmarks: each module is runnable with ``python -m benchmarks.<name>`` and prints its numbers."""
