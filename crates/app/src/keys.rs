//! Tables of the config file whose keys several crates own. `[http]` holds the HTTP
//! service's keys, httpbin's limits and the mail web's; a `[[port]]` row holds the keys every
//! row has and the keys of its service. Each crate parses its own keys into its own type;
//! this module hands each type the keys it has, keeping every key's place in the file, so
//! that an error in any of them still names the file, the line and the column.
//!
//! Which keys a type has is read from its `Deserialize` implementation (serde-aux's
//! introspection: the field names serde itself would accept), so the lists cannot drift
//! from the types.

use std::ops::Range;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The keys the type `T` takes, as serde names them.
pub(crate) fn keys_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<T>()
}

/// A key with no owner, or a value its owner refuses: where, and why.
#[derive(Debug)]
pub(crate) struct KeyError {
    pub(crate) span: Option<Range<usize>>,
    pub(crate) message: String,
}

impl From<toml::de::Error> for KeyError {
    fn from(error: toml::de::Error) -> Self {
        Self {
            span: error.span(),
            message: error.message().to_owned(),
        }
    }
}

/// A table being shared out: each [`take`](Self::take) removes the keys its type has.
pub(crate) struct Shared<'i> {
    span: Range<usize>,
    entries: Vec<(Spanned<toml::de::DeString<'i>>, Spanned<DeValue<'i>>)>,
    /// Every key some owner took, for the message about a key nobody has.
    known: Vec<&'static str>,
    /// Where each key of the table is, taken or not, for errors found after reading.
    places: Vec<(String, Range<usize>)>,
}

impl<'i> Shared<'i> {
    /// The table `value` (none: an empty one); a value that is not a table is an error at
    /// its place.
    pub(crate) fn new(value: Option<Spanned<DeValue<'i>>>, name: &str) -> Result<Self, KeyError> {
        let Some(value) = value else {
            return Ok(Self {
                span: 0..0,
                entries: Vec::new(),
                known: Vec::new(),
                places: Vec::new(),
            });
        };
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(table) => {
                let entries: Vec<_> = table.into_iter().collect();
                let places = entries
                    .iter()
                    .map(|(key, value)| (key.get_ref().to_string(), value.span()))
                    .collect();
                Ok(Self {
                    span,
                    entries,
                    known: Vec::new(),
                    places,
                })
            }
            _ => Err(KeyError {
                span: Some(span),
                message: format!("`{name}` must be a table"),
            }),
        }
    }

    /// The keys of `T`, removed from the table and read as `T` (its defaults for the ones
    /// not given).
    pub(crate) fn take<T: Deserialize<'i>>(&mut self) -> Result<T, KeyError> {
        let keys = keys_of::<T>();
        self.known.extend_from_slice(keys);
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|(key, _)| keys.contains(&key.get_ref().as_ref()));
        self.entries = rest;
        let mut table = DeTable::new();
        for (key, value) in mine {
            table.insert(key, value);
        }
        let value = T::deserialize(Spanned::new(self.span.clone(), table).into_deserializer())?;
        Ok(value)
    }

    /// Every key nobody took yet, removed and read as JSON: a row's service's own keys,
    /// which the service's type reads as it reads them from the control API.
    pub(crate) fn take_rest(
        &mut self,
    ) -> Result<serde_json::Map<String, serde_json::Value>, KeyError> {
        let mut table = DeTable::new();
        for (key, value) in std::mem::take(&mut self.entries) {
            table.insert(key, value);
        }
        let value = serde_json::Map::deserialize(
            Spanned::new(self.span.clone(), table).into_deserializer(),
        )?;
        Ok(value)
    }

    /// Where the value of `key` is in the file, whoever took it.
    pub(crate) fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.places
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, span)| span.clone())
    }

    /// The table's own place in the file.
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The keys nobody took, with their places.
    pub(crate) fn left(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.entries
            .iter()
            .map(|(key, _)| (key.get_ref().as_ref(), key.span()))
    }

    /// Fail on the first key nobody took, as serde words an unknown field.
    pub(crate) fn finish(self) -> Result<(), KeyError> {
        match self.left().next() {
            None => Ok(()),
            Some((key, span)) => Err(KeyError {
                span: Some(span),
                message: unknown_field(key, &self.known),
            }),
        }
    }
}

/// serde's words for a key a type does not have.
pub(crate) fn unknown_field(key: &str, known: &[&str]) -> String {
    let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match expected.as_slice() {
        [] => format!("unknown field `{key}`, there are no fields"),
        [one] => format!("unknown field `{key}`, expected {one}"),
        [first @ .., last] => format!(
            "unknown field `{key}`, expected one of {}, {last}",
            first.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct One {
        a: u32,
        b: String,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Two {
        c: bool,
    }

    fn shared(text: &str) -> Shared<'_> {
        let mut document = DeTable::parse(text).unwrap().into_inner();
        let table = document.remove("t");
        Shared::new(table, "t").unwrap()
    }

    #[test]
    fn each_type_gets_its_keys_and_a_stray_key_is_named_at_its_place() {
        let text = "[t]\na = 7\nc = true\n";
        let mut table = shared(text);
        assert_eq!(
            table.take::<One>().unwrap(),
            One {
                a: 7,
                b: String::new()
            }
        );
        assert_eq!(table.take::<Two>().unwrap(), Two { c: true });
        assert!(table.finish().is_ok());

        let text = "[t]\na = 7\nd = 1\n";
        let mut table = shared(text);
        table.take::<One>().unwrap();
        table.take::<Two>().unwrap();
        let error = table.finish().unwrap_err();
        assert_eq!(
            error.message,
            "unknown field `d`, expected one of `a`, `b`, `c`"
        );
        assert_eq!(&text[error.span.unwrap()], "d");
    }

    #[test]
    fn a_bad_value_keeps_its_place() {
        let text = "[t]\nb = 5\n";
        let error = shared(text).take::<One>().unwrap_err();
        assert!(error.message.contains("invalid type"), "{}", error.message);
        assert_eq!(&text[error.span.unwrap()], "5");
    }
}
