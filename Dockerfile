# The ledger service, installed the same way as the README's quick start
# (`pip install .`, not editable). Build context: the repository root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs: pyproject reads README.md as the long description.
COPY pyproject.toml README.md cli.py ./
COPY ledger ./ledger
COPY projections ./projections
COPY replay ./replay
COPY api ./api
RUN pip install . && rm -rf /src/build

# Run unprivileged. With the default SQLite URL the database would live in the
# working directory; under docker compose LEDGER_DATABASE_URL points at PostgreSQL.
RUN useradd --create-home --uid 10001 ledger
USER ledger
WORKDIR /home/ledger

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]

# Exec form: `ledger` receives SIGTERM from `docker stop` directly (PID 1 here; docker-compose.yml
# puts a minimal init in front of it, which passes the signal on).
CMD ["ledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
