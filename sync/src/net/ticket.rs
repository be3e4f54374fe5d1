//! Tickets: how a user introduces one node to another.

use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{NodeId, NodeIdError};

/// The URI scheme of a ticket, with its separator.
///
/// ```
/// use gossamer_sync::net::{NodeId, Ticket, TicketError, TICKET_SCHEME};
///
/// let ticket = Ticket::new(NodeId::from_bytes([7; 20]), "192.0.2.7:4433".parse().unwrap());
/// let text = ticket.to_string();
/// assert!(text.starts_with(TICKET_SCHEME));
/// // Without the scheme, the same text is not a ticket.
/// let bare = &text[TICKET_SCHEME.len()..];
/// assert!(matches!(bare.parse::<Ticket>(), Err(TicketError::MissingScheme { .. })));
/// ```
pub const TICKET_SCHEME: &str = "gossamer://";

/// Input longer than this is refused before parsing: a ticket is about 80 characters.
const MAX_TICKET_LEN: usize = 256;

/// Everything needed to reach and authenticate a node: `gossamer://<node-id>@<ip:port>`.
///
/// A user shows the ticket of one device (`cart ticket`) and pastes it into another
/// (`cart trust <ticket>`); the second device adds [`node`](Self::node) to its
/// [`TrustList`](super::TrustList) and dials [`addr`](Self::addr) expecting exactly that node.
/// The address is a literal IP address (IPv6 in brackets); host names are not resolved here.
///
/// Parsing trims surrounding whitespace (pasted text often ends in a newline) and accepts the
/// scheme and node id in any case.
///
/// ```
/// use gossamer_sync::net::{NodeId, Ticket};
///
/// let node = NodeId::from_bytes([7; 20]);
/// let ticket = Ticket::new(node, "[::1]:4433".parse().unwrap());
/// let text = ticket.to_string();
/// assert_eq!(text, format!("gossamer://{node}@[::1]:4433"));
/// assert_eq!(text.parse::<Ticket>().unwrap(), ticket);
///
/// let v4: Ticket = format!("gossamer://{node}@127.0.0.1:9000").parse().unwrap();
/// assert_eq!(v4.addr.port(), 9000);
/// assert!("gossamer://nobody@127.0.0.1:9000".parse::<Ticket>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Ticket {
    /// The node to expect at `addr`.
    pub node: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Ticket {
    /// The ticket for `node` listening at `addr`.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, Ticket};
    ///
    /// let node = NodeId::from_bytes([7; 20]);
    /// let ticket = Ticket::new(node, "192.0.2.7:4433".parse().unwrap());
    /// assert_eq!((ticket.node, ticket.addr.port()), (node, 4433));
    /// assert_eq!(ticket.to_string(), format!("gossamer://{node}@192.0.2.7:4433"));
    /// ```
    pub fn new(node: NodeId, addr: SocketAddr) -> Self {
        Self { node, addr }
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `SocketAddr` already prints IPv6 in brackets: `[::1]:4433`.
        write!(f, "{TICKET_SCHEME}{}@{}", self.node, self.addr)
    }
}

/// Why a string is not a [`Ticket`].
///
/// ```
/// use gossamer_sync::net::{NodeIdError, Ticket, TicketError};
///
/// let node = "mzxw6ytbmzxw6ytbmzxw6ytbmzxw6ytb";
/// let parse = |s: &str| s.parse::<Ticket>().unwrap_err();
/// assert!(matches!(parse(&format!("https://{node}@192.0.2.7:4433")), TicketError::MissingScheme { .. }));
/// assert!(matches!(parse(&format!("gossamer://{node}")), TicketError::MissingAt { .. }));
/// assert!(matches!(
///     parse("gossamer://short@192.0.2.7:4433"),
///     TicketError::NodeId { source: NodeIdError::Length { len: 5 }, .. }
/// ));
/// // Host names are not resolved: the address must be a literal IP address and a port.
/// match parse(&format!("gossamer://{node}@localhost:4433")) {
///     TicketError::Addr { text, .. } => assert_eq!(text, "localhost:4433"),
///     other => panic!("expected Addr, got {other:?}"),
/// }
/// assert!(matches!(parse(&format!("gossamer://{node}@192.0.2.7:0")), TicketError::ZeroPort { .. }));
/// assert!(matches!(parse(&"x".repeat(1000)), TicketError::TooLong { len: 1000 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The input is far longer than any ticket.
    #[error("a ticket is at most {max} characters, got {len}", max = MAX_TICKET_LEN)]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The input does not start with `gossamer://`.
    #[error("a ticket starts with {TICKET_SCHEME:?}, got {input:?}")]
    MissingScheme {
        /// The input, after trimming whitespace.
        input: String,
    },
    /// There is no `@` between the node id and the address.
    #[error("a ticket is gossamer://<node-id>@<ip:port>, got {input:?} (no '@')")]
    MissingAt {
        /// The input, after trimming whitespace.
        input: String,
    },
    /// The node id part is not a node id.
    #[error("invalid node id {text:?} in ticket: {source}")]
    NodeId {
        /// The text between the scheme and the `@`.
        text: String,
        /// What is wrong with it.
        source: NodeIdError,
    },
    /// The address part is not `ip:port` (IPv6 as `[addr]:port`).
    #[error("invalid address {text:?} in ticket (expected ip:port or [ipv6]:port): {source}")]
    Addr {
        /// The text after the `@`.
        text: String,
        /// What is wrong with it.
        source: AddrParseError,
    },
    /// The port is 0, which nothing can be reached at.
    #[error("ticket address {addr} has port 0")]
    ZeroPort {
        /// The parsed address.
        addr: SocketAddr,
    },
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_TICKET_LEN {
            return Err(TicketError::TooLong { len: s.len() });
        }
        let input = s.trim();
        let rest = input
            .get(..TICKET_SCHEME.len())
            .filter(|scheme| scheme.eq_ignore_ascii_case(TICKET_SCHEME))
            .and_then(|_| input.get(TICKET_SCHEME.len()..))
            .ok_or_else(|| TicketError::MissingScheme { input: input.to_owned() })?;
        let (node, addr) = rest.split_once('@').ok_or_else(|| TicketError::MissingAt { input: input.to_owned() })?;
        let node = node.parse().map_err(|source| TicketError::NodeId { text: node.to_owned(), source })?;
        let addr: SocketAddr = addr.parse().map_err(|source| TicketError::Addr { text: addr.to_owned(), source })?;
        if addr.port() == 0 {
            return Err(TicketError::ZeroPort { addr });
        }
        Ok(Self { node, addr })
    }
}

impl Serialize for Ticket {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ticket {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "mzxw6ytbmzxw6ytbmzxw6ytbmzxw6ytb";

    fn node() -> NodeId {
        NODE.parse().unwrap()
    }

    #[test]
    fn round_trips_ipv4_and_ipv6() {
        for addr in ["127.0.0.1:4433", "[::1]:9000", "[2001:db8::17]:65535", "10.1.2.3:1"] {
            let ticket = Ticket::new(node(), addr.parse().unwrap());
            let text = ticket.to_string();
            assert_eq!(text, format!("gossamer://{NODE}@{addr}"));
            assert_eq!(text.parse::<Ticket>(), Ok(ticket));
        }
    }

    #[test]
    fn lenient_about_case_and_surrounding_whitespace() {
        let text = format!("  GOSSAMER://{}@127.0.0.1:5\n", NODE.to_uppercase());
        assert_eq!(text.parse::<Ticket>(), Ok(Ticket::new(node(), "127.0.0.1:5".parse().unwrap())));
    }

    #[test]
    fn malformed_tickets_are_typed_errors() {
        let parse = |s: &str| s.parse::<Ticket>().unwrap_err();
        assert!(matches!(parse(""), TicketError::MissingScheme { .. }));
        assert!(matches!(parse("gossamer:/"), TicketError::MissingScheme { .. }));
        assert!(matches!(parse(&format!("http://{NODE}@127.0.0.1:1")), TicketError::MissingScheme { .. }));
        // A multi-byte character where the scheme would end must not be sliced through.
        assert!(matches!(parse("gossamer:/é"), TicketError::MissingScheme { .. }));
        assert!(matches!(parse(&format!("gossamer://{NODE}")), TicketError::MissingAt { .. }));
        assert!(matches!(
            parse("gossamer://short@127.0.0.1:1"),
            TicketError::NodeId { source: NodeIdError::Length { len: 5 }, .. }
        ));
        assert!(matches!(parse(&format!("gossamer://{NODE}@@127.0.0.1:1")), TicketError::Addr { .. }));
        for bad_addr in ["localhost:80", "::1:80", "[::1]", "127.0.0.1", "127.0.0.1:99999", ""] {
            let err = parse(&format!("gossamer://{NODE}@{bad_addr}"));
            assert!(matches!(&err, TicketError::Addr { text, .. } if text == bad_addr), "{bad_addr}: {err:?}");
        }
        assert!(matches!(parse(&format!("gossamer://{NODE}@127.0.0.1:0")), TicketError::ZeroPort { .. }));
        assert!(matches!(parse(&"x".repeat(10_000)), TicketError::TooLong { len: 10_000 }));
    }

    #[test]
    fn serde_as_text() {
        let ticket = Ticket::new(node(), "[::1]:7".parse().unwrap());
        let json = serde_json::to_string(&ticket).unwrap();
        assert_eq!(json, format!("\"{ticket}\""));
        assert_eq!(serde_json::from_str::<Ticket>(&json).unwrap(), ticket);
        assert!(serde_json::from_str::<Ticket>("\"gossamer://x@y\"").is_err());
    }
}
