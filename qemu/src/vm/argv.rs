//! The whole `qemu-system-x86_64` argv for one VM: the profile's machine part
//! from `nodus-hw-profiles`, plus kernel, initramfs, command line, serial console,
//! QMP socket and one user-mode network backend per NIC.

use std::path::{Path, PathBuf};

use nodus_hw_profiles::{
    Profile,
    qemu_args::{VmPaths, i2c_kernel_args, machine_args},
};

/// The UDP port the agent listens on for QUIC inside the guest
/// (`nodus.listen` default, see `contracts.md`).
pub const GUEST_QUIC_PORT: u16 = 7447;

/// The accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Software emulation; always works.
    Tcg,
    /// KVM, only after [`crate::accel::probe_kvm`] said it answers.
    Kvm,
}

/// Where the guest's first serial port goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    /// Only into the log file.
    File,
    /// To our stdin/stdout (interactive), and into the log file too.
    Stdio,
}

/// Everything needed to build the argv, besides the profile.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// Extra kernel command-line words (`nodus.owner=…`, …).
    pub cmdline: Vec<String>,
    /// The accelerator.
    pub accel: Accel,
    /// Serial console routing.
    pub serial: Serial,
    /// Host UDP port forwarded to the guest's [`GUEST_QUIC_PORT`] on the first NIC
    /// that has link at boot.
    pub quic_port: Option<u16>,
    /// Start with the CPUs stopped (`-S`), so link states can be set before the
    /// guest runs.
    pub paused: bool,
}

/// Per-VM file locations, all under one temporary directory.
#[derive(Debug, Clone)]
pub struct VmFiles {
    /// The directory.
    pub dir: PathBuf,
}

impl VmFiles {
    /// The QMP socket.
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    /// The serial console log.
    pub fn serial(&self) -> PathBuf {
        self.dir.join("serial.log")
    }
    /// The disk image directory paths for `machine_args`.
    pub fn disks(&self) -> VmPaths {
        VmPaths {
            disk_dir: self.dir.clone(),
        }
    }
}

/// Kernel command-line words every harness boot carries: the serial console,
/// reboot-on-panic off (with `-no-reboot`, a panic ends QEMU instead of looping),
/// and the profile's I2C setup.
pub fn base_cmdline(profile: &Profile) -> Vec<String> {
    let mut c = vec![
        "console=ttyS0,115200".to_owned(),
        "panic=-1".to_owned(),
        "loglevel=4".to_owned(),
        "nodus.console=ttyS0".to_owned(),
    ];
    c.extend(i2c_kernel_args(profile));
    c
}

/// The index of the NIC that carries the QUIC port forward: the first one with
/// link at boot (a profile whose first NIC has no carrier is reached through the
/// one that has it, as a real farmer's network would).
pub fn forwarded_nic(profile: &Profile) -> Option<usize> {
    use nodus_hw_profiles::schema::Link;
    profile.raw.nics.iter().position(|n| n.link == Link::Up)
}

/// Builds the full argv (without the program name).
pub fn argv(profile: &Profile, launch: &Launch, files: &VmFiles) -> Vec<String> {
    let mut a = machine_args(profile, &files.disks());
    // `machine_args` says `-machine q35,accel=tcg`; QEMU refuses `-machine accel=`
    // together with `-accel`, so the accelerator moves to `-accel` here.
    if let Some(w) = a.iter_mut().find(|w| w.starts_with("q35,accel=")) {
        *w = "q35".into();
    }
    match launch.accel {
        Accel::Kvm => a.extend(["-accel".into(), "kvm".into()]),
        // Multi-threaded TCG: one host thread per vCPU.
        Accel::Tcg => a.extend(["-accel".into(), "tcg,thread=multi".into()]),
    }
    let forward = forwarded_nic(profile);
    for (i, nic) in profile.raw.nics.iter().enumerate() {
        // Each NIC gets its own user-mode network with a distinct subnet, so two
        // NICs never get the same address and route.
        let mut nd = format!("user,id=net-{},net=10.0.{}.0/24", nic.id, 2 + i);
        if let (Some(port), Some(f)) = (launch.quic_port, forward)
            && f == i
        {
            nd.push_str(&format!(",hostfwd=udp:127.0.0.1:{port}-:{GUEST_QUIC_PORT}"));
        }
        a.extend(["-netdev".into(), nd]);
    }
    let serial_log = path_opt(&files.serial());
    match launch.serial {
        Serial::File => a.extend(["-chardev".into(), format!("file,id=ser0,path={serial_log}")]),
        Serial::Stdio => a.extend([
            "-chardev".into(),
            format!("stdio,id=ser0,signal=on,logfile={serial_log}"),
        ]),
    }
    a.extend(["-serial".into(), "chardev:ser0".into()]);
    a.extend([
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", path_opt(&files.qmp())),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-kernel".into(),
        launch.kernel.display().to_string(),
        "-initrd".into(),
        launch.initrd.display().to_string(),
        "-append".into(),
        launch.cmdline.join(" "),
    ]);
    if launch.paused {
        a.push("-S".into());
    }
    a
}

fn path_opt(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// `qemu-img create` arguments for every disk of the profile: a sparse qcow2 of the
/// profile's size, so a 8 TB disk costs a few hundred KiB.
pub fn disk_create_args(profile: &Profile, files: &VmFiles) -> Vec<Vec<String>> {
    profile
        .raw
        .disks
        .iter()
        .map(|d| {
            vec![
                "create".into(),
                "-q".into(),
                "-f".into(),
                "qcow2".into(),
                files.disks().disk_image(&d.id).display().to_string(),
                format!("{}G", d.size_gib),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str) -> Profile {
        Profile::load(&nodus_hw_profiles::bundled_dir().join(format!("{name}.toml"))).unwrap()
    }

    fn launch() -> Launch {
        Launch {
            kernel: "/k/vmlinuz".into(),
            initrd: "/k/initrd".into(),
            cmdline: vec!["console=ttyS0".into(), "nodus.owner=acct1x".into()],
            accel: Accel::Tcg,
            serial: Serial::File,
            quic_port: Some(40000),
            paused: true,
        }
    }

    #[test]
    fn forward_goes_to_the_first_nic_with_link() {
        let files = VmFiles {
            dir: "/tmp/vm".into(),
        };
        let p = profile("dual-nic-second-link");
        let a = argv(&p, &launch(), &files);
        let netdevs: Vec<&String> = a
            .iter()
            .zip(a.iter().skip(1))
            .filter(|(k, _)| *k == "-netdev")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(netdevs.len(), 2);
        assert!(!netdevs[0].contains("hostfwd"), "{}", netdevs[0]);
        assert!(netdevs[1].contains("hostfwd=udp:127.0.0.1:40000-:7447"));
        assert!(netdevs[1].contains("net=10.0.3.0/24"));
    }

    #[test]
    fn argv_has_tcg_qmp_serial_kernel_and_paused_start() {
        let files = VmFiles {
            dir: "/tmp/vm".into(),
        };
        let a = argv(&profile("office-minipc"), &launch(), &files);
        let j = a.join(" ");
        assert!(j.contains("-accel tcg,thread=multi"), "{j}");
        assert!(!j.contains("accel=kvm"));
        assert!(j.contains("-machine q35 "), "{j}");
        assert!(j.contains("-qmp unix:/tmp/vm/qmp.sock,server=on,wait=off"));
        assert!(j.contains("-chardev file,id=ser0,path=/tmp/vm/serial.log"));
        assert!(j.contains("-kernel /k/vmlinuz -initrd /k/initrd"));
        assert!(j.ends_with("-S"));
        let append = a.iter().position(|w| w == "-append").unwrap();
        assert_eq!(a[append + 1], "console=ttyS0 nodus.owner=acct1x");
    }

    #[test]
    fn i2c_profile_puts_stub_addresses_on_the_cmdline() {
        let c = base_cmdline(&profile("i2c-sensor-board"));
        assert!(
            c.iter().any(|w| w == "i2c_stub.chip_addr=0x48,0x40"),
            "{c:?}"
        );
    }

    #[test]
    fn one_sparse_qcow2_per_disk() {
        let files = VmFiles {
            dir: "/tmp/vm".into(),
        };
        let c = disk_create_args(&profile("storage-box"), &files);
        assert_eq!(c.len(), 10);
        assert_eq!(c[0][4], "/tmp/vm/hdd0.qcow2");
        assert_eq!(c[0][5], "8000G");
    }
}
