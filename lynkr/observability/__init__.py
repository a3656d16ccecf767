"""What lynkr did with each request, for metrics, telemetry, logs and budgets."""
