//! An insertion-ordered map with O(1) lookup, insert and remove.
//!
//! Room members must be iterated in a deterministic order (the order they
//! joined) while joining and leaving stay O(1). Entries live in a `Vec` in
//! insertion order; removal leaves a hole that iteration skips, and the
//! `Vec` is compacted once holes outnumber entries (amortised O(1)).
//!
//! It serialises as a sequence of `[key, value]` pairs in insertion order
//! (not as a map: a JSON object's order does not survive every reader,
//! e.g. `serde_json::Value`), without the holes; deserialising rebuilds
//! the index and refuses a key given twice. Iteration order, the only
//! observable order, is kept exactly.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

/// Holes tolerated before compaction is considered.
const MIN_COMPACT: usize = 16;

/// An insertion-ordered map (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct OrderedMap<K, V> {
    slots: Vec<Option<(K, V)>>,
    index: HashMap<K, usize>,
}

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap {
            slots: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V> OrderedMap<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.contains_key(key)
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.index.get(key)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.index.get(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Adds `key` at the end; if it was present, replaces its value in place
    /// and returns the old one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Some((key, value)));
        None
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.index.remove(key)?;
        let (_, value) = self.slots[i].take()?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let holes = self.slots.len() - self.index.len();
        if holes > MIN_COMPACT && holes > self.index.len() {
            self.compact();
        }
        Some(value)
    }

    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        for (i, (k, _)) in self.slots.iter().flatten().enumerate() {
            if let Some(pos) = self.index.get_mut(k) {
                *pos = i;
            }
        }
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots.iter().flatten().map(|(k, v)| (k, v))
    }

    /// The keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Checks that the index and the slots agree.
    pub fn check(&self) -> Result<(), String> {
        let live = self.slots.iter().flatten().count();
        if live != self.index.len() {
            return Err(format!(
                "ordered map: {live} entries, {} indexed",
                self.index.len()
            ));
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some((k, _)) = slot
                && self.index.get(k) != Some(&i)
            {
                return Err(format!("ordered map: entry {i} indexed elsewhere"));
            }
        }
        Ok(())
    }
}

impl<K: Serialize, V: Serialize> Serialize for OrderedMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.index.len()))?;
        for (k, v) in self.slots.iter().flatten() {
            seq.serialize_element(&(k, v))?;
        }
        seq.end()
    }
}

impl<'de, K, V> Deserialize<'de> for OrderedMap<K, V>
where
    K: Deserialize<'de> + Hash + Eq + Clone,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(PairsVisitor(PhantomData))
    }
}

/// Reads the `[key, value]` pairs of a serialised [`OrderedMap`].
struct PairsVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for PairsVisitor<K, V>
where
    K: Deserialize<'de> + Hash + Eq + Clone,
    V: Deserialize<'de>,
{
    type Value = OrderedMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of [key, value] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Not trusting the size hint beyond a small bound (it comes from
        // the input).
        let hint = seq.size_hint().unwrap_or(0).min(4096);
        let mut map = OrderedMap {
            slots: Vec::with_capacity(hint),
            index: HashMap::with_capacity(hint),
        };
        while let Some((k, v)) = seq.next_element::<(K, V)>()? {
            if map.insert(k, v).is_some() {
                return Err(A::Error::custom("ordered map: duplicate key"));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_insertion_order_through_removals() {
        let mut m = OrderedMap::default();
        for i in 0..100u32 {
            m.insert(i, i * 10);
        }
        for i in (0..100u32).filter(|i| i % 3 != 0) {
            assert_eq!(m.remove(&i), Some(i * 10));
            m.check().unwrap();
        }
        assert_eq!(m.remove(&1), None);
        m.insert(1, 7);
        assert_eq!(m.insert(3, 31), Some(30));
        let keys: Vec<u32> = m.keys().copied().collect();
        let mut expected: Vec<u32> = (0..100).filter(|i| i % 3 == 0).collect();
        expected.push(1);
        assert_eq!(keys, expected);
        assert_eq!(m.get(&3), Some(&31));
        assert!(m.slots.len() < 2 * m.len() + MIN_COMPACT + 2);
        m.check().unwrap();
    }

    #[test]
    fn serde_keeps_order_and_rebuilds_the_index() {
        let mut m = OrderedMap::default();
        for i in 0..60u32 {
            m.insert(format!("k{}", 59 - i), i);
        }
        for i in (0..60u32).filter(|i| i % 4 != 1) {
            m.remove(&format!("k{i}"));
        }
        m.insert("k0".to_owned(), 1000);
        let json = serde_json::to_string(&m).unwrap();
        let back: OrderedMap<String, u32> = serde_json::from_str(&json).unwrap();
        back.check().unwrap();
        let pairs = |m: &OrderedMap<String, u32>| -> Vec<(String, u32)> {
            m.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        assert_eq!(pairs(&back), pairs(&m));
        assert_eq!(back.get("k0"), Some(&1000));
        // Through `serde_json::Value` too (its objects would sort keys).
        let value = serde_json::to_value(&m).unwrap();
        let back: OrderedMap<String, u32> = serde_json::from_value(value).unwrap();
        assert_eq!(pairs(&back), pairs(&m));
        let dup = serde_json::from_str::<OrderedMap<String, u32>>(r#"[["a",1],["a",2]]"#);
        assert!(dup.is_err());
    }
}
