# The Vaporform server, built offline (compose.yaml builds it with the repository as context):
# - the base is `vaporform/runtime:server`, which `npm run runtime-image` assembles from this
#   machine's node, npm, shell and iptables (no registry);
# - the repository comes as `npm ci` left it: node_modules included, native addons built for
#   that same node; the web IDE is built here unless apps/web/dist is current (.dockerignore).
# Run `npm ci` and `npm run runtime-image` first.
ARG BASE=vaporform/runtime:server
FROM ${BASE}
USER root
ENV HOME=/root NODE_ENV=production HOST=0.0.0.0 PORT=4000 \
  PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /opt/vaporform
COPY . .
RUN node scripts/ensure-web.mjs
EXPOSE 4000
CMD ["npm", "start"]
