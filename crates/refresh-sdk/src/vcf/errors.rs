//! What the SDK knows of VCF's errors: how its error bodies read
//! ([`VcfErrorDetail`]), what to do about each operation's errors, and
//! [`map`], the generated operations' errors as the SDK's.

use progenitor_client::Error as GeneratedError;

use super::SERVICE;
use crate::error::{
    Error, ErrorKind, VcfErrorDetail, VcfNotification, VcfRemediation, VendorDetail,
};
use crate::http::exec::CallFacts;
use crate::http::failure::{self, Vendor};
use crate::text::Secrets;

fn vcf_detail(error: &vcf_tokens::types::Error) -> Option<VendorDetail> {
    let detail = VcfErrorDetail {
        message: error.message.clone(),
        error_code: error.error_code.clone(),
        remediation_message: error.remediation_message.clone(),
        reference_token: error.reference_token.clone(),
        notifications: error
            .notifications
            .iter()
            .map(|n| {
                let mut notification = VcfNotification {
                    severity: n.severity.clone(),
                    message: n.message.clone(),
                    impact: n.impact_message.clone(),
                    ..VcfNotification::default()
                };
                notification.remediations = n
                    .remediations
                    .iter()
                    .map(|r| VcfRemediation {
                        message: r.message.clone(),
                        link: r.link.clone(),
                    })
                    .collect();
                notification
            })
            .collect(),
    };
    // Every field is optional, so any JSON object decodes; one with none of
    // them is better shown raw.
    (detail != VcfErrorDetail::default()).then_some(VendorDetail::Vcf(detail))
}

/// The failure of the generated `operation`, which sent `secret`, as the
/// SDK's error.
pub(super) fn map<E>(
    operation: &'static str,
    error: GeneratedError<E>,
    facts: &CallFacts,
    secret: &str,
) -> Error {
    let mut secrets = Secrets::default();
    secrets.add(secret);
    failure::map_error(&VENDOR, operation, error, facts, &secrets)
}

/// What the error mapping knows of VCF.
static VENDOR: Vendor = Vendor {
    service: SERVICE,
    detail: |body| {
        serde_json::from_slice::<vcf_tokens::types::Error>(body)
            .ok()
            .as_ref()
            .and_then(vcf_detail)
    },
    hint,
};

/// What to check when SDDC Manager refuses a username and password.
pub(super) const PASSWORD_REFUSED_HINT: &str = "Check VCF_SDDC_MANAGER_USERNAME and \
     VCF_SDDC_MANAGER_PASSWORD (or its _FILE); SDDC Manager locks an account after 3 failed logins";

/// What the caller can do about an error of `kind` from `operation`, where
/// VCF's operations call for more than the generic hint.
fn hint(operation: &'static str, kind: ErrorKind) -> Option<&'static str> {
    Some(match (operation, kind) {
        ("create_token", ErrorKind::Auth) => PASSWORD_REFUSED_HINT,
        ("create_token", ErrorKind::NotFound) => {
            "No token API at this address: check that VCF_SDDC_MANAGER_HOST names the SDDC Manager itself, without a path"
        }
        ("refresh_access_token" | "invalidate_refresh_token", ErrorKind::NotFound) => {
            "Create a new token pair (log in again)"
        }
        (_, ErrorKind::NotFound) => "Check VCF_SDDC_MANAGER_HOST and the path",
        _ => return None,
    })
}
