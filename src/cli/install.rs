//! `epoxy install crds [--dry-run]`: Gloo's CRDs, printed or applied to the cluster.

use super::Global;
use crate::api::Kind;
use anyhow::{Result, anyhow};
use clap::Subcommand;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;

#[derive(Subcommand, Debug)]
pub enum InstallCommand {
    /// Install the CRDs of Upstream, UpstreamGroup, VirtualService and RouteTable (as Gloo's)
    Crds {
        /// Print them instead of applying them
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(g: &Global, c: InstallCommand) -> Result<()> {
    let InstallCommand::Crds { dry_run } = c;
    if dry_run {
        print!("{}", crate::kube::crds::all_yaml());
        return Ok(());
    }
    let target = g.kube_target().unwrap_or_default();
    let client = target.client().await?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    for kind in Kind::CUSTOM {
        let mut obj: DynamicObject = serde_json::from_value(crate::kube::crds::crd(kind))?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        let existing = api
            .get_opt(&name)
            .await
            .map_err(|e| anyhow!("reading {name}: {e}"))?;
        match existing {
            // Gloo (or an earlier install) may have put them there already: keep theirs.
            Some(_) => println!("customresourcedefinition {name} already present"),
            None => {
                obj.metadata.resource_version = None;
                api.create(&PostParams::default(), &obj)
                    .await
                    .map_err(|e| anyhow!("creating {name}: {e}"))?;
                println!("customresourcedefinition {name} created");
            }
        }
    }
    Ok(())
}
