# The Vaporform server (compose.yaml builds it with the repository as context).
FROM node:20-bookworm-slim
# iptables: the rule that keeps project containers off the host; make/g++/python3: node-pty.
RUN apt-get update \
  && apt-get install -y --no-install-recommends iptables bubblewrap python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/vaporform
COPY . .
RUN npm ci --no-audit --no-fund && npm run build:web
ENV HOST=0.0.0.0 PORT=4000
EXPOSE 4000
CMD ["npm", "start"]
