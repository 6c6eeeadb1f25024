//! `nodus-netboot`: stateless boot for Nodus machines.
//!
//! It will hold DHCPv4 and proxyDHCP, read-only TFTP, HTTP boot with per-machine iPXE
//! scripts, the initramfs image builder and ed25519-signed boot manifests.
//!
//! It deliberately runs nothing from a machine's own disks and holds no node logic:
//! once the kernel and initramfs are delivered, the agent takes over.

