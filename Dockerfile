# syntax=docker/dockerfile:1
#
# k8s-kms-plugin container image.
#
#   docker build -t k8s-kms-plugin:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#
# Three stages: `build` compiles TypeScript and the native abstract-socket helper with all
# dependencies, `deps` installs production dependencies only, and the runtime stage is distroless
# Node 20 on Debian 12 (bookworm): no shell, no package manager, uid/gid 65532 (`nonroot`).
# Nothing is written at run time, so it runs with a read-only root filesystem (the static pod
# from `k8s-kms-plugin render static-pod` sets that up).
#
# Pin the base images by digest (FROM image:tag@sha256:...) in your own builds.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot

FROM ${NODE_IMAGE} AS build
# The native helpers (binding.gyp, native/: abstract sockets, AES-GCM) are compiled by `npm run build` with npm's
# bundled node-gyp against the image's own Node headers: it needs python3, make and a C compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` (npm run build) must not run before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
# pkcs11js (provider: pkcs11) is an N-API addon built at install time; --ignore-scripts skipped it.
RUN npm rebuild pkcs11js && test -f node_modules/pkcs11js/build/Release/pkcs11.node
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/postbuild.mjs scripts/postbuild.mjs
COPY binding.gyp ./
COPY native native
COPY proto proto
COPY src src
RUN npm run build && test -f build/Release/abstract_socket.node && test -f build/Release/aead.node

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; --ignore-scripts keeps `prepare` (which needs TypeScript) from running.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="k8s-kms-plugin" \
      org.opencontainers.image.description="KMS v2 encryption provider plugin for kube-apiserver (AWS KMS, Google Cloud KMS, Azure Key Vault, Vault/OpenBao Transit, PKCS#11 HSM, local key file)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs20-debian12:nonroot"
WORKDIR /app
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
# Loaded from dist/*/../../build/Release; N-API, glibc only. abstract_socket.node: abstract sockets
# (unix:///@name). aead.node: AES-GCM for Encrypt/Decrypt on the OpenSSL inside node (without it the
# plugin falls back to node:crypto and logs a warning).
COPY --from=build --chown=0:0 /src/build/Release/abstract_socket.node ./build/Release/abstract_socket.node
COPY --from=build --chown=0:0 /src/build/Release/aead.node ./build/Release/aead.node
COPY --from=build --chown=0:0 /src/node_modules/pkcs11js/build/Release/pkcs11.node ./node_modules/pkcs11js/build/Release/pkcs11.node
COPY --chown=0:0 package.json ./package.json
COPY --chown=0:0 proto ./proto
ENV NODE_ENV=production
# Runtime settings: SHIPPED_ENV in src/cli/render/node-options.ts (also in the static pod, sidecar and
# systemd unit): a small young generation, the heap limit the pod's 256 MiB memory limit gives anyway,
# and two glibc malloc arenas keep RSS near 75 MB at the apiserver's cadence (docs/benchmarks.md).
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=256"
ENV MALLOC_ARENA_MAX="2"
# Fixed non-root uid/gid (distroless `nonroot`); the files above stay root-owned and read-only to it.
USER 65532:65532
# Health and metrics (loopback by default, see --health-addr); the KMS API is a Unix socket.
EXPOSE 8086
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli/main.js"]
CMD ["serve", "--config", "/etc/k8s-kms-plugin/config.yaml"]
