# webgpu-saliency's `saliency` command in a container: Debian, Node 20, the Vulkan loader, and
# either the NVIDIA driver's Vulkan ICD from the node or Mesa's lavapipe (CPU) as the fallback.
#
#   docker build -t webgpu-saliency .
#   docker run --rm --gpus all webgpu-saliency doctor            # which adapter WebGPU found
#   docker run --rm -v $PWD/data:/data webgpu-saliency batch --model fashion-vgg \
#       --input /data/images --out /data/results                  # lavapipe without --gpus
#
# deploy/kubernetes/indexed-job.yaml runs it as an Indexed Job; see docs/batch.md.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: ours (prepare) runs in the build below, and webgpu's only matters on macOS.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
# libvulkan1: the Vulkan loader that Dawn opens. mesa-vulkan-drivers: lavapipe, the CPU fallback.
# libx11-6, libxext6, libegl1: what the NVIDIA Vulkan ICD (libGLX_nvidia) links against; the ICD
# itself (nvidia_icd.json and the driver libraries) is mounted from the node by the NVIDIA
# container toolkit when the "graphics" capability is asked for, below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 mesa-vulkan-drivers libx11-6 libxext6 libegl1 \
 && rm -rf /var/lib/apt/lists/*
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/shaders ./shaders
COPY --from=build /app/models ./models
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
