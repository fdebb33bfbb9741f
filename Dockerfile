# The image every choreo service in docker-compose.yml runs: `choreo <command>`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY devices ./devices
COPY reactors ./reactors
COPY mosquitto ./mosquitto
COPY influxdb ./influxdb
RUN pip install --no-cache-dir . && useradd --system --no-create-home choreo
USER choreo
ENTRYPOINT ["choreo"]
