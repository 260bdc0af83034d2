#!/bin/sh
# Install the real /proc clients the client tests run against our text:
#   procps (free, vmstat, slabtop), Prometheus node_exporter and PCP (pminfo, pmdalinux).
# Idempotent: installs only what is missing, runs `apt-get update` at most once,
# and never fails the run (prints a note instead) when apt-get is unavailable
# or an install does not work; the tests then skip with a clear reason.
set -u

export DEBIAN_FRONTEND=noninteractive
updated=0
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

note() { echo "install-tools: $*" >&2; }

apt_install() {
    # $1 = package name
    if ! command -v apt-get >/dev/null 2>&1; then
        note "apt-get not available; cannot install $1 (client tests will skip)"
        return 0
    fi
    if [ "$updated" = "0" ]; then
        $SUDO apt-get update -qq >/dev/null 2>&1 || note "apt-get update failed (continuing)"
        updated=1
    fi
    if $SUDO apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1; then
        note "installed $1"
    else
        note "could not install $1 (client tests will skip)"
    fi
}

missing_procps=0
for tool in free vmstat slabtop; do
    command -v "$tool" >/dev/null 2>&1 || missing_procps=1
done
if [ "$missing_procps" = "1" ]; then
    apt_install procps
fi

if ! command -v prometheus-node-exporter >/dev/null 2>&1 \
   && [ ! -x /usr/bin/prometheus-node-exporter ]; then
    apt_install prometheus-node-exporter
    # The Debian package starts a system service where an init system runs;
    # the tests start their own instance on a free loopback port, so that is harmless.
fi

# PCP's Linux PMDA (pminfo -L reads LINUX_STATSPATH without pmcd).  Its post-install
# script wants systemd; where that fails the binaries and PMNS files are there all the same.
if ! command -v pminfo >/dev/null 2>&1; then
    apt_install pcp
fi

exit 0
