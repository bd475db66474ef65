//! [`BridgeConfig`]: what one host's bridge serves, and the Zenoh configuration made
//! from it.
//!
//! The Zenoh session is a *peer* that listens only on the configured endpoints and
//! connects only to the configured ones: multicast scouting and gossip are off, so
//! nothing is discovered or announced beyond what the operator wrote. Only names in
//! [`BridgeConfig::exports`] can be opened from other hosts.

use std::path::PathBuf;

use culvert::remote::{valid_component, MAX_HOST_NAME};

use crate::BridgeError;

/// TLS files for zenoh's `tls/` links (crate feature `tls`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the certificate authority that signs peers' certificates.
    pub root_ca: PathBuf,
    /// PEM certificate this bridge presents.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
}

/// One host's bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The domain: bridges of different domains never see each other's keys.
    pub domain: String,
    /// This host's name (`//host/name` on other hosts).
    pub host: String,
    /// Zenoh endpoints to listen on, e.g. `tcp/127.0.0.1:7447`.
    pub listen: Vec<String>,
    /// Zenoh endpoints of other bridges to connect to.
    pub connect: Vec<String>,
    /// Local names (pipes, mailslots, groups, ports) other hosts may open.
    pub exports: Vec<String>,
    /// Namespace root directory of this host's objects (`None`: the default).
    pub root: Option<PathBuf>,
    /// TLS files, when the endpoints are `tls/…`.
    pub tls: Option<TlsFiles>,
}

impl BridgeConfig {
    /// A configuration of `domain` and `host`, with no endpoints and no exports.
    pub fn new(domain: impl Into<String>, host: impl Into<String>) -> Self {
        BridgeConfig {
            domain: domain.into(),
            host: host.into(),
            ..Self::default()
        }
    }

    /// Adds a listen endpoint.
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }

    /// Adds a connect endpoint.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.connect.push(endpoint.into());
        self
    }

    /// Exports a local name.
    pub fn export(mut self, name: impl Into<String>) -> Self {
        self.exports.push(name.into());
        self
    }

    /// Sets the namespace root.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Whether other hosts may open `name`.
    pub fn is_exported(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }

    /// Checks names and endpoints.
    ///
    /// # Errors
    /// `BridgeError::Config` saying what is wrong.
    pub fn validate(&self) -> Result<(), BridgeError> {
        let bad = |what: String| Err(BridgeError::Config(what));
        if !valid_component(&self.domain, MAX_HOST_NAME) {
            return bad(format!("domain {:?}: use [A-Za-z0-9._-]", self.domain));
        }
        if !valid_component(&self.host, MAX_HOST_NAME) {
            return bad(format!("host {:?}: use [A-Za-z0-9._-]", self.host));
        }
        for e in &self.exports {
            if !valid_component(e, 200) {
                return bad(format!("exported name {e:?}: use [A-Za-z0-9._-]"));
            }
        }
        for ep in self.listen.iter().chain(&self.connect) {
            if !(ep.starts_with("tcp/") || ep.starts_with("tls/")) || ep.contains('"') {
                return bad(format!(
                    "endpoint {ep:?}: use tcp/HOST:PORT or tls/HOST:PORT"
                ));
            }
            if ep.starts_with("tls/") && self.tls.is_none() {
                return bad(format!("endpoint {ep:?} needs TLS files"));
            }
        }
        if self.listen.is_empty() && self.connect.is_empty() {
            return bad("no listen or connect endpoint".into());
        }
        Ok(())
    }

    /// The Zenoh configuration: peer mode, no scouting, exactly these endpoints.
    ///
    /// # Errors
    /// `BridgeError::Config` if Zenoh refuses a value.
    pub fn zenoh_config(&self) -> Result<zenoh::Config, BridgeError> {
        self.validate()?;
        let json = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
            format!("[{}]", items.join(","))
        };
        let mut c = zenoh::Config::default();
        let mut set = |k: &str, v: &str| {
            c.insert_json5(k, v)
                .map_err(|e| BridgeError::Config(format!("zenoh config {k}: {e}")))
        };
        set("mode", "\"peer\"")?;
        set("scouting/multicast/enabled", "false")?;
        set("scouting/gossip/enabled", "false")?;
        set("listen/endpoints", &json(&self.listen))?;
        set("connect/endpoints", &json(&self.connect))?;
        // Keep retrying peers that are not up yet (or restart) instead of failing.
        set("connect/exit_on_failure", "false")?;
        set("listen/exit_on_failure", "true")?;
        set("connect/timeout_ms", "2000")?;
        set(
            "connect/retry",
            "{period_init_ms: 100, period_max_ms: 500, period_increase_factor: 2}",
        )?;
        set("timestamping/enabled", "false")?;
        set("adminspace/enabled", "false")?;
        if let Some(tls) = &self.tls {
            let path = |p: &PathBuf| format!("\"{}\"", p.display().to_string().replace('"', ""));
            set(
                "transport/link/tls/root_ca_certificate",
                &path(&tls.root_ca),
            )?;
            set("transport/link/tls/listen_certificate", &path(&tls.cert))?;
            set("transport/link/tls/listen_private_key", &path(&tls.key))?;
            set("transport/link/tls/connect_certificate", &path(&tls.cert))?;
            set("transport/link/tls/connect_private_key", &path(&tls.key))?;
            set("transport/link/tls/enable_mtls", "true")?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = BridgeConfig::new("d", "a").listen("tcp/127.0.0.1:1");
        assert!(ok.validate().is_ok());
        if let Err(e) = ok.zenoh_config() {
            panic!("{e}");
        }
        assert!(BridgeConfig::new("d", "a/b")
            .listen("tcp/127.0.0.1:1")
            .validate()
            .is_err());
        assert!(BridgeConfig::new("d", "a").validate().is_err());
        assert!(BridgeConfig::new("d", "a")
            .listen("udp/x")
            .validate()
            .is_err());
        assert!(BridgeConfig::new("d", "a")
            .listen("tls/127.0.0.1:1")
            .validate()
            .is_err());
    }
}
