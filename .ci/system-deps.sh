#!/usr/bin/env bash
# Installs the system packages the test suite needs, when they are missing.
# Runs as part of `make test`; needs root on a Debian-like system, otherwise says what is missing.
set -euo pipefail

need=()
# ZooKeeper for the HA tests (tests/zk): Debian's server jar, started directly by the tests.
# Its package depends on a JRE, so this also brings Java where it is missing.
zookeeper_jar_present() {
  local dir
  for dir in /usr/share/java /usr/share/zookeeper /usr/share/zookeeper/lib; do
    [ -f "$dir/zookeeper.jar" ] && return 0
  done
  return 1
}
if ! zookeeper_jar_present || ! command -v java >/dev/null 2>&1; then
  need+=(zookeeper)
fi
# Chromium for the web UI's browser tests (tests/browser), driven by Playwright's Python API with
# executable_path=/usr/bin/chromium (Playwright cannot download its own browser here).
if ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi

# systemd-analyze checks the units in packaging/systemd (tests/integration/packaging).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  need+=(systemd)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} and cannot install them (need root and apt-get); dependent tests will skip" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
