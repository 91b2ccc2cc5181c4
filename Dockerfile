FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY brokers brokers
COPY streams streams
COPY agents agents
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
CMD ["i247", "--help"]
