# Image Factory: one image for both halves of the scaled mode.
#   docker run … image-factory               → `image-factory serve` on :8080 (web processes)
#   docker run … image-factory worker        → `image-factory worker` (builds)
#   docker run … image-factory prepare       → once per deployment (release, extensions)
# Debian 12, as on the machines the tests run on, so every tool behaves as the tests saw it.
# Runs as an unprivileged user: building images needs no root (no loop devices, no mounts),
# and the container runs read-only (see docker-compose.yml): only the data directory and /tmp
# are written.

# Stage 1: the venv. pip, the sources and venv's ensurepip stay here; every library has a
# binary wheel, so no compiler is needed (and none reaches the image).
FROM debian:12-slim AS venv
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# The libraries first, at the versions CI passed with: this layer is rebuilt only when
# pyproject.toml or the constraints change, not on every source change.
COPY pyproject.toml scripts/constraints.txt /opt/image-factory/src/
RUN python3 -m venv /opt/image-factory/venv \
    && python3 -c 'import tomllib, sys; print(*tomllib.load(sys.stdin.buffer)["project"]["dependencies"], sep="\n")' \
        < /opt/image-factory/src/pyproject.toml > /opt/image-factory/requirements.txt \
    && /opt/image-factory/venv/bin/pip install --no-cache-dir \
        -c /opt/image-factory/src/constraints.txt -r /opt/image-factory/requirements.txt
# Then the service itself.
COPY README.md /opt/image-factory/src/
COPY schematics /opt/image-factory/src/schematics
COPY extensions /opt/image-factory/src/extensions
COPY workers /opt/image-factory/src/workers
COPY factory /opt/image-factory/src/factory
RUN /opt/image-factory/venv/bin/pip install --no-cache-dir --no-deps /opt/image-factory/src \
    && /opt/image-factory/venv/bin/pip uninstall -q -y pip setuptools

# Stage 2: what runs. The build tools: exactly the list `scripts/serve` installs, through the
# same shell function. The apt index is kept: `prepare` fetches the reference release's
# Debian packages with `apt-get download` (rebuild the image to refresh it).
FROM debian:12-slim
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY scripts/lib.sh scripts/apt-packages-serve.txt /opt/image-factory/scripts/
RUN bash -c 'source /opt/image-factory/scripts/lib.sh \
        && ensure_apt_packages /opt/image-factory/scripts/apt-packages-serve.txt' \
    && apt-get clean \
    && rm -rf /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/apt /var/log/dpkg.log

# The data directory (work files and caches) belongs to the service's own user.
RUN useradd --system --uid 10001 --user-group --shell /usr/sbin/nologin \
        --home-dir /var/lib/image-factory --create-home factory \
    && mkdir -p /var/lib/image-factory/data \
    && chown -R factory:factory /var/lib/image-factory

# Same path as in the first stage: the venv's python is a link to /usr/bin/python3.
COPY --from=venv /opt/image-factory/venv /opt/image-factory/venv

USER factory
WORKDIR /var/lib/image-factory
ENV PATH=/opt/image-factory/venv/bin:$PATH \
    IMAGE_FACTORY_DATA_DIR=/var/lib/image-factory/data
VOLUME ["/var/lib/image-factory/data"]
EXPOSE 8080
ENTRYPOINT ["image-factory"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
