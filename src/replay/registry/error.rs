//! [`RegistryFull`]: a key refused because the registry holds as many as it may.

use std::error::Error;
use std::fmt;

/// A new key was refused: the [`LogRegistry`](super::LogRegistry) already holds its
/// `max_keys` keys and could evict none of them.
///
/// With [`WhenFull::Refuse`](super::WhenFull::Refuse) every new key is refused while the
/// registry is full; with [`WhenFull::EvictIdlest`](super::WhenFull::EvictIdlest) only when
/// every key has a subscriber. Keys that exist are never refused. An HTTP handler answers
/// `503 Service Unavailable`, as [`LogRegistry::response`](super::LogRegistry::response)
/// does.
///
/// ```
/// use tower_sse::replay::{LogRegistry, RegistryFull};
/// use tower_sse::Event;
///
/// let rooms = LogRegistry::<String>::builder().max_keys(1).build();
/// rooms.publish("a", Event::new().data("hi"))?;
/// let refused = rooms.publish("b", Event::new().data("hi")).unwrap_err();
/// assert_eq!(refused.to_string(), "log registry is full (1 keys)");
/// # Ok::<(), RegistryFull>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryFull {
    /// The registry's bound on keys.
    pub max_keys: usize,
}

impl fmt::Display for RegistryFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log registry is full ({} keys)", self.max_keys)
    }
}

impl Error for RegistryFull {}
