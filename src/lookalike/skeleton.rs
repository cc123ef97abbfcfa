//! UTS #39 confusable skeletons, lowercased (CRATES.md gotcha 15: `skeleton("microsoft")` is
//! `rnicrosoft` and `0` maps to `O`, so both sides must go through the same function).

use unicode_security::skeleton;

/// Lowercase skeleton of `s`: equal for strings a reader would confuse.
pub fn skel(s: &str) -> String {
    skeleton(s).collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_maps_lookalikes_together() {
        let ms = skel("microsoft");
        for s in [
            "rnicrosoft",
            "micr0soft",
            "mіcrosoft",
            "ｍｉｃｒｏｓｏｆｔ",
            "MICROSOFT",
        ] {
            assert_eq!(skel(s), ms, "{s}");
        }
        assert_eq!(skel("paypa1"), skel("paypal"));
        assert_eq!(skel("arnazon"), skel("amazon"));
        assert_ne!(skel("paypay"), skel("paypal"));
    }
}
