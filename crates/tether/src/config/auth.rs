//! The `[auth]` section: keys inline or from a key file, checked by the codec's own rules.

use std::path::Path;

use tether_proto::codec::AuthConfigError;
use tether_proto::{AuthConfig, Key};

use super::AuthSection;

/// The codec's configuration for `section`, or `None` after reporting what is wrong.
pub(super) fn auth_config(
    section: &AuthSection,
    base: &Path,
    report: &mut impl FnMut(&str, String),
) -> Option<AuthConfig> {
    let mut keys = Vec::new();
    let mut ok = true;
    if let Some(file) = &section.key_file {
        if !section.keys.is_empty() {
            report(
                "auth.key",
                "is given together with auth.key_file; keep one of them".into(),
            );
            ok = false;
        }
        match read_key_file(&base.join(file)) {
            Ok(file_keys) => keys = file_keys,
            Err(message) => {
                report("auth.key_file", message);
                ok = false;
            }
        }
    }
    for (i, key) in section.keys.iter().enumerate() {
        if let Some(secret) = parse_hex(&key.secret) {
            keys.push(Key { id: key.id, secret });
        } else {
            report(
                &format!("auth.key[{i}].secret"),
                "is not hex; write two hex digits per byte, like \"00112233...\" (generate one \
                 with `openssl rand -hex 32`)"
                    .into(),
            );
            ok = false;
        }
    }
    if ok && section.require && keys.is_empty() {
        report(
            "auth",
            "require = true but no key is configured; set auth.key_file (or require = false in \
             a lab without untrusted hosts)"
                .into(),
        );
        ok = false;
    }
    let config = AuthConfig {
        send_key: section.send_key.or(keys.first().map(|k| k.id)),
        keys,
        require: section.require,
    };
    if let Err(e) = config.validate() {
        let field = match e {
            AuthConfigError::SendKeyMissing(_) => "auth.send_key",
            _ if section.key_file.is_some() => "auth.key_file",
            _ => "auth.key",
        };
        report(field, e.to_string());
        ok = false;
    }
    ok.then_some(config)
}

/// Reads `KEY-ID HEX-SECRET` lines; `#` starts a comment.
fn read_key_file(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {} ({e}); create it with one line \"1 <hex secret>\", e.g. \
             `echo \"1 $(openssl rand -hex 32)\" > {}`",
            path.display(),
            path.display()
        )
    })?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let bad = |what: &str| {
            format!(
                "{} line {}: {what}; expected \"KEY-ID HEX-SECRET\", like \"1 00112233...\"",
                path.display(),
                n + 1
            )
        };
        let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad("not two words"));
        };
        let id = id
            .parse::<u32>()
            .map_err(|_| bad(&format!("key id \"{id}\" is not a number")))?;
        let secret = parse_hex(secret).ok_or_else(|| {
            bad(&format!(
                "the secret is not hex with two digits per byte ({} digits)",
                secret.len()
            ))
        })?;
        keys.push(Key { id, secret });
    }
    Ok(keys)
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
