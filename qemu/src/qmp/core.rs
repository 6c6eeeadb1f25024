//! The sans-IO QMP core: bytes in, typed messages out, commands encoded with ids.
//!
//! QMP (QEMU Machine Protocol, `docs/interop/qmp-spec.rst` in QEMU) is one JSON
//! object per message. The server opens with a greeting, the client must send
//! `qmp_capabilities` before anything else, and afterwards every `execute` gets
//! exactly one `return` or `error` carrying the same `id`, while `event`s arrive at
//! any time. QEMU ends each message with `\r\n`; this parser splits on newlines and
//! tolerates blank lines, so it does not depend on the carriage return.
//!
//! The core never touches a socket or a clock: [`QmpCore::feed`] takes bytes,
//! [`QmpCore::poll`] yields what they meant, [`QmpCore::encode`] writes a command.

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Largest single QMP message accepted. QEMU's biggest replies (`query-qmp-schema`)
/// are a few hundred KiB; anything beyond this is a broken peer, not a reply.
pub const MAX_MESSAGE_LEN: usize = 4 * 1024 * 1024;

/// Why the byte stream from the peer is not valid QMP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A line was not a JSON object.
    #[error("QMP message is not JSON: {0}")]
    NotJson(String),
    /// A JSON object that is none of greeting, return, error or event.
    #[error("Unexpected QMP message: {0}")]
    Unexpected(String),
    /// A message grew beyond [`MAX_MESSAGE_LEN`] without a newline.
    #[error("QMP message longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    /// The first message was not a greeting.
    #[error("QMP peer did not greet first")]
    NoGreeting,
}

/// QEMU's version as the greeting reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct QemuVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro.
    pub micro: u32,
}

/// An error reply (`{"error": {"class", "desc"}}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QmpErrorReply {
    /// QEMU's error class, e.g. `GenericError`, `DeviceNotFound`.
    pub class: String,
    /// Human-readable description.
    pub desc: String,
}

/// An asynchronous event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name, e.g. `SHUTDOWN`, `DEVICE_DELETED`, `NIC_RX_FILTER_CHANGED`.
    pub name: String,
    /// Its `data` object (empty when absent).
    pub data: Value,
    /// Seconds and microseconds since the epoch, as QEMU stamped it.
    pub timestamp: (i64, i64),
}

/// What a chunk of input meant.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The server's greeting, with its version.
    Greeting(QemuVersion),
    /// The reply to the command with this id.
    Reply {
        /// The id [`QmpCore::encode`] gave the command.
        id: u64,
        /// `Ok(return value)` or the error reply.
        result: Result<Value, QmpErrorReply>,
    },
    /// An event.
    Event(Event),
}

/// The protocol state machine for one QMP connection.
#[derive(Debug, Default)]
pub struct QmpCore {
    buf: Vec<u8>,
    greeted: bool,
    next_id: u64,
    out: VecDeque<Output>,
}

impl QmpCore {
    /// A core waiting for the greeting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes read from the peer. Complete messages become [`Output`]s.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.buf.extend_from_slice(bytes);
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let msg = self.parse(text)?;
            self.out.push_back(msg);
        }
        if self.buf.len() > MAX_MESSAGE_LEN {
            return Err(ProtocolError::TooLong);
        }
        Ok(())
    }

    /// The next decoded message, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Encodes `execute name` with `arguments` (omitted when `None` or an empty
    /// object) and returns the id its reply will carry, and the bytes to send.
    pub fn encode(&mut self, name: &str, arguments: Option<Value>) -> (u64, Vec<u8>) {
        let id = self.next_id;
        self.next_id += 1;
        let mut obj = Map::new();
        obj.insert("execute".into(), Value::String(name.to_owned()));
        if let Some(args) = arguments.filter(|a| a.as_object().is_none_or(|o| !o.is_empty())) {
            obj.insert("arguments".into(), args);
        }
        obj.insert("id".into(), Value::from(id));
        let mut bytes = Value::Object(obj).to_string().into_bytes();
        bytes.extend_from_slice(b"\r\n");
        (id, bytes)
    }

    fn parse(&mut self, text: &str) -> Result<Output, ProtocolError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
        let Value::Object(mut obj) = value else {
            return Err(ProtocolError::NotJson(short(text)));
        };
        if let Some(qmp) = obj.remove("QMP") {
            let version = qmp
                .get("version")
                .and_then(|v| v.get("qemu"))
                .cloned()
                .and_then(|v| serde_json::from_value::<QemuVersion>(v).ok())
                .ok_or_else(|| ProtocolError::Unexpected(short(text)))?;
            self.greeted = true;
            return Ok(Output::Greeting(version));
        }
        if !self.greeted {
            return Err(ProtocolError::NoGreeting);
        }
        if let Some(name) = obj.get("event").and_then(Value::as_str).map(str::to_owned) {
            let ts = obj.get("timestamp");
            let field = |k: &str| ts.and_then(|t| t.get(k)).and_then(Value::as_i64);
            let timestamp = (
                field("seconds").unwrap_or(0),
                field("microseconds").unwrap_or(0),
            );
            return Ok(Output::Event(Event {
                name,
                data: obj.remove("data").unwrap_or(Value::Object(Map::new())),
                timestamp,
            }));
        }
        // Replies to commands we sent always carry our numeric id.
        let id = obj
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProtocolError::Unexpected(short(text)))?;
        if let Some(ret) = obj.remove("return") {
            return Ok(Output::Reply {
                id,
                result: Ok(ret),
            });
        }
        if let Some(err) = obj.remove("error") {
            let err: QmpErrorReply =
                serde_json::from_value(err).map_err(|_| ProtocolError::Unexpected(short(text)))?;
            return Ok(Output::Reply {
                id,
                result: Err(err),
            });
        }
        Err(ProtocolError::Unexpected(short(text)))
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;

    #[test]
    fn greeting_then_reply_and_event_split_across_reads() {
        let mut c = QmpCore::new();
        let all = format!(
            "{GREETING}\r\n{{\"return\": {{}}, \"id\": 0}}\r\n{{\"timestamp\": {{\"seconds\": 5, \"microseconds\": 7}}, \"event\": \"SHUTDOWN\", \"data\": {{\"guest\": true, \"reason\": \"guest-shutdown\"}}}}\r\n"
        );
        // Byte by byte: nothing may depend on how reads are cut.
        for b in all.as_bytes() {
            c.feed(&[*b]).unwrap();
        }
        assert_eq!(
            c.poll(),
            Some(Output::Greeting(QemuVersion {
                major: 7,
                minor: 2,
                micro: 22
            }))
        );
        assert_eq!(
            c.poll(),
            Some(Output::Reply {
                id: 0,
                result: Ok(serde_json::json!({}))
            })
        );
        let Some(Output::Event(e)) = c.poll() else {
            panic!("no event")
        };
        assert_eq!(e.name, "SHUTDOWN");
        assert_eq!(e.data["reason"], "guest-shutdown");
        assert_eq!(e.timestamp, (5, 7));
        assert_eq!(c.poll(), None);
    }

    #[test]
    fn error_reply_keeps_class_and_description() {
        let mut c = QmpCore::new();
        c.feed(format!("{GREETING}\n").as_bytes()).unwrap();
        c.poll();
        c.feed(
            br#"{"id": 3, "error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}}
"#,
        )
        .unwrap();
        assert_eq!(
            c.poll(),
            Some(Output::Reply {
                id: 3,
                result: Err(QmpErrorReply {
                    class: "DeviceNotFound".into(),
                    desc: "Device 'x' not found".into()
                })
            })
        );
    }

    #[test]
    fn commands_get_increasing_ids_and_omit_empty_arguments() {
        let mut c = QmpCore::new();
        let (a, bytes) = c.encode("qmp_capabilities", None);
        let (b, bytes2) = c.encode(
            "set_link",
            Some(serde_json::json!({"name": "nic-n0", "up": false})),
        );
        assert_eq!((a, b), (0, 1));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"execute": "qmp_capabilities", "id": 0})
        );
        assert!(bytes.ends_with(b"\r\n"));
        let v: Value = serde_json::from_slice(&bytes2).unwrap();
        assert_eq!(v["arguments"]["name"], "nic-n0");
        let (_, bytes3) = c.encode("query-status", Some(serde_json::json!({})));
        let v: Value = serde_json::from_slice(&bytes3).unwrap();
        assert!(v.get("arguments").is_none());
    }

    #[test]
    fn garbage_and_missing_greeting_are_refused() {
        let mut c = QmpCore::new();
        assert!(matches!(
            c.feed(b"{\"return\": {}, \"id\": 0}\n"),
            Err(ProtocolError::NoGreeting)
        ));
        let mut c = QmpCore::new();
        assert!(matches!(
            c.feed(b"not json\n"),
            Err(ProtocolError::NotJson(_))
        ));
        let mut c = QmpCore::new();
        c.feed(format!("{GREETING}\n").as_bytes()).unwrap();
        assert!(matches!(
            c.feed(b"{\"what\": 1}\n"),
            Err(ProtocolError::Unexpected(_))
        ));
        let mut c = QmpCore::new();
        assert!(matches!(
            c.feed(&vec![b'x'; MAX_MESSAGE_LEN + 1]),
            Err(ProtocolError::TooLong)
        ));
    }
}
