#!/usr/bin/env bash
# The system programs the tests start for real (Debian packages): promtool checks the Prometheus rules,
# PostgreSQL backs the shared-server tests, sshd serves the DVC SSH remote. Installs only what is missing.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} (run: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# the Debian packages start their services on install; the tests start their own on loopback
(service prometheus stop; service postgresql stop; service ssh stop) >/dev/null 2>&1 || true
