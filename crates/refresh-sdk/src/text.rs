//! Server text made safe to show: what a server sends may hold terminal
//! control sequences, and may repeat the secrets of the request it answers.
//!
//! [`printable`] is the rendering rule of every error message; [`Secrets`]
//! takes a request's secrets out of the server's text before an error keeps
//! it.

use std::borrow::Cow;
use std::fmt::Write as _;

use secrecy::zeroize::{Zeroize as _, Zeroizing};
use secrecy::{ExposeSecret, SecretString};

/// What replaces each occurrence of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// What replaces a whole text that repeats a secret too short to be matched
/// piecemeal.
pub(crate) const WITHHELD: &str =
    "the server's text was withheld: it repeats a secret of the request";

/// Secrets shorter than this (in characters) are not replaced where they
/// occur: a short string turns up by chance in ordinary words, and replacing
/// it there would show the reader where the secret's letters are. A text
/// holding one is withheld whole instead.
const SHORTEST_REPLACED: usize = 8;

/// `text` as it can be shown on a terminal or in a log line: line breaks
/// folded into single spaces (each line trimmed, blank lines dropped), tabs
/// turned into spaces, and every other control character (C0, DEL, C1) and
/// bidirectional formatting character written as a `\u{..}` escape, so that a
/// server's text cannot clear a screen, set a window title, write to the
/// clipboard (OSC 52), forge a log line or reorder what is shown.
///
/// Borrows `text` when it has none of these (the common case).
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_care) {
        return Cow::Borrowed(text);
    }
    // Lines are trimmed only when there are several: a single line keeps
    // its edges.
    let folding = text.contains(['\n', '\r']);
    let mut out = String::with_capacity(text.len());
    for line in text.split(['\n', '\r']) {
        let line = if folding { line.trim() } else { line };
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        for c in line.chars() {
            match c {
                '\t' => out.push(' '),
                c if needs_care(c) => out.extend(c.escape_unicode()),
                c => out.push(c),
            }
        }
    }
    Cow::Owned(out)
}

/// [`printable`] for an owned text: `text` itself when it needs no change.
pub(crate) fn printable_owned(text: String) -> String {
    if let Cow::Owned(shown) = printable(&text) {
        return shown;
    }
    text
}

/// Whether `c` is not shown as it is: a control character (C0, DEL, C1: line
/// breaks and tabs included) or a bidirectional formatting character.
fn needs_care(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// The secrets of one request: what an error about it must not repeat,
/// whatever the server echoed.
///
/// `Debug` shows how many there are, never what; each is wiped from memory
/// when dropped.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("count", &self.secrets.len())
            .finish()
    }
}

/// A text taken through [`Forms::scrub`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scrubbed<'a> {
    /// The text, with every secret of 8 characters or more replaced by
    /// [`REDACTED`]; borrowed when nothing was replaced.
    Clean(Cow<'a, str>),
    /// The text repeats a secret of fewer than 8 characters (or could not be
    /// cleaned): none of it may be kept.
    Withheld,
}

impl<'a> Scrubbed<'a> {
    /// The clean text, or [`WITHHELD`] in place of a withheld one.
    pub(crate) fn into_text(self) -> Cow<'a, str> {
        match self {
            Scrubbed::Clean(text) => text,
            Scrubbed::Withheld => Cow::Borrowed(WITHHELD),
        }
    }
}

impl Secrets {
    /// Adds a secret the request carries; an empty one is ignored.
    pub(crate) fn add(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secrets.push(SecretString::from(secret.to_owned()));
        }
    }

    /// Whether there is no secret to take out.
    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Every form of every secret, for scrubbing several texts.
    pub(crate) fn forms(&self) -> Forms {
        let mut forms = Forms::default();
        for secret in &self.secrets {
            let secret = secret.expose_secret();
            let list = if secret.chars().count() >= SHORTEST_REPLACED {
                &mut forms.replaced
            } else {
                &mut forms.withheld
            };
            for form in [
                Some(Zeroizing::new(secret.to_owned())),
                json_escaped(secret),
                Some(percent_encoded(secret, Case::Upper)),
                Some(percent_encoded(secret, Case::Lower)),
            ]
            .into_iter()
            .flatten()
            // Never empty for a non-empty secret; an empty form would match
            // everywhere.
            .filter(|form| !form.is_empty())
            {
                if !list.contains(&form) {
                    list.push(form);
                }
            }
        }
        // Longest first: where one secret contains another, the whole of the
        // longer one goes.
        forms
            .replaced
            .sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms
    }
}

/// The forms in which a request's secrets may come back, computed once for
/// all the texts of one error. Wiped from memory when dropped.
#[derive(Default)]
pub(crate) struct Forms {
    /// Forms of secrets long enough to be replaced, longest first.
    replaced: Vec<Zeroizing<String>>,
    /// Forms of the secrets whose presence withholds a text.
    withheld: Vec<Zeroizing<String>>,
}

impl Forms {
    /// `text` without any secret, in any form the server may have echoed it:
    /// as sent, JSON-escaped (as in a JSON string, without the quotes) or
    /// percent-encoded (upper- or lower-case hex). A secret of 8 characters
    /// or more is replaced by [`REDACTED`] wherever it occurs, the longest
    /// first where one contains another; a shorter one makes the whole text
    /// [`Scrubbed::Withheld`].
    pub(crate) fn scrub<'a>(&self, text: &'a str) -> Scrubbed<'a> {
        let text = self.replace(text);
        // Checked on the result, and for every form: a short secret anywhere,
        // or a long one that only appeared once others were replaced (one
        // that spans a replacement's edge, or one inside `[redacted]`
        // itself), withholds the text.
        if self.all().any(|form| text.contains(form.as_str())) {
            return Scrubbed::Withheld;
        }
        Scrubbed::Clean(text)
    }

    /// [`scrub`](Self::scrub) for an owned text, [`WITHHELD`] in place of a
    /// withheld one. A text that held a secret is wiped from memory.
    pub(crate) fn scrub_owned(&self, mut text: String) -> String {
        let clean = match self.scrub(&text) {
            Scrubbed::Clean(Cow::Borrowed(_)) => None,
            other => Some(other.into_text().into_owned()),
        };
        match clean {
            Some(clean) => {
                text.zeroize();
                clean
            }
            None => text,
        }
    }

    /// `text` cut before any tail that could be the start of a secret: what
    /// is left of a secret in a text that was cut short before it was
    /// scrubbed.
    pub(crate) fn without_partial_tail<'t>(&self, text: &'t str) -> &'t str {
        let longest = self.all().map(|form| form.len()).max().unwrap_or(0);
        let window = text.len().saturating_sub(longest)..text.len();
        // The first start found keeps the least of the text.
        for start in window.filter(|&start| text.is_char_boundary(start)) {
            let tail = text.get(start..).unwrap_or_default();
            if self
                .all()
                .any(|form| form.len() > tail.len() && form.starts_with(tail))
            {
                return text.get(..start).unwrap_or_default();
            }
        }
        text
    }

    fn all(&self) -> impl Iterator<Item = &Zeroizing<String>> {
        self.replaced.iter().chain(&self.withheld)
    }

    /// `text` with each occurrence of a replaced form, leftmost first and
    /// the longest at the same place, replaced by [`REDACTED`]; borrowed
    /// when there is none.
    fn replace<'a>(&self, text: &'a str) -> Cow<'a, str> {
        // Where each form next occurs at or after `done`: each form's search
        // moves forward only, so a text full of repeats costs one pass per
        // form, not one per repeat.
        let find = |form: &str, from: usize| {
            text.get(from..)
                .and_then(|rest| rest.find(form))
                .map(|at| at + from)
        };
        let mut next: Vec<Option<usize>> = self
            .replaced
            .iter()
            .map(|form| find(form.as_str(), 0))
            .collect();
        let mut out = String::new();
        let mut done = 0;
        // The earliest occurrence; at one place, the first form listed (the
        // longest).
        while let Some((at, index)) = next
            .iter()
            .enumerate()
            .filter_map(|(index, at)| at.map(|at| (at, index)))
            .min()
        {
            let len = self.replaced.get(index).map_or(0, |form| form.len());
            out.push_str(text.get(done..at).unwrap_or_default());
            out.push_str(REDACTED);
            done = at + len;
            for (slot, form) in next.iter_mut().zip(&self.replaced) {
                if slot.is_some_and(|at| at < done) {
                    *slot = find(form.as_str(), done);
                }
            }
        }
        // Nothing replaced: `out` would hold at least one `[redacted]`.
        if out.is_empty() {
            return Cow::Borrowed(text);
        }
        out.push_str(text.get(done..).unwrap_or_default());
        Cow::Owned(out)
    }
}

/// `secret` as `serde_json` writes it inside a JSON string, without the
/// quotes; `None` when that is the secret itself.
fn json_escaped(secret: &str) -> Option<Zeroizing<String>> {
    // Sized for the worst case (`\u00XX` for every byte, and the quotes) so
    // that no reallocation leaves a copy of the secret in freed memory.
    let mut json = Zeroizing::new(Vec::with_capacity(
        secret.len().saturating_mul(6).saturating_add(2),
    ));
    serde_json::to_writer(&mut *json, secret).ok()?;
    let quoted = std::str::from_utf8(&json).ok()?;
    let escaped = quoted.strip_prefix('"')?.strip_suffix('"')?;
    (escaped != secret).then(|| Zeroizing::new(escaped.to_owned()))
}

/// Which hex digits a percent-encoding uses.
#[derive(Clone, Copy)]
enum Case {
    Upper,
    Lower,
}

/// `secret` percent-encoded as RFC 3986 does it: every byte but the
/// unreserved characters (letters, digits, `-`, `.`, `_`, `~`) as `%XX`.
fn percent_encoded(secret: &str, case: Case) -> Zeroizing<String> {
    // Sized for the worst case, so that no reallocation leaves a copy.
    let mut out = Zeroizing::new(String::with_capacity(secret.len().saturating_mul(3)));
    for byte in secret.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = match case {
                Case::Upper => write!(out, "%{byte:02X}"),
                Case::Lower => write!(out, "%{byte:02x}"),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secrets(list: &[&str]) -> Secrets {
        let mut secrets = Secrets::default();
        for secret in list {
            secrets.add(secret);
        }
        secrets
    }

    fn scrubbed(list: &[&str], text: &str) -> String {
        secrets(list).forms().scrub(text).into_text().into_owned()
    }

    #[test]
    fn printable_cases() {
        let cases = [
            ("plain text", "plain text"),
            ("", ""),
            ("  kept edges  ", "  kept edges  "),
            ("line one\r\n  line two \n\n", "line one line two"),
            ("a\tb", "a b"),
            ("\u{1b}[2J cleared", "\\u{1b}[2J cleared"),
            ("\u{1b}]0;title\u{7}", "\\u{1b}]0;title\\u{7}"),
            (
                "\u{1b}]52;c;aGVsbG8=\u{1b}\\",
                "\\u{1b}]52;c;aGVsbG8=\\u{1b}\\",
            ),
            ("back\u{8}space", "back\\u{8}space"),
            ("nul\0", "nul\\u{0}"),
            ("del\u{7f}", "del\\u{7f}"),
            ("c1 \u{85} \u{9b}31m", "c1 \\u{85} \\u{9b}31m"),
            ("\u{202e}txt.exe", "\\u{202e}txt.exe"),
            (
                "\u{61c}\u{200e}\u{200f}\u{202a}\u{202d}\u{2066}\u{2069}",
                "\\u{61c}\\u{200e}\\u{200f}\\u{202a}\\u{202d}\\u{2066}\\u{2069}",
            ),
            ("é ü 日本 🦀 \u{a0}", "é ü 日本 🦀 \u{a0}"),
            ("a\n\u{1b}\tb", "a \\u{1b} b"),
        ];
        for (text, shown) in cases {
            assert_eq!(printable(text), shown, "{text:?}");
        }
    }

    #[test]
    fn printable_borrows_text_it_does_not_change() {
        assert!(matches!(
            printable("Invalid credentials: é 日本"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(printable("a\u{1b}b"), Cow::Owned(_)));
    }

    #[test]
    fn scrub_cases() {
        let long = "hunter2-long"; // 12 characters
        let cases: &[(&[&str], &str, &str)] = &[
            (&[long], "no secret here", "no secret here"),
            (&[long], "pw hunter2-long!", "pw [redacted]!"),
            (&[long], "hunter2-longhunter2-long", "[redacted][redacted]"),
            // JSON-escaped, percent-encoded in both cases.
            (
                &["quo\"te\\back"],
                r#"{"password":"quo\"te\\back"}"#,
                r#"{"password":"[redacted]"}"#,
            ),
            (
                &["p@ss word/1"],
                "password=p%40ss%20word%2F1",
                "password=[redacted]",
            ),
            (
                &["p@ss word/1"],
                "password=p%40ss%20word%2f1",
                "password=[redacted]",
            ),
            // The longer of two overlapping secrets goes whole.
            (
                &["abcdefgh", "abcdefgh-ijkl"],
                "x abcdefgh-ijkl y",
                "x [redacted] y",
            ),
            (
                &["abcdefgh-ijkl", "abcdefgh"],
                "x abcdefgh-ijkl abcdefgh",
                "x [redacted] [redacted]",
            ),
            // Short secrets withhold the text, in any form.
            (&["pw"], "wrong pw", WITHHELD),
            (&["p@ss"], "got p%40ss", WITHHELD),
            (&["p\"w"], r#"got "p\"w""#, WITHHELD),
            (&["pw"], "no match", "no match"),
            (&[long, "pw"], "hunter2-long only", "[redacted] only"),
            // Seven characters are short, eight are not, counted in characters.
            (&["1234567"], "x 1234567", WITHHELD),
            (&["12345678"], "x 12345678", "x [redacted]"),
            (&["ééééééé"], "x ééééééé", WITHHELD),
            // A secret that `[redacted]` itself contains cannot be cleaned.
            (&["redacted"], "redacted", WITHHELD),
            // Empty secrets are ignored.
            (&[""], "anything", "anything"),
        ];
        for (list, text, want) in cases {
            assert_eq!(scrubbed(list, text), *want, "{list:?} in {text:?}");
        }
    }

    #[test]
    fn scrub_borrows_without_secrets_or_matches() {
        let text = "Invalid credentials";
        assert_eq!(
            Secrets::default().forms().scrub(text),
            Scrubbed::Clean(Cow::Borrowed(text))
        );
        assert_eq!(
            secrets(&["hunter2-long"]).forms().scrub(text),
            Scrubbed::Clean(Cow::Borrowed(text))
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", secrets(&["hunter2-long", "pw"]));
        assert_eq!(shown, "Secrets { count: 2 }");
    }

    #[test]
    fn partial_tail_is_cut() {
        let forms = secrets(&["hunter2-long", "pw"]).forms();
        assert_eq!(forms.without_partial_tail("x hunter2-lo"), "x ");
        assert_eq!(forms.without_partial_tail("x hunter2%2D"), "x hunter2%2D");
        assert_eq!(forms.without_partial_tail("ends in p"), "ends in ");
        assert_eq!(forms.without_partial_tail("nothing"), "nothing");
        assert_eq!(forms.without_partial_tail(""), "");
    }

    /// Every form a secret may come back in, as the tests see them.
    fn forms_of(secret: &str) -> Vec<String> {
        let mut forms = vec![
            secret.to_owned(),
            percent_encoded(secret, Case::Upper).to_string(),
            percent_encoded(secret, Case::Lower).to_string(),
        ];
        let json = serde_json::to_string(secret).expect("a string serializes");
        let unquoted = json.strip_prefix('"').and_then(|j| j.strip_suffix('"'));
        forms.push(unquoted.expect("quoted").to_owned());
        forms
    }

    fn shown_or_escaped(c: char) -> bool {
        !needs_care(c)
    }

    proptest! {
        #[test]
        fn printable_output_has_no_control_or_bidi_character(
            text in "[\\PC\\p{Cc}\u{61c}\u{200e}\u{200f}\u{202a}-\u{202e}\u{2066}-\u{2069}]{0,40}",
        ) {
            let shown = printable(&text);
            prop_assert!(shown.chars().all(shown_or_escaped), "{:?}", shown);
            // Applying the rule again changes nothing.
            prop_assert_eq!(printable(&shown), shown.clone());
        }

        #[test]
        fn printable_keeps_printable_text(text in "[^\\p{Cc}\u{61c}\u{200e}\u{200f}\u{202a}-\u{202e}\u{2066}-\u{2069}]*") {
            prop_assert_eq!(printable(&text), text.as_str());
        }

        #[test]
        fn scrub_output_holds_no_form_of_any_secret(
            list in proptest::collection::vec("[a-z\"\\\\%@ é]{1,12}", 1..4),
            parts in proptest::collection::vec((0usize..4, "[a-z %]{0,6}", 0usize..4), 0..6),
        ) {
            // A text made of the secrets' forms and some noise.
            let mut text = String::new();
            for (secret, noise, form) in &parts {
                let secret = &list[secret % list.len()];
                text.push_str(&forms_of(secret)[*form]);
                text.push_str(noise);
            }
            let refs: Vec<&str> = list.iter().map(String::as_str).collect();
            let out = scrubbed(&refs, &text);
            // The sentence of a withheld text is the SDK's, not the server's.
            let kept = if out == WITHHELD { "" } else { out.as_str() };
            for secret in &list {
                for form in forms_of(secret) {
                    prop_assert!(!kept.contains(&form), "{:?} in {:?}", form, out);
                }
            }
            // Long secrets are replaced, never the cause of a withheld text
            // (unless `[redacted]` itself repeats one).
            if list
                .iter()
                .all(|s| s.chars().count() >= SHORTEST_REPLACED && !REDACTED.contains(s.as_str()))
            {
                prop_assert_ne!(out, WITHHELD);
            }
        }
    }
}
