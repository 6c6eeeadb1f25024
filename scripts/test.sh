#!/usr/bin/env bash
# Runs every Nodus test tier, from a fresh clone, on a fresh machine.
#
#   bash scripts/test.sh
#
# 1. Installs the system packages the tests need when they are missing (Debian).
# 2. cargo fmt --check, clippy -D warnings, rustdoc -D warnings.
# 3. All tests (unit, integration on real local parts, heavy tiers), then doctests.
# 4. Builds the fuzz targets (nightly + cargo-fuzz) and the benchmarks.
#
# NODUS_TEST_QUICK=1 skips step 4 for the inner loop; CI never sets it.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# --- 1. system packages ------------------------------------------------------
# Debian packages the tests use, with the command that proves each is present.
packages=(
  "qemu-system-x86:qemu-system-x86_64"
  "qemu-utils:qemu-img"
  "busybox-static:busybox"
  "dbus-daemon:dbus-daemon"
  "kmod:modprobe"
  "cpio:cpio"
  "iproute2:ip"
  "tmux:tmux"
  "smartmontools:smartctl"
  "prometheus-node-exporter:prometheus-node-exporter"
  "tftp-hpa:tftp"
  "tftpd-hpa:in.tftpd"
  "atftp:atftp"
  "dnsmasq-base:dnsmasq"
  "curl:curl"
)
missing=()
for entry in "${packages[@]}"; do
  pkg=${entry%%:*} cmd=${entry#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] \
    || missing+=("$pkg")
done
# netboot serves Debian's iPXE binaries over TFTP; the package has no command.
[ -e /usr/lib/ipxe/undionly.kpxe ] || missing+=("ipxe")
# The PXE tests boot QEMU through the virtio NIC's iPXE ROM and through OVMF's PXE.
[ -e /usr/lib/ipxe/qemu/efi-virtio.rom ] || missing+=("ipxe-qemu")
[ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || missing+=("ovmf")
# Debian's qemu-system-x86 replaces the preinstalled qemu-utils; install both together.
case " ${missing[*]-} " in *" qemu-system-x86 "*) missing+=("qemu-utils") ;; esac
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages ${missing[*]} and not root; install them first" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A Debian kernel image for the QEMU tier, fetched once into target/kernel.
kernel_dir=target/kernel
if ! ls "$kernel_dir"/linux-image-*.deb >/dev/null 2>&1; then
  log "fetching a Debian kernel image"
  mkdir -p "$kernel_dir"
  [ -n "$(apt-cache policy linux-image-amd64 2>/dev/null | grep Candidate)" ] || apt-get update -qq
  image=$(apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -n "$image" ]; then
    (cd "$kernel_dir" && apt-get download "$image" >/dev/null)
  else
    echo "warning: could not resolve linux-image-amd64; QEMU tests will say so" >&2
  fi
fi
deb=$(ls "$kernel_dir"/linux-image-*.deb 2>/dev/null | head -n1 || true)
if [ -n "$deb" ] && [ ! -d "$kernel_dir/root" ]; then
  dpkg-deb -x "$deb" "$kernel_dir/root"
fi
export NODUS_TEST_KERNEL_ROOT="$PWD/$kernel_dir/root"

# --- 2. static checks ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

# --- 3. tests -----------------------------------------------------------------
log "tests (all tiers)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --profile ci
else
  cargo test --workspace --locked
fi
log "doctests"
cargo test --workspace --doc --locked

# --- 4. fuzz targets and benchmarks build -----------------------------------
if [ "${NODUS_TEST_QUICK:-0}" != 1 ]; then
  # Benchmarks are compiled (dev profile, reusing the test build) so they cannot rot;
  # they are run by hand, since timing on a shared CI machine means nothing.
  log "benchmarks build"
  cargo build --workspace --benches --locked
  log "fuzz targets build (nightly)"
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked --quiet
  fi
  (cd fuzz && cargo +nightly fuzz build --dev)
fi

log "all tiers passed"
