//! Arbitrary Redis replies: a tree the fuzzer builds (with `arbitrary`), turned into the
//! `redis::Value` a script call would return, including the RESP3 kinds a script never returns.

use arbitrary::Arbitrary;
use jobs::__fuzz::redis::{self, PushKind, Value, VerbatimFormat};

/// Deeper trees add nothing but stack: every decoder looks at most two levels down.
const MAX_DEPTH: usize = 8;

/// One reply value. Its first variant needs no input, so a tree ends when the input does.
#[derive(Arbitrary, Debug, Clone)]
pub enum ArbValue {
    Nil,
    Int(i64),
    /// A string of bytes, the common case.
    Bulk(Vec<u8>),
    /// A number as a string, the way scripts return numbers of Redis commands.
    Number(u64),
    Array(Vec<ArbValue>),
    Simple(String),
    Okay,
    Map(Vec<(ArbValue, ArbValue)>),
    Set(Vec<ArbValue>),
    Double(f64),
    Boolean(bool),
    Verbatim(String),
    BigNumber(Vec<u8>),
    Push(Vec<ArbValue>),
    Attribute(Box<ArbValue>, Vec<(ArbValue, ArbValue)>),
    /// An error reply, e.g. `-ERR x`.
    Error(String),
}

impl ArbValue {
    /// The `redis::Value` this stands for.
    pub fn to_value(&self) -> Value {
        self.at_depth(0)
    }

    fn at_depth(&self, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Nil;
        }
        let all = |v: &[ArbValue]| v.iter().map(|x| x.at_depth(depth + 1)).collect();
        let pairs = |v: &[(ArbValue, ArbValue)]| {
            v.iter()
                .map(|(k, x)| (k.at_depth(depth + 1), x.at_depth(depth + 1)))
                .collect()
        };
        match self {
            ArbValue::Nil => Value::Nil,
            ArbValue::Int(i) => Value::Int(*i),
            ArbValue::Bulk(b) => Value::BulkString(b.clone()),
            ArbValue::Number(n) => Value::BulkString(n.to_string().into_bytes()),
            ArbValue::Array(v) => Value::Array(all(v)),
            ArbValue::Simple(s) => Value::SimpleString(s.clone()),
            ArbValue::Okay => Value::Okay,
            ArbValue::Map(v) => Value::Map(pairs(v)),
            ArbValue::Set(v) => Value::Set(all(v)),
            ArbValue::Double(d) => Value::Double(*d),
            ArbValue::Boolean(b) => Value::Boolean(*b),
            ArbValue::Verbatim(s) => Value::VerbatimString {
                format: VerbatimFormat::Text,
                text: s.clone(),
            },
            ArbValue::BigNumber(b) => Value::BigNumber(b.clone()),
            ArbValue::Push(v) => Value::Push {
                kind: PushKind::Message,
                data: all(v),
            },
            ArbValue::Attribute(data, attributes) => Value::Attribute {
                data: Box::new(data.at_depth(depth + 1)),
                attributes: pairs(attributes),
            },
            ArbValue::Error(message) => {
                // `ServerError` has no public constructor: parse the reply Redis would send.
                let line: String = message
                    .chars()
                    .filter(|c| !matches!(c, '\r' | '\n'))
                    .collect();
                redis::parse_redis_value(format!("-ERR {line}\r\n").as_bytes())
                    .unwrap_or(Value::Nil)
            }
        }
    }
}
