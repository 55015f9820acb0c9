# syntax=docker/dockerfile:1
#
# ringpipe: one image for the coordinator and the peers.
#   docker build -t ringpipe:cpu .                  CPU: libtensorflow (tfjs-node) when the build can
#                                                   download it, the WebAssembly backend otherwise
#   docker build --target gpu -t ringpipe:gpu .     GPU: tfjs-node-gpu on a CUDA base image
#   docker run --rm ringpipe:cpu coordinator --help / peer --help
# The log of a running peer says which tensor backend it uses and why a better one was passed over.

ARG NODE_VERSION=20.20.2
ARG DEBIAN_RELEASE=bookworm
# libtensorflow 2.9 (tfjs-node-gpu 4.x) needs CUDA 11.2 or a later 11.x, and cuDNN 8.
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

# ---- production dependencies, installed without running any package's scripts ...
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild esbuild msgpackr-extract

# ... then the native TensorFlow package each image wants. Its install script downloads
# libtensorflow; where that fails the package is removed, and the backend selector falls back to
# wasm (a half-installed package would only produce a noisier log line).
FROM deps AS native-cpu
RUN rm -rf node_modules/@tensorflow/tfjs-node-gpu \
 && { { npm rebuild @tensorflow/tfjs-node && node -e "require('@tensorflow/tfjs-node')"; } \
      || { echo "tfjs-node is not available: this image will use the wasm backend" && rm -rf node_modules/@tensorflow/tfjs-node; }; }

FROM deps AS native-gpu
RUN rm -rf node_modules/@tensorflow/tfjs-node \
 && { { npm rebuild @tensorflow/tfjs-node-gpu && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node; } \
      || { echo "tfjs-node-gpu is not available: this image will use the wasm backend" && rm -rf node_modules/@tensorflow/tfjs-node-gpu; }; }

# ---- the application: TypeScript sources run by tsx (no build step), and the entry point.
FROM scratch AS app
COPY package.json tsconfig.json /app/
COPY shared /app/shared
COPY peer /app/peer
COPY coordinator /app/coordinator
COPY scripts /app/scripts
COPY --chmod=755 deploy/docker/entrypoint.sh /app/deploy/docker/entrypoint.sh
COPY deploy/docker/healthcheck.mjs /app/deploy/docker/healthcheck.mjs

FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS node-runtime

# ---- GPU image: CUDA + cuDNN from NVIDIA, Node copied in from the official image.
FROM ${CUDA_IMAGE} AS gpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 ringpipe \
 && useradd --uid 1000 --gid 1000 --create-home ringpipe
COPY --from=node-runtime /usr/local/bin/node /usr/local/bin/node
COPY --from=native-gpu /app/node_modules /app/node_modules
COPY --from=app /app /app
WORKDIR /app
RUN mkdir /app/runs && chown 1000:1000 /app/runs
ENV NODE_ENV=production
# A numeric user, so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# 7070: peers connect (coordinator); 7080: dashboard and probes (coordinator); 8080: probes (peer).
EXPOSE 7070 7080 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/docker/entrypoint.sh"]
CMD ["peer"]

# ---- CPU image (the default target: last in the file).
FROM node-runtime AS cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=native-cpu /app/node_modules /app/node_modules
COPY --from=app /app /app
WORKDIR /app
RUN mkdir /app/runs && chown 1000:1000 /app/runs
ENV NODE_ENV=production
# The node image's own unprivileged user, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# 7070: peers connect (coordinator); 7080: dashboard and probes (coordinator); 8080: probes (peer).
EXPOSE 7070 7080 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/docker/entrypoint.sh"]
CMD ["peer"]
