# syntax=docker/dockerfile:1
# lynkr in a container: python:3.11-slim, wheels built in a throwaway stage, runs as an unprivileged user.
#   docker build -t lynkr .
#   docker run --rm -p 127.0.0.1:8081:8081 --env-file .env -e OLLAMA_ENDPOINT=http://host.docker.internal:11434 \
#     --add-host host.docker.internal:host-gateway lynkr
# or use docker-compose.yml (lynkr, plus Ollama with --profile ollama).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md CHANGELOG.md .env.example ./
COPY lynkr ./lynkr
COPY completions ./completions
# lynkr and every dependency as wheels (uvloop from the [speed] extra), so the final stage needs no compiler
RUN pip wheel --wheel-dir /wheels ".[speed]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    # inside the container lynkr must listen on every interface for the published port to reach it; publish
    # the port on the host's loopback only (-p 127.0.0.1:8081:8081): lynkr warns at startup that it is bound
    # beyond loopback, and checks no client keys of its own yet
    LYNKR_HOST=0.0.0.0 \
    PORT=8081
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "lynkr[speed]" \
    && useradd --system --create-home --home-dir /home/lynkr --uid 10001 --user-group lynkr
USER lynkr
WORKDIR /home/lynkr
EXPOSE 8081
# python -c instead of curl: the slim image has no curl
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8081'), timeout=4)"]
ENTRYPOINT ["lynkr"]
CMD ["start"]
