"""Data shapes of the APIs lynkr speaks (validation only), and reading request bodies (``body``)."""
