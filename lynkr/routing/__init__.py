"""Which backend and model serve a request."""
