# sloscope's code location image, for the Dagster Helm chart (deploy/helm/values.yaml) or any container
# platform. Untested here: the development machines have no Docker; see docs/scale-out.md.
#
#   docker build -t registry.example.com/sloscope:$(git rev-parse --short HEAD) .
#   docker build --build-arg EXTRA_PACKAGES="dagster-k8s dagster-celery-k8s" -t ... .   # k8s / Celery executors
#
# Default command: the code server on port 4000. The same image runs the webserver
# (`dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml`) and, on Kubernetes, every launched run and step.
FROM python:3.11-slim

# Executor and run-launcher integrations that are not project dependencies (the Helm chart's run pods
# need dagster-k8s; the Celery executor needs dagster-celery or dagster-celery-k8s). Resolved against
# constraints.txt, so they get the integration release of the pinned dagster.
ARG EXTRA_PACKAGES=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GX_ANALYTICS_ENABLED=false \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/sloscope

# Dependencies first (a layer that changes only with the pins), then the code. The project is installed
# editable: the SQL files and notebooks are read from the source tree (pipelines/settings.py REPO_ROOT).
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p pipelines assets \
    && touch pipelines/__init__.py assets/__init__.py \
    && pip install -c constraints.txt -e ".[scaleout]" ${EXTRA_PACKAGES}

COPY pipelines/ pipelines/
COPY assets/ assets/
COPY sql/ sql/
COPY notebooks/ notebooks/
COPY data/slos/ data/slos/
COPY sloscope.toml workspace.yaml ./
# The local instance settings; the Helm chart mounts its own dagster.yaml (PostgreSQL, run launcher) here.
COPY dagster.yaml ${DAGSTER_HOME}/dagster.yaml
# Entry points (the `sloscope` CLI and source plugins) are registered from the real package, and papermill's
# report kernel is installed inside the Python environment, as `make setup` does.
RUN pip install --no-deps -c constraints.txt -e . \
    && python -m ipykernel install --sys-prefix --name sloscope --display-name "Python (sloscope)" \
    && useradd --create-home --uid 10001 sloscope \
    && chown -R sloscope "$DAGSTER_HOME" /opt/sloscope

USER sloscope
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "pipelines.definitions"]
