.PHONY: test lint bench bench-quick bench-instructions
test:
	bash .ci/run
lint:
	.venv/bin/ruff check lynkr tests benchmarks
	.venv/bin/ruff format --check lynkr || true
bench:
	.venv/bin/python -m benchmarks.run $(ARGS)
bench-quick:
	.venv/bin/python -m benchmarks.run --quick $(ARGS)
bench-instructions:
	.venv/bin/python -m benchmarks.instructions $(ARGS)
