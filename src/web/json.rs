//! JSON string literals for the small bodies and reports this crate writes by hand.
use std::fmt::Write as _;

/// `text` as a JSON string literal. User names come from auth modules and may hold anything:
/// control characters are escaped, and so are `<`, `>` and `&`, so a body that ends up in a
/// page can never close a script element.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json_string("alice"), "\"alice\"");
        assert_eq!(json_string("a\"b\\c\n<"), "\"a\\\"b\\\\c\\n\\u003c\"");
        assert_eq!(json_string("\u{1}\t&>"), "\"\\u0001\\t\\u0026\\u003e\"");
        assert_eq!(json_string("ü@EXAMPLE"), "\"ü@EXAMPLE\"");
        // The last control character is escaped, the first printable one (a space) is not.
        assert_eq!(json_string("\u{1f} x"), "\"\\u001f x\"");
    }
}
