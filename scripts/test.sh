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

# A Debian kernel image for the QEMU tier: `nodus qemu fetch-kernel` downloads
# linux-image-amd64's current image once (apt-get download) into
# ~/.cache/nodus/kernel and unpacks it; later runs reuse it. The heavy tests read
# NODUS_TEST_KERNEL_ROOT, `nodus qemu` reads NODUS_KERNEL_DIR.
log "kernel for the QEMU tier"
if kernel_json=$(cargo run --locked -q --bin nodus -- qemu fetch-kernel --json); then
  kernel_modules=$(printf '%s' "$kernel_json" | sed -n 's/.*"modules":"\([^"]*\)".*/\1/p')
  export NODUS_TEST_KERNEL_ROOT="${kernel_modules%/lib/modules/*}"
  export NODUS_KERNEL_DIR="$NODUS_TEST_KERNEL_ROOT"
else
  echo "warning: no Debian kernel; the QEMU tier will say so" >&2
fi

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
# Every hardware profile booted under QEMU (TCG), checked over QUIC, faults
# injected through QMP; one after another.
log "QEMU profile tests"
qemu_log=$(mktemp)
set +e
cargo run --locked -q --bin nodus -- qemu test hw-profiles/profiles/*.toml | tee "$qemu_log"
qemu_rc=${PIPESTATUS[0]}
set -e
# A FAIL fails the run unless hw-profiles/known-gaps.txt lists it (with its reason).
known_gap() { # profile, check
  local entry p c
  while IFS= read -r entry; do
    case "$entry" in ''|'#'*) continue ;; esac
    p=${entry%%:*} c=${entry#*: }
    [ "$p" = "$1" ] && case "$2" in "$c"*) return 0 ;; esac
  done < hw-profiles/known-gaps.txt
  return 1
}
unexpected=0 fails=0
while IFS= read -r line; do
  case "$line" in "FAIL "*) ;; *) continue ;; esac
  fails=$((fails + 1))
  rest=${line#FAIL } ; profile=${rest%%:*} ; check=${rest#*: }
  if known_gap "$profile" "$check"; then
    echo "known gap (hw-profiles/known-gaps.txt): $line"
  else
    echo "UNEXPECTED: $line" >&2
    unexpected=1
  fi
done < "$qemu_log"
while IFS= read -r line; do
  case "$line" in "PASS "*) ;; *) continue ;; esac
  rest=${line#PASS } ; profile=${rest%%:*} ; check=${rest#*: }
  if known_gap "$profile" "$check"; then
    echo "listed as a known gap but passed now, remove it: $line"
  fi
done < "$qemu_log"
rm -f "$qemu_log"
if [ "$unexpected" -ne 0 ] || { [ "$qemu_rc" -ne 0 ] && [ "$fails" -eq 0 ]; }; then
  echo "QEMU profile tests failed" >&2
  exit 1
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
