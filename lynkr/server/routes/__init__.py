"""Route handlers, one module per inbound API."""
