# Image Factory: one image for both halves of the scaled mode.
#   docker run … image-factory               → `image-factory serve` on :8080 (web processes)
#   docker run … image-factory worker        → `image-factory worker` (builds)
#   docker run … image-factory prepare       → once per deployment (release, extensions, keys)
# Debian 12, as on the machines the tests run on, so every tool behaves as the tests saw it.
# Runs as an unprivileged user: building images needs no root (no loop devices, no mounts).
FROM debian:12-slim

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The build tools: exactly the list `scripts/serve` installs, through the same shell function.
# The apt index is kept: `prepare` fetches the reference release's Debian packages with
# `apt-get download` (rebuild the image to refresh it).
COPY scripts/lib.sh scripts/apt-packages-serve.txt /opt/image-factory/scripts/
RUN bash -c 'source /opt/image-factory/scripts/lib.sh \
        && ensure_apt_packages /opt/image-factory/scripts/apt-packages-serve.txt \
        && apt_install python3-venv' \
    && apt-get clean

# The service itself, into a venv, with the library versions CI passed with.
COPY pyproject.toml README.md scripts/constraints.txt /opt/image-factory/src/
COPY schematics /opt/image-factory/src/schematics
COPY extensions /opt/image-factory/src/extensions
COPY workers /opt/image-factory/src/workers
COPY factory /opt/image-factory/src/factory
RUN python3 -m venv /opt/image-factory/venv \
    && /opt/image-factory/venv/bin/pip install --no-cache-dir \
        -c /opt/image-factory/src/constraints.txt /opt/image-factory/src \
    && rm -rf /opt/image-factory/src

# The data directory (work files, and `keys/` which a deployment shares between all
# containers) belongs to the service's own user.
RUN useradd --system --uid 10001 --user-group --shell /usr/sbin/nologin \
        --home-dir /var/lib/image-factory --create-home factory \
    && mkdir -p /var/lib/image-factory/data/keys \
    && chown -R factory:factory /var/lib/image-factory

USER factory
WORKDIR /var/lib/image-factory
ENV PATH=/opt/image-factory/venv/bin:$PATH \
    IMAGE_FACTORY_DATA_DIR=/var/lib/image-factory/data
VOLUME ["/var/lib/image-factory/data"]
EXPOSE 8080
ENTRYPOINT ["image-factory"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
