FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
# the rooms (docs/architecture.md), each an installed package
COPY telemetry telemetry
COPY device_sim device_sim
COPY db db
COPY fleet fleet
COPY service service
COPY ingest ingest
COPY models models
COPY rules rules
COPY api api
COPY fleetcare fleetcare
COPY bench bench
RUN pip install --no-cache-dir .
USER nobody
ENV FLEETCARE_DATA_DIR=/tmp/fleetcare
CMD ["fleetcare", "--help"]
