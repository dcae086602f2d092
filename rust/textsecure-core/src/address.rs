//! Addresses of remote parties: a name (service id, phone number, JID user...) and a device id.
//!
//! A leaf module: everything else (sessions, groups, sealed sender, stores) uses it, it uses
//! nothing of theirs.

use std::fmt;

/// A remote party: a name (service id, phone number, JID user...) and a device id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The name.
    pub name: String,
    /// The device id.
    pub device_id: u32,
}

impl Address {
    /// A new address.
    pub fn new(name: impl Into<String>, device_id: u32) -> Self {
        Self {
            name: name.into(),
            device_id,
        }
    }
}

impl Address {
    /// The fixed-width binary ServiceId of the name (17 bytes: kind 0x00 ACI or 0x01 PNI, then
    /// the 16 UUID bytes), if the name is a ServiceId string: a hyphenated UUID (an ACI) or
    /// `PNI:` followed by one.
    pub fn service_id_binary(&self) -> Option<[u8; 17]> {
        let (kind, uuid) = match self.name.strip_prefix("PNI:") {
            Some(rest) => (1u8, rest),
            None => (0u8, self.name.as_str()),
        };
        let b = uuid.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut out = [0u8; 17];
        out[0] = kind;
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = (c as char).to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    n += 1;
                    *out.get_mut(n)? = (h << 4) | v;
                }
            }
        }
        (n == 16).then_some(out)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.device_id)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl Address {
    /// The canonical spelling of this address, the one every store keys and locks by: a
    /// ServiceId name (a hyphenated UUID, optionally `PNI:`-prefixed, any letter case) in
    /// lower case with the prefix as `PNI:`; any other name unchanged. Two spellings of one
    /// contact must never take two locks or two rows.
    pub fn canonical(&self) -> Address {
        let (prefix, rest) = match self.name.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("PNI:") => ("PNI:", &self.name[4..]),
            _ => ("", self.name.as_str()),
        };
        let probe = Address::new(rest, 0);
        if probe.service_id_binary().is_some() {
            Address::new(
                format!("{prefix}{}", rest.to_ascii_lowercase()),
                self.device_id,
            )
        } else {
            self.clone()
        }
    }

    /// Whether this address is already in its canonical spelling.
    pub fn is_canonical(&self) -> bool {
        self.canonical() == *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spellings() {
        let u = "9D0652A3-DCC3-4D11-975F-74D61598733F";
        let l = u.to_ascii_lowercase();
        assert_eq!(Address::new(u, 1).canonical(), Address::new(l.clone(), 1));
        assert_eq!(
            Address::new(format!("pni:{u}"), 2).canonical(),
            Address::new(format!("PNI:{l}"), 2)
        );
        for other in ["+14155550100", "Alice", "12345@s.whatsapp.net", "pni:nope"] {
            assert_eq!(Address::new(other, 3).canonical(), Address::new(other, 3));
        }
        assert!(Address::new(l, 1).is_canonical());
        assert!(!Address::new(u, 1).is_canonical());
    }
}
