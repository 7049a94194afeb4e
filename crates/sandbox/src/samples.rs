//! Canned answers for a few read-only SDDC Manager endpoints, in the shapes
//! of VMware's VCF 9.0.2 API document (`specs/swagger.json` of
//! `vmware/vcf-sdk-go`, `info.version` 9.0.2.0): `GET /v1/domains`
//! (`PageOfDomain`), `/v1/system` (`System`), `/v1/hosts` (`PageOfHost`) and
//! `/v1/clusters` (`PageOfCluster`). One management domain and one workload
//! domain, a cluster each, four and three hosts. Every name is under the
//! reserved `example.com`, every address in a documentation range
//! (RFC 5737): nothing here points at a real system.

use axum::http::Method;
use serde_json::{Value, json};

const DOMAIN: &str = "example.com";

/// One workload domain of the sample inventory.
struct Domain {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    vcenter_id: &'static str,
    nsx_id: &'static str,
    cluster_id: &'static str,
    cluster: &'static str,
    /// The hosts' ids; their names are `<domain>-esx0N`.
    hosts: &'static [&'static str],
    /// The third octet of the hosts' management addresses.
    subnet: u8,
}

const DOMAINS: [Domain; 2] = [
    Domain {
        id: "5f4a7a3c-6b1e-4c1d-9a57-0d2c8e6b1a01",
        name: "sfo-m01",
        kind: "MANAGEMENT",
        vcenter_id: "9b1f0e4a-2f7d-4b59-8d3e-4c6a1b2c3d01",
        nsx_id: "c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e01",
        cluster_id: "0e8b5c2a-7d4f-4a1b-b3c6-5e9d8f7a6b01",
        cluster: "sfo-m01-cl01",
        hosts: &[
            "a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a01",
            "a1b2c3d4-0002-4e5f-8a9b-0c1d2e3f4a02",
            "a1b2c3d4-0003-4e5f-8a9b-0c1d2e3f4a03",
            "a1b2c3d4-0004-4e5f-8a9b-0c1d2e3f4a04",
        ],
        subnet: 11,
    },
    Domain {
        id: "5f4a7a3c-6b1e-4c1d-9a57-0d2c8e6b1a02",
        name: "sfo-w01",
        kind: "VI",
        vcenter_id: "9b1f0e4a-2f7d-4b59-8d3e-4c6a1b2c3d02",
        nsx_id: "c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e02",
        cluster_id: "0e8b5c2a-7d4f-4a1b-b3c6-5e9d8f7a6b02",
        cluster: "sfo-w01-cl01",
        hosts: &[
            "a1b2c3d4-0005-4e5f-8a9b-0c1d2e3f4a05",
            "a1b2c3d4-0006-4e5f-8a9b-0c1d2e3f4a06",
            "a1b2c3d4-0007-4e5f-8a9b-0c1d2e3f4a07",
        ],
        subnet: 21,
    },
];

/// The routes, as `SandboxBuilder::protected_route` takes them.
pub(crate) fn routes() -> Vec<(Method, String, Value)> {
    vec![
        (Method::GET, "/v1/clusters".to_owned(), clusters()),
        (Method::GET, "/v1/domains".to_owned(), domains()),
        (Method::GET, "/v1/hosts".to_owned(), hosts()),
        (Method::GET, "/v1/system".to_owned(), system()),
    ]
}

/// A `PageOf*`: every element on page 0, so one page.
fn page(elements: Vec<Value>) -> Value {
    let n = elements.len();
    json!({
        "elements": elements,
        "pageMetadata": {
            "pageNumber": 0,
            "pageSize": n,
            "totalElements": n,
            "totalPages": 1,
        },
    })
}

fn domain_reference(domain: &Domain) -> Value {
    json!({ "id": domain.id, "name": domain.name, "type": domain.kind })
}

fn vcenter_reference(domain: &Domain) -> Value {
    json!({ "id": domain.vcenter_id, "fqdn": format!("{}-vc01.{DOMAIN}", domain.name) })
}

fn host_fqdn(domain: &Domain, n: usize) -> String {
    format!("{}-esx{:02}.{DOMAIN}", domain.name, n + 1)
}

fn domains() -> Value {
    page(
        DOMAINS
            .iter()
            .map(|domain| {
                let management = domain.kind == "MANAGEMENT";
                json!({
                    "id": domain.id,
                    "name": domain.name,
                    "orgName": "Example",
                    "status": "ACTIVE",
                    "type": domain.kind,
                    "vcenters": [vcenter_reference(domain)],
                    "ssoId": "7c1e9a2b-3d4f-4e5a-8b6c-9d0e1f2a3b01",
                    "ssoName": "vsphere.local",
                    "isManagementSsoDomain": management,
                    "clusters": [{ "id": domain.cluster_id, "name": domain.cluster }],
                    "nsxtCluster": {
                        "id": domain.nsx_id,
                        "vipFqdn": format!("{}-nsx01.{DOMAIN}", domain.name),
                    },
                    "tags": [],
                    "lifecycleManagementMode": "IMAGES",
                    "isPrimaryDomainForNsx": true,
                })
            })
            .collect(),
    )
}

fn system() -> Value {
    json!({
        "id": "2d6f8a0b-4c5e-4f7a-9b1c-3d5e7f9a1b01",
        "maxAllowedDomainsInSubscription": 15,
    })
}

fn hosts() -> Value {
    page(
        DOMAINS
            .iter()
            .flat_map(|domain| {
                domain.hosts.iter().enumerate().map(move |(n, id)| {
                    json!({
                        "id": id,
                        "fqdn": host_fqdn(domain, n),
                        "esxiVersion": "9.0.2.0",
                        "hardwareVendor": "Example Systems",
                        "hardwareModel": "EX-2U",
                        "ipAddresses": [
                            { "ipAddress": format!("192.0.2.{}", usize::from(domain.subnet) + n), "type": "MANAGEMENT" },
                        ],
                        "cpu": { "cores": 32, "frequencyMHz": 89_600.0, "usedFrequencyMHz": 12_800.0 },
                        "memory": { "totalCapacityMB": 524_288.0, "usedCapacityMB": 131_072.0 },
                        "storage": { "totalCapacityMB": 7_630_000.0, "usedCapacityMB": 1_907_500.0 },
                        "domain": domain_reference(domain),
                        "networkpool": {
                            "id": "e3f5a7b9-1c2d-4e6f-8a0b-2c4d6e8f0a01",
                            "name": "sfo-np01",
                        },
                        "cluster": { "id": domain.cluster_id, "name": domain.cluster },
                        "status": "ASSIGNED",
                        "compatibleStorageType": "VSAN",
                        "datastoreType": "VSAN",
                        "hybrid": false,
                        "tags": [],
                    })
                })
            })
            .collect(),
    )
}

fn clusters() -> Value {
    page(
        DOMAINS
            .iter()
            .map(|domain| {
                let hosts: Vec<Value> = domain
                    .hosts
                    .iter()
                    .enumerate()
                    .map(|(n, id)| json!({ "id": id, "fqdn": host_fqdn(domain, n) }))
                    .collect();
                json!({
                    "id": domain.cluster_id,
                    "domain": domain_reference(domain),
                    "name": domain.cluster,
                    "status": "ACTIVE",
                    "primaryDatastoreName": format!("{}-ds-vsan01", domain.cluster),
                    "primaryDatastoreType": "VSAN",
                    "hosts": hosts,
                    "isStretched": false,
                    "isDefault": true,
                    "failuresToTolerate": 1,
                    "tags": [],
                    "isImageBased": true,
                    "vcenter": vcenter_reference(domain),
                    "isImported": false,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The properties of each VCF 9.0.2 schema the samples use, with their
    /// types (`[X]`: an array of X; a capitalised name: that schema), as
    /// `specs/swagger.json` of `vmware/vcf-sdk-go` declares them. A schema
    /// not listed here (`Tag`, `UpgradeStatus`, ...) may only appear empty.
    const SCHEMAS: &[(&str, &[(&str, &str)])] = &[
        (
            "PageOfDomain",
            &[("elements", "[Domain]"), ("pageMetadata", "PageMetadata")],
        ),
        (
            "PageOfHost",
            &[("elements", "[Host]"), ("pageMetadata", "PageMetadata")],
        ),
        (
            "PageOfCluster",
            &[("elements", "[Cluster]"), ("pageMetadata", "PageMetadata")],
        ),
        (
            "PageMetadata",
            &[
                ("pageNumber", "integer"),
                ("pageSize", "integer"),
                ("totalElements", "integer"),
                ("totalPages", "integer"),
            ],
        ),
        (
            "Domain",
            &[
                ("id", "string"),
                ("name", "string"),
                ("orgName", "string"),
                ("status", "string"),
                ("upgradeState", "string"),
                ("upgradeStatus", "UpgradeStatus"),
                ("type", "string"),
                ("owners", "[string]"),
                ("vcenters", "[VcenterReference]"),
                ("ssoId", "string"),
                ("ssoName", "string"),
                ("isManagementSsoDomain", "boolean"),
                ("clusters", "[ClusterReference]"),
                ("nsxtCluster", "NsxTClusterReference"),
                ("licensingInfo", "LicensingInfoReference"),
                ("capacity", "Capacity"),
                ("tags", "[Tag]"),
                ("elmStatus", "string"),
                ("lifecycleManagementMode", "string"),
                ("isNetworkSeparationEnabled", "boolean"),
                ("isSecurityEnabled", "boolean"),
                ("isPrimaryDomainForNsx", "boolean"),
            ],
        ),
        (
            "VcenterReference",
            &[
                ("id", "string"),
                ("fqdn", "string"),
                ("vcInstanceId", "string"),
            ],
        ),
        ("ClusterReference", &[("id", "string"), ("name", "string")]),
        (
            "NsxTClusterReference",
            &[("id", "string"), ("vipFqdn", "string"), ("vip", "string")],
        ),
        (
            "System",
            &[
                ("id", "string"),
                ("maxAllowedDomainsInSubscription", "integer"),
            ],
        ),
        (
            "Host",
            &[
                ("id", "string"),
                ("serialNumber", "string"),
                ("esxiVersion", "string"),
                ("sshThumbprint", "string"),
                ("sslThumbprint", "string"),
                ("fqdn", "string"),
                ("hardwareVendor", "string"),
                ("hardwareModel", "string"),
                ("ipAddresses", "[IpAddress]"),
                ("cpu", "Cpu"),
                ("memory", "Memory"),
                ("storage", "Storage"),
                ("physicalNics", "[PhysicalNic]"),
                ("networks", "[Network]"),
                ("hostNetworks", "[HostNetwork]"),
                ("gpus", "[Gpu]"),
                ("domain", "DomainReference"),
                ("networkpool", "NetworkPoolReference"),
                ("cluster", "ClusterReference"),
                ("status", "string"),
                ("compatibleStorageType", "string"),
                ("bundleRepoDatastore", "string"),
                ("hybrid", "boolean"),
                ("softwareInfo", "SoftwareInfo"),
                ("tags", "[Tag]"),
                ("configurationStatus", "string"),
                ("datastoreType", "string"),
                ("vvolStorageProtocolType", "string"),
            ],
        ),
        ("IpAddress", &[("ipAddress", "string"), ("type", "string")]),
        (
            "Cpu",
            &[
                ("frequencyMHz", "number"),
                ("usedFrequencyMHz", "number"),
                ("cores", "integer"),
                ("cpuCores", "[CpuCore]"),
            ],
        ),
        (
            "Memory",
            &[("totalCapacityMB", "number"), ("usedCapacityMB", "number")],
        ),
        (
            "Storage",
            &[
                ("totalCapacityMB", "number"),
                ("usedCapacityMB", "number"),
                ("disks", "[Disk]"),
            ],
        ),
        (
            "DomainReference",
            &[("id", "string"), ("name", "string"), ("type", "string")],
        ),
        (
            "NetworkPoolReference",
            &[("id", "string"), ("name", "string")],
        ),
        (
            "Cluster",
            &[
                ("id", "string"),
                ("domain", "DomainReference"),
                ("name", "string"),
                ("status", "string"),
                ("hciMeshData", "HciMeshData"),
                ("primaryDatastoreName", "string"),
                ("primaryDatastoreType", "string"),
                ("hosts", "[HostReference]"),
                ("isStretched", "boolean"),
                ("isDefault", "boolean"),
                ("failuresToTolerate", "integer"),
                ("vdsSpecs", "[VdsSpec]"),
                ("tags", "[Tag]"),
                ("isImageBased", "boolean"),
                ("configManagerEnabled", "boolean"),
                ("capacity", "Capacity"),
                ("vcenter", "VcenterReference"),
                ("managedObjectReferenceId", "string"),
                ("vsanClusterMode", "string"),
                ("datacenter", "Datacenter"),
                ("isImported", "boolean"),
            ],
        ),
        (
            "HostReference",
            &[
                ("id", "string"),
                ("ipAddress", "string"),
                ("fqdn", "string"),
                ("vmNics", "[VMNicInfo]"),
                ("azName", "string"),
            ],
        ),
    ];

    /// The required properties the document declares for these schemas.
    const REQUIRED: &[(&str, &[&str])] = &[
        ("VcenterReference", &["id"]),
        ("ClusterReference", &["id"]),
        ("DomainReference", &["id"]),
        ("NetworkPoolReference", &["id"]),
    ];

    /// Checks `value` against the type `ty` of the table above; returns
    /// where it does not match.
    fn check(value: &Value, ty: &str, at: &str) -> Result<(), String> {
        let wrong = || Err(format!("{at}: not {ty}: {value}"));
        if let Some(item) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let Some(items) = value.as_array() else {
                return wrong();
            };
            return items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| check(v, item, &format!("{at}[{i}]")));
        }
        match ty {
            "string" if value.is_string() => Ok(()),
            "integer" if value.is_i64() || value.is_u64() => Ok(()),
            "number" if value.is_number() => Ok(()),
            "boolean" if value.is_boolean() => Ok(()),
            "string" | "integer" | "number" | "boolean" => wrong(),
            schema => {
                let Some((_, properties)) = SCHEMAS.iter().find(|(name, _)| *name == schema) else {
                    return Err(format!("{at}: {schema} is not in the table; leave it out"));
                };
                let Some(object) = value.as_object() else {
                    return wrong();
                };
                if let Some((_, required)) = REQUIRED.iter().find(|(name, _)| *name == schema) {
                    for property in *required {
                        if !object.contains_key(*property) {
                            return Err(format!("{at}: {schema} requires {property}"));
                        }
                    }
                }
                object.iter().try_for_each(|(key, v)| {
                    match properties.iter().find(|(name, _)| name == key) {
                        Some((_, ty)) => check(v, ty, &format!("{at}.{key}")),
                        None => Err(format!("{at}: {schema} has no property {key}")),
                    }
                })
            }
        }
    }

    #[test]
    fn every_sample_has_the_shape_of_its_vcf_9_0_2_schema() {
        let expected = [
            ("/v1/clusters", "PageOfCluster"),
            ("/v1/domains", "PageOfDomain"),
            ("/v1/hosts", "PageOfHost"),
            ("/v1/system", "System"),
        ];
        let routes = routes();
        assert_eq!(routes.len(), expected.len());
        for ((method, path, body), (want_path, schema)) in routes.iter().zip(expected) {
            assert_eq!(*method, Method::GET);
            assert_eq!(path, want_path);
            if let Err(e) = check(body, schema, path) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn pages_count_their_elements() {
        for (_, path, body) in routes() {
            let Some(elements) = body["elements"].as_array() else {
                continue;
            };
            let n = elements.len() as u64;
            assert!(n > 0, "{path}");
            assert_eq!(body["pageMetadata"]["pageNumber"], 0, "{path}");
            assert_eq!(body["pageMetadata"]["pageSize"], n, "{path}");
            assert_eq!(body["pageMetadata"]["totalElements"], n, "{path}");
            assert_eq!(body["pageMetadata"]["totalPages"], 1, "{path}");
        }
    }

    #[test]
    fn the_inventory_agrees_with_itself() {
        let hosts = hosts();
        let clusters = clusters();
        let domains = domains();
        let in_clusters: usize = clusters["elements"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["hosts"].as_array())
                    .map(Vec::len)
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(
            Some(in_clusters),
            hosts["elements"].as_array().map(Vec::len)
        );
        for domain in domains["elements"].as_array().into_iter().flatten() {
            let cluster = &domain["clusters"][0]["id"];
            assert!(
                clusters["elements"].as_array().is_some_and(|c| c
                    .iter()
                    .any(|c| c["id"] == *cluster && c["domain"]["id"] == domain["id"])),
                "{domain}"
            );
        }
    }
}
