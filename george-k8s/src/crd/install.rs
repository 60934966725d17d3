//! Installing the CRDs into a cluster: server-side apply, then wait until the API server
//! reports each `Established`.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

/// The field manager George applies its CRDs with.
pub const CRD_FIELD_MANAGER: &str = "george-k8s";

/// Applies [`all`](super::all) with server-side apply (field manager
/// [`CRD_FIELD_MANAGER`], forcing conflicts) and waits up to `timeout` until each is
/// `Established` (its API is served).
///
/// # Errors
/// The API server refused a CRD (the error names why), or one was not established in
/// time (a `kube::Error::Service` naming it).
pub async fn install(client: kube::Client, timeout: Duration) -> Result<(), kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let pp = PatchParams::apply(CRD_FIELD_MANAGER).force();
    let crds = super::all();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &pp, &Patch::Apply(crd)).await?;
    }
    let deadline = Instant::now() + timeout;
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            if established(&api.get(&name).await?) {
                break;
            }
            if Instant::now() > deadline {
                return Err(kube::Error::Service(
                    format!("CRD {name} was not Established within {timeout:?}").into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Whether `crd` has condition `Established=True`.
pub fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}
