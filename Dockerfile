# One image for every backbone process in compose.yaml; the command picks the role
# (i247 keys init | provision | hub --site ... | simulate ...).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY brokers brokers
COPY streams streams
COPY agents agents
RUN pip install '.[otlp]' \
    && useradd --system --create-home --home-dir /home/i247 i247 \
    && mkdir -p /keys /data \
    && chown i247 /app /keys /data

# Named volumes mounted on /keys and /data start out owned by this user.
USER i247
ENV I247_DATA_DIR=/data \
    I247_KEYS_DIR=/keys

CMD ["i247", "--help"]
