//! Normalisation of display names and aliases: NFKC (which also folds half-width katakana and
//! full-width Latin), lowercase, and removal of everything that is not a letter or digit.

use unicode_normalization::UnicodeNormalization;

/// NFKC, lowercase, letters and digits only: `"ﾏｲｸﾛｿﾌﾄ"` → `"マイクロソフト"`, `"Pay Pal"` → `"paypal"`.
pub fn compact(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Words of `s` after NFKC and lowercase: split at non-alphanumerics and where ASCII meets
/// non-ASCII (`"JCBカード"` → `["jcb", "カード"]`).
pub fn alias_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut cur_ascii = true;
    for c in s.nfkc().flat_map(char::to_lowercase) {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if !cur.is_empty() && c.is_ascii() != cur_ascii {
            words.push(std::mem::take(&mut cur));
        }
        cur_ascii = c.is_ascii();
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_folds_width_case_and_spaces() {
        assert_eq!(compact("ﾏｲｸﾛｿﾌﾄ"), "マイクロソフト");
        assert_eq!(
            compact("Ｍｉｃｒｏｓｏｆｔ アカウント チーム"),
            "microsoftアカウントチーム"
        );
        assert_eq!(compact("Pay-Pal Service!"), "paypalservice");
        assert_eq!(compact(" .\u{3000}"), "");
    }

    #[test]
    fn alias_words_split_scripts() {
        assert_eq!(alias_words("JCBカード"), vec!["jcb", "カード"]);
        assert_eq!(alias_words("au PAY"), vec!["au", "pay"]);
        assert_eq!(alias_words("Apple Support"), vec!["apple", "support"]);
    }
}
