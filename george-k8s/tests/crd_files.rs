//! The CRD YAML committed under `deploy/crds/` is exactly what the code generates
//! (regenerate with `GEORGE_K8S_BLESS=1 cargo test -p george-k8s --test crd_files`), and
//! it reads back as the same CRDs.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

#[test]
fn the_committed_crds_are_the_generated_ones() {
    let dir = crd_dir();
    let bless = std::env::var_os("GEORGE_K8S_BLESS").is_some();
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    for crd in george_k8s::crd::all() {
        let path = dir.join(george_k8s::crd::file_name(&crd));
        let generated = george_k8s::crd::to_yaml(&crd);
        if bless {
            std::fs::write(&path, &generated).unwrap();
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != generated {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the CRDs the code generates; regenerate them with\n  \
         GEORGE_K8S_BLESS=1 cargo test -p george-k8s --test crd_files\nand commit them"
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "agentspecs.george.dev.yaml",
            "jobs.george.dev.yaml",
            "tasktemplates.george.dev.yaml"
        ]
    );
}

#[test]
fn the_yaml_reads_back_as_the_same_crds() {
    for crd in george_k8s::crd::all() {
        let yaml = george_k8s::crd::to_yaml(&crd);
        let back: CustomResourceDefinition = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, crd);
    }
    let stream = george_k8s::crd::all_yaml();
    assert_eq!(stream.matches("kind: CustomResourceDefinition").count(), 3);
}

#[test]
fn the_job_crd_has_the_status_subresource_and_columns() {
    use kube::CustomResourceExt as _;
    let crd = george_k8s::crd::Job::crd();
    let v = &crd.spec.versions[0];
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let cols: Vec<_> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Template", "Status", "Step", "Approval", "Age"]);
    let status = &v
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap()
        .properties
        .as_ref()
        .unwrap()["status"];
    let conditions = &status.properties.as_ref().unwrap()["conditions"];
    assert_eq!(conditions.x_kubernetes_list_type.as_deref(), Some("map"));
    assert_eq!(
        conditions.x_kubernetes_list_map_keys.as_deref(),
        Some(&["type".to_string()][..])
    );
    let steps = &status.properties.as_ref().unwrap()["steps"];
    assert_eq!(steps.max_items, Some(george_k8s::crd::MAX_STEPS as i64));
}
