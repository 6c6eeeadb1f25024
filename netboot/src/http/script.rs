//! Per-machine iPXE scripts.

use std::collections::BTreeMap;

/// One machine's boot settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Machine {
    /// Extra kernel arguments for this machine only.
    pub args: String,
}

/// Everything a boot script is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    /// Our HTTP base URL, e.g. `http://10.0.0.1:8080`.
    pub base_url: String,
    /// The farm id.
    pub farm: String,
    /// The network (chain id) manifests are signed for.
    pub network: String,
    /// Chain endpoints the node talks to.
    pub chain: Vec<String>,
    /// The netboot public key (text form), if an image is served.
    pub public_key: Option<String>,
    /// Kernel arguments for every machine.
    pub kernel_args: String,
    /// Machines by lower-case MAC (`52-54-00-…`) or UUID text.
    pub machines: BTreeMap<String, Machine>,
    /// How many times the script retries DHCP before giving up.
    pub dhcp_retries: u32,
}

/// A machine id from a script URL: `52-54-00-12-34-56`, `52:54:00:12:34:56` or a
/// UUID. Returns the normal form, or `None` for anything else.
pub fn normalise_id(id: &str) -> Option<String> {
    let id = id.to_ascii_lowercase();
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mac: Vec<&str> = id.split(['-', ':']).collect();
    if mac.len() == 6 && mac.iter().all(|p| is_hex(p, 2)) {
        return Some(mac.join("-"));
    }
    let u: Vec<&str> = id.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if u.len() == 5 && u.iter().zip(lens).all(|(p, n)| is_hex(p, n)) {
        return Some(id);
    }
    None
}

impl Scripts {
    /// The script for machine `id` (already normalised). Unknown machines get the
    /// farm's defaults: any machine of the farm may boot, and registration on the
    /// chain decides the rest.
    pub fn render(&self, id: &str) -> String {
        let machine = self.machines.get(id).cloned().unwrap_or_default();
        let base = &self.base_url;
        let mut cmdline = vec![
            "initrd=initramfs".to_owned(),
            format!("nodus.farm={}", self.farm),
            format!("nodus.network={}", self.network),
            format!("nodus.manifest={base}/image/manifest"),
            format!("nodus.machine={id}"),
        ];
        if !self.chain.is_empty() {
            cmdline.push(format!("nodus.chain={}", self.chain.join(",")));
        }
        if let Some(k) = &self.public_key {
            // The contract with the init (agent/src/boot): `nodus.boot_key=`.
            cmdline.push(format!("nodus.boot_key={k}"));
        }
        // iPXE expands ${netX/mac} itself: the kernel learns which NIC booted.
        cmdline.push("BOOTIF=01-${netX/mac:hexhyp}".to_owned());
        for extra in [&self.kernel_args, &machine.args] {
            if !extra.trim().is_empty() {
                cmdline.push(extra.trim().to_owned());
            }
        }
        let cmdline = cmdline.join(" ");
        let retries = self.dhcp_retries;
        format!(
            "#!ipxe\n\
             # Nodus boot script for {id}, farm {farm}.\n\
             # A proxyDHCP offer can lose the race to the router's: retry until the\n\
             # boot file name is set, so next-server and filename are ours.\n\
             set tries:int32 0\n\
             :dhcp\n\
             isset ${{filename}} && goto boot ||\n\
             inc tries\n\
             iseq ${{tries}} {retries} && goto failed ||\n\
             dhcp || goto dhcp\n\
             goto dhcp\n\
             :boot\n\
             kernel {base}/image/vmlinuz {cmdline} || goto failed\n\
             initrd --name initramfs {base}/image/initramfs || goto failed\n\
             boot || goto failed\n\
             :failed\n\
             echo Nodus boot failed for {id}; retrying in 10 s\n\
             sleep 10\n\
             reboot\n",
            farm = self.farm,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scripts() -> Scripts {
        Scripts {
            base_url: "http://10.0.0.1:8080".into(),
            farm: "farm7".into(),
            network: "nodus-devnet".into(),
            chain: vec!["10.0.0.2:7000".into(), "10.0.0.3:7000".into()],
            public_key: Some("acct1xyz".into()),
            kernel_args: "console=ttyS0".into(),
            machines: [(
                "52-54-00-12-34-56".to_owned(),
                Machine {
                    args: "nodus.role=storage".into(),
                },
            )]
            .into(),
            dhcp_retries: 20,
        }
    }

    #[test]
    fn ids_normalise() {
        assert_eq!(
            normalise_id("52:54:00:AB:cd:ef").as_deref(),
            Some("52-54-00-ab-cd-ef")
        );
        assert_eq!(
            normalise_id("00112233-4455-6677-8899-AABBCCDDEEFF").as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
        for bad in [
            "",
            "52-54-00",
            "../../etc/passwd",
            "zz-54-00-12-34-56",
            "52-54-00-12-34-567",
        ] {
            assert_eq!(normalise_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn script_carries_the_kernel_command_line() {
        let s = scripts().render("52-54-00-12-34-56");
        assert!(s.starts_with("#!ipxe\n"));
        let kernel = s
            .lines()
            .find(|l| l.starts_with("kernel "))
            .unwrap_or_default();
        for want in [
            "http://10.0.0.1:8080/image/vmlinuz",
            "initrd=initramfs",
            "nodus.farm=farm7",
            "nodus.chain=10.0.0.2:7000,10.0.0.3:7000",
            "nodus.boot_key=acct1xyz",
            "nodus.manifest=http://10.0.0.1:8080/image/manifest",
            "console=ttyS0",
            "nodus.role=storage",
        ] {
            assert!(kernel.contains(want), "{want} missing from {kernel}");
        }
        assert!(s.contains("isset ${filename}"));
        assert!(s.contains("iseq ${tries} 20"));
        let other = scripts().render("52-54-00-00-00-01");
        assert!(!other.contains("nodus.role=storage"));
    }
}
