# syntax=docker/dockerfile:1.7
# The public edge: Debian's nginx (the version `scripts/check-deploy` tests the
# configuration with) serving the single-page app and proxying the API to the router.
#   docker build -f deploy/nginx.Dockerfile -t taskgraph/nginx:dev .                     # with frontend/
#   docker build -f deploy/nginx.Dockerfile --target placeholder -t taskgraph/nginx:dev .  # without it
# The `frontend` stage assumes frontend/ is an npm project (package.json and
# package-lock.json) whose `npm run build` writes the static site to frontend/dist.

FROM node:22-bookworm-slim AS frontend-build
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM debian:bookworm-slim AS nginx-base
ARG NGINX_VERSION=1.22.1-9+deb12u11
ARG VERSION=dev
LABEL org.opencontainers.image.title="taskgraph-nginx" \
      org.opencontainers.image.description="taskgraph's TLS edge: the web app and the API" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"
RUN apt-get update \
    && apt-get install -y --no-install-recommends "nginx=${NGINX_VERSION}" \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/conf.d /usr/share/nginx/html/*
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY nginx/snippets/ /etc/nginx/snippets/
# Runs as www-data (uid 33) on unprivileged ports; compose publishes 80 and 443 onto them.
# Everything it writes (pid, temp files) goes to /tmp, a tmpfs in production.
USER 33:33
EXPOSE 8080 8443
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
# -e: the error log before the configuration is read (the default path is not writable).
ENTRYPOINT ["nginx", "-e", "stderr", "-g", "daemon off;"]

# Until the front end lands: a page saying the API is at /graphql.
FROM nginx-base AS placeholder
COPY nginx/placeholder/ /usr/share/nginx/html/

FROM nginx-base AS frontend
COPY --from=frontend-build /frontend/dist/ /usr/share/nginx/html/
