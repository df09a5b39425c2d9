//! A webhook body read into a JSON value of at most [`MAX_NODES`] values.
//!
//! A gateway's envelope is an object of a few hundred values; read whole
//! into a `serde_json::Value`, an 8 MB body of tiny values (`[0,0,…]`)
//! takes over a hundred megabytes. Counting values as they are read stops
//! such a body at the limit, so one request's memory stays proportional to
//! a real delivery.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Most JSON values (objects, arrays, strings, numbers…) one webhook body
/// may hold: far above any gateway's envelope.
pub const MAX_NODES: usize = 100_000;

/// Why a body was not read.
#[derive(Debug)]
pub enum Unread {
    /// More than the limit of values.
    TooLarge(usize),
    /// Not JSON.
    Invalid(serde_json::Error),
}

/// Reads `body` into a value of at most `max` JSON values.
pub fn parse(body: &[u8], max: usize) -> Result<Value, Unread> {
    let left = Cell::new(max);
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Node {
        left: &left,
        over: &over,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match value {
        Ok(v) => Ok(v),
        Err(_) if over.get() => Err(Unread::TooLarge(max)),
        Err(e) => Err(Unread::Invalid(e)),
    }
}

/// One value, counted against what is left.
#[derive(Clone, Copy)]
struct Node<'a> {
    left: &'a Cell<usize>,
    over: &'a Cell<bool>,
}

impl Node<'_> {
    fn take<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.over.set(true);
                Err(E::custom("too many JSON values"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.take()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.take()?;
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads_within_the_limit() {
        let body = br#"{"event":"message","payload":{"id":"x","n":[1,2.5,-3,true,null,"s"]}}"#;
        let expected: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(parse(body, MAX_NODES).unwrap(), expected);
        // 1 object, 2 keys, … every value and key counts.
        assert!(matches!(parse(body, 5), Err(Unread::TooLarge(5))));
        assert!(matches!(parse(b"{", MAX_NODES), Err(Unread::Invalid(_))));
        assert!(matches!(parse(b"{} x", MAX_NODES), Err(Unread::Invalid(_))));
    }

    #[test]
    fn a_body_of_tiny_values_stops_at_the_limit() {
        let mut body = b"[".to_vec();
        body.extend(std::iter::repeat_n(b"0,".as_slice(), 200_000).flatten());
        body.extend_from_slice(b"0]");
        assert!(matches!(
            parse(&body, MAX_NODES),
            Err(Unread::TooLarge(MAX_NODES))
        ));
    }
}
