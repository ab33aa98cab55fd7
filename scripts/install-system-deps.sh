#!/usr/bin/env bash
# Installs the Debian packages hearth's tests use, where they are missing: etcd (server and
# etcdctl), RabbitMQ, promtool, python-cinderclient, kubectl and openssl (test certificates),
# and libjemalloc2 (the allocator the container image preloads, which `make bench` runs with).
# Nothing is started here; each test starts its own servers on loopback.
set -euo pipefail

declare -A package_of=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [rabbitmqctl]=rabbitmq-server
  [promtool]=prometheus
  [cinder]=python3-cinderclient
  [kubectl]=kubectl
  [openssl]=openssl
)
missing=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
compgen -G '/usr/lib/*-linux-gnu/libjemalloc.so.2' >/dev/null || missing+=(libjemalloc2)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
