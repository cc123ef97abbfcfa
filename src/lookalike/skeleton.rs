//! UTS #39 confusable skeletons, lowercased (CRATES.md gotcha 15: `skeleton("microsoft")` is
//! `rnicrosoft` and `0` maps to `O`, so both sides must go through the same function), then
//! folded further for lowercase ASCII lookalikes that UTS #39 leaves apart because they are
//! distinct in a good font but not in a mail client's small sans-serif one: `cl`/`d`, `lc`/`k`,
//! `i`/`l`, `c`/`e`, `q`/`g`, `v`/`u`, `nn`/`m`, `m`/`n` (the pairs dnstwist's homoglyph fuzzer uses).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::skeleton;

/// Letters with a stroke or hook that have no decomposition and that UTS #39 keeps apart.
fn strip_stroke(c: char) -> char {
    match c {
        'ø' | 'ǿ' | 'ɵ' => 'o',
        'ƒ' => 'f',
        'ɱ' | 'ᴍ' => 'm',
        'ʐ' | 'ƶ' | 'ȥ' => 'z',
        'ł' | 'ƚ' | 'ɫ' | 'ɬ' => 'l',
        'đ' | 'ɗ' | 'ɖ' => 'd',
        'ħ' | 'ɦ' => 'h',
        'ı' | 'ɨ' => 'i',
        'ƀ' | 'ɓ' => 'b',
        'ƈ' | 'ȼ' => 'c',
        'ɠ' | 'ǥ' => 'g',
        'ƙ' => 'k',
        'ɲ' | 'ŋ' | 'ƞ' => 'n',
        'ƥ' => 'p',
        'ɍ' | 'ɽ' => 'r',
        'ʂ' | 'ȿ' => 's',
        'ƭ' | 'ŧ' | 'ʈ' => 't',
        'ʋ' => 'v',
        'ƴ' | 'ɏ' => 'y',
        'ɐ' | 'ⱥ' => 'a',
        'ɇ' => 'e',
        c => c,
    }
}

/// Multi-letter folds, applied in order before the single-letter ones.
const PAIRS: &[(&str, &str)] = &[
    ("cl", "d"),
    ("dl", "d"),
    ("lc", "k"),
    ("lb", "b"),
    ("lh", "h"),
    ("vv", "w"),
    ("nn", "rn"),
    // `m` (skeleton `rn`) and `n` differ by one stroke at small sizes.
    ("rn", "n"),
];

/// Lowercase, folded skeleton of `s`: equal for strings a reader would confuse.
pub fn skel(s: &str) -> String {
    // Diacritics first (ṇ, ô, ș): UTS #39 keeps them, a reader skims over them.
    let bare: String = s
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(strip_stroke)
        .collect();
    let mut out = skeleton(&bare).collect::<String>().to_lowercase();
    for (from, to) in PAIRS {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out.chars()
        .map(|c| match c {
            'i' => 'l',
            'c' => 'e',
            'q' => 'g',
            'v' => 'u',
            c => c,
        })
        .collect()
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
        assert_eq!(skel("anazon"), skel("amazon"));
        assert_eq!(skel("nintenclo"), skel("nintendo"));
        assert_eq!(skel("rakutcn"), skel("rakuten"));
        assert_eq!(skel("mizuhobanlc"), skel("mizuhobank"));
        assert_eq!(skel("aṇazon"), skel("anazon"));
        assert_eq!(skel("0utløøk"), skel("outlook"));
        assert_eq!(skel("ƒacebôok"), skel("facebook"));
    }
}
