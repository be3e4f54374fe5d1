//! The cart: a map from item names to items, each a reset-remove quantity and a
//! last-writer-wins note.
//!
//! The rules, each a test below:
//! - `remove(milk)` concurrent with `+1 milk` leaves milk with quantity 1 everywhere: a remove
//!   erases what it saw, not what it did not (observed-remove).
//! - A removed item never comes back by itself — only a concurrent or later add brings it
//!   back (the Dynamo shopping-cart anomaly this design exists to avoid).
//! - A quantity at or below zero shows as "not in the cart", on every replica alike.
//! - A decrement never takes an item below zero here: one that would reach zero removes the
//!   item instead. So two replicas that each take the last milk concurrently both remove it,
//!   and every replica shows no milk — never −1.
//! - Adding an item that shows as absent makes it exactly the quantity added, even if
//!   concurrent decrements left the counter below zero.

use std::fmt;

use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
use gossamer_crdt::{
    Causal, CausalContext, CausalStore, CausalityError, CounterOp, CounterStore, DotStore, Hlc, HlcClock, LwwOp,
    LwwStore, OrMap, OrMapOp, ReplicaId,
};
use serde::{Deserialize, Serialize};

/// The store of one item: its quantity and its note, sharing the cart's causal context.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, ItemStore, quantity};
/// use gossamer_crdt::ReplicaId;
///
/// let me = ReplicaId::from_u128(1);
/// let mut cart = Cart::new();
/// Edit::Add { name: "eggs".into(), qty: 12 }.apply(&mut cart, me, 1)?;
/// Edit::Note { name: "eggs".into(), text: "organic".into() }.apply(&mut cart, me, 2)?;
/// // The cart keeps one `ItemStore` under each name.
/// let eggs: &ItemStore = cart.get(&"eggs".to_string()).unwrap();
/// assert_eq!(eggs.qty.value(), 12);
/// assert_eq!(eggs.note.get().map(String::as_str), Some("organic"));
/// // The empty store: no quantity, no note.
/// let empty = ItemStore::default();
/// assert_eq!((quantity(&empty), empty.note.get()), (0, None));
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemStore {
    /// Every change of the quantity is its own dot, so a remove erases exactly what it saw.
    pub qty: CounterStore,
    /// The note; concurrent writes resolve by hybrid logical time.
    pub note: LwwStore<String>,
}

/// An op on one item.
///
/// ```
/// use gossamer_cart::model::{Item, ItemOp, quantity};
/// use gossamer_crdt::{CmRDT, ReplicaId};
///
/// let me = ReplicaId::from_u128(1);
/// let mut here = Item::new();
/// let mut there = Item::new();
/// // A change of the quantity made on one copy of the item, shipped to another.
/// let op = ItemOp::Qty(here.project(|s| &mut s.qty, |q| q.add(me, 3)));
/// assert!(matches!(op, ItemOp::Qty(_)));
/// there.apply(op);
/// assert_eq!((quantity(&here), quantity(&there)), (3, 3));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ItemOp {
    /// Changes the quantity.
    Qty(CounterOp),
    /// Writes the note.
    Note(LwwOp<String>),
}

impl DotStore for ItemStore {
    fn is_bottom(&self) -> bool {
        self.qty.is_bottom() && self.note.is_bottom()
    }
    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        self.qty.for_each_dot(f);
        self.note.for_each_dot(f);
    }
    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        self.qty.retain_dots(keep);
        self.note.retain_dots(keep);
    }
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        self.qty.join(&other.qty, cx);
        self.note.join(&other.note, cx);
    }
    fn renumber(&mut self, map: &[ReplicaIdx]) {
        self.qty.renumber(map);
        self.note.renumber(map);
    }
    fn check(&self) -> Result<(), CausalityError> {
        self.qty.check()?;
        self.note.check()
    }
}

impl CausalStore for ItemStore {
    type Op = ItemOp;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: ItemOp) {
        match op {
            ItemOp::Qty(o) => self.qty.apply_op(ctx, o),
            ItemOp::Note(o) => self.note.apply_op(ctx, o),
        }
    }

    fn validate_op(&self, ctx: &CausalContext, op: &ItemOp) -> Result<(), CausalityError> {
        match op {
            ItemOp::Qty(o) => self.qty.validate_op(ctx, o),
            ItemOp::Note(o) => self.note.validate_op(ctx, o),
        }
    }
}

/// One item as a CRDT of its own (what `Cart::update` hands its closure).
///
/// ```
/// use gossamer_cart::model::{Item, quantity};
/// use gossamer_crdt::{CvRDT, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = Item::new();
/// let mut y = Item::new();
/// // Two replicas add to the same item concurrently; merged, both additions count.
/// x.project(|s| &mut s.qty, |q| q.add(a, 2));
/// y.project(|s| &mut s.qty, |q| q.add(b, 1));
/// x.merge(&y);
/// y.merge(&x);
/// assert_eq!((quantity(&x), quantity(&y)), (3, 3));
/// ```
pub type Item = Causal<ItemStore>;

/// The replicated cart.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, view};
/// use gossamer_crdt::{CvRDT, ReplicaId};
///
/// let (phone, laptop) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = Cart::new();
/// Edit::Add { name: "milk".into(), qty: 2 }.apply(&mut x, phone, 1)?;
/// let mut y = x.clone();
/// // Apart: the phone takes the milk out, the laptop adds one more.
/// Edit::Remove { name: "milk".into() }.apply(&mut x, phone, 2)?;
/// Edit::Inc { name: "milk".into(), n: 1 }.apply(&mut y, laptop, 2)?;
/// x.merge(&y);
/// y.merge(&x);
/// assert_eq!(view(&x), view(&y));
/// // The remove erased the 2 it saw; the concurrent +1 survives.
/// assert_eq!(view(&x).items[0].qty, 1);
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
pub type Cart = OrMap<String, Item>;

/// An op on the cart: what travels between replicas.
///
/// ```
/// use gossamer_cart::model::{Cart, CartOp, Edit, view};
/// use gossamer_crdt::{CmRDT, ReplicaId};
///
/// let me = ReplicaId::from_u128(1);
/// let mut phone = Cart::new();
/// let mut laptop = Cart::new();
/// let op: CartOp = Edit::Add { name: "milk".into(), qty: 2 }.apply(&mut phone, me, 1)?;
/// // An op is plain data: encode it, send it, apply it on another replica.
/// let sent = serde_json::to_vec(&op).unwrap();
/// let received: CartOp = serde_json::from_slice(&sent).unwrap();
/// assert_eq!(received, op);
/// laptop.apply(received);
/// assert_eq!(view(&laptop), view(&phone));
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
pub type CartOp = OrMapOp<String, ItemOp>;

/// An item as people see it.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, ItemView, view};
/// use gossamer_crdt::ReplicaId;
///
/// let mut cart = Cart::new();
/// Edit::Add { name: " milk ".into(), qty: 2 }.apply(&mut cart, ReplicaId::from_u128(1), 1)?;
/// let shown = view(&cart);
/// assert_eq!(shown.items, [ItemView { name: "milk".into(), qty: 2, note: String::new() }]);
/// // The JSON the page and `cart list --json` show.
/// assert_eq!(serde_json::to_string(&shown.items[0]).unwrap(), r#"{"name":"milk","qty":2,"note":""}"#);
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// The item's name.
    pub name: String,
    /// How many (always at least 1: items at or below zero are not shown).
    pub qty: i64,
    /// The note, empty if none.
    pub note: String,
}

/// The cart as people see it: items with a positive quantity, sorted by name.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, view};
/// use gossamer_crdt::ReplicaId;
///
/// let me = ReplicaId::from_u128(1);
/// let mut cart = Cart::new();
/// assert_eq!(view(&cart).to_string(), "(the cart is empty)\n");
/// Edit::Add { name: "milk".into(), qty: 2 }.apply(&mut cart, me, 1)?;
/// Edit::Add { name: "eggs".into(), qty: 12 }.apply(&mut cart, me, 2)?;
/// Edit::Note { name: "eggs".into(), text: "organic".into() }.apply(&mut cart, me, 3)?;
/// // `cart list` prints it like this: sorted by name, notes in parentheses.
/// assert_eq!(view(&cart).to_string(), "  12 × eggs  (organic)\n   2 × milk\n");
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartView {
    /// The items.
    pub items: Vec<ItemView>,
}

impl fmt::Display for CartView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.items.is_empty() {
            return writeln!(f, "(the cart is empty)");
        }
        let width = self.items.iter().map(|i| i.name.chars().count()).max().unwrap_or(0);
        for i in &self.items {
            if i.note.is_empty() {
                writeln!(f, "{:>4} × {}", i.qty, i.name)?;
            } else {
                writeln!(f, "{:>4} × {:<width$}  ({})", i.qty, i.name, i.note)?;
            }
        }
        Ok(())
    }
}

/// Why an edit was refused. Nothing changes when one is.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, EditError};
/// use gossamer_crdt::ReplicaId;
///
/// let me = ReplicaId::from_u128(1);
/// let mut cart = Cart::new();
/// Edit::Add { name: "milk".into(), qty: 1 }.apply(&mut cart, me, 1)?;
/// let before = cart.clone();
/// let mut refusal = |edit: Edit| edit.apply(&mut cart, me, 2).unwrap_err();
/// assert_eq!(refusal(Edit::Add { name: "   ".into(), qty: 1 }), EditError::BadName);
/// assert_eq!(refusal(Edit::Add { name: "milk".into(), qty: 0 }), EditError::BadQuantity);
/// assert_eq!(refusal(Edit::Note { name: "milk".into(), text: "x".repeat(1001) }), EditError::NoteTooLong);
/// let absent = refusal(Edit::Dec { name: "bread".into(), n: 1 });
/// assert_eq!(absent, EditError::NotInCart("bread".into()));
/// assert_eq!(absent.to_string(), "bread is not in the cart");
/// assert_eq!(cart, before); // nothing changed
/// # Ok::<(), EditError>(())
/// ```
///
/// Serialized (in the server's refusals, so that `cart` commands that go through a running
/// `cart serve` report the same variant) as `"bad_name"`, `{"not_in_cart": "bread"}`, ….
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditError {
    /// Item names must be 1 to 200 characters, not only spaces.
    #[error("an item name must be 1 to 200 characters")]
    BadName,
    /// Notes are at most 1,000 characters.
    #[error("a note must be at most 1000 characters")]
    NoteTooLong,
    /// Quantities are 1 to 1,000,000.
    #[error("a quantity must be between 1 and 1000000")]
    BadQuantity,
    /// The item is not in the cart (it shows as absent).
    #[error("{0} is not in the cart")]
    NotInCart(String),
}

/// The most of anything one edit may add.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, EditError, MAX_QTY, view};
/// use gossamer_crdt::ReplicaId;
///
/// let me = ReplicaId::from_u128(1);
/// let mut cart = Cart::new();
/// let too_many = Edit::Add { name: "rice".into(), qty: MAX_QTY + 1 };
/// assert_eq!(too_many.apply(&mut cart, me, 1).unwrap_err(), EditError::BadQuantity);
/// // The limit is per edit, not per item.
/// for t in 1..=2 {
///     Edit::Add { name: "rice".into(), qty: MAX_QTY }.apply(&mut cart, me, t)?;
/// }
/// assert_eq!(view(&cart).items[0].qty, 2 * MAX_QTY as i64);
/// # Ok::<(), EditError>(())
/// ```
pub const MAX_QTY: u64 = 1_000_000;

/// The visible quantity of `item` (may be ≤ 0, which shows as absent).
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, quantity, view};
/// use gossamer_crdt::{CvRDT, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = Cart::new();
/// Edit::Add { name: "tea".into(), qty: 2 }.apply(&mut x, a, 1)?;
/// let mut y = x.clone();
/// let tea = |cart: &Cart| cart.get(&"tea".to_string()).map(quantity);
/// // Each replica takes one of the two, concurrently.
/// Edit::Dec { name: "tea".into(), n: 1 }.apply(&mut x, a, 2)?;
/// Edit::Dec { name: "tea".into(), n: 1 }.apply(&mut y, b, 2)?;
/// assert_eq!(tea(&x), Some(1));
/// x.merge(&y);
/// // Both decrements count: the item is still in the map, at zero, and shows as absent.
/// assert_eq!(tea(&x), Some(0));
/// assert!(view(&x).items.is_empty());
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
pub fn quantity(item: &ItemStore) -> i64 {
    item.qty.value()
}

/// What people see.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, view};
/// use gossamer_crdt::ReplicaId;
///
/// let me = ReplicaId::from_u128(1);
/// let mut cart = Cart::new();
/// for (name, qty) in [("pears", 2), ("apples", 6), ("milk", 1)] {
///     Edit::Add { name: name.into(), qty }.apply(&mut cart, me, 1)?;
/// }
/// Edit::Dec { name: "milk".into(), n: 1 }.apply(&mut cart, me, 2)?; // the last milk
/// let shown = view(&cart);
/// let items: Vec<(&str, i64)> = shown.items.iter().map(|i| (i.name.as_str(), i.qty)).collect();
/// assert_eq!(items, [("apples", 6), ("pears", 2)]);
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
pub fn view(cart: &Cart) -> CartView {
    let mut items: Vec<ItemView> = cart
        .iter()
        .filter(|(_, item)| quantity(item) > 0)
        .map(|(name, item)| ItemView {
            name: name.clone(),
            qty: quantity(item),
            note: item.note.get().cloned().unwrap_or_default(),
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    CartView { items }
}

/// Checks and normalizes an item name (trimmed).
///
/// # Errors
/// [`EditError::BadName`].
///
/// ```
/// use gossamer_cart::model::{EditError, item_name};
///
/// assert_eq!(item_name("  oat milk\n"), Ok("oat milk".to_string()));
/// assert_eq!(item_name(""), Err(EditError::BadName));
/// assert_eq!(item_name("   "), Err(EditError::BadName));
/// // The limit counts characters, not bytes.
/// assert_eq!(item_name(&"é".repeat(200)).map(|n| n.chars().count()), Ok(200));
/// assert_eq!(item_name(&"x".repeat(201)), Err(EditError::BadName));
/// ```
pub fn item_name(name: &str) -> Result<String, EditError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(EditError::BadName);
    }
    Ok(name.to_string())
}

fn checked_qty(n: u64) -> Result<i64, EditError> {
    if n == 0 || n > MAX_QTY {
        return Err(EditError::BadQuantity);
    }
    Ok(n as i64)
}

/// An edit someone makes; [`Edit::apply`] turns it into an op on a cart. The checks that
/// depend on the current state (is the item there?) happen inside `apply`, against the
/// state the op is made on.
///
/// ```
/// use gossamer_cart::model::{Cart, Edit, view};
/// use gossamer_crdt::ReplicaId;
///
/// // As JSON (what `POST /api/edit` takes), the variant is `kind`, in snake case.
/// let add: Edit = serde_json::from_str(r#"{"kind":"add","name":"milk","qty":2}"#).unwrap();
/// assert_eq!(add, Edit::Add { name: "milk".into(), qty: 2 });
/// let dec: Edit = serde_json::from_str(r#"{"kind":"dec","name":"milk","n":1}"#).unwrap();
/// let me = ReplicaId::from_u128(1);
/// let mut cart = Cart::new();
/// add.apply(&mut cart, me, 1)?;
/// dec.apply(&mut cart, me, 2)?;
/// assert_eq!(view(&cart).items[0].qty, 1);
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Edit {
    /// Adds `qty` of `name` (an absent item becomes exactly `qty`).
    Add {
        /// The item.
        name: String,
        /// How many.
        qty: u64,
    },
    /// Takes `name` out of the cart (everything seen of it).
    Remove {
        /// The item.
        name: String,
    },
    /// One more (or `n` more) of an item; like `Add` when it is absent.
    Inc {
        /// The item.
        name: String,
        /// How many.
        n: u64,
    },
    /// One fewer (or `n` fewer); reaching zero removes the item.
    Dec {
        /// The item.
        name: String,
        /// How many.
        n: u64,
    },
    /// Sets the item's note (the item must be in the cart).
    Note {
        /// The item.
        name: String,
        /// The note.
        text: String,
    },
}

impl Edit {
    /// Checks the parts that do not depend on the cart (name, quantity, note length).
    ///
    /// # Errors
    /// [`EditError`] naming what is wrong.
    ///
    /// ```
    /// use gossamer_cart::model::{Edit, EditError};
    ///
    /// assert_eq!(Edit::Add { name: "milk".into(), qty: 0 }.validate(), Err(EditError::BadQuantity));
    /// assert_eq!(Edit::Remove { name: " ".into() }.validate(), Err(EditError::BadName));
    /// let essay = Edit::Note { name: "milk".into(), text: "x".repeat(1001) };
    /// assert_eq!(essay.validate(), Err(EditError::NoteTooLong));
    /// // Whether the item is in the cart is for `apply` to check, against the cart.
    /// assert_eq!(Edit::Dec { name: "bread".into(), n: 1 }.validate(), Ok(()));
    /// ```
    pub fn validate(&self) -> Result<(), EditError> {
        match self {
            Edit::Add { name, qty } | Edit::Inc { name, n: qty } | Edit::Dec { name, n: qty } => {
                item_name(name)?;
                checked_qty(*qty)?;
            }
            Edit::Remove { name } => {
                item_name(name)?;
            }
            Edit::Note { name, text } => {
                item_name(name)?;
                if text.chars().count() > 1000 {
                    return Err(EditError::NoteTooLong);
                }
            }
        }
        Ok(())
    }

    /// Checks `self` against `cart` and, if it is valid, applies it as `replica` at wall-clock
    /// time `now_ms`, returning the op to ship. On error the cart is unchanged.
    ///
    /// # Errors
    /// [`EditError`] naming what is wrong.
    ///
    /// ```
    /// use gossamer_cart::model::{Cart, Edit, EditError, view};
    /// use gossamer_crdt::{CmRDT, ReplicaId};
    ///
    /// let (phone, laptop) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = Cart::new();
    /// let mut y = Cart::new();
    /// let op = Edit::Add { name: "eggs".into(), qty: 12 }.apply(&mut x, phone, 1_000)?;
    /// y.apply(op); // the op ships to the other replica
    /// assert_eq!(view(&y), view(&x));
    /// // Checked against the cart it is made on: no milk here, so no note on it.
    /// let before = y.clone();
    /// let note = Edit::Note { name: "milk".into(), text: "oat".into() };
    /// assert_eq!(note.apply(&mut y, laptop, 2_000), Err(EditError::NotInCart("milk".into())));
    /// assert_eq!(y, before);
    /// # Ok::<(), EditError>(())
    /// ```
    pub fn apply(&self, cart: &mut Cart, replica: ReplicaId, now_ms: u64) -> Result<CartOp, EditError> {
        self.validate()?;
        let shown = |cart: &Cart, name: &String| cart.get(name).map_or(0, quantity);
        match self {
            Edit::Add { name, qty: n } | Edit::Inc { name, n } => {
                let name = item_name(name)?;
                let current = shown(cart, &name);
                // An item that shows as absent becomes exactly `n`, whatever debt concurrent
                // decrements left.
                let delta = checked_qty(*n)? + (-current).max(0);
                Ok(cart.update(name, |item| ItemOp::Qty(item.project(|s| &mut s.qty, |q| q.add(replica, delta)))))
            }
            Edit::Dec { name, n } => {
                let name = item_name(name)?;
                let current = shown(cart, &name);
                if current <= 0 {
                    return Err(EditError::NotInCart(name));
                }
                let n = checked_qty(*n)?;
                if n >= current {
                    // Never below zero here: taking the last ones removes the item.
                    Ok(cart.remove(&name))
                } else {
                    Ok(cart.update(name, |item| ItemOp::Qty(item.project(|s| &mut s.qty, |q| q.add(replica, -n)))))
                }
            }
            Edit::Remove { name } => {
                let name = item_name(name)?;
                if shown(cart, &name) <= 0 && !cart.contains_key(&name) {
                    return Err(EditError::NotInCart(name));
                }
                Ok(cart.remove(&name))
            }
            Edit::Note { name, text } => {
                let name = item_name(name)?;
                if shown(cart, &name) <= 0 {
                    return Err(EditError::NotInCart(name));
                }
                let ts = note_time(cart, now_ms);
                let text = text.trim().to_string();
                Ok(cart.update(name, |item| ItemOp::Note(item.project(|s| &mut s.note, |n| n.set(replica, ts, text)))))
            }
        }
    }
}

/// A timestamp later than every note this replica has seen, and than `now_ms`: a hybrid
/// logical clock rebuilt from the cart itself, so it survives restarts without its own state.
fn note_time(cart: &Cart, now_ms: u64) -> Hlc {
    let mut clock = HlcClock::new(u64::MAX / 2);
    for (_, item) in cart.iter() {
        if let Some((ts, _)) = item.note.timestamp() {
            let _ = clock.observe(ts, 0);
        }
    }
    clock.tick(now_ms)
}

#[cfg(test)]
mod tests {
    use gossamer_crdt::{CmRDT, CvRDT};

    use super::*;

    fn ids() -> (ReplicaId, ReplicaId, ReplicaId) {
        (ReplicaId::from_u128(1), ReplicaId::from_u128(2), ReplicaId::from_u128(3))
    }

    fn add(name: &str, qty: u64) -> Edit {
        Edit::Add { name: name.into(), qty }
    }

    fn qty(cart: &Cart, name: &str) -> Option<i64> {
        view(cart).items.iter().find(|i| i.name == name).map(|i| i.qty)
    }

    #[test]
    fn remove_concurrent_with_increment_keeps_the_increment() {
        let (a, b, _) = ids();
        let mut phone = Cart::new();
        let mut laptop = Cart::new();
        laptop.apply(add("milk", 3).apply(&mut phone, a, 1).unwrap());
        let remove = Edit::Remove { name: "milk".into() }.apply(&mut laptop, b, 2).unwrap();
        let plus = Edit::Inc { name: "milk".into(), n: 1 }.apply(&mut phone, a, 2).unwrap();
        phone.apply(remove);
        laptop.apply(plus);
        assert_eq!(qty(&phone, "milk"), Some(1));
        assert_eq!(view(&phone), view(&laptop));
    }

    #[test]
    fn removed_item_never_comes_back_by_itself() {
        let (a, b, c) = ids();
        let mut x = Cart::new();
        let mut y = Cart::new();
        let mut z = Cart::new();
        let op1 = add("milk", 2).apply(&mut x, a, 1).unwrap();
        y.apply(op1.clone());
        z.apply(op1);
        let op2 = Edit::Inc { name: "milk".into(), n: 1 }.apply(&mut y, b, 2).unwrap();
        x.apply(op2.clone());
        z.apply(op2);
        let remove = Edit::Remove { name: "milk".into() }.apply(&mut z, c, 3).unwrap();
        x.apply(remove.clone());
        y.apply(remove);
        // Old states meet again in every combination: milk stays gone.
        let mut all = x.clone();
        all.merge(&y);
        all.merge(&z);
        for s in [&x, &y, &z, &all] {
            assert_eq!(qty(s, "milk"), None);
        }
    }

    #[test]
    fn concurrent_decrements_of_the_last_one_never_show_negative() {
        let (a, b, _) = ids();
        let mut x = Cart::new();
        let mut y = Cart::new();
        y.apply(add("milk", 1).apply(&mut x, a, 1).unwrap());
        let dx = Edit::Dec { name: "milk".into(), n: 1 }.apply(&mut x, a, 2).unwrap();
        let dy = Edit::Dec { name: "milk".into(), n: 1 }.apply(&mut y, b, 2).unwrap();
        x.apply(dy);
        y.apply(dx);
        assert_eq!(view(&x), view(&y));
        assert_eq!(qty(&x, "milk"), None);
        assert!(view(&x).items.iter().all(|i| i.qty > 0));
    }

    #[test]
    fn concurrent_partial_decrements_show_the_same_everywhere_and_never_negative() {
        let (a, b, _) = ids();
        let mut x = Cart::new();
        let mut y = Cart::new();
        y.apply(add("eggs", 2).apply(&mut x, a, 1).unwrap());
        // Each takes 1 of 2 (a decrement, not a remove): both apply, 0 left, shown as absent.
        let dx = Edit::Dec { name: "eggs".into(), n: 1 }.apply(&mut x, a, 2).unwrap();
        let dy = Edit::Dec { name: "eggs".into(), n: 1 }.apply(&mut y, b, 2).unwrap();
        x.apply(dy);
        y.apply(dx);
        assert_eq!(view(&x), view(&y));
        assert_eq!(qty(&x, "eggs"), None);
    }

    #[test]
    fn adding_an_item_that_shows_absent_makes_it_exactly_that_quantity() {
        let (a, b, _) = ids();
        let mut x = Cart::new();
        let mut y = Cart::new();
        y.apply(add("tea", 2).apply(&mut x, a, 1).unwrap());
        // Both take one of two concurrently... and a third concurrent decrement from x leaves
        // the counter at -1.
        let d1 = Edit::Dec { name: "tea".into(), n: 1 }.apply(&mut x, a, 2).unwrap();
        let d2 = Edit::Dec { name: "tea".into(), n: 1 }.apply(&mut y, b, 2).unwrap();
        x.apply(d2);
        y.apply(d1);
        assert_eq!(qty(&x, "tea"), None);
        let op = add("tea", 3).apply(&mut x, a, 3).unwrap();
        y.apply(op);
        assert_eq!(qty(&x, "tea"), Some(3));
        assert_eq!(qty(&y, "tea"), Some(3));
    }

    #[test]
    fn note_last_writer_wins_and_converges() {
        let (a, b, _) = ids();
        let mut x = Cart::new();
        let mut y = Cart::new();
        y.apply(add("eggs", 12).apply(&mut x, a, 1).unwrap());
        let nx = Edit::Note { name: "eggs".into(), text: "free range".into() }.apply(&mut x, a, 100).unwrap();
        let ny = Edit::Note { name: "eggs".into(), text: "organic".into() }.apply(&mut y, b, 200).unwrap();
        x.apply(ny);
        y.apply(nx);
        assert_eq!(view(&x), view(&y));
        assert_eq!(view(&x).items[0].note, "organic");
    }

    #[test]
    fn a_later_note_wins_even_from_a_clock_that_is_behind() {
        let (a, b, _) = ids();
        let mut x = Cart::new();
        let mut y = Cart::new();
        y.apply(add("eggs", 1).apply(&mut x, a, 1).unwrap());
        y.apply(Edit::Note { name: "eggs".into(), text: "first".into() }.apply(&mut x, a, 10_000).unwrap());
        // y's clock reads 5 s earlier, but y saw "first": its note replaces it.
        x.apply(Edit::Note { name: "eggs".into(), text: "second".into() }.apply(&mut y, b, 5_000).unwrap());
        assert_eq!(view(&x).items[0].note, "second");
        assert_eq!(view(&x), view(&y));
    }

    #[test]
    fn bad_edits_are_refused_and_change_nothing() {
        let (a, _, _) = ids();
        let mut x = Cart::new();
        add("milk", 1).apply(&mut x, a, 1).unwrap();
        let before = x.clone();
        for bad in [
            add("", 1),
            add("   ", 1),
            add("milk", 0),
            add("milk", MAX_QTY + 1),
            Edit::Dec { name: "bread".into(), n: 1 },
            Edit::Remove { name: "bread".into() },
            Edit::Note { name: "bread".into(), text: "x".into() },
            Edit::Note { name: "milk".into(), text: "x".repeat(1001) },
        ] {
            assert!(bad.apply(&mut x, a, 2).is_err(), "{bad:?}");
            assert_eq!(x, before, "{bad:?} changed the cart");
        }
    }

    #[test]
    fn view_is_sorted_and_hides_non_positive_items() {
        let (a, _, _) = ids();
        let mut x = Cart::new();
        for n in ["pears", "apples", "milk"] {
            add(n, 1).apply(&mut x, a, 1).unwrap();
        }
        Edit::Dec { name: "milk".into(), n: 1 }.apply(&mut x, a, 2).unwrap();
        let names: Vec<String> = view(&x).items.into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["apples", "pears"]);
    }

    #[test]
    fn json_shape_is_the_documented_one() {
        let (a, _, _) = ids();
        let mut x = Cart::new();
        add("eggs", 2).apply(&mut x, a, 1).unwrap();
        assert_eq!(serde_json::to_string(&view(&x)).unwrap(), r#"{"items":[{"name":"eggs","qty":2,"note":""}]}"#);
    }

    quickcheck::quickcheck! {
        /// Any interleaving of edits on three replicas, fully exchanged, converges, and no
        /// replica ever shows a quantity below 1.
        fn random_edits_converge_and_never_show_non_positive(edits: Vec<(u8, u8, u8, u8)>) -> bool {
            let rs = [ReplicaId::from_u128(1), ReplicaId::from_u128(2), ReplicaId::from_u128(3)];
            let mut carts = [Cart::new(), Cart::new(), Cart::new()];
            let mut ops: Vec<Vec<CartOp>> = vec![Vec::new(); 3];
            let names = ["milk", "eggs", "tea"];
            for (t, (who, what, item, n)) in edits.into_iter().enumerate() {
                let who = who as usize % 3;
                let name = names[item as usize % 3].to_string();
                let n = u64::from(n % 3) + 1;
                let edit = match what % 6 {
                    0 | 1 => Edit::Add { name, qty: n },
                    2 => Edit::Dec { name, n },
                    3 => Edit::Remove { name },
                    4 => Edit::Inc { name, n },
                    _ => Edit::Note { name, text: format!("n{t}") },
                };
                if let Ok(op) = edit.apply(&mut carts[who], rs[who], t as u64) {
                    ops[who].push(op);
                }
                // Sometimes sync a pair by state.
                if t % 5 == 0 {
                    let (a, b) = (t % 3, (t + 1) % 3);
                    let other = carts[b].clone();
                    carts[a].merge(&other);
                }
                if view(&carts[who]).items.iter().any(|i| i.qty < 1) {
                    return false;
                }
            }
            let mut all = Cart::new();
            for c in &carts {
                all.merge(c);
            }
            carts.iter().all(|c| {
                let mut c = c.clone();
                c.merge(&all);
                view(&c) == view(&all)
            })
        }
    }
}
