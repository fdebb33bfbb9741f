# The image every choreo service in docker-compose.yml runs: `choreo <command>`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY devices ./devices
COPY reactors ./reactors
COPY mosquitto ./mosquitto
COPY influxdb ./influxdb
RUN pip install --no-cache-dir . && useradd --system --no-create-home choreo \
    && mkdir -p /var/lib/choreo && chown choreo /var/lib/choreo
USER choreo
# Reactor state, ingest's kept documents and the sink's spool; docker-compose.yml mounts a volume here.
ENV CHOREO_REACTORS_STATE_DIR=/var/lib/choreo/state CHOREO_SINK_SPOOL_DIR=/var/lib/choreo/spool \
    CHOREO_INGEST_STATE_DIR=/var/lib/choreo/state
ENTRYPOINT ["choreo"]
