//! Menus on the instance side: [`Session`] methods that send [`MenuUpdate`]s to the room, and
//! the book that keeps the relay's retained copy of every menu exact and bounded.
//!
//! Each update goes to every user of the room with `ToRoom` and is kept by the relay for users
//! who join later, in slots of the instance's retained state:
//!
//! | slot | holds |
//! |---|---|
//! | `menu_slot(Whole, menu, 0)` | the last whole menu (`Set`) |
//! | `menu_slot(Props, menu, 0)` | the last title/size/enabled change since |
//! | `menu_slot(Node, menu, item)` | the last replacement (or removal) of node `item` since |
//! | `menu_slot(Content, menu, item)` | the last content of node `item` since |
//!
//! The relay replays slots in the order of their last update, so a late joiner applies the same
//! overwrites in the same order as everyone else and ends with the same menu (an update whose
//! node a later one replaced is overwritten again). A `Set` forgets the menu's partial slots (the
//! forgetting message carries the menu's properties, a no-op for users who have them), and once
//! a menu has more than [`MAX_PARTIAL_SLOTS`] partial slots the whole menu is sent again, so the
//! retained state of a menu stays within a whole menu plus that many partial updates.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

use super::{Session, SessionError};
use crate::api::ToSession;
use crate::menu::{ItemId, Menu, MenuApplyError, MenuId, MenuUpdate, Menus};
use crate::proto::{MAX_BODY, Retain};

/// Partial-update slots a menu may hold at the relay before it is sent whole again.
pub const MAX_PARTIAL_SLOTS: usize = 32;

/// Which part of a menu a retained slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The whole menu.
    Whole = 0,
    /// Title, size, enabled.
    Props = 1,
    /// One node and its subtree.
    Node = 2,
    /// The content of one node.
    Content = 3,
}

/// The retained-state slot of a menu part: `'M'` in the top byte, the kind, the menu id and the
/// node id, so menu slots never meet the slots of other instance state.
#[must_use]
pub fn menu_slot(kind: SlotKind, menu: MenuId, item: ItemId) -> u64 {
    (u64::from(b'M') << 56) | ((kind as u64) << 48) | (u64::from(menu.0) << 32) | u64::from(item.0)
}

/// Errors of the menu methods of [`Session`].
#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    /// The update does not apply to the menus as the instance sent them (nothing was sent).
    #[error(transparent)]
    Apply(#[from] MenuApplyError),
    /// The encoded update exceeds the largest body (nothing was sent).
    #[error("menu update of {0} bytes exceeds the {MAX_BODY}-byte limit")]
    TooLarge(usize),
    /// The instance is no longer connected.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// The instance's menus as sent, and the partial slots each holds at the relay.
#[derive(Debug, Default)]
pub(crate) struct MenuBook {
    menus: Menus,
    partial: BTreeMap<MenuId, BTreeSet<u64>>,
}

impl MenuBook {
    /// Applies `update` and returns the messages (retain, body) that send it, or nothing when
    /// it changes nothing.
    fn plan(&mut self, update: &MenuUpdate) -> Result<Vec<(Retain, Bytes)>, MenuError> {
        let body = ToSession::Menu(update.clone()).encode();
        if body.len() > MAX_BODY {
            return Err(MenuError::TooLarge(body.len()));
        }
        if self.menus.apply(update)?.is_none() {
            return Ok(Vec::new());
        }
        let menu = update.menu();
        let partial = |kind, item| Some(menu_slot(kind, menu, item));
        let keep = match update {
            MenuUpdate::Set(_) => {
                let mut out = vec![(Retain::Keep(menu_slot(SlotKind::Whole, menu, ItemId::ROOT)), body)];
                out.extend(self.forget_partials(menu, None));
                return Ok(out);
            }
            MenuUpdate::Remove { .. } => {
                let mut out = vec![(Retain::Forget(menu_slot(SlotKind::Whole, menu, ItemId::ROOT)), body.clone())];
                out.extend(self.forget_partials(menu, Some(body)));
                return Ok(out);
            }
            MenuUpdate::Props { .. } => partial(SlotKind::Props, ItemId::ROOT),
            MenuUpdate::Node { node, .. } => partial(SlotKind::Node, node.id),
            MenuUpdate::RemoveNode { item, .. } => partial(SlotKind::Node, *item),
            MenuUpdate::Content { item, .. } => partial(SlotKind::Content, *item),
        };
        let Some(slot) = keep else { return Ok(Vec::new()) };
        let mut out = vec![(Retain::Keep(slot), body)];
        let slots = self.partial.entry(menu).or_default();
        slots.insert(slot);
        if slots.len() > MAX_PARTIAL_SLOTS
            && let Some(current) = self.menus.get(menu)
        {
            let whole = ToSession::Menu(MenuUpdate::Set(current.clone())).encode();
            out.push((Retain::Keep(menu_slot(SlotKind::Whole, menu, ItemId::ROOT)), whole));
            out.extend(self.forget_partials(menu, None));
        }
        Ok(out)
    }

    /// Forgets the partial slots of `menu`. Each forgetting message carries `body`, or the
    /// menu's current properties (a no-op for users who have them).
    fn forget_partials(&mut self, menu: MenuId, body: Option<Bytes>) -> Vec<(Retain, Bytes)> {
        let Some(slots) = self.partial.remove(&menu) else { return Vec::new() };
        let body = match (body, self.menus.get(menu)) {
            (Some(b), _) => b,
            (None, Some(m)) => ToSession::Menu(m.props_update()).encode(),
            (None, None) => ToSession::Menu(MenuUpdate::Remove { menu }).encode(),
        };
        slots.into_iter().map(|s| (Retain::Forget(s), body.clone())).collect()
    }
}

impl Session {
    /// Sends one menu update to every user of the room (kept for users who join later). An
    /// update that changes nothing is not sent.
    ///
    /// # Errors
    /// [`MenuError::Apply`] when it does not apply to the menus sent so far (e.g. a node of a
    /// menu never sent), [`MenuError::TooLarge`], [`MenuError::Session`].
    pub async fn send_menu_update(&self, update: MenuUpdate) -> Result<(), MenuError> {
        let mut book = self.inner.menus.lock().await;
        for (retain, body) in book.plan(&update)? {
            self.send_room(retain, body).await?;
        }
        Ok(())
    }

    /// Sends a whole menu (creates it, or replaces it).
    ///
    /// # Errors
    /// See [`Session::send_menu_update`].
    pub async fn update_menu(&self, menu: &Menu) -> Result<(), MenuError> {
        self.send_menu_update(MenuUpdate::Set(menu.clone())).await
    }

    /// Sends the title, size and enabled (shown) flag of `menu`.
    ///
    /// # Errors
    /// See [`Session::send_menu_update`].
    pub async fn update_menu_props(&self, menu: &Menu) -> Result<(), MenuError> {
        self.send_menu_update(menu.props_update()).await
    }

    /// Sends node `item` of `menu` with its subtree.
    ///
    /// # Errors
    /// [`MenuApplyError::UnknownItem`] if `menu` has no such node; see
    /// [`Session::send_menu_update`].
    pub async fn update_node(&self, menu: &Menu, item: ItemId) -> Result<(), MenuError> {
        let node = menu.node(item).ok_or(MenuApplyError::UnknownItem { menu: menu.id, item })?;
        self.send_menu_update(MenuUpdate::Node { menu: menu.id, node: node.clone() }).await
    }

    /// Sends the element shown in node `item` of `menu` (e.g. after changing a label's text or
    /// a slider's value).
    ///
    /// # Errors
    /// [`MenuApplyError::UnknownItem`] if `menu` has no such node; see
    /// [`Session::send_menu_update`].
    pub async fn update_content(&self, menu: &Menu, item: ItemId) -> Result<(), MenuError> {
        let node = menu.node(item).ok_or(MenuApplyError::UnknownItem { menu: menu.id, item })?;
        self.send_menu_update(MenuUpdate::Content { menu: menu.id, item, content: node.content.clone() }).await
    }

    /// Removes node `item` (and its subtree) from a menu.
    ///
    /// # Errors
    /// See [`Session::send_menu_update`].
    pub async fn remove_node(&self, menu: MenuId, item: ItemId) -> Result<(), MenuError> {
        self.send_menu_update(MenuUpdate::RemoveNode { menu, item }).await
    }

    /// Removes a menu for every user.
    ///
    /// # Errors
    /// See [`Session::send_menu_update`].
    pub async fn remove_menu(&self, menu: MenuId) -> Result<(), MenuError> {
        self.send_menu_update(MenuUpdate::Remove { menu }).await
    }

    /// The menu `id` as this instance last sent it.
    pub async fn menu(&self, id: MenuId) -> Option<Menu> {
        self.inner.menus.lock().await.menus.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::{Button, Label, Node};

    fn menu() -> Menu {
        Menu::new(MenuId(2), "m").column(|c| c.label(ItemId(1), "a").button(ItemId(2), Button::new("b")))
    }

    fn decode(body: &Bytes) -> MenuUpdate {
        match ToSession::decode(body).unwrap() {
            ToSession::Menu(u) => u,
            other => panic!("not a menu update: {other:?}"),
        }
    }

    #[test]
    fn slots_are_distinct_per_kind_menu_and_item() {
        let a = menu_slot(SlotKind::Node, MenuId(1), ItemId(7));
        assert_ne!(a, menu_slot(SlotKind::Content, MenuId(1), ItemId(7)));
        assert_ne!(a, menu_slot(SlotKind::Node, MenuId(2), ItemId(7)));
        assert_ne!(a, menu_slot(SlotKind::Node, MenuId(1), ItemId(u32::MAX)));
        assert_eq!(a >> 56, u64::from(b'M'));
    }

    #[test]
    fn plans_keep_partials_and_a_set_forgets_them() {
        let mut book = MenuBook::default();
        let m = menu();
        let out = book.plan(&MenuUpdate::Set(m.clone())).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, Retain::Keep(menu_slot(SlotKind::Whole, MenuId(2), ItemId::ROOT)));
        // The same menu again changes nothing and sends nothing.
        assert!(book.plan(&MenuUpdate::Set(m.clone())).unwrap().is_empty());
        let content = MenuUpdate::Content { menu: MenuId(2), item: ItemId(1), content: Some(Label::new("z").into()) };
        let out = book.plan(&content).unwrap();
        assert_eq!(
            out,
            vec![(Retain::Keep(menu_slot(SlotKind::Content, MenuId(2), ItemId(1))), content_body(&content))]
        );
        // An update of a node that does not exist is refused before anything is sent.
        let bad = MenuUpdate::Node { menu: MenuId(2), node: Node::new(ItemId(99)) };
        assert!(matches!(book.plan(&bad), Err(MenuError::Apply(MenuApplyError::UnknownItem { .. }))));
        // A whole menu again forgets the content slot with a props body.
        let out = book.plan(&MenuUpdate::Set(m.clone().size(10.0, 10.0))).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].0, Retain::Forget(menu_slot(SlotKind::Content, MenuId(2), ItemId(1))));
        assert!(matches!(decode(&out[1].1), MenuUpdate::Props { width: 10.0, .. }));
        // Removing the menu forgets the whole slot.
        let out = book.plan(&MenuUpdate::Remove { menu: MenuId(2) }).unwrap();
        assert_eq!(out[0].0, Retain::Forget(menu_slot(SlotKind::Whole, MenuId(2), ItemId::ROOT)));
    }

    fn content_body(u: &MenuUpdate) -> Bytes {
        ToSession::Menu(u.clone()).encode()
    }

    #[test]
    fn too_many_partial_slots_send_the_menu_whole_again() {
        let mut book = MenuBook::default();
        let m = Menu::new(MenuId(1), "many").column(|mut c| {
            for i in 1..=40 {
                c = c.label(ItemId(i), "0");
            }
            c
        });
        book.plan(&MenuUpdate::Set(m)).unwrap();
        let mut wholes = 0;
        for i in 1..=40 {
            let u = MenuUpdate::Content { menu: MenuId(1), item: ItemId(i), content: Some(Label::new("1").into()) };
            for (retain, body) in book.plan(&u).unwrap() {
                if retain == Retain::Keep(menu_slot(SlotKind::Whole, MenuId(1), ItemId::ROOT)) {
                    wholes += 1;
                    // The whole menu carries every change so far.
                    let MenuUpdate::Set(sent) = decode(&body) else { panic!("not a whole menu") };
                    assert_eq!(sent.label(ItemId(i)).unwrap().text, "1");
                    assert_eq!(sent.label(ItemId(i + 1)).unwrap().text, "0");
                }
            }
        }
        assert_eq!(wholes, 1);
        assert!(book.partial.get(&MenuId(1)).is_none_or(|s| s.len() <= MAX_PARTIAL_SLOTS));
    }
}
