#!/usr/bin/env bash
# Checks the alerting rules (alerts.yml) and runs their unit tests (alerts_test.yml) with
# promtool, which Debian's `prometheus` package provides; installs the package when
# promtool is missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")"
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v promtool >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules alerts.yml
promtool test rules alerts_test.yml
