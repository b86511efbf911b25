//! Kubernetes: client setup and the CRDs of Gloo's kinds.

pub mod connect;
pub mod crds;
pub mod lease;
pub mod state;

use anyhow::{Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;

/// Where and how to reach the cluster: `--kubeconfig`, `--context`, else the usual rules
/// (`KUBECONFIG`, `~/.kube/config`, or the in-cluster service account).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl Target {
    pub async fn config(&self) -> Result<kube::Config> {
        let opts = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        match &self.kubeconfig {
            Some(p) => {
                let kc = Kubeconfig::read_from(p)
                    .with_context(|| format!("reading kubeconfig {}", p.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .with_context(|| format!("kubeconfig {}", p.display()))
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&opts)
                .await
                .context("reading the kubeconfig"),
            None => kube::Config::infer()
                .await
                .context("no cluster configured (no kubeconfig, not in a cluster)"),
        }
    }

    pub async fn client(&self) -> Result<kube::Client> {
        let config = self.config().await?;
        kube::Client::try_from(config).context("creating the Kubernetes client")
    }

    /// The context name, for headers and messages.
    pub fn describe(&self) -> String {
        match (&self.context, &self.kubeconfig) {
            (Some(c), _) => format!("kube {c}"),
            (None, Some(p)) => format!("kube {}", p.display()),
            (None, None) => "kube (current context)".into(),
        }
    }
}
