# depot worker image: `docker compose up` runs Redis and worker replicas.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY bin bin
COPY package.json ./
RUN mkdir -p /data/archive && chown node:node /data/archive
USER node
ENTRYPOINT ["node", "bin/depot"]
CMD ["worker"]
