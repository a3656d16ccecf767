.PHONY: test lint bench
test:
	bash .ci/run
lint:
	.venv/bin/ruff check lynkr tests benchmarks
	.venv/bin/ruff format --check lynkr || true
bench:
	.venv/bin/python -m benchmarks.overhead
