//! Floats in records that survive JSON: a finite number is written as a
//! number, infinity and NaN (a diverged run's perplexity, say) as the strings
//! `"inf"`, `"-inf"` and `"NaN"`, which JSON numbers cannot hold. Reading
//! accepts those and `null` (what older files held for them, read as NaN).
//! Used with `#[serde(with = "float")]` on every `f64` of a record.

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else if x.is_nan() {
        s.serialize_str("NaN")
    } else if *x > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
    Null(()),
}

fn from_repr<E: serde::de::Error>(r: Repr) -> Result<f64, E> {
    match r {
        Repr::Number(x) => Ok(x),
        Repr::Null(()) => Ok(f64::NAN),
        Repr::Text(t) => match t.as_str() {
            "inf" | "+inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            "NaN" | "nan" => Ok(f64::NAN),
            other => Err(E::custom(format!(
                "expected a number, \"inf\", \"-inf\" or \"NaN\", found {other:?}"
            ))),
        },
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    from_repr(Repr::deserialize(d)?)
}

/// The same for `Option<f64>`: `None` is `null`, as before.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match x {
            Some(x) => super::serialize(x, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<super::Repr>::deserialize(d)? {
            None | Some(super::Repr::Null(())) => Ok(None),
            Some(r) => super::from_repr(r).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Row {
        #[serde(with = "super")]
        x: f64,
        #[serde(default, with = "super::option")]
        y: Option<f64>,
    }

    #[test]
    fn non_finite_numbers_round_trip_and_old_nulls_read_as_nan() {
        for x in [1.5, f64::INFINITY, f64::NEG_INFINITY, 0.0, -2e300] {
            let text = serde_json::to_string(&Row { x, y: Some(x) }).unwrap();
            let back: Row = serde_json::from_str(&text).unwrap();
            assert_eq!((back.x, back.y), (x, Some(x)), "{text}");
        }
        let text = serde_json::to_string(&Row {
            x: f64::NAN,
            y: None,
        })
        .unwrap();
        assert_eq!(text, r#"{"x":"NaN","y":null}"#);
        let back: Row = serde_json::from_str(&text).unwrap();
        assert!(back.x.is_nan() && back.y.is_none());
        let old: Row = serde_json::from_str(r#"{"x":null}"#).unwrap();
        assert!(old.x.is_nan());
        assert!(serde_json::from_str::<Row>(r#"{"x":"many"}"#).is_err());
    }
}
