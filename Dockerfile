FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY telemetry telemetry
COPY ingest ingest
COPY workorders workorders
COPY fleetcare fleetcare
COPY bench bench
COPY api api
COPY rules rules
COPY models models
COPY device_sim device_sim
RUN pip install --no-cache-dir .
USER nobody
ENV FLEETCARE_DATA_DIR=/tmp/fleetcare
CMD ["fleetcare", "--help"]
