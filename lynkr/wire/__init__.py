"""Data shapes of the APIs lynkr speaks (validation only)."""
